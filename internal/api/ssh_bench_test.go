package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// BenchmarkSSHSign measures whole sign requests through the HTTP stack: an
// ed25519 user key signed by an ed25519 CA through a template, the
// certificate recorded and audited in one transaction.
func BenchmarkSSHSign(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			p := createProject(b, e, e.Token, map[string]any{"projectName": "bench-ssh"})
			ca := createSSHCA(b, e, e.Token, p.ID, "ED25519")
			tpl := createSSHTemplate(b, e, e.Token, map[string]any{"sshCaId": ca.ID, "name": "bench", "allowedUsers": []string{"deploy"}})
			pub, _ := newSSHKey(b)
			body, _ := json.Marshal(map[string]any{"certificateTemplateId": tpl.ID, "publicKey": pub, "principals": []string{"deploy"}})
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", e.URL+"/api/v1/ssh/certificates/sign", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+e.Token)
					req.Header.Set("Content-Type", "application/json")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatal(res.Status)
					}
				}
			})
		})
	}
}
