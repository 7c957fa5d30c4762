package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestLargePagesAreFilled: a page of 11,000 identities (the API lets a
// listing ask for 20,000) is filled with each identity's auth methods and
// its project membership's roles. Looked up in one statement, the auth
// methods name the ids three times: 33,000 parameters, over SQLite's 32,766
// (a 500). The last identity, in the last chunk, has a token auth and a role.
func TestLargePagesAreFilled(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 11000
		projectID, _, _ := seedProject(t, db)
		org := projectID // seedProject's organization has the project's id
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.ExecForTest(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		nums := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, n)
		exec(nums+`INSERT INTO identities (id, org_id, name, created_at, updated_at)
			SELECT 'fill-' || CAST(100000 + i AS TEXT), ?, 'i' || CAST(100000 + i AS TEXT), 0, 0 FROM n`, org)
		exec(nums+`INSERT INTO org_memberships (id, org_id, identity_id, role, created_at, updated_at)
			SELECT 'om-' || CAST(100000 + i AS TEXT), ?, 'fill-' || CAST(100000 + i AS TEXT), 'member', 0, 0 FROM n`, org)
		exec(nums+`INSERT INTO project_memberships (id, project_id, identity_id, created_at, updated_at)
			SELECT 'pm-' || CAST(100000 + i AS TEXT), ?, 'fill-' || CAST(100000 + i AS TEXT), 0, 0 FROM n`, projectID)
		last := fmt.Sprint(100000 + n)
		exec(`INSERT INTO identity_token_auths (id, identity_id, access_token_ttl, access_token_max_ttl, access_token_num_uses_limit,
			access_token_trusted_ips, created_at, updated_at) VALUES ('ta', ?, 1, 1, 0, '[]', 0, 0)`, "fill-"+last)
		exec(`INSERT INTO project_membership_roles (id, membership_id, role, created_at, updated_at) VALUES ('r', ?, 'viewer', 0, 0)`, "pm-"+last)

		ids, total, err := db.OrgIdentities(ctx, org, 0, 20000)
		if err != nil || total != n || len(ids) != n {
			t.Fatalf("org identities: %d of %d (%v)", len(ids), total, err)
		}
		if got := ids[n-1]; got.ID != "fill-"+last || len(got.AuthMethods) != 1 || got.AuthMethods[0] != "token-auth" {
			t.Fatalf("last identity %s: auth methods %v", got.ID, got.AuthMethods)
		}
		ms, total, err := db.IdentityMemberships(ctx, projectID, 0, 20000)
		if err != nil || total != n || len(ms) != n {
			t.Fatalf("identity memberships: %d of %d (%v)", len(ms), total, err)
		}
		if got := ms[n-1]; got.IdentityID != "fill-"+last || len(got.Roles) != 1 || got.Roles[0].Role != "viewer" ||
			len(got.IdentityAuthMethods) != 1 {
			t.Fatalf("last membership %s: roles %+v, auth methods %v", got.IdentityID, got.Roles, got.IdentityAuthMethods)
		}
	})
}
