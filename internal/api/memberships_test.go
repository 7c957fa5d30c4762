package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The body Terraform's project identity resource reads back from
// GET /api/v2/workspace/{projectId}/identity-memberships/{identityId}.
func TestIdentityMembershipTerraformShape(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "memberships"})
		id, _ := e.NewIdentity(t, "deployer", "member")
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+id, e.Token, map[string]any{"hasDeleteProtection": true})
		e.Must(t, 200, "POST", "/api/v2/workspace/"+p.ID+"/roles", e.Token, map[string]any{"slug": "ci", "name": "CI"})
		path := "/api/v2/workspace/" + p.ID + "/identity-memberships/" + id
		e.Must(t, 200, "POST", path, e.Token, map[string]any{"roles": []map[string]any{{"role": "viewer"}, {"role": "ci"}}})
		var got struct {
			IdentityMembership struct {
				ID, IdentityID string
				Roles          []struct {
					ID, Role, CustomRoleSlug, CustomRoleID, ProjectMembershipID string
					IsTemporary                                                 bool
				}
				Identity struct {
					ID, Name            string
					HasDeleteProtection bool
					AuthMethods         []string
				}
				Project struct{ ID, Name string }
			}
		}
		e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &got)
		m := got.IdentityMembership
		if m.ID == "" || m.IdentityID != id || m.Identity.ID != id || m.Identity.Name != "deployer" || !m.Identity.HasDeleteProtection ||
			m.Project.ID != p.ID || m.Project.Name != "memberships" || len(m.Roles) != 2 {
			t.Fatalf("membership %+v", m)
		}
		for _, r := range m.Roles {
			if r.ID == "" || r.ProjectMembershipID != m.ID || r.IsTemporary {
				t.Fatalf("role %+v of membership %s", r, m.ID)
			}
			if r.Role == "custom" && (r.CustomRoleSlug != "ci" || r.CustomRoleID == "") {
				t.Fatalf("custom role %+v", r)
			}
		}
		// Terraform imports a membership by its own id.
		var byID struct {
			IdentityMembership struct {
				ID, IdentityID string
				Project        struct{ ID string }
			}
		}
		e.Must(t, 200, "GET", "/api/v2/workspace/identity-memberships/"+m.ID, e.Token, nil).Decode(t, &byID)
		if byID.IdentityMembership.ID != m.ID || byID.IdentityMembership.IdentityID != id || byID.IdentityMembership.Project.ID != p.ID {
			t.Fatalf("by membership id %+v", byID)
		}
		var list struct {
			IdentityMemberships []struct{ ID string }
			TotalCount          int
		}
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.ID+"/identity-memberships", e.Token, nil).Decode(t, &list)
		if list.TotalCount != 2 { // the admin and the deployer
			t.Fatalf("v2 list %+v", list)
		}
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/identity-memberships/00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/identity-memberships/nope", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/"+p.ID+"/nothing", e.Token, nil), 404, "NotFound")

		// A member of another project reads nothing here; unknown identities are 404.
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		oid, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", path, outsider, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/identity-memberships/"+m.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/"+p.ID+"/identity-memberships/00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+oid, e.Token, nil), 404, "NotFound")
	})
}
