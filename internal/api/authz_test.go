package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// member adds identityID to project p with roles.
func addMember(t *testing.T, e *apptest.Env, projectID, identityID string, roles ...map[string]any) {
	t.Helper()
	e.Must(t, 200, "POST", "/api/v1/projects/"+projectID+"/identity-memberships/"+identityID, e.Token, map[string]any{"roles": roles})
}

// projectMember makes a new identity (organization role member) a member of
// a project with role, returning its id and token.
func projectMember(t *testing.T, e *apptest.Env, projectID, name, role string) (id, token string) {
	t.Helper()
	id, token = e.NewIdentity(t, name, "member")
	addMember(t, e, projectID, id, map[string]any{"role": role})
	return id, token
}

func folder(projectID, env, path, name string) map[string]any {
	return map[string]any{"workspaceId": projectID, "environment": env, "path": path, "name": name}
}

func TestViewerReadsButCannotWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "viewed"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "existing"))
		_, tok := projectMember(t, e, p.ID, "viewer", "viewer")

		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID, tok, nil)
		if got := folderNames(t, e, tok, p.ID, "dev", "/"); len(got) != 1 {
			t.Fatalf("viewer lists %v", got)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "dev", "/", "new")), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/folders/existing", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/environments", tok, map[string]any{"name": "x", "slug": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID, tok, map[string]any{"name": "hijacked"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", tok, map[string]any{"slug": "mine", "name": "m", "permissions": []any{}}), 403, "PermissionDenied")
		// Nothing changed.
		if got := folderNames(t, e, e.Token, p.ID, "dev", "/"); len(got) != 1 {
			t.Fatalf("folders after denied writes: %v", got)
		}
	})
}

func TestMemberOfProjectACannotSeeProjectB(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "bravo"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(b.ID, "dev", "/", "secret-stuff"))
		_, tok := projectMember(t, e, a.ID, "alpha-dev", "member")

		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID, tok, nil)
		e.Must(t, 200, "POST", "/api/v1/folders", tok, folder(a.ID, "dev", "/", "mine"))
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+b.ID, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/"+b.ID, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/slug/"+b.Slug, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?workspaceId="+b.ID+"&environment=dev", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(b.ID, "dev", "/", "intrusion")), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+b.ID+"/identity-memberships", tok, nil), 403, "PermissionDenied")
		var list struct{ Projects []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/projects", tok, nil).Decode(t, &list)
		if len(list.Projects) != 1 || list.Projects[0].ID != a.ID {
			t.Fatalf("member of A lists %+v", list.Projects)
		}
		// An identity with no org role sees nothing at all.
		_, none := e.NewIdentity(t, "outsider", "no-access")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+a.ID, none, nil), 403, "PermissionDenied")
	})
}

func TestGlobScopedCustomRole(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "scoped"})
		var role struct{ Role struct{ ID, Slug string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "app-dev", "name": "App (dev)",
			"permissions": []map[string]any{{"subject": "secret-folders", "action": []string{"read", "create", "edit", "delete"},
				"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}}}}).Decode(t, &role)
		id, tok := projectMember(t, e, p.ID, "app-bot", "app-dev")

		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", "app"))
		e.Must(t, 200, "POST", "/api/v1/folders", tok, folder(p.ID, "dev", "/app", "svc"))
		e.Must(t, 200, "POST", "/api/v1/folders", tok, folder(p.ID, "dev", "/app/svc/deep", "x"))
		if got := folderNames(t, e, tok, p.ID, "dev", "/app"); len(got) != 1 || got[0] != "svc" {
			t.Fatalf("lists %v", got)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "dev", "/", "rootling")), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=dev&path=/", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "prod", "/app", "svc")), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=prod&path=/app", tok, nil), 403, "PermissionDenied")
		// A role in use cannot be deleted; after the membership goes, it can.
		assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/roles/"+role.Role.ID, e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id, e.Token, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "dev", "/app", "after")), 403, "PermissionDenied")
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/roles/"+role.Role.ID, e.Token, nil)
	})
}

func TestInvertedRuleAndTemporaryRoles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "temporal"})
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "no-prod", "name": "No prod",
			"permissions": []map[string]any{
				{"subject": "secret-folders", "action": []string{"read", "create"}},
				{"subject": "secret-folders", "action": []string{"read", "create"}, "inverted": true, "conditions": map[string]any{"environment": "prod"}},
			}})
		_, tok := projectMember(t, e, p.ID, "careful", "no-prod")
		e.Must(t, 200, "POST", "/api/v1/folders", tok, folder(p.ID, "staging", "/", "ok"))
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "prod", "/", "nope")), 403, "PermissionDenied")

		// Temporary roles: expired grants nothing, active works.
		past := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
		id2, tok2 := e.NewIdentity(t, "contractor", "member")
		addMember(t, e, p.ID, id2, map[string]any{"role": "member", "isTemporary": true, "temporaryMode": "relative",
			"temporaryRange": "1h", "temporaryAccessStartTime": past})
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok2, folder(p.ID, "dev", "/", "late")), 403, "PermissionDenied")
		var upd struct {
			Roles []struct {
				Role                   string
				IsTemporary            bool
				TemporaryAccessEndTime string
			}
		}
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id2, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "member", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h"}}}).Decode(t, &upd)
		end, err := time.Parse(time.RFC3339, upd.Roles[0].TemporaryAccessEndTime)
		if err != nil || !upd.Roles[0].IsTemporary || time.Until(end) < 50*time.Minute || time.Until(end) > 61*time.Minute {
			t.Fatalf("temporary role %+v (%v)", upd, err)
		}
		e.Must(t, 200, "POST", "/api/v1/folders", tok2, folder(p.ID, "dev", "/", "intime"))
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id2, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "member", "isTemporary": true, "temporaryRange": "soon"}}}), 422, "ValidationFailure")
	})
}

func TestMembershipShapesAndBoundary(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "shapes"})
		id, tok := e.NewIdentity(t, "tf-bot", "member")
		// Terraform's body on the deprecated route.
		var got struct {
			IdentityMembership struct {
				ID, IdentityID string
				Roles          []struct {
					Role                     string
					IsTemporary              bool
					TemporaryAccessStartTime *string
				}
				Identity struct {
					ID, Name    string
					AuthMethods []string
				}
				Project struct{ ID, Name string }
			}
		}
		e.Must(t, 200, "POST", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+id, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "member", "isTemporary": false, "temporaryMode": "", "temporaryRange": "", "temporaryAccessStartTime": "0001-01-01T00:00:00Z"}}}).Decode(t, &got)
		m := got.IdentityMembership
		if m.IdentityID != id || len(m.Roles) != 1 || m.Roles[0].Role != "member" || m.Roles[0].IsTemporary ||
			m.Roles[0].TemporaryAccessStartTime != nil || m.Identity.Name != "tf-bot" || m.Project.ID != p.ID || len(m.Identity.AuthMethods) != 1 {
			t.Fatalf("membership %+v", got)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id, e.Token, map[string]any{"role": "viewer"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/00000000-0000-0000-0000-000000000000", e.Token, map[string]any{"role": "viewer"}), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/"+e.IdentityID, e.Token, map[string]any{"role": "superuser"}), 400, "BadRequest")
		var list struct {
			IdentityMemberships []struct{ IdentityID string }
			TotalCount          int
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/identity-memberships", e.Token, nil).Decode(t, &list)
		if list.TotalCount != 2 || len(list.IdentityMemberships) != 2 { // the creator (admin) and tf-bot
			t.Fatalf("list %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+id, e.Token, nil)
		// A project member may add members, but may not grant admin (privilege boundary).
		other, _ := e.NewIdentity(t, "other", "member")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/"+other, tok, map[string]any{"role": "admin"}), 403, "PermissionBoundaryError")
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/"+other, tok, map[string]any{"role": "viewer"})
		// Roles: built-ins are listed; slug lookup works for both kinds.
		var roles struct{ Roles []struct{ Slug string } }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/roles", e.Token, nil).Decode(t, &roles)
		if len(roles.Roles) != 4 || roles.Roles[0].Slug != "admin" {
			t.Fatalf("roles %+v", roles)
		}
		viewer := e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/roles/slug/viewer", e.Token, nil).JSON(t)["role"].(map[string]any)
		if len(viewer["permissions"].([]any)) == 0 {
			t.Fatalf("viewer role %v", viewer)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "admin", "name": "x", "permissions": []any{}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "bad", "name": "x",
			"permissions": []map[string]any{{"subject": "nukes", "action": "read"}}}), 422, "ValidationFailure")
		var evs struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-identity-project-membership", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 2 {
			t.Fatalf("membership audit events %d", len(evs.AuditLogs))
		}
	})
}

// TestMembershipRolesAreBounded: a membership is given at most
// project.MaxRolesPerMembership roles at once (each a row looked up and
// inserted in the request, and read by every permission check of the
// member); exactly that many is accepted.
func TestMembershipRolesAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "many-roles"})
	roles := func(n int) map[string]any {
		rs := make([]map[string]any, n)
		for i := range rs {
			rs[i] = map[string]any{"role": "viewer"}
		}
		return map[string]any{"roles": rs}
	}
	over, _ := e.NewIdentity(t, "over", "member")
	m := assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+over, e.Token, roles(project.MaxRolesPerMembership+1)), 422, "ValidationFailure")
	if !strings.Contains(fmt.Sprint(m["message"]), "at most 100 roles") {
		t.Fatalf("too many roles: %v", m)
	}
	at, _ := e.NewIdentity(t, "at", "member")
	var got struct {
		IdentityMembership struct{ Roles []struct{ Role string } }
	}
	e.Must(t, 200, "POST", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+at, e.Token, roles(project.MaxRolesPerMembership)).Decode(t, &got)
	if len(got.IdentityMembership.Roles) != project.MaxRolesPerMembership {
		t.Fatalf("%d roles, want %d", len(got.IdentityMembership.Roles), project.MaxRolesPerMembership)
	}
}

// TestAMemberCannotLiftItsOwnDenyRole: an admin restricts a member by adding
// a role that only denies (no folders in prod) beside its member role. The
// member may edit identity memberships, its own included, but cannot drop
// the deny role: the roles that would remain give what it does not hold.
// Another member, who holds that access, may drop it; the admin may too.
func TestAMemberCannotLiftItsOwnDenyRole(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "fenced"})
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "no-prod", "name": "No prod",
			"permissions": []map[string]any{
				{"subject": "secret-folders", "action": []string{"create"}, "inverted": true, "conditions": map[string]any{"environment": "prod"}},
			}})
		id, tok := e.NewIdentity(t, "fenced", "member")
		addMember(t, e, p.ID, id, map[string]any{"role": "member"}, map[string]any{"role": "no-prod"})
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "prod", "/", "before")), 403, "PermissionDenied")

		// Listed before member, the deny-only role holds all the same: roles
		// that deny come after those that only allow, whatever their order.
		revID, rev := e.NewIdentity(t, "fenced-reversed", "member")
		addMember(t, e, p.ID, revID, map[string]any{"role": "no-prod"}, map[string]any{"role": "member"})
		assertError(t, e.Do(t, "POST", "/api/v1/folders", rev, folder(p.ID, "prod", "/", "reversed")), 403, "PermissionDenied")
		e.Must(t, 200, "POST", "/api/v1/folders", rev, folder(p.ID, "dev", "/", "reversed"))

		self := "/api/v1/projects/" + p.ID + "/identity-memberships/" + id
		assertError(t, e.Do(t, "PATCH", self, tok, map[string]any{"roles": []map[string]any{{"role": "member"}}}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/folders", tok, folder(p.ID, "prod", "/", "after")), 403, "PermissionDenied")

		// A lead who may grant custom roles cannot give the deny role back
		// for a window that has already ended either: a temporary denial
		// lapses, so the roles that would remain for good are checked.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "lead", "name": "Lead",
			"permissions": []map[string]any{
				{"subject": "secret-folders", "action": []string{"read", "create"}},
				{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
			}})
		leadID, lead := e.NewIdentity(t, "lead", "member")
		addMember(t, e, p.ID, leadID, map[string]any{"role": "lead"}, map[string]any{"role": "no-prod"})
		lapsed := map[string]any{"role": "no-prod", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1s",
			"temporaryAccessStartTime": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+leadID, lead,
			map[string]any{"roles": []map[string]any{{"role": "lead"}, lapsed}}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/folders", lead, folder(p.ID, "prod", "/", "lapsed")), 403, "PermissionDenied")

		_, other := projectMember(t, e, p.ID, "colleague", "member")
		e.Must(t, 200, "PATCH", self, other, map[string]any{"roles": []map[string]any{{"role": "member"}}})
		e.Must(t, 200, "POST", "/api/v1/folders", tok, folder(p.ID, "prod", "/", "lifted"))
	})
}
