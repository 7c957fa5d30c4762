package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkProjectGrants resolves an identity's grants in a project as a
// permission check that missed the cache does: one role, and then the same
// with three additional privileges (one temporary) on top, and then with
// the roles of two groups the identity is in (one temporary) as well.
func BenchmarkProjectGrants(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			var p struct{ Project struct{ ID string } }
			e.Must(b, 200, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "grants"}).Decode(b, &p)
			id, _ := e.NewIdentity(b, "bench", "member")
			e.Must(b, 200, "POST", "/api/v1/projects/"+p.Project.ID+"/identity-memberships/"+id, e.Token, map[string]any{"role": "viewer"})
			ctx := context.Background()
			run := func(b *testing.B, want int) {
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					_, grants, _, err := e.DB.ProjectGrants(ctx, p.Project.ID, authz.ActorIdentity, id, time.Now())
					if err != nil || len(grants) != want {
						b.Fatal(len(grants), err)
					}
				}
				reportCPU(b, cpu)
			}
			b.Run("role", func(b *testing.B) { run(b, 1) })
			for i := range 3 {
				typ := map[string]any{"isTemporary": false}
				if i == 2 {
					typ = map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1d"}
				}
				e.Must(b, 200, "POST", "/api/v2/identity-project-additional-privilege", e.Token, map[string]any{"projectId": p.Project.ID,
					"identityId": id, "slug": fmt.Sprintf("p%d", i), "type": typ, "permissions": []map[string]any{
						{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"secretPath": fmt.Sprintf("/f%d", i)}}}})
			}
			b.Run("role+3privileges", func(b *testing.B) { run(b, 4) })
			for i := range 2 {
				var g struct{ ID string }
				e.Must(b, 200, "POST", "/api/v1/groups", e.Token, map[string]any{"name": fmt.Sprintf("group %d", i)}).Decode(b, &g)
				e.Must(b, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+id, e.Token, nil)
				role := map[string]any{"role": "member"}
				if i == 1 {
					role = map[string]any{"role": "viewer", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1d"}
				}
				e.Must(b, 200, "POST", "/api/v1/projects/"+p.Project.ID+"/groups/"+g.ID, e.Token, map[string]any{"roles": []any{role}})
			}
			b.Run("role+3privileges+2groups", func(b *testing.B) { run(b, 6) })
		})
	}
}
