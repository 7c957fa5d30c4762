package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type identityMembershipOut struct {
	Role       string
	RoleID     *string
	CustomRole *struct{ ID, Slug, Name string }
	Identity   struct{ ID, Name string }
}

// TestIdentityWithCustomOrgRole: an identity created or updated with a
// custom organization role's slug holds that role and exactly its
// permissions; the answer names the role as Infisical's does; an identity
// manager grants only roles whose permissions it holds; a role in use
// cannot be deleted.
func TestIdentityWithCustomOrgRole(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		var role struct{ Role struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-manager", "name": "Identity manager",
			"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "delete",
				"create-token", "get-token"}}}}).Decode(t, &role)
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "project-maker", "name": "Project maker",
			"permissions": []map[string]any{{"subject": "workspace", "action": []string{"read", "create"}}}})

		id, tok := e.NewIdentity(t, "robot", "identity-manager")
		var got struct{ Identity identityMembershipOut }
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &got)
		if got.Identity.Role != "custom" || got.Identity.RoleID == nil || *got.Identity.RoleID != role.Role.ID ||
			got.Identity.CustomRole == nil || got.Identity.CustomRole.Slug != "identity-manager" {
			t.Fatalf("identity %+v", got.Identity)
		}
		var list struct{ Identities []identityMembershipOut }
		e.Must(t, 200, "GET", "/api/v1/identities?orgId="+e.OrgID, tok, nil).Decode(t, &list)
		if len(list.Identities) < 2 {
			t.Fatalf("the custom role's identity read gave %+v", list)
		}
		// What the role does not allow is refused.
		assertError(t, e.Do(t, "POST", "/api/v1/projects", tok, map[string]any{"projectName": "nope"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/organization/roles", tok, nil), 403, "PermissionDenied")

		// It creates identities with roles it holds entirely, and no other.
		e.Must(t, 200, "POST", "/api/v1/identities", tok, map[string]any{"name": "child", "organizationId": e.OrgID, "role": "identity-manager"})
		e.Must(t, 200, "POST", "/api/v1/identities", tok, map[string]any{"name": "child2", "organizationId": e.OrgID, "role": "no-access"})
		for _, r := range []string{"admin", "member", "project-maker"} {
			assertError(t, e.Do(t, "POST", "/api/v1/identities", tok, map[string]any{"name": "x", "organizationId": e.OrgID, "role": r}),
				403, "PermissionBoundaryError")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/identities", e.Token, map[string]any{"name": "x", "organizationId": e.OrgID, "role": "ghost"}),
			400, "BadRequest")

		// It cannot take over an identity whose custom role allows more than
		// its own: no rename, no login method, no delete.
		bigID, _ := e.NewIdentity(t, "big", "project-maker")
		assertError(t, e.Do(t, "PATCH", "/api/v1/identities/"+bigID, tok, map[string]any{"name": "mine"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/identities/"+bigID, tok, map[string]any{}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", "/api/v1/identities/"+bigID, tok, nil), 403, "PermissionBoundaryError")
		var child struct{ Identity struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/identities", tok, map[string]any{"name": "child3", "organizationId": e.OrgID, "role": "identity-manager"}).Decode(t, &child)
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+child.Identity.ID, tok, map[string]any{"name": "child3b"})

		// Updated to another custom role, the new role's permissions apply at once.
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+id, e.Token, map[string]any{"role": "project-maker"})
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &got)
		if got.Identity.Role != "custom" || got.Identity.CustomRole == nil || got.Identity.CustomRole.Slug != "project-maker" {
			t.Fatalf("updated %+v", got.Identity)
		}
		e.Must(t, 200, "POST", "/api/v1/projects", tok, map[string]any{"projectName": "made-by-robot"})
		assertError(t, e.Do(t, "GET", "/api/v1/identities?orgId="+e.OrgID, tok, nil), 403, "PermissionDenied")
		// A role in use cannot be deleted; once unused it can.
		assertError(t, e.Do(t, "DELETE", "/api/v1/organization/roles/"+role.Role.ID, e.Token, nil), 400, "BadRequest")

		// Back to a built-in role: the answer carries no custom role.
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+id, e.Token, map[string]any{"role": "member"})
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &got)
		if got.Identity.Role != "member" || got.Identity.CustomRole != nil || got.Identity.RoleID != nil {
			t.Fatalf("built-in again %+v", got.Identity)
		}
	})
}

// TestAnIdentityManagerMintsNoLoginBeyondItsProjects: a custom organization
// role may create and edit identities and mint their credentials. It does
// not reach into projects: a manager in no project cannot give a client
// secret, a token or a login method to an identity that is admin of a
// project (it would read the project's secrets through it). Once the
// manager holds as much in that project, it may; an organization admin
// always may.
func TestAnIdentityManagerMintsNoLoginBeyondItsProjects(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-manager", "name": "Identity manager",
			"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "delete",
				"create-token", "get-token"}}}})
		mgrID, mgr := e.NewIdentity(t, "manager", "identity-manager")
		p := createProject(t, e, e.Token, map[string]any{"projectName": "payments"})
		victim, _ := e.NewIdentity(t, "payments-bot", "no-access")
		addMember(t, e, p.ID, victim, map[string]any{"role": "admin"})

		ua := "/api/v1/auth/universal-auth/identities/" + victim
		e.Must(t, 200, "POST", ua, mgr, map[string]any{}) // a method with no credential yet
		assertError(t, e.Do(t, "POST", ua+"/client-secrets", mgr, map[string]any{}), 403, "PermissionBoundaryError")
		tokens := "/api/v1/auth/token-auth/identities/" + victim + "/tokens"
		assertError(t, e.Do(t, "POST", tokens, mgr, map[string]any{"name": "t"}), 403, "PermissionBoundaryError")
		// A login method whose keys the manager chooses is a credential too.
		jwtCfg := map[string]any{"configurationType": "static", "publicKeys": []string{newTokenSigner(t, "ed", "").PublicPEM(t)}}
		assertError(t, e.Do(t, "POST", "/api/v1/auth/jwt-auth/identities/"+victim, mgr, jwtCfg), 403, "PermissionBoundaryError")
		// So is changing the keys of a method an admin attached.
		e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+victim, e.Token, map[string]any{"configurationType": "static",
			"publicKeys": []string{newTokenSigner(t, "ed", "").PublicPEM(t)}, "boundSubject": "ci"})
		assertError(t, e.Do(t, "PATCH", "/api/v1/auth/jwt-auth/identities/"+victim, mgr, jwtCfg), 403, "PermissionBoundaryError")
		// An identity in no project: allowed.
		free, _ := e.NewIdentity(t, "free-bot", "no-access")
		e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+free+"/tokens", mgr, map[string]any{"name": "t"})

		// Holding as much in the project, the manager may.
		addMember(t, e, p.ID, mgrID, map[string]any{"role": "admin"})
		e.Must(t, 200, "POST", ua+"/client-secrets", mgr, map[string]any{})
		e.Must(t, 200, "POST", tokens, mgr, map[string]any{"name": "t"})
		// An organization admin always may.
		e.Must(t, 200, "POST", tokens, e.Token, map[string]any{"name": "t2"})
	})
}

// TestOrgRolesAreBounded: an organization role's rules are bounded as a
// project role's are (bytes, rules, $glob bytes), and an organization
// holds at most org.MaxRoles custom roles: a non-admin's 975 KB role of
// $glob rules made every listing of the roles cost half a second and
// 213 MiB.
func TestOrgRolesAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	role := func(slug string, rules []map[string]any) apptest.Response {
		return e.Do(t, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": slug, "name": slug, "permissions": rules})
	}
	rule := func(glob string) map[string]any {
		r := map[string]any{"subject": "identity", "action": []string{"read"}}
		if glob != "" {
			r["conditions"] = map[string]any{"identityId": map[string]any{"$glob": glob}}
		}
		return r
	}
	many := func(n int, glob string) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = rule(glob)
		}
		return out
	}
	assertError(t, role("too-many", many(authz.MaxRules+1, "")), 422, "ValidationFailure")
	assertError(t, role("too-big", many(200, strings.Repeat("a", 200))), 422, "ValidationFailure")
	assertError(t, role("too-globby", many(30, strings.Repeat("a", 100))), 422, "ValidationFailure")
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "fine", "name": "fine", "permissions": many(10, "id-*")})

	rawExec(t, e, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO org_roles (id, org_id, slug, name, description, permissions, created_at, updated_at)
		SELECT 'seeded-' || i, '%s', 'seeded-' || i, 'seeded', '', '[]', 0, 0 FROM n`, org.MaxRoles-1, e.OrgID)) // "fine" is the first
	assertError(t, role("one-more", many(1, "")), 400, "BadRequest")
}
