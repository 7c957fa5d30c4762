package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type privilegeOut struct {
	ID, Slug, ProjectMembershipID, IdentityID, ProjectID, CreatedAt, UpdatedAt string
	IsTemporary                                                                bool
	TemporaryMode, TemporaryRange                                              *string
	TemporaryAccessStartTime, TemporaryAccessEndTime                           *string
	Permissions                                                                []map[string]any
}

const privilegesV2 = "/api/v2/identity-project-additional-privilege"
const privilegesV1 = "/api/v1/additional-privilege/identity"

// readFolder is a privilege rule reading secrets at exactly one path of dev.
func readFolder(path string) []map[string]any {
	return []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"},
		"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$eq": path}}}}
}

func createPrivilege(t *testing.T, e *apptest.Env, token string, body map[string]any) privilegeOut {
	t.Helper()
	var out struct{ Privilege privilegeOut }
	e.Must(t, 200, "POST", privilegesV2, token, body).Decode(t, &out)
	return out.Privilege
}

// twoFolders makes a project whose dev environment has /app and /other,
// each holding one secret.
func twoFolders(t *testing.T, e *apptest.Env, name string) projectOut {
	t.Helper()
	p := createProject(t, e, e.Token, map[string]any{"projectName": name})
	for _, f := range []string{"app", "other"} {
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", f))
		putSecret(t, e, e.Token, p.ID, "dev", "/"+f, strings.ToUpper(f)+"_KEY", f+"-value")
	}
	return p
}

// TestIdentityPrivilegeReadsExactlyOneFolderMore: a privilege with a
// secretPath condition lets a no-access identity read one folder and not its
// sibling; the v2 and v1 routes create, read, change and delete it with the
// shapes the Terraform provider reads.
func TestIdentityPrivilegeReadsExactlyOneFolderMore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := twoFolders(t, e, "privileged")
		id, tok := projectMember(t, e, p.ID, "narrow", "no-access")
		app, other := secretQ(p.ID, "dev", "/app"), secretQ(p.ID, "dev", "/other")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")

		pv := createPrivilege(t, e, e.Token, map[string]any{"identityId": id, "projectId": p.ID, "slug": "read-app",
			"permissions": readFolder("/app"), "type": map[string]any{"isTemporary": false}})
		if pv.ID == "" || pv.Slug != "read-app" || pv.IdentityID != id || pv.ProjectID != p.ID || pv.ProjectMembershipID == "" ||
			pv.IsTemporary || pv.TemporaryAccessEndTime != nil || len(pv.Permissions) != 1 || pv.Permissions[0]["subject"] != "secrets" ||
			pv.Permissions[0]["inverted"] != false || pv.CreatedAt == "" {
			t.Fatalf("privilege %+v", pv)
		}
		if got := listSecrets(t, e, tok, app); len(got) != 1 || got[0].SecretValue != "app-value" {
			t.Fatalf("privileged read of /app: %+v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "prod", "/app"), tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/app", "secretValue": "x"}), 403, "PermissionDenied")

		// Reads: by id, by slug (v2 and v1), lists (v2 without rules, v1 with).
		var one struct{ Privilege privilegeOut }
		e.Must(t, 200, "GET", privilegesV2+"/"+pv.ID, e.Token, nil).Decode(t, &one)
		if one.Privilege.ID != pv.ID || len(one.Privilege.Permissions) != 1 {
			t.Fatalf("get %+v", one)
		}
		for _, path := range []string{privilegesV2 + "/slug/read-app", privilegesV1 + "/read-app"} {
			e.Must(t, 200, "GET", path+"?identityId="+id+"&projectSlug="+p.Slug, e.Token, nil).Decode(t, &one)
			if one.Privilege.ID != pv.ID {
				t.Fatalf("%s: %+v", path, one)
			}
		}
		list := e.Must(t, 200, "GET", privilegesV2+"?identityId="+id+"&projectId="+p.ID, e.Token, nil).JSON(t)
		items, _ := list["privileges"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["slug"] != "read-app" || items[0].(map[string]any)["permissions"] != nil {
			t.Fatalf("v2 list %v", list)
		}
		var v1list struct{ Privileges []privilegeOut }
		e.Must(t, 200, "GET", privilegesV1+"?identityId="+id+"&projectSlug="+p.Slug, e.Token, nil).Decode(t, &v1list)
		if len(v1list.Privileges) != 1 || len(v1list.Privileges[0].Permissions) != 1 {
			t.Fatalf("v1 list %+v", v1list)
		}
		assertError(t, e.Do(t, "GET", privilegesV2+"?identityId="+id, e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "GET", privilegesV2+"/00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")

		// v2 PATCH moves the privilege to the sibling folder.
		e.Must(t, 200, "PATCH", privilegesV2+"/"+pv.ID, e.Token, map[string]any{"slug": "read-other", "permissions": readFolder("/other"),
			"type": map[string]any{"isTemporary": false}}).Decode(t, &one)
		if one.Privilege.Slug != "read-other" {
			t.Fatalf("patched %+v", one)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")
		if got := listSecrets(t, e, tok, other); len(got) != 1 || got[0].SecretKey != "OTHER_KEY" {
			t.Fatalf("read of /other after the change: %+v", got)
		}
		e.Must(t, 200, "DELETE", privilegesV2+"/"+pv.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", privilegesV2+"/"+pv.ID, e.Token, nil), 404, "NotFound")

		// v1, as the Terraform provider sends it: one "privilegePermission".
		e.Must(t, 200, "POST", privilegesV1+"/permanent", e.Token, map[string]any{"projectSlug": p.Slug, "identityId": id, "slug": "tf",
			"privilegePermission": map[string]any{"actions": []string{"read", "readValue"}, "subject": "secrets",
				"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app"}}}}).Decode(t, &one)
		if one.Privilege.Slug != "tf" || one.Privilege.IsTemporary {
			t.Fatalf("v1 create %+v", one)
		}
		listSecrets(t, e, tok, app)
		assertError(t, e.Do(t, "POST", privilegesV1+"/permanent", e.Token, map[string]any{"projectSlug": p.Slug, "identityId": id, "slug": "tf",
			"permissions": readFolder("/app")}), 400, "BadRequest")
		e.Must(t, 200, "PATCH", privilegesV1, e.Token, map[string]any{"projectSlug": p.Slug, "identityId": id, "privilegeSlug": "tf",
			"privilegeDetails": map[string]any{"slug": "tf2", "isTemporary": false, "temporaryAccessStartTime": "0001-01-01T00:00:00Z",
				"privilegePermission": map[string]any{"actions": []string{"read", "readValue"}, "subject": "secrets",
					"conditions": map[string]any{"environment": "dev", "secretPath": "/other"}}}}).Decode(t, &one)
		if one.Privilege.Slug != "tf2" {
			t.Fatalf("v1 update %+v", one)
		}
		listSecrets(t, e, tok, other)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")
		e.Must(t, 200, "DELETE", privilegesV1, e.Token, map[string]any{"projectSlug": p.Slug, "identityId": id, "privilegeSlug": "tf2"})
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, tok, nil), 403, "PermissionDenied")

		// Bad input is a 4xx naming the problem.
		assertError(t, e.Do(t, "POST", privilegesV2, e.Token, map[string]any{"identityId": id, "projectId": p.ID,
			"permissions": []map[string]any{{"subject": "nope", "action": "read"}}}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", privilegesV2, e.Token, map[string]any{"identityId": id, "projectId": p.ID, "slug": "Bad Slug",
			"permissions": readFolder("/app")}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", privilegesV2, e.Token, map[string]any{"identityId": id, "projectId": p.ID,
			"permissions": readFolder("/app"), "type": map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "soon"}}),
			422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", privilegesV1+"/temporary", e.Token, map[string]any{"identityId": id, "projectSlug": p.Slug,
			"permissions": readFolder("/app")}), 422, "ValidationFailure")
		// Audited, with no rules in the event.
		var logs struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?projectId="+p.ID+"&eventType=create-identity-specific-privilege", e.Token, nil).Decode(t, &logs)
		if len(logs.AuditLogs) != 2 || logs.AuditLogs[0].Event.Metadata["identityId"] != id || logs.AuditLogs[0].Event.Metadata["permissions"] != nil {
			t.Fatalf("audit events %+v", logs)
		}
		// A member holds at most 100 privileges.
		for i := range 100 {
			createPrivilege(t, e, e.Token, map[string]any{"identityId": id, "projectId": p.ID, "slug": fmt.Sprintf("p%d", i), "permissions": readFolder("/app")})
		}
		assertError(t, e.Do(t, "POST", privilegesV2, e.Token, map[string]any{"identityId": id, "projectId": p.ID, "permissions": readFolder("/app")}),
			400, "BadRequest")
		stranger, _ := e.NewIdentity(t, "stranger", "member")
		assertError(t, e.Do(t, "POST", privilegesV2, e.Token, map[string]any{"identityId": stranger, "projectId": p.ID,
			"permissions": readFolder("/app")}), 404, "NotFound")
	})
}

// TestPrivilegeRule: nobody grants a privilege with rules they do not hold,
// nor changes the privileges of a member holding more than they do; a
// viewer grants none, and an identity of project A cannot touch project B.
func TestPrivilegeRule(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := twoFolders(t, e, "bounded")
		target, _ := projectMember(t, e, p.ID, "target", "no-access")
		body := func(perms []map[string]any) map[string]any {
			return map[string]any{"identityId": target, "projectId": p.ID, "permissions": perms}
		}

		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		assertError(t, e.Do(t, "POST", privilegesV2, viewer, body(readFolder("/app"))), 403, "PermissionDenied")
		_, member := projectMember(t, e, p.ID, "member", "member")
		assertError(t, e.Do(t, "POST", privilegesV2, member, body(readFolder("/app"))), 403, "PermissionBoundaryError")

		// A manager of identities who reads dev secrets only.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "granter", "name": "Granter",
			"permissions": []map[string]any{
				{"subject": "identity", "action": []string{"read", "edit", "grant-privileges"}},
				{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "conditions": map[string]any{"environment": "dev"}},
			}})
		_, granter := projectMember(t, e, p.ID, "granter", "granter")
		// More than it holds: another environment, another action, no condition.
		for _, perms := range [][]map[string]any{
			{{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "prod"}}},
			{{"subject": "secrets", "action": []string{"read"}}},
			{{"subject": "secrets", "action": []string{"edit"}, "conditions": map[string]any{"environment": "dev"}}},
			{{"subject": "role", "action": []string{"create"}}},
		} {
			assertError(t, e.Do(t, "POST", privilegesV2, granter, body(perms)), 403, "PermissionBoundaryError")
		}
		// Within what it holds: dev, one folder.
		pv := createPrivilege(t, e, granter, body(readFolder("/app")))
		// It cannot widen it beyond its own reach, nor change or remove one
		// holding more than it has.
		assertError(t, e.Do(t, "PATCH", privilegesV2+"/"+pv.ID, granter, map[string]any{"permissions": []map[string]any{
			{"subject": "secrets", "action": []string{"read"}}}}), 403, "PermissionBoundaryError")
		e.Must(t, 200, "DELETE", privilegesV2+"/"+pv.ID, granter, nil)
		wide := createPrivilege(t, e, e.Token, body([]map[string]any{{"subject": "secrets", "action": []string{"read"}}}))
		assertError(t, e.Do(t, "DELETE", privilegesV2+"/"+wide.ID, granter, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", privilegesV2+"/"+wide.ID, granter, map[string]any{"permissions": readFolder("/app")}), 403, "PermissionBoundaryError")
		// While the target holds more than the granter, nothing of its
		// privileges is the granter's to change, a denial included.
		assertError(t, e.Do(t, "POST", privilegesV2, granter, body(readFolder("/app"))), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", privilegesV2, granter, body([]map[string]any{{"subject": "secrets", "action": []string{"read"},
			"inverted": true}})), 403, "PermissionBoundaryError")
		// A viewer may read privileges but not delete them.
		e.Must(t, 200, "GET", privilegesV2+"/"+wide.ID, viewer, nil)
		assertError(t, e.Do(t, "DELETE", privilegesV2+"/"+wide.ID, viewer, nil), 403, "PermissionDenied")
		e.Must(t, 200, "DELETE", privilegesV2+"/"+wide.ID, e.Token, nil)
		// Lifting a denial gives back what it denied: only to one who holds it.
		denyEdit := createPrivilege(t, e, e.Token, body([]map[string]any{{"subject": "secrets", "action": []string{"edit"}, "inverted": true}}))
		assertError(t, e.Do(t, "DELETE", privilegesV2+"/"+denyEdit.ID, granter, nil), 403, "PermissionBoundaryError")
		denyRead := createPrivilege(t, e, e.Token, body([]map[string]any{{"subject": "secrets", "action": []string{"read"}, "inverted": true,
			"conditions": map[string]any{"environment": "dev"}}}))
		e.Must(t, 200, "DELETE", privilegesV2+"/"+denyRead.ID, granter, nil)

		// An admin of project A (an organization member) reaches nothing in B.
		wide = createPrivilege(t, e, e.Token, body([]map[string]any{{"subject": "secrets", "action": []string{"read"}}}))
		a := createProject(t, e, e.Token, map[string]any{"projectName": "other-project"})
		_, adminA := projectMember(t, e, a.ID, "admin-a", "admin")
		assertError(t, e.Do(t, "POST", privilegesV2, adminA, body(readFolder("/app"))), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", privilegesV2+"/"+wide.ID, adminA, nil), 404, "NotFound")
		assertError(t, e.Do(t, "PATCH", privilegesV2+"/"+wide.ID, adminA, map[string]any{"slug": "mine"}), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", privilegesV2+"/"+wide.ID, adminA, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", privilegesV2+"?identityId="+target+"&projectId="+p.ID, adminA, nil), 403, "PermissionDenied")
		// Nor can it give a member of A a privilege while naming project B's slug.
		assertError(t, e.Do(t, "POST", privilegesV1+"/permanent", adminA, map[string]any{"identityId": target, "projectSlug": p.Slug,
			"permissions": readFolder("/app")}), 403, "PermissionDenied")
		e.Must(t, 200, "GET", privilegesV2+"/"+wide.ID, e.Token, nil)

		// A privilege's rules come after the role's: an inverted one narrows it.
		vid, vtok := projectMember(t, e, p.ID, "narrowed-viewer", "viewer")
		listSecrets(t, e, vtok, secretQ(p.ID, "dev", "/other"))
		createPrivilege(t, e, e.Token, map[string]any{"identityId": vid, "projectId": p.ID, "permissions": []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "inverted": true,
				"conditions": map[string]any{"secretPath": "/other"}}}})
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/other"), vtok, nil), 403, "PermissionDenied")
		listSecrets(t, e, vtok, secretQ(p.ID, "dev", "/app"))

		// Privileges live in the membership: removing the member removes them.
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+target, e.Token, nil)
		assertError(t, e.Do(t, "GET", privilegesV2+"/"+wide.ID, e.Token, nil), 404, "NotFound")
	})
}

// testClock is a settable clock for the server's permission checks.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestTemporaryAccessEndsOnTheClock: a temporary privilege and a temporary
// role stop working when their window closes on the server's clock, even
// though the permission set was cached just before, with no write in between
// and no job run.
func TestTemporaryAccessEndsOnTheClock(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: clock.Now})
		p := twoFolders(t, e, "temporary")
		app, other := secretQ(p.ID, "dev", "/app"), secretQ(p.ID, "dev", "/other")

		// A temporary privilege: one hour from a start the caller gives.
		id, tok := projectMember(t, e, p.ID, "contractor", "no-access")
		start := clock.Now()
		var out struct{ Privilege privilegeOut }
		e.Must(t, 200, "POST", privilegesV1+"/temporary", e.Token, map[string]any{"identityId": id, "projectSlug": p.Slug, "slug": "for-an-hour",
			"permissions": readFolder("/app"), "temporaryMode": "relative", "temporaryRange": "1h",
			"temporaryAccessStartTime": start.Format(time.RFC3339)}).Decode(t, &out)
		pv := out.Privilege
		if !pv.IsTemporary || pv.TemporaryMode == nil || *pv.TemporaryMode != "relative" || pv.TemporaryRange == nil || *pv.TemporaryRange != "1h" ||
			pv.TemporaryAccessEndTime == nil || !strings.HasPrefix(*pv.TemporaryAccessEndTime, start.Add(time.Hour).Format("2006-01-02T15:04:05")) {
			t.Fatalf("temporary privilege %+v", pv)
		}
		// A temporary role, set by PATCH of the membership: viewer for 30 minutes.
		id2, tok2 := projectMember(t, e, p.ID, "auditor", "no-access")
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id2, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "no-access"},
			{"role": "viewer", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "30m"}}})

		listSecrets(t, e, tok, app)
		listSecrets(t, e, tok2, other)
		clock.Add(29 * time.Minute)
		cached(t, e, func() {
			listSecrets(t, e, tok, app)
			listSecrets(t, e, tok2, other)
		})
		clock.Add(time.Minute + time.Second) // the role's window has closed
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+other, tok2, nil), 403, "PermissionDenied")
		listSecrets(t, e, tok, app)
		clock.Add(29 * time.Minute) // 59m01s: the privilege still holds
		cached(t, e, func() { listSecrets(t, e, tok, app) })
		clock.Add(time.Minute) // 1h00m01s
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")

		// A privilege whose window has not opened yet grants nothing until it does.
		e.Must(t, 200, "PATCH", privilegesV2+"/"+pv.ID, e.Token, map[string]any{"type": map[string]any{"isTemporary": true,
			"temporaryMode": "relative", "temporaryRange": "10m", "temporaryAccessStartTime": clock.Now().Add(5 * time.Minute).Format(time.RFC3339)}})
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")
		clock.Add(5*time.Minute + time.Second)
		listSecrets(t, e, tok, app)
		clock.Add(10 * time.Minute)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")
		// Made permanent, it holds whatever the time.
		e.Must(t, 200, "PATCH", privilegesV2+"/"+pv.ID, e.Token, map[string]any{"type": map[string]any{"isTemporary": false}}).Decode(t, &out)
		if out.Privilege.IsTemporary || out.Privilege.TemporaryAccessEndTime != nil {
			t.Fatalf("made permanent: %+v", out.Privilege)
		}
		clock.Add(1000 * time.Hour)
		listSecrets(t, e, tok, app)
	})
}

// TestRemovingAMembershipNeedsTheRightToDeleteItsPrivileges: ending a
// membership deletes its additional privileges with it, so it needs what
// deleting them needs. A member without grant-privileges could not delete an
// identity's deny privilege but removed the identity and added it again,
// and the identity read what the privilege denied; nor could it take away
// allowances it does not hold by removing their holder.
func TestRemovingAMembershipNeedsTheRightToDeleteItsPrivileges(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "strip-privilege"})
	putSecret(t, e, e.Token, p.ID, "prod", "/", "PROD_KEY", "prod-value")
	read := func(token string) int {
		return e.Do(t, "GET", "/api/v3/secrets/raw/PROD_KEY?workspaceId="+p.ID+"&environment=prod", token, nil).Status
	}
	y, yTok := projectMember(t, e, p.ID, "ci", "member")
	pv := createPrivilege(t, e, e.Token, map[string]any{"identityId": y, "projectId": p.ID, "slug": "no-prod",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"},
			"inverted": true, "conditions": map[string]any{"environment": "prod"}}}})
	if s := read(yTok); s != 403 {
		t.Fatalf("the denied identity reads prod: %d", s)
	}
	_, mTok := projectMember(t, e, p.ID, "dev-person", "member")
	assertError(t, e.Do(t, "DELETE", privilegesV2+"/"+pv.ID, mTok, nil), 403, "PermissionBoundaryError")
	assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+y, mTok, nil), 403, "PermissionBoundaryError")
	if s := read(yTok); s != 403 {
		t.Fatalf("the deny privilege was lifted: %d", s)
	}
	// A holder of allowances the remover lacks (managing roles and members).
	z, _ := projectMember(t, e, p.ID, "deployer", "viewer")
	createPrivilege(t, e, e.Token, map[string]any{"identityId": z, "projectId": p.ID, "slug": "manage",
		"permissions": []map[string]any{{"subject": "role", "action": []string{"create", "edit", "delete"}}}})
	assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+z, mTok, nil), 403, "PermissionBoundaryError")
	// Who may delete the privileges may end the memberships.
	e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+y, e.Token, nil)
	e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+z, e.Token, nil)
}

// TestGrantPrivilegesForSomeIdentitiesGrantsRolesToThoseOnly: a role may
// grant privileges only where identityId is X; it may give X a custom role
// and not Y, as with privileges themselves (the condition was ignored for
// roles).
func TestGrantPrivilegesForSomeIdentitiesGrantsRolesToThoseOnly(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "grant-condition"})
	x, _ := e.NewIdentity(t, "x", "member")
	y, _ := e.NewIdentity(t, "y", "member")
	e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "reader", "name": "reader",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}}}})
	aTok := customRole(t, e, p.ID, "idm", []map[string]any{
		{"subject": "identity", "action": []string{"read", "create", "edit", "delete"}},
		{"subject": "identity", "action": []string{"grant-privileges"}, "conditions": map[string]any{"identityId": x}},
		{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}}})
	addMember(t, e, p.ID, x, map[string]any{"role": "no-access"})
	addMember(t, e, p.ID, y, map[string]any{"role": "no-access"})
	reader := map[string]any{"roles": []map[string]any{{"role": "reader"}}}
	assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+y, aTok, reader), 403, "PermissionBoundaryError")
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+x, aTok, reader)
}

// TestAPrivilegeGrantorCoversRolesScheduledToStart: whoever changes a
// member's privileges must hold what the member holds from now on, a role
// scheduled to start included: one who may grant privileges gave an
// identity whose admin role opened an hour later a deny privilege, taking
// from that admin what it did not hold itself.
func TestAPrivilegeGrantorCoversRolesScheduledToStart(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "scheduled-target"})
	granter := customRole(t, e, p.ID, "granter", []map[string]any{
		{"subject": "identity", "action": []string{"read", "edit", "grant-privileges"}},
		{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "conditions": map[string]any{"environment": "dev"}}})
	oncall, _ := e.NewIdentity(t, "on-call", "no-access")
	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	addMember(t, e, p.ID, oncall, map[string]any{"role": "admin", "isTemporary": true, "temporaryMode": "relative",
		"temporaryRange": "1h", "temporaryAccessStartTime": start.Format(time.RFC3339)})
	deny := map[string]any{"identityId": oncall, "projectId": p.ID, "slug": "no-dev",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read"}, "inverted": true, "conditions": map[string]any{"environment": "dev"}}}}
	assertError(t, e.Do(t, "POST", privilegesV2, granter, deny), 403, "PermissionBoundaryError")
	// A member holding no more than the granter, now or later, is fine.
	viewer, _ := e.NewIdentity(t, "dev-reader", "no-access")
	addMember(t, e, p.ID, viewer, map[string]any{"role": "no-access"})
	deny["identityId"] = viewer
	e.Must(t, 200, "POST", privilegesV2, granter, deny)
}

// TestARoleThatDeniesTakesOnlyFromThoseTheGiverCovers: a role that only
// denies is covered by any set, so a member manager with no access to
// secrets gave one (denying secrets) to a member who reads them through a
// privilege, locking out what it could not itself take away by a deny
// privilege. Giving a role that denies now needs what each receiver holds;
// to a group (whoever is in it, now or later) it needs all a project
// admin holds. A receiver holding no more than the giver is fine.
func TestARoleThatDeniesTakesOnlyFromThoseTheGiverCovers(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "deny-roles"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "v")
	e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "lockout", "name": "lockout",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "inverted": true}}})
	mgr := customRole(t, e, p.ID, "member-manager", []map[string]any{
		{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
		{"subject": "groups", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
		{"subject": "member", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
		{"subject": "role", "action": []string{"read"}}})
	victim, vTok := projectMember(t, e, p.ID, "reader", "no-access")
	createPrivilege(t, e, e.Token, map[string]any{"identityId": victim, "projectId": p.ID, "slug": "reads",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}}}})
	read := func(token string) int {
		return e.Do(t, "GET", "/api/v3/secrets/raw/KEY?workspaceId="+p.ID+"&environment=dev", token, nil).Status
	}
	if s := read(vTok); s != 200 {
		t.Fatalf("the privilege does not read: %d", s)
	}
	lockout := map[string]any{"roles": []map[string]any{{"role": "no-access"}, {"role": "lockout"}}}
	assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+victim, mgr, lockout), 403, "PermissionBoundaryError")
	if s := read(vTok); s != 200 {
		t.Fatalf("the manager locked the reader out: %d", s)
	}
	// Added to the project with it: the same.
	other, oTok := e.NewIdentity(t, "reader-2", "member")
	g := createGroup(t, e, e.Token, map[string]any{"name": "readers", "slug": "readers"})
	e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+other, e.Token, nil)
	addProjectGroup(t, e, e.Token, p.ID, g.Slug, map[string]any{"role": "viewer"})
	if s := read(oTok); s != 200 {
		t.Fatalf("the group's viewer role does not read: %d", s)
	}
	assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/identity-memberships/"+other, mgr,
		map[string]any{"roles": []map[string]any{{"role": "lockout"}}}), 403, "PermissionBoundaryError")
	// Users too: one who reads through the group is not added with it.
	newUser(t, e, "grouped@example.com", "member")
	e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/grouped@example.com", e.Token, nil)
	assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/memberships", mgr, map[string]any{"emails": []string{"grouped@example.com"},
		"roleSlugs": []string{"lockout"}}), 403, "PermissionBoundaryError")
	// To a group: only one who holds all an admin does.
	g2 := createGroup(t, e, e.Token, map[string]any{"name": "contractors", "slug": "contractors"})
	assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/groups/"+g2.Slug, mgr,
		map[string]any{"roles": []map[string]any{{"role": "lockout"}}}), 403, "PermissionBoundaryError")
	assertError(t, e.Do(t, "PATCH", "/api/v2/workspace/"+p.ID+"/groups/"+g.Slug, mgr,
		map[string]any{"roles": []map[string]any{{"role": "viewer"}, {"role": "lockout"}}}), 403, "PermissionBoundaryError")
	if s := read(oTok); s != 200 {
		t.Fatalf("the manager locked the group out: %d", s)
	}
	addProjectGroup(t, e, e.Token, p.ID, g2.Slug, map[string]any{"role": "lockout"})
	// A receiver holding no more than the giver may be given one.
	bare, _ := projectMember(t, e, p.ID, "bare", "no-access")
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+bare, mgr, lockout)

	// Putting someone in a group that denies in a project is the same: a
	// group editor (no-access in the project) put the reader in it.
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-editor", "name": "group-editor",
		"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "edit"}}}})
	editor, edTok := e.NewIdentity(t, "group-editor", "group-editor")
	addMember(t, e, p.ID, editor, map[string]any{"role": "no-access"})
	assertError(t, e.Do(t, "POST", "/api/v1/groups/"+g2.ID+"/machine-identities/"+victim, edTok, nil), 403, "PermissionBoundaryError")
	if s := read(vTok); s != 200 {
		t.Fatalf("the group editor locked the reader out: %d", s)
	}
	e.Must(t, 200, "POST", "/api/v1/groups/"+g2.ID+"/machine-identities/"+bare, edTok, nil)

	// Editing a role its holders have: adding a rule that denies takes
	// from each of them, so only one who holds all an admin does may (a
	// role editor without secret access locked the reader out through
	// a role the reader held).
	var helper struct{ Role struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v2/workspace/"+p.ID+"/roles", e.Token, map[string]any{"slug": "helper", "name": "helper",
		"permissions": []map[string]any{{"subject": "tags", "action": []string{"read"}}}}).Decode(t, &helper)
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+victim, e.Token,
		map[string]any{"roles": []map[string]any{{"role": "no-access"}, {"role": "helper"}}})
	roleEditor := customRole(t, e, p.ID, "role-editor", []map[string]any{
		{"subject": "role", "action": []string{"read", "edit"}}, {"subject": "tags", "action": []string{"read"}}})
	denying := map[string]any{"permissions": []map[string]any{{"subject": "tags", "action": []string{"read"}},
		{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "inverted": true}}}
	assertError(t, e.Do(t, "PATCH", "/api/v2/workspace/"+p.ID+"/roles/"+helper.Role.ID, roleEditor, denying), 403, "PermissionBoundaryError")
	if s := read(vTok); s != 200 {
		t.Fatalf("the role editor locked the reader out: %d", s)
	}
	e.Must(t, 200, "PATCH", "/api/v2/workspace/"+p.ID+"/roles/"+helper.Role.ID, roleEditor, map[string]any{"name": "helper 2"})
	e.Must(t, 200, "PATCH", "/api/v2/workspace/"+p.ID+"/roles/"+helper.Role.ID, e.Token, denying) // an admin may

	// An invited user holds nothing yet: an admin invites one into the
	// project with a role that denies (the review found it refused, with
	// the invitation already stored).
	e.Must(t, 200, "POST", "/api/v1/invite-org/signup", e.Token, map[string]any{"inviteeEmails": []string{"invitee@example.com"},
		"organizationId": e.OrgID, "projects": []map[string]any{{"id": p.ID, "projectRoleSlug": []string{"lockout"}}}})
}
