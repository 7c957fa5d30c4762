package api_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

const userPrivileges = "/api/v1/user-project-additional-privilege"

type userPrivilegeOut struct {
	ID, Slug, ProjectMembershipID, UserID, ProjectID, CreatedAt, UpdatedAt string
	IsTemporary                                                            bool
	TemporaryMode, TemporaryRange                                          *string
	TemporaryAccessStartTime, TemporaryAccessEndTime                       *string
	Permissions                                                            []map[string]any
}

// projectUser makes a user of e's organization a member of project p with
// role, returning the user's token and project membership id.
func projectUser(t *testing.T, e *apptest.Env, p projectOut, email, role string) (token, membershipID string) {
	t.Helper()
	token, _ = newUser(t, e, email, "member")
	ms := addProjectUsers(t, e, e.Token, p.ID, []string{email}, role)
	if len(ms) != 1 {
		t.Fatalf("added %+v", ms)
	}
	return token, ms[0].ID
}

func createUserPrivilege(t *testing.T, e *apptest.Env, token string, body map[string]any) userPrivilegeOut {
	t.Helper()
	var out struct{ Privilege userPrivilegeOut }
	e.Must(t, 200, "POST", userPrivileges, token, body).Decode(t, &out)
	return out.Privilege
}

// TestUserPrivilegeReadsExactlyOneFolderMore: a privilege with a secretPath
// condition lets a no-access user read one folder and not its sibling,
// through the same permission evaluation as identities; the routes create,
// read, list, change and delete it with Infisical's shapes.
func TestUserPrivilegeReadsExactlyOneFolderMore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := twoFolders(t, e, "people-privileged")
		alice, ms := projectUser(t, e, p, "alice@example.com", "no-access")
		app, other := secretQ(p.ID, "dev", "/app"), secretQ(p.ID, "dev", "/other")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, alice, nil), 403, "PermissionDenied")

		pv := createUserPrivilege(t, e, e.Token, map[string]any{"projectMembershipId": ms, "slug": "read-app",
			"permissions": readFolder("/app"), "type": map[string]any{"isTemporary": false}})
		if pv.ID == "" || pv.Slug != "read-app" || pv.UserID == "" || pv.ProjectID != p.ID || pv.ProjectMembershipID != ms ||
			pv.IsTemporary || pv.TemporaryAccessEndTime != nil || len(pv.Permissions) != 1 || pv.Permissions[0]["subject"] != "secrets" {
			t.Fatalf("privilege %+v", pv)
		}
		if got := listSecrets(t, e, alice, app); len(got) != 1 || got[0].SecretValue != "app-value" {
			t.Fatalf("privileged read of /app: %+v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, alice, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "prod", "/app"), alice, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW", alice, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/app", "secretValue": "x"}), 403, "PermissionDenied")

		// Reads: by id on both prefixes, the list without rules.
		var one struct{ Privilege userPrivilegeOut }
		for _, prefix := range []string{userPrivileges, "/api/v1/additional-privilege/users"} {
			e.Must(t, 200, "GET", prefix+"/"+pv.ID, e.Token, nil).Decode(t, &one)
			if one.Privilege.ID != pv.ID || len(one.Privilege.Permissions) != 1 || one.Privilege.UserID != pv.UserID {
				t.Fatalf("%s get %+v", prefix, one)
			}
		}
		list := e.Must(t, 200, "GET", userPrivileges+"?projectMembershipId="+ms, e.Token, nil).JSON(t)
		items, _ := list["privileges"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["slug"] != "read-app" || items[0].(map[string]any)["permissions"] != nil {
			t.Fatalf("list %v", list)
		}
		assertError(t, e.Do(t, "GET", userPrivileges, e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "GET", userPrivileges+"/00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", userPrivileges+"?projectMembershipId=00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")

		// PATCH moves the privilege to the sibling folder.
		e.Must(t, 200, "PATCH", userPrivileges+"/"+pv.ID, e.Token, map[string]any{"slug": "read-other", "permissions": readFolder("/other")}).Decode(t, &one)
		if one.Privilege.Slug != "read-other" {
			t.Fatalf("patched %+v", one)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, alice, nil), 403, "PermissionDenied")
		if got := listSecrets(t, e, alice, other); len(got) != 1 || got[0].SecretKey != "OTHER_KEY" {
			t.Fatalf("read of /other after the change: %+v", got)
		}
		e.Must(t, 200, "DELETE", userPrivileges+"/"+pv.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, alice, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", userPrivileges+"/"+pv.ID, e.Token, nil), 404, "NotFound")

		// The older create route, permanent, with Terraform's single rule.
		e.Must(t, 200, "POST", "/api/v1/additional-privilege/users/permanent", e.Token, map[string]any{"projectMembershipId": ms, "slug": "tf",
			"privilegePermission": map[string]any{"actions": []string{"read", "readValue"}, "subject": "secrets",
				"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app"}}}}).Decode(t, &one)
		if one.Privilege.Slug != "tf" || one.Privilege.IsTemporary {
			t.Fatalf("v1 create %+v", one)
		}
		listSecrets(t, e, alice, app)
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"projectMembershipId": ms, "slug": "tf",
			"permissions": readFolder("/app")}), 400, "BadRequest")

		// An identity's privilege is not a user's, nor the other way round.
		id, _ := projectMember(t, e, p.ID, "machine", "no-access")
		ipv := createPrivilege(t, e, e.Token, map[string]any{"identityId": id, "projectId": p.ID, "permissions": readFolder("/app")})
		assertError(t, e.Do(t, "GET", userPrivileges+"/"+ipv.ID, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", privilegesV2+"/"+one.Privilege.ID, e.Token, nil), 404, "NotFound")
		var idMs struct{ IdentityMembership struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.ID+"/identity-memberships/"+id, e.Token, nil).Decode(t, &idMs)
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"projectMembershipId": idMs.IdentityMembership.ID,
			"permissions": readFolder("/app")}), 404, "NotFound")

		// Bad input is a 4xx naming the problem.
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"projectMembershipId": ms,
			"permissions": []map[string]any{{"subject": "nope", "action": "read"}}}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"permissions": readFolder("/app")}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"projectMembershipId": ms, "permissions": readFolder("/app"),
			"type": map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "soon"}}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", userPrivileges, e.Token, map[string]any{"projectMembershipId": "nope", "permissions": readFolder("/app")}), 404, "NotFound")

		// Every change is audited.
		var logs struct {
			AuditLogs []struct{ Event struct{ Type string } }
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-user-specific-privilege&limit=50", e.Token, nil).Decode(t, &logs)
		if len(logs.AuditLogs) < 2 {
			t.Fatalf("audited creates: %+v", logs)
		}
	})
}

// TestUserPrivilegeBoundary: a viewer cannot give privileges; a manager who
// may grant privileges to members hands out only what he holds himself,
// takes away only what he holds, and changes nothing of a member who holds
// more than he does (deny rules included); a member of another project
// finds nothing.
func TestUserPrivilegeBoundary(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := twoFolders(t, e, "bounded-privileges")
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "people-app", "name": "People of app",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "edit", "grant-privileges"}},
				readFolder("/app")[0]}})
		mgr, _ := projectUser(t, e, p, "mgr@example.com", "people-app")
		viewer, _ := projectUser(t, e, p, "viewer@example.com", "viewer")
		_, ms := projectUser(t, e, p, "alice@example.com", "no-access")

		body := func(path string) map[string]any {
			return map[string]any{"projectMembershipId": ms, "permissions": readFolder(path)}
		}
		assertError(t, e.Do(t, "POST", userPrivileges, viewer, body("/app")), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", userPrivileges, mgr, body("/other")), 403, "PermissionBoundaryError")
		pv := createUserPrivilege(t, e, mgr, body("/app"))
		assertError(t, e.Do(t, "PATCH", userPrivileges+"/"+pv.ID, mgr, map[string]any{"permissions": readFolder("/other")}), 403, "PermissionBoundaryError")
		// A privilege the admin gave beyond the manager's reach stays out of his hands.
		wide := createUserPrivilege(t, e, e.Token, body("/other"))
		assertError(t, e.Do(t, "DELETE", userPrivileges+"/"+wide.ID, mgr, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", userPrivileges+"/"+pv.ID, viewer, nil), 403, "PermissionDenied")
		e.Must(t, 200, "GET", userPrivileges+"/"+pv.ID, viewer, nil)
		// Alice now holds /other, which the manager does not: her
		// privileges are out of his hands until that one goes.
		assertError(t, e.Do(t, "DELETE", userPrivileges+"/"+pv.ID, mgr, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", userPrivileges, mgr, body("/app")), 403, "PermissionBoundaryError")
		e.Must(t, 200, "DELETE", userPrivileges+"/"+wide.ID, e.Token, nil)
		e.Must(t, 200, "DELETE", userPrivileges+"/"+pv.ID, mgr, nil)

		// Deny rules take nothing the manager must hold, but he cannot lay
		// them on a member who holds more than he does: a project admin
		// would lose the project and the means to undo it.
		padmin, adminMs := projectUser(t, e, p, "padmin@example.com", "admin")
		deny := map[string]any{"projectMembershipId": adminMs, "permissions": []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret", "create", "edit", "delete"}, "inverted": true},
			{"subject": "member", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}, "inverted": true}}}
		assertError(t, e.Do(t, "POST", userPrivileges, mgr, deny), 403, "PermissionBoundaryError")
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/app"), padmin, nil)

		// Project B's admin cannot see or touch project A's privileges.
		q := createProject(t, e, e.Token, map[string]any{"projectName": "elsewhere"})
		outsider, _ := projectUser(t, e, q, "bob@example.com", "admin")
		assertError(t, e.Do(t, "GET", userPrivileges+"/"+wide.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", userPrivileges+"?projectMembershipId="+ms, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", userPrivileges, outsider, body("/app")), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", userPrivileges+"/"+wide.ID, outsider, nil), 404, "NotFound")
	})
}

// TestTemporaryUserPrivilegeExpires: a temporary privilege works inside its
// window and stops at its end on the injected clock, with no job running.
func TestTemporaryUserPrivilegeExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: now})
		p := twoFolders(t, e, "temporary-privilege")
		alice, ms := projectUser(t, e, p, "alice@example.com", "no-access")
		app := secretQ(p.ID, "dev", "/app")
		pv := createUserPrivilege(t, e, e.Token, map[string]any{"projectMembershipId": ms, "permissions": readFolder("/app"),
			"type": map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h",
				"temporaryAccessStartTime": time.Now().UTC().Format(time.RFC3339)}})
		if !pv.IsTemporary || pv.TemporaryRange == nil || *pv.TemporaryRange != "1h" || pv.TemporaryAccessEndTime == nil {
			t.Fatalf("temporary privilege %+v", pv)
		}
		listSecrets(t, e, alice, app)
		offset.Store(int64(59 * time.Minute))
		listSecrets(t, e, alice, app)
		offset.Store(int64(61 * time.Minute))
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, alice, nil), 403, "PermissionDenied")
		// Renewed from now, it works again.
		start := now().UTC().Format(time.RFC3339)
		e.Must(t, 200, "PATCH", userPrivileges+"/"+pv.ID, e.Token, map[string]any{"type": map[string]any{"isTemporary": true,
			"temporaryMode": "relative", "temporaryRange": "1h", "temporaryAccessStartTime": start}})
		listSecrets(t, e, alice, app)
	})
}

// TestUserPrivilegeSeenByEveryNode: node b's caches hold the user's
// permission set; a privilege granted and then removed on node a is seen
// on b's next request, through the one invalidation mechanism.
func TestUserPrivilegeSeenByEveryNode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		a, b := twoNodes(t, d)
		p := twoFolders(t, a, "two-nodes")
		alice, ms := projectUser(t, a, p, "alice@example.com", "viewer")
		app := secretQ(p.ID, "dev", "/app")
		listSecrets(t, b, alice, app)
		cached(t, b, func() { listSecrets(t, b, alice, app) })
		// A denying privilege on a ends the read on b.
		deny := readFolder("/app")
		deny[0]["inverted"] = true
		pv := createUserPrivilege(t, a, a.Token, map[string]any{"projectMembershipId": ms, "permissions": deny})
		assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+app, alice, nil), 403, "PermissionDenied")
		a.Must(t, 200, "DELETE", userPrivileges+"/"+pv.ID, a.Token, nil)
		listSecrets(t, b, alice, app)
	})
}
