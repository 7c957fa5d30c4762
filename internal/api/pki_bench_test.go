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

// BenchmarkPKIIssueECP256 measures whole issue-certificate requests: an
// ECDSA P-256 key generated and certified by an ECDSA P-256 CA, its key
// sealed, the certificate and its audit event committed, the key returned.
func BenchmarkPKIIssueECP256(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			p := createProject(b, e, e.Token, map[string]any{"projectName": "bench"})
			ca := rootCA(b, e, p.ID, "Bench Root", "ec-prime256v1")
			body, _ := json.Marshal(map[string]any{"commonName": "svc.example.com", "altNames": "svc.example.com", "ttl": "1h",
				"keyAlgorithm": "ec-prime256v1"})
			url := e.URL + "/api/v1/pki/ca/" + ca.ID + "/issue-certificate"
			b.ReportAllocs()
			b.SetParallelism(4)
			// The server, project and CA above are set up once per run; without
			// this the first run (b.N = 1) counts them and the benchmark stops there.
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
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
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
		})
	}
}
