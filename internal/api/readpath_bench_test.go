package api_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// BenchmarkReadPath measures whole requests through the HTTP stack on a
// warm node: listing a folder of 100 secrets (20 with references) and
// reading one secret by name, each audited; the list also with a service
// token (st.*) instead of a machine identity's access token.
func BenchmarkReadPath(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			p := createProject(b, e, e.Token, map[string]any{"projectName": "bench"})
			batch := make([]map[string]any, 100)
			for i := range batch {
				v := fmt.Sprintf("value-%03d", i)
				if i%5 == 0 {
					v = fmt.Sprintf("${K%03d}-${K%03d}", (i+1)%100, (i+2)%100)
				}
				batch[i] = map[string]any{"secretKey": fmt.Sprintf("K%03d", i), "secretValue": v}
			}
			e.Must(b, 200, "POST", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/", "secrets": batch})
			q := secretQ(p.ID, "dev", "/")
			list := "/api/v3/secrets/raw?expandSecretReferences=true&include_imports=true&" + q
			st := createServiceToken(b, e, p.ID, nil, []string{"read"}, [2]string{"dev", "/"}).ServiceToken
			for _, c := range []struct{ name, path, token string }{
				{"list100", list, e.Token},
				{"get", "/api/v3/secrets/raw/K000?expandSecretReferences=true&" + q, e.Token},
				{"list100-service-token", list, st},
			} {
				b.Run(c.name, func(b *testing.B) {
					req, _ := http.NewRequest("GET", e.URL+c.path, nil)
					req.Header.Set("Authorization", "Bearer "+c.token)
					b.ReportAllocs()
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
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
		})
	}
}
