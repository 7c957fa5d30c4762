package api_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// BenchmarkUserSecretRead measures a user's read of one secret through the
// HTTP stack on a warm node: session check, organization role (invited and
// deactivated members excluded), project roles with a temporary one in
// force, the read and its audit event.
func BenchmarkUserSecretRead(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			p := createProject(b, e, e.Token, map[string]any{"projectName": "bench-people"})
			e.Must(b, 200, "POST", "/api/v3/secrets/raw/K", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v"})
			tok, _ := newUser(b, e, "bench@example.com", "member")
			ms := addProjectUsers(b, e, e.Token, p.ID, []string{"bench@example.com"}, "no-access")
			e.Must(b, 200, "PATCH", "/api/v1/projects/"+p.ID+"/memberships/"+ms[0].ID, e.Token, map[string]any{"roles": []map[string]any{
				{"role": "viewer"}, {"role": "member", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1d"}}})
			req, _ := http.NewRequest("GET", e.URL+"/api/v3/secrets/raw/K?workspaceId="+p.ID+"&environment=dev", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
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
}
