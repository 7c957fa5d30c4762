package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The tests in this file are the hostile-input suite's attacks by a project
// member: each is named for what it stops and fails without its fix.

// secretQ is the query of a folder's secrets.
func secretQ(projectID, env, path string) string {
	return "workspaceId=" + projectID + "&environment=" + env + "&secretPath=" + path
}

// TestHostileExpansionBombsAreRefused plants both shapes of reference bomb in
// an order that passes the write-time checks (each reference is written before
// what it points to exists) and proves a viewer's expanding read is a 400
// naming the secret, while other clients are served meanwhile.
func TestHostileExpansionBombsAreRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "bombs"})
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")

		// Shape 1: a 400 kB value referenced 500 times by one secret (200 MB).
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "wide"))
		putSecret(t, e, e.Token, p.ID, "dev", "/wide", "WIDE", strings.Repeat("${BIG}", secret.MaxRefsPerValue))
		putSecret(t, e, e.Token, p.ID, "dev", "/wide", "BIG", strings.Repeat("x", 400<<10))

		// Shape 2: five levels, each value referencing the next 500 times.
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "deep"))
		for i := 1; i <= 4; i++ {
			putSecret(t, e, e.Token, p.ID, "dev", "/deep", "L"+string(rune('0'+i)), strings.Repeat("${L"+string(rune('1'+i))+"}", secret.MaxRefsPerValue))
		}
		putSecret(t, e, e.Token, p.ID, "dev", "/deep", "L5", strings.Repeat("y", 100))
		putSecret(t, e, e.Token, p.ID, "dev", "/", "FINE", "ok")

		var wg sync.WaitGroup
		for _, c := range []struct{ path, key string }{{"/wide", "WIDE"}, {"/deep", "L1"}} {
			q := secretQ(p.ID, "dev", c.path) + "&expandSecretReferences=true"
			wg.Go(func() {
				for _, u := range []string{"/api/v3/secrets/raw?" + q, "/api/v4/secrets?" + q + "&recursive=true&includeImports=true",
					"/api/v3/secrets/raw/" + c.key + "?" + q} {
					r := e.Do(t, "GET", u, viewer, nil)
					if r.Status != 400 || !strings.Contains(string(r.Body), "'"+c.key+"'") || !strings.Contains(string(r.Body), "limit") {
						t.Errorf("GET %s: %d %.300s; want a 400 naming %s", u, r.Status, r.Body, c.key)
					}
				}
			})
		}
		for range 3 { // others are served while the bombs are refused
			wg.Go(func() {
				for range 5 {
					if r := e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/")+"&expandSecretReferences=true", viewer, nil); r.Status != 200 {
						t.Errorf("plain list: %d %.200s", r.Status, r.Body)
					}
				}
			})
		}
		wg.Wait()
		// Without expansion the bomb is just text.
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/wide"), viewer, nil)

		// Writes that can be known to explode are refused up front.
		r := e.Do(t, "POST", "/api/v3/secrets/raw/MORE", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/wide",
			"secretValue": strings.Repeat("${BIG}", 100)})
		if r.Status != 422 || !strings.Contains(string(r.Body), "MORE") {
			t.Fatalf("write of an exploding value: %d %.300s", r.Status, r.Body)
		}
		r = e.Do(t, "PATCH", "/api/v3/secrets/raw/FINE", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": strings.Repeat("${A}", secret.MaxRefsPerValue+1)})
		if r.Status != 422 {
			t.Fatalf("write of %d references: %d %.300s", secret.MaxRefsPerValue+1, r.Status, r.Body)
		}
	})
}

// customRole creates a project role with rules and makes a new identity a
// member with it, returning the identity's token.
func customRole(t *testing.T, e *apptest.Env, projectID, slug string, rules []map[string]any) string {
	t.Helper()
	e.Must(t, 200, "POST", "/api/v1/projects/"+projectID+"/roles", e.Token, map[string]any{"slug": slug, "name": slug, "permissions": rules})
	id, tok := e.NewIdentity(t, slug+"-holder", "member")
	addMember(t, e, projectID, id, map[string]any{"role": slug})
	return tok
}

func secretID(t *testing.T, e *apptest.Env, projectID, env, key string) string {
	t.Helper()
	var out struct{ Secret secretOut }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/"+key+"?"+secretQ(projectID, env, "/"), e.Token, nil).Decode(t, &out)
	return out.Secret.ID
}

// TestHostileTagRuleHidesTaggedValues: an inverted readValue rule on
// secretTags hides a tagged secret's value on every read path.
func TestHostileTagRuleHidesTaggedValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "tagged"})
		var tag struct{ Tag struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": "sensitive", "color": "#f00"}).Decode(t, &tag)
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/KEY", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "top-secret-value", "tagIds": []string{tag.Tag.ID}})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "PLAIN", "plain-value")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "REF", "via-${KEY}")
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "imp"))
		addImport(t, e, p.ID, "dev", "/imp", "dev", "/")
		tok := customRole(t, e, p.ID, "no-sensitive", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue", "create", "edit"}},
			{"subject": "secret-imports", "action": []string{"read"}},
			{"subject": "secret-rollback", "action": []string{"read"}},
			{"subject": "secrets", "action": []string{"read", "readValue"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"sensitive"}}}},
		})
		leak := func(what string, r apptest.Response) {
			t.Helper()
			if strings.Contains(string(r.Body), "top-secret-value") {
				t.Errorf("%s leaks the tagged value: %.300s", what, r.Body)
			}
		}
		q := secretQ(p.ID, "dev", "/")
		r := e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+q, tok, nil)
		leak("list", r)
		if !strings.Contains(string(r.Body), "plain-value") || !strings.Contains(string(r.Body), `"secretKey":"KEY"`) {
			t.Fatalf("list lost the untagged value or the tagged key: %.400s", r.Body)
		}
		leak("get", e.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, tok, nil))
		leak("get by id", e.Must(t, 200, "GET", "/api/v3/secrets/raw/id/"+secretID(t, e, p.ID, "dev", "KEY"), tok, nil))
		leak("versions", e.Do(t, "GET", "/api/v1/secret/"+secretID(t, e, p.ID, "dev", "KEY")+"/secret-versions", tok, nil))
		leak("imports", e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/imp")+"&include_imports=true", tok, nil))
		leak("import by name", e.Do(t, "GET", "/api/v3/secrets/raw/KEY?"+secretQ(p.ID, "dev", "/imp")+"&include_imports=true", tok, nil))
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/REF?"+q+"&expandSecretReferences=true", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q+"&expandSecretReferences=true", tok, nil), 403, "PermissionDenied")
		leak("update", e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/KEY", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretComment": "x"}))
		// Untagging it, or renaming it, would make it readable: refused.
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/KEY", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": []string{}}), 403, "PermissionDenied")
		leak("get after the refused untag", e.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, tok, nil))
		// A role granted only on tagged secrets cannot tell a missing name from one it may not see.
		tagOnly := customRole(t, e, p.ID, "public-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "edit", "delete"}, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"public"}}}},
		})
		for _, r := range []apptest.Response{e.Do(t, "GET", "/api/v3/secrets/raw/PLAIN?"+q, tagOnly, nil), e.Do(t, "GET", "/api/v3/secrets/raw/NO_SUCH?"+q, tagOnly, nil),
			e.Do(t, "PATCH", "/api/v3/secrets/raw/NO_SUCH", tagOnly, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "x"}),
			e.Do(t, "DELETE", "/api/v3/secrets/raw/NO_SUCH", tagOnly, map[string]any{"workspaceId": p.ID, "environment": "dev"})} {
			assertError(t, r, 403, "PermissionDenied")
		}
		// Upserted secrets keep the tags they are given.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "mode": "upsert",
			"secrets": []map[string]any{{"secretKey": "UPSERTED", "secretValue": "top-secret-value", "tagIds": []string{tag.Tag.ID}}}})
		leak("upserted tagged secret", e.Must(t, 200, "GET", "/api/v3/secrets/raw/UPSERTED?"+q, tok, nil))
		// Tagging a secret with a tag one's rules deny is refused like any write they deny.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "untagged-only", "name": "u", "permissions": []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue", "create", "edit"}},
			{"subject": "secrets", "action": []string{"create", "edit"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"sensitive"}}}},
		}})
		_, tok2 := projectMember(t, e, p.ID, "untagged", "untagged-only")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/KEY", tok2, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "mine"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/PLAIN", tok2, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": []string{tag.Tag.ID}}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEWTAGGED", tok2, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v", "tagIds": []string{tag.Tag.ID}}), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/PLAIN", tok2, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "changed"})
		// Conditions the server cannot evaluate are refused when the role is saved.
		for _, c := range []map[string]any{
			{"subject": "dynamic-secrets", "action": "read", "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"x"}}}},
			{"subject": "secret-folders", "action": "read", "conditions": map[string]any{"secretName": "x"}},
			{"subject": "secrets", "action": "read", "conditions": map[string]any{"secretTags": "x"}},
			{"subject": "secrets", "action": "read", "conditions": map[string]any{"metadata": map[string]any{"$in": []string{"x"}}}},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "bad-cond", "name": "b",
				"permissions": []map[string]any{c}}), 422, "ValidationFailure")
		}
	})
}

// TestHostileWriteOnlyRoleReadsNothing: a role with create, edit and delete
// but no read gets no value or comment back from any write.
func TestHostileWriteOnlyRoleReadsNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "write-only"})
		for _, k := range []string{"A", "B", "C", "D"} {
			e.Must(t, 200, "POST", "/api/v3/secrets/raw/"+k, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secretValue": "value-of-" + k, "secretComment": "comment-of-" + k})
		}
		idA := secretID(t, e, p.ID, "dev", "A")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/A", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "second"})
		tok := customRole(t, e, p.ID, "writer", []map[string]any{
			{"subject": "secrets", "action": []string{"create", "edit", "delete"}},
			{"subject": "secret-rollback", "action": []string{"read", "create"}},
		})
		leak := func(what string, r apptest.Response) {
			t.Helper()
			if r.Status >= 500 || strings.Contains(string(r.Body), "value-of-") || strings.Contains(string(r.Body), "comment-of-") {
				t.Errorf("%s: %d leaks a value or comment: %.300s", what, r.Status, r.Body)
			}
		}
		body := map[string]any{"workspaceId": p.ID, "environment": "dev"}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/B?"+secretQ(p.ID, "dev", "/"), tok, nil), 403, "PermissionDenied")
		leak("comment-only PATCH", e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/B", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "skipMultilineEncoding": true}))
		leak("batch PATCH", e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secrets": []map[string]any{{"secretKey": "C", "skipMultilineEncoding": true}}}))
		leak("rollback", e.Must(t, 200, "POST", "/api/v1/secret/"+idA+"/secret-versions/1/rollback", tok, nil))
		leak("versions", e.Do(t, "GET", "/api/v1/secret/"+idA+"/secret-versions", tok, nil))
		assertError(t, e.Do(t, "GET", "/api/v1/secret/"+idA+"/secret-versions", tok, nil), 403, "PermissionDenied")
		leak("DELETE", e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/B", tok, body))
		leak("batch DELETE", e.Must(t, 200, "DELETE", "/api/v3/secrets/batch/raw", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secrets": []map[string]any{{"secretKey": "C"}}}))
		leak("v4 DELETE", e.Must(t, 200, "DELETE", "/api/v4/secrets/D", tok, map[string]any{"projectId": p.ID, "environment": "dev"}))
		r := e.Must(t, 200, "POST", "/api/v3/secrets/raw/NEW", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "value-of-new"})
		leak("create", r)
		if !strings.Contains(string(r.Body), `"secretValueHidden":true`) {
			t.Fatalf("create response does not say the value is hidden: %s", r.Body)
		}
		// The admin still reads everything, the rollback included.
		var got struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/A?"+secretQ(p.ID, "dev", "/"), e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "value-of-A" || got.Secret.SecretComment != "comment-of-A" {
			t.Fatalf("after rollback %+v", got.Secret)
		}
	})
}

// TestHostileMemberCannotDemoteOrRemoveAdmin: changing or removing a
// membership needs permissions covering the target's roles, and a project
// keeps its last admin.
func TestHostileMemberCannotDemoteOrRemoveAdmin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "coup"})
		ms := "/api/v1/projects/" + p.ID + "/identity-memberships/"
		adminID, adminTok := projectMember(t, e, p.ID, "proj-admin", "admin")
		memberID, memberTok := projectMember(t, e, p.ID, "mallory", "member")
		otherID, _ := projectMember(t, e, p.ID, "bob", "member")

		assertError(t, e.Do(t, "PATCH", ms+adminID, memberTok, map[string]any{"roles": []map[string]any{{"role": "viewer"}}}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", ms+adminID, memberTok, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", ms+e.IdentityID, memberTok, map[string]any{"roles": []map[string]any{{"role": "no-access"}}}), 403, "PermissionBoundaryError")
		// A member may manage what it covers: another member, down to viewer.
		e.Must(t, 200, "PATCH", ms+otherID, memberTok, map[string]any{"roles": []map[string]any{{"role": "viewer"}}})
		// A custom role with conditions does not cover a member's unconditional rules.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "dev-manager", "name": "d", "permissions": []map[string]any{
			{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
			{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev"}},
		}})
		_, mgrTok := projectMember(t, e, p.ID, "dev-mgr", "dev-manager")
		assertError(t, e.Do(t, "DELETE", ms+memberID, mgrTok, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", ms+otherID, mgrTok, map[string]any{"roles": []map[string]any{{"role": "member"}}}), 403, "PermissionBoundaryError")
		// Whoever may edit roles cannot write a rule they do not hold into a
		// role (their own, say), nor create one.
		var rr struct{ Role struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "role-editor", "name": "r", "permissions": []map[string]any{
			{"subject": "role", "action": []string{"read", "create", "edit"}},
			{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev"}},
		}}).Decode(t, &rr)
		_, edTok := projectMember(t, e, p.ID, "role-ed", "role-editor")
		wider := []map[string]any{{"subject": "role", "action": []string{"read", "create", "edit"}}, {"subject": "secrets", "action": []string{"read", "edit"}}}
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/roles/"+rr.Role.ID, edTok, map[string]any{"permissions": wider}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", edTok, map[string]any{"slug": "wider", "name": "w", "permissions": wider}), 403, "PermissionBoundaryError")
		// What it holds it may give.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", edTok, map[string]any{"slug": "dev-reader", "name": "d", "permissions": []map[string]any{
			{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev"}}}})

		// The admin is still an admin.
		var got struct {
			IdentityMembership struct{ Roles []struct{ Role string } }
		}
		e.Must(t, 200, "GET", ms+adminID, e.Token, nil).Decode(t, &got)
		if len(got.IdentityMembership.Roles) != 1 || got.IdentityMembership.Roles[0].Role != "admin" {
			t.Fatalf("admin membership after the attempts: %+v", got)
		}
		// The last admin stays: with two admins one may go, then not the other.
		e.Must(t, 200, "DELETE", ms+e.IdentityID, adminTok, nil)
		assertError(t, e.Do(t, "PATCH", ms+adminID, adminTok, map[string]any{"roles": []map[string]any{{"role": "member"}}}), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", ms+adminID, adminTok, nil), 400, "BadRequest")
		// A temporary admin role does not count as keeping an admin.
		assertError(t, e.Do(t, "PATCH", ms+adminID, adminTok, map[string]any{"roles": []map[string]any{
			{"role": "admin", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h"}}}), 400, "BadRequest")
		// Two admins removing each other at once: one of them stays.
		admin2ID, admin2Tok := projectMember(t, e, p.ID, "proj-admin-2", "admin")
		var wg sync.WaitGroup
		var st [2]int
		wg.Go(func() { st[0] = e.Do(t, "DELETE", ms+admin2ID, adminTok, nil).Status })
		wg.Go(func() { st[1] = e.Do(t, "DELETE", ms+adminID, admin2Tok, nil).Status })
		wg.Wait()
		if st[0]+st[1] != 200+400 && st[0]+st[1] != 200+403 && st[0]+st[1] != 200+404 {
			t.Fatalf("concurrent removal of the last two admins: %v; want one success", st)
		}
		var list struct {
			IdentityMemberships []struct{ Roles []struct{ Role string } }
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/identity-memberships", e.Token, nil).Decode(t, &list)
		admins := 0
		for _, m := range list.IdentityMemberships {
			if len(m.Roles) > 0 && m.Roles[0].Role == "admin" {
				admins++
			}
		}
		if admins != 1 {
			t.Fatalf("%d admins after concurrent removals", admins)
		}
	})
}

// pgDynamic is a sql-database dynamic secret on the machine's PostgreSQL
// (which trusts loopback, so any admin password connects).
func pgDynamic(name string, inputs map[string]any) map[string]any {
	in := map[string]any{"client": "postgres", "host": "127.0.0.1", "port": 5432, "database": "postgres", "username": "postgres", "password": "stored-admin-pw"}
	for k, v := range inputs {
		if v == nil {
			delete(in, k)
		} else {
			in[k] = v
		}
	}
	return map[string]any{"name": name, "defaultTTL": "1h", "provider": map[string]any{"type": "sql-database", "inputs": in}}
}

// TestHostileEditRootCredentialCannotExfiltrate: moving a dynamic secret's
// target needs its password sent again, changing statements needs
// create-root-credential, connection errors say nothing about the target,
// and input names cannot dodge redaction by case.
func TestHostileEditRootCredentialCannotExfiltrate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var logs syncBuffer
		e := apptest.Bootstrapped(t, d, apptest.Options{Log: &logs})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "exfil"})
		sc := dynScope{e: e, slug: p.Slug}
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(pgDynamic("pg", nil)))
		tok := customRole(t, e, p.ID, "dyn-editor", []map[string]any{
			{"subject": "dynamic-secrets", "action": []string{"read-root-credential", "edit-root-credential"}},
		})
		upd := func(tok string, inputs map[string]any) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/dynamic-secrets/pg", tok, sc.body(map[string]any{"data": map[string]any{"inputs": inputs}}))
		}
		// Moving the target (host, port, database, client) without the password.
		for _, in := range []map[string]any{{"host": "localhost"}, {"port": 5433}, {"database": "template1"}, {"host": "localhost", "password": "******"}} {
			r := upd(tok, in)
			if r.Status != 422 || !strings.Contains(string(r.Body), "password again") {
				t.Errorf("update %v: %d %.300s; want 422 asking for the password", in, r.Status, r.Body)
			}
		}
		// With the password it is a configuration change like any other.
		// The update answers with the inputs (Terraform compares them), in clear for a caller
		// allowed to read the root credential.
		r0 := e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/pg", tok, sc.body(map[string]any{"data": map[string]any{"inputs": map[string]any{"host": "localhost", "password": "new-pw"}}}))
		if !strings.Contains(string(r0.Body), `"host":"localhost"`) || !strings.Contains(string(r0.Body), `"password":"new-pw"`) {
			t.Fatalf("update response inputs: %s", r0.Body)
		}
		// Statements need create-root-credential.
		assertError(t, upd(tok, map[string]any{"creationStatement": `CREATE ROLE "{{username}}" SUPERUSER LOGIN PASSWORD '{{password}}';`}), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/pg", e.Token, sc.body(map[string]any{"data": map[string]any{"inputs": map[string]any{
			"creationStatement": `CREATE ROLE "{{username}}" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`}}}))
		// A closed port: the client learns nothing about the target.
		r := upd(e.Token, map[string]any{"port": 1, "password": "x"})
		if r.Status != 400 || strings.Contains(strings.ToLower(string(r.Body)), "connection refused") || strings.Contains(string(r.Body), "127.0.0.1:1") {
			t.Fatalf("closed port: %d %s", r.Status, r.Body)
		}
		var evs struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=update-dynamic-secret-failed", e.Token, nil).Decode(t, &evs)
		// Nor does the audit log, which every organization member reads: the
		// detail is in the server log only.
		if len(evs.AuditLogs) != 1 {
			t.Fatalf("failed update audit: %+v", evs)
		}
		if reason := fmt.Sprint(evs.AuditLogs[0].Event.Metadata["reason"]); !strings.Contains(reason, "could not be reached") ||
			strings.Contains(strings.ToLower(reason), "refused") || strings.Contains(reason, "127.0.0.1") {
			t.Fatalf("failed update audit reason: %q", reason)
		}
		if !strings.Contains(logs.String(), "connection refused") {
			t.Fatal("the server log lacks the failed update's detail")
		}
		// An input named in another case is stored under its declared name and masked.
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(pgDynamic("cased", map[string]any{"password": nil, "PASSWORD": "case-dodge-pw"})))
		_, viewer := projectMember(t, e, p.ID, "exfil-viewer", "viewer")
		got := e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/cased"+sc.q(), viewer, nil)
		if strings.Contains(string(got.Body), "case-dodge-pw") || !strings.Contains(string(got.Body), `"password":"******"`) {
			t.Fatalf("cased input: %s", got.Body)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(pgDynamic("twice", map[string]any{"Password": "a"}))), 422, "ValidationFailure")
	})
}

// TestHostileTargetPolicy: the deny list (proved with loopback entries) and
// the default denial of link-local and metadata addresses stop a dynamic
// secret before any connection.
func TestHostileTargetPolicy(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TargetsDeny: "127.0.0.0/8,localhost"})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "ssrf"})
	sc := dynScope{e: e, slug: p.Slug}
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST.", "::ffff:127.0.0.1", "169.254.169.254", "fd00:ec2::254",
		"0.0.0.0", "::", "::ffff:0.0.0.0"} { // the unspecified addresses reach the server's own host
		r := e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(pgDynamic("pg", map[string]any{"host": host})))
		if r.Status != 400 || !strings.Contains(string(r.Body), "target policy") {
			t.Errorf("host %s: %d %.300s; want the policy's 400", host, r.Status, r.Body)
		}
	}
	// An allow list admits only what it names.
	e2 := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TargetsAllow: "127.0.0.2/32"})
	p2 := createProject(t, e2, e2.Token, map[string]any{"projectName": "allow"})
	sc2 := dynScope{e: e2, slug: p2.Slug}
	assertError(t, e2.Do(t, "POST", "/api/v1/dynamic-secrets", e2.Token, sc2.body(pgDynamic("pg", nil))), 400, "BadRequest")
	e3 := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TargetsAllow: "127.0.0.0/8"})
	p3 := createProject(t, e3, e3.Token, map[string]any{"projectName": "allow"})
	e3.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e3.Token, dynScope{e: e3, slug: p3.Slug}.body(pgDynamic("pg", nil)))
}

// TestAuditRecordsSecurityEvents: denials, failed and successful logins,
// token renew and self-revoke, reads of versions and dynamic-secret configs,
// and the worker's revocations are in the audit log, without secrets.
func TestAuditRecordsSecurityEvents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "audited"})
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/X", viewer, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v"}), 403, "PermissionDenied")

		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		if r, _ := login(t, e, clientID, "wrong-"+secret[:10]); r.Status != 401 {
			t.Fatalf("wrong secret: %d", r.Status)
		}
		_, tok := login(t, e, clientID, secret)
		e.Must(t, 200, "POST", "/api/v1/auth/token/renew", "", map[string]any{"accessToken": tok.AccessToken})
		e.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]any{"accessToken": tok.AccessToken})
		e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password})
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": "wrong-password"}), 400, "BadRequest")

		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v1")
		e.Must(t, 200, "GET", "/api/v1/secret/"+secretID(t, e, p.ID, "dev", "K")+"/secret-versions", e.Token, nil)
		sc := dynScope{e: e, slug: p.Slug, viewer: viewer}
		sc.create(t, "otp", "totp", map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"})
		sc.inputs(t, "otp")
		l := sc.lease(t, "otp", "1s")
		waitFor(t, 20*time.Second, func() bool { return sc.leaseStatus(t, l.Lease.ID) == "revoked" })

		var got struct {
			AuditLogs []struct {
				ProjectID string
				Event     struct {
					Type     string
					Metadata map[string]any
				}
			}
		}
		r := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil)
		r.Decode(t, &got)
		if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), e.Password) || strings.Contains(string(r.Body), "wrong-password") {
			t.Fatal("the audit log holds a secret or password")
		}
		seen := map[string]map[string]any{}
		for _, a := range got.AuditLogs {
			seen[a.Event.Type] = a.Event.Metadata
		}
		for _, typ := range []string{"permission-denied", "login-identity-universal-auth-failed", "login-identity-universal-auth",
			"renew-identity-access-token", "revoke-identity-access-token", "user-login", "user-login-failed", "get-secret-versions",
			"get-dynamic-secret", "revoke-dynamic-secret-lease"} {
			if _, ok := seen[typ]; !ok {
				t.Errorf("no %s event", typ)
			}
		}
		if m := seen["permission-denied"]; m != nil && (m["method"] != "POST" || !strings.Contains(fmt.Sprint(m["route"]), "/api/v3/secrets/raw/")) {
			t.Errorf("permission-denied metadata %v", m)
		}
		if m := seen["login-identity-universal-auth-failed"]; m != nil && m["reason"] != "Invalid credentials" {
			t.Errorf("failed login metadata %v", m)
		}
		if m := seen["revoke-dynamic-secret-lease"]; m != nil && m["outcome"] != "revoked" {
			t.Errorf("worker revocation metadata %v", m)
		}
	})
}

// TestHostileRenameCannotReveal: a role that reads only PUBLIC_* and may
// edit everything cannot rename (or roll back) a secret into what it reads,
// and its version list hides values of versions named outside it.
func TestHostileRenameCannotReveal(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "rename"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "hidden-pw")
	id := secretID(t, e, p.ID, "dev", "DB_PASSWORD")
	// Version 2 is named PUBLIC_X: the admin renamed it, then renamed it back (version 3).
	e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/DB_PASSWORD", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "newSecretName": "PUBLIC_X"})
	e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/PUBLIC_X", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "newSecretName": "DB_PASSWORD"})
	tok := customRole(t, e, p.ID, "public-reader", []map[string]any{
		{"subject": "secrets", "action": []string{"describeSecret", "edit", "create"}},
		{"subject": "secrets", "action": []string{"read", "readValue"}, "conditions": map[string]any{"secretName": map[string]any{"$glob": "PUBLIC_*"}}},
		{"subject": "secret-rollback", "action": []string{"read", "create"}},
	})
	assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/DB_PASSWORD", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "newSecretName": "PUBLIC_Y"}), 403, "PermissionDenied")
	assertError(t, e.Do(t, "POST", "/api/v1/secret/"+id+"/secret-versions/2/rollback", tok, nil), 403, "PermissionDenied")
	r := e.Must(t, 200, "GET", "/api/v1/secret/"+id+"/secret-versions", tok, nil)
	if strings.Contains(string(r.Body), "hidden-pw") {
		t.Fatalf("versions leak the value: %s", r.Body)
	}
	// Renamed into what the role reads, with a new value: the old version, named
	// DB_PASSWORD, stays hidden when read by version through the new name.
	e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/DB_PASSWORD", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"newSecretName": "PUBLIC_Z", "secretValue": "public-now"})
	r = e.Must(t, 200, "GET", "/api/v3/secrets/raw/PUBLIC_Z?"+secretQ(p.ID, "dev", "/")+"&version=1", tok, nil)
	if strings.Contains(string(r.Body), "hidden-pw") {
		t.Fatalf("get by version leaks the value: %s", r.Body)
	}
	if r := e.Must(t, 200, "GET", "/api/v3/secrets/raw/PUBLIC_Z?"+secretQ(p.ID, "dev", "/"), tok, nil); !strings.Contains(string(r.Body), "public-now") {
		t.Fatalf("the current value is readable: %s", r.Body)
	}
}

// TestMembershipChangeRefusedIfRolesChangedMeanwhile: the store applies a
// membership change only to the roles the permission check saw.
func TestMembershipChangeRefusedIfRolesChangedMeanwhile(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "race"})
		id, _ := projectMember(t, e, p.ID, "target", "member")
		ms, err := e.DB.IdentityMembership(context.Background(), p.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		stale := []string{"00000000-0000-0000-0000-000000000000"}
		viewer := []project.MembershipRole{{Role: "viewer"}}
		if err := e.DB.ReplaceMembershipRoles(context.Background(), p.ID, ms.ID, stale, viewer, audit.Event{}); !errs.Is(err, errs.Conflict) {
			t.Fatalf("replace with stale roles: %v", err)
		}
		if err := e.DB.DeleteMembership(context.Background(), p.ID, ms.ID, stale, audit.Event{}); !errs.Is(err, errs.Conflict) {
			t.Fatalf("delete with stale roles: %v", err)
		}
		current := []string{ms.Roles[0].ID}
		if err := e.DB.ReplaceMembershipRoles(context.Background(), p.ID, ms.ID, current, viewer, audit.Event{Type: "test", ActorType: "platform"}); err != nil {
			t.Fatalf("replace with current roles: %v", err)
		}
	})
}

// TestIdentityConditionLimitsMembershipList: a role that reads one identity
// lists that membership only.
func TestIdentityConditionLimitsMembershipList(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "one-identity"})
	seenID, _ := projectMember(t, e, p.ID, "seen", "viewer")
	tok := customRole(t, e, p.ID, "one-reader", []map[string]any{
		{"subject": "identity", "action": []string{"read"}, "conditions": map[string]any{"identityId": seenID}},
	})
	var list struct {
		IdentityMemberships []struct{ IdentityID string }
		TotalCount          int
	}
	e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/identity-memberships", tok, nil).Decode(t, &list)
	if list.TotalCount != 1 || len(list.IdentityMemberships) != 1 || list.IdentityMemberships[0].IdentityID != seenID {
		t.Fatalf("list %+v; want only %s", list, seenID)
	}
	assertError(t, e.Do(t, "GET", "/api/v1/projects/"+p.ID+"/identity-memberships/"+e.IdentityID, tok, nil), 403, "PermissionDenied")
}

// TestIdentityConditionLimitsOrgIdentityList: an organization role that
// reads one identity lists that identity only, in both organization lists
// (Infisical's /api/v1/identities and /api/v2/…/identity-memberships).
func TestIdentityConditionLimitsOrgIdentityList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		seenID, _ := e.NewIdentity(t, "seen", "no-access")
		hiddenID, _ := e.NewIdentity(t, "hidden", "no-access")
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "one-reader", "name": "One reader",
			"permissions": []map[string]any{{"subject": "identity", "action": []string{"read"}, "conditions": map[string]any{"identityId": seenID}}}})
		_, tok := e.NewIdentity(t, "reader", "one-reader")
		var v1 struct {
			Identities []struct{ Identity struct{ ID string } }
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/identities?orgId="+e.OrgID, tok, nil).Decode(t, &v1)
		if v1.TotalCount != 1 || len(v1.Identities) != 1 || v1.Identities[0].Identity.ID != seenID {
			t.Fatalf("/api/v1/identities %+v; want only %s", v1, seenID)
		}
		body := string(e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/identity-memberships", tok, nil).Body)
		if !strings.Contains(body, seenID) || strings.Contains(body, hiddenID) || strings.Contains(body, e.IdentityID) {
			t.Fatalf("identity-memberships: %.2000s", body)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/identities/"+hiddenID, tok, nil), 403, "PermissionDenied")
	})
}

// TestBatchWritesShareOneExpansionBudget: the values one request writes
// share one expansion budget, as the values one read expands do; a batch of
// values each within the budget alone cannot make the server expand it once
// per item. Each is accepted alone.
func TestBatchWritesShareOneExpansionBudget(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "batch-budget"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "BIG", strings.Repeat("x", 400<<10))
	// 30 references to 400 KiB: 12 MiB, within the 16 MiB budget alone.
	heavy := strings.Repeat("${BIG}", 30)
	batch := func(method string, keys ...string) apptest.Response {
		items := make([]map[string]any, len(keys))
		for i, k := range keys {
			items[i] = map[string]any{"secretKey": k, "secretValue": heavy}
		}
		return e.Do(t, method, "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/", "secrets": items})
	}
	if r := batch("POST", "A", "B"); r.Status != 422 || !strings.Contains(string(r.Body), "one request") {
		t.Fatalf("a batch create past the budget in all: %d %.300s", r.Status, r.Body)
	}
	for _, k := range []string{"A", "B"} {
		if r := batch("POST", k); r.Status != 200 {
			t.Fatalf("create %s alone: %d %.300s", k, r.Status, r.Body)
		}
	}
	if r := batch("PATCH", "A", "B"); r.Status != 422 || !strings.Contains(string(r.Body), "one request") {
		t.Fatalf("a batch update past the budget in all: %d %.300s", r.Status, r.Body)
	}
	if r := batch("PATCH", "B"); r.Status != 200 {
		t.Fatalf("update B alone: %d %.300s", r.Status, r.Body)
	}
}

// TestBatchDeleteHonoursItemPaths: an item of a batch deletion that names
// its own secretPath deletes the secret there, not the one of the same name
// at the request's path (which a rotation may own: its guard reads the
// item's path).
func TestBatchDeleteHonoursItemPaths(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "batch-paths"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "other"))
		putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "at the root")
		putSecret(t, e, e.Token, p.ID, "dev", "/other", "KEY", "in other")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/", "secrets": []map[string]any{{"secretKey": "KEY", "secretPath": "/other"}}})
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+secretQ(p.ID, "dev", "/"), e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/KEY?"+secretQ(p.ID, "dev", "/other"), e.Token, nil), 404, "NotFound")
	})
}

// TestSecretIDOfAnotherProjectIsNotFound: routes that take a secret's id
// answer someone outside its project as for an id that does not exist (404,
// naming no project), not with a 403 that confirms it and names its project.
func TestSecretIDOfAnotherProjectIsNotFound(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "by-id"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "value")
	id := secretID(t, e, p.ID, "dev", "KEY")
	_, outsider := e.NewIdentity(t, "outsider", "member")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v4/secrets/id/" + id}, {"GET", "/api/v3/secrets/raw/id/" + id},
		{"GET", "/api/v1/secret/" + id + "/secret-versions"}, {"POST", "/api/v1/secret/" + id + "/secret-versions/1/rollback"},
	} {
		r := e.Do(t, c.method, c.path, outsider, nil)
		assertError(t, r, 404, "NotFound")
		if strings.Contains(string(r.Body), p.ID) {
			t.Fatalf("%s %s names the project: %s", c.method, c.path, r.Body)
		}
	}
}

// TestExpansionLooksUpAtMostSoManyFolders: one request's reference
// expansion looks up at most secret.MaxExpandFolders distinct folders; each
// lookup walks the folder's path a query per segment, so references to
// thousands of distinct paths (each value within its own limits) made one
// read of a folder take seconds to minutes. Past the limit the read is a
// 400; each value alone still reads.
func TestExpansionLooksUpAtMostSoManyFolders(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "folder-budget"})
	refs := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "${dev.f%d.K}", i)
		}
		return b.String()
	}
	half := secret.MaxExpandFolders/2 + 10
	putSecret(t, e, e.Token, p.ID, "dev", "/", "A", refs(0, half))
	read := func(key string) apptest.Response {
		path := "/api/v3/secrets/raw?workspaceId=" + p.ID + "&environment=dev&secretPath=/&expandSecretReferences=true"
		if key != "" {
			path = "/api/v3/secrets/raw/" + key + "?workspaceId=" + p.ID + "&environment=dev&secretPath=/&expandSecretReferences=true"
		}
		return e.Do(t, "GET", path, e.Token, nil)
	}
	if r := read(""); r.Status != 200 || !strings.Contains(string(r.Body), "${dev.f0.K}") {
		t.Fatalf("a read within the limit: %d %.300s", r.Status, r.Body)
	}
	putSecret(t, e, e.Token, p.ID, "dev", "/", "B", refs(half, 2*half))
	if r := read(""); r.Status != 400 || !strings.Contains(string(r.Body), "folders per request") {
		t.Fatalf("a read past the limit: %d %.300s", r.Status, r.Body)
	}
	for _, k := range []string{"A", "B"} {
		if r := read(k); r.Status != 200 {
			t.Fatalf("%s alone: %d %.300s", k, r.Status, r.Body)
		}
	}
	// The values one request writes share the limit: a batch of two past it
	// is refused, as a batch past the byte budget is.
	r := e.Do(t, "POST", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/",
		"secrets": []map[string]any{{"secretKey": "C", "secretValue": refs(1000, 1000+half)}, {"secretKey": "D", "secretValue": refs(2000, 2000+half)}}})
	if r.Status != 422 || !strings.Contains(string(r.Body), "folders for the values of one request") {
		t.Fatalf("a batch past the folder limit: %d %.300s", r.Status, r.Body)
	}
}

// TestOldVersionsAreDescribedAsTheirNameMayBe: reading a secret by version
// through its current name describes that version (comment, tags,
// metadata, reminder, and that name itself) only as far as the caller may
// describe the name it had then, as the version list does; before, only the
// comment and tags were withheld, and then the old name was still shown.
func TestOldVersionsAreDescribedAsTheirNameMayBe(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "old-names"})
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/PRIVATE_OLD", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/", "secretValue": "v1", "secretComment": "comment-of-v1", "secretMetadata": md("owner", "meta-of-v1"),
			"secretReminderRepeatDays": 30, "secretReminderNote": "note-of-v1"})
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/PRIVATE_OLD", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"newSecretName": "PUBLIC_NOW", "secretValue": "v2"})
		tok := customRole(t, e, p.ID, "public-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret"}, "conditions": map[string]any{"secretName": map[string]any{"$glob": "PUBLIC_*"}}},
		})
		r := e.Must(t, 200, "GET", "/api/v3/secrets/raw/PUBLIC_NOW?"+secretQ(p.ID, "dev", "/")+"&version=1", tok, nil)
		for _, leak := range []string{`"secretValue":"v1"`, "comment-of-v1", "meta-of-v1", "note-of-v1", "PRIVATE_OLD"} {
			if strings.Contains(string(r.Body), leak) {
				t.Fatalf("version 1, named outside the role, shows %q: %s", leak, r.Body)
			}
		}
		// The admin sees it all.
		r = e.Must(t, 200, "GET", "/api/v3/secrets/raw/PUBLIC_NOW?"+secretQ(p.ID, "dev", "/")+"&version=1", e.Token, nil)
		for _, want := range []string{"comment-of-v1", "meta-of-v1", "note-of-v1", `"secretKey":"PRIVATE_OLD"`} {
			if !strings.Contains(string(r.Body), want) {
				t.Fatalf("the admin's version 1 lacks %q: %s", want, r.Body)
			}
		}
	})
}

// TestABatchWithADeniedItemChangesNothing: a batch update or deletion with
// an item the caller may not change (by path or name) is refused before
// any item is applied; before, the items ahead of it were written and the
// answer was still a 403.
func TestABatchWithADeniedItemChangesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "batch-denied"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		putSecret(t, e, e.Token, p.ID, "dev", "/app", "A", "a1")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "B", "b1")
		tok := customRole(t, e, p.ID, "app-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret", "create", "edit", "delete"},
				"conditions": map[string]any{"secretPath": map[string]any{"$eq": "/app"}}},
		})
		items := []map[string]any{{"secretKey": "A", "secretPath": "/app", "secretValue": "a2"}, {"secretKey": "B", "secretPath": "/", "secretValue": "b2"}}
		body := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/app", "secrets": items}
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", tok, body), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/batch/raw", tok, body), 403, "PermissionDenied")
		// The project named by its slug, as the v4 batch routes and older clients do.
		bySlug := map[string]any{"projectSlug": p.Slug, "environment": "dev", "secretPath": "/app", "secrets": items}
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", tok, bySlug), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/batch/raw", tok, bySlug), 403, "PermissionDenied")
		var got struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/A?"+secretQ(p.ID, "dev", "/app"), e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "a1" || got.Secret.Version != 1 {
			t.Fatalf("A after refused batches: %q, version %d", got.Secret.SecretValue, got.Secret.Version)
		}
		// Alone, the allowed item goes through.
		body["secrets"] = items[:1]
		e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", tok, body)
	})
}

// TestAReferenceOneMayNotReadIsRefusedWhetherOrNotItExists: expanding a
// reference to a secret the caller may not read is the same 403 whether
// the secret exists or not; before, a missing one stayed as written (200),
// so references enumerated names and folders where one reads nothing.
func TestAReferenceOneMayNotReadIsRefusedWhetherOrNotItExists(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "ref-oracle"})
	putSecret(t, e, e.Token, p.ID, "prod", "/", "DB_PASSWORD", "s3cret")
	putSecret(t, e, e.Token, p.ID, "dev", "/", "P1", "${prod.DB_PASSWORD}")
	putSecret(t, e, e.Token, p.ID, "dev", "/", "P2", "${prod.NOPE}")
	putSecret(t, e, e.Token, p.ID, "dev", "/", "P3", "${dev.MISSING}")
	tok := customRole(t, e, p.ID, "dev-reader", []map[string]any{
		{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret"}, "conditions": map[string]any{"environment": "dev"}},
	})
	get := func(key string) apptest.Response {
		return e.Do(t, "GET", "/api/v3/secrets/raw/"+key+"?"+secretQ(p.ID, "dev", "/")+"&expandSecretReferences=true", tok, nil)
	}
	assertError(t, get("P1"), 403, "PermissionDenied")
	assertError(t, get("P2"), 403, "PermissionDenied")
	// A missing reference the caller could read stays as written.
	if r := get("P3"); r.Status != 200 || !strings.Contains(string(r.Body), "${dev.MISSING}") {
		t.Fatalf("a missing readable reference: %d %.300s", r.Status, r.Body)
	}
	// The same with a rule on tags, which needs a secret's tags to decide:
	// prod, where no tags would let the role read, is refused all the same
	// (before, existing secrets answered 403 and missing ones 200).
	tagged := customRole(t, e, p.ID, "dev-no-sensitive", []map[string]any{
		{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret"}, "conditions": map[string]any{"environment": "dev"}},
		{"subject": "secrets", "action": []string{"readValue"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"sensitive"}}}},
	})
	for _, key := range []string{"P1", "P2"} {
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/"+key+"?"+secretQ(p.ID, "dev", "/")+"&expandSecretReferences=true", tagged, nil), 403, "PermissionDenied")
	}
	if r := e.Do(t, "GET", "/api/v3/secrets/raw/P3?"+secretQ(p.ID, "dev", "/")+"&expandSecretReferences=true", tagged, nil); r.Status != 200 {
		t.Fatalf("a missing readable reference, with a tag rule: %d %.300s", r.Status, r.Body)
	}
}

// TestAWriterMayReferOnlyToWhatItCanRead: a member confined to dev:/app
// cannot plant ${prod.DB_PASSWORD} in a value there (create, update, batch,
// rollback), however the reference hides (after a broken cycle, behind a
// chain of its own secrets, in an older version); before, the write went
// through and a reader with wider rights (a deployment identity) read the
// prod password inside the planted value. References it may read, and ones
// to secrets that do not exist yet where it may read, are written.
func TestAWriterMayReferOnlyToWhatItCanRead(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "plant"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		putSecret(t, e, e.Token, p.ID, "prod", "/", "DB_PASSWORD", "prod-db-pass")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "SHARED", "${prod.DB_PASSWORD}") // an admin's, readable by the member
		confined := customRole(t, e, p.ID, "app-only", []map[string]any{{"subject": "secrets", "action": allSecretActions,
			"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}}})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "lib"))
		putSecret(t, e, e.Token, p.ID, "dev", "/lib", "VIA", "${dev.SHARED}")
		reader := customRole(t, e, p.ID, "app-and-lib", []map[string]any{
			{"subject": "secrets", "action": allSecretActions, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "conditions": map[string]any{"environment": "dev", "secretPath": "/lib"}},
		})
		at := func(key string, extra map[string]any) map[string]any {
			m := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/app"}
			maps.Copy(m, extra)
			return m
		}
		planted := []string{
			"https://x.test/?k=${prod.DB_PASSWORD}",
			"${prod.NOPE}",               // missing, where it reads nothing: refused all the same
			"${CYC} ${prod.DB_PASSWORD}", // after a cycle (CYC refers to itself)
			"${dev.lib.VIA}",             // through a secret it may read, to one it may not
			"${OWN1} ${dev.lib.VIA}",     // after a chain of its own secrets
		}
		putSecret(t, e, confined, p.ID, "dev", "/app", "CYC", "${CYC}")
		putSecret(t, e, confined, p.ID, "dev", "/app", "OWN1", "${OWN2}")
		putSecret(t, e, confined, p.ID, "dev", "/app", "OWN2", "plain")
		putSecret(t, e, confined, p.ID, "dev", "/app", "HOOK", "harmless")
		for _, v := range planted {
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW", confined, at("NEW", map[string]any{"secretValue": v})), 403, "PermissionDenied")
			assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/HOOK", confined, at("HOOK", map[string]any{"secretValue": v})), 403, "PermissionDenied")
			assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", confined, at("", map[string]any{
				"secrets": []map[string]any{{"secretKey": "HOOK", "secretValue": v}}})), 403, "PermissionDenied")
		}
		// The cycle mended, the admin reads nothing of prod through the
		// member's values.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/CYC", confined, at("CYC", map[string]any{"secretValue": "mended"}))
		r := e.Must(t, 200, "GET", "/api/v3/secrets/raw?expandSecretReferences=true&"+secretQ(p.ID, "dev", "/app"), e.Token, nil)
		if strings.Contains(string(r.Body), "prod-db-pass") {
			t.Fatalf("a planted reference resolved for the admin: %.400s", r.Body)
		}
		// What it may read, and a secret that is not there yet, it may name.
		putSecret(t, e, confined, p.ID, "dev", "/app", "OK1", "${OWN1}-${dev.app.LATER}")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/OK1", reader, at("OK1", map[string]any{"secretValue": "${dev.lib.NOT_YET}"}))
		// An older value holding such a reference (written by the admin) is
		// not brought back by the member's rollback.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/HOOK", e.Token, at("HOOK", map[string]any{"secretValue": "${prod.DB_PASSWORD}"}))
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/HOOK", e.Token, at("HOOK", map[string]any{"secretValue": "harmless again"}))
		var hook struct{ Secret struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/HOOK?"+secretQ(p.ID, "dev", "/app"), confined, nil).Decode(t, &hook)
		rollbackRole := customRole(t, e, p.ID, "app-rollback", []map[string]any{
			{"subject": "secrets", "action": allSecretActions, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
			{"subject": "secret-rollback", "action": []string{"read", "create"}},
		})
		assertError(t, e.Do(t, "POST", "/api/v1/secret/"+hook.Secret.ID+"/secret-versions/2/rollback", rollbackRole, nil), 403, "PermissionDenied")
		e.Must(t, 200, "POST", "/api/v1/secret/"+hook.Secret.ID+"/secret-versions/1/rollback", rollbackRole, nil)
		e.Must(t, 200, "POST", "/api/v1/secret/"+hook.Secret.ID+"/secret-versions/2/rollback", e.Token, nil)

		// Renamed, a secret is what references to its new name reach: the
		// member may not rename the admin's secret that reaches prod to the
		// name its own value refers to (which did not exist: accepted).
		putSecret(t, e, confined, p.ID, "dev", "/app", "WAITING", "${dev.app.LATER_NAME}")
		putSecret(t, e, e.Token, p.ID, "dev", "/app", "CONN", "${prod.DB_PASSWORD}")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/CONN", confined, at("CONN", map[string]any{"newSecretName": "LATER_NAME"})), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/OWN2", confined, at("OWN2", map[string]any{"newSecretName": "OWN3"}))

		// A user's personal override does not hide what the shared secret
		// reaches: the check reads shared secrets, as wider readers do.
		if d == store.SQLite {
			user, _ := newUser(t, e, "confined@example.com", "member")
			addProjectUsers(t, e, e.Token, p.ID, []string{"confined@example.com"}, "app-only")
			putSecret(t, e, e.Token, p.ID, "dev", "/app", "X", "${prod.DB_PASSWORD}")
			e.Must(t, 200, "POST", "/api/v3/secrets/raw/X", user, at("X", map[string]any{"secretValue": "harmless", "type": "personal"}))
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/VIA_X", user, at("VIA_X", map[string]any{"secretValue": "${X}"})), 403, "PermissionDenied")
			// A personal value is read by its owner alone, through the
			// owner's override: it may name X.
			e.Must(t, 200, "POST", "/api/v3/secrets/raw/MINE", user, at("MINE", map[string]any{"secretValue": "mine"}))
			e.Must(t, 200, "POST", "/api/v3/secrets/raw/MINE", user, at("MINE", map[string]any{"secretValue": "${X}", "type": "personal"}))
			var mine struct{ Secret struct{ SecretValue string } }
			e.Must(t, 200, "GET", "/api/v3/secrets/raw/MINE?type=personal&expandSecretReferences=true&"+secretQ(p.ID, "dev", "/app"), user, nil).Decode(t, &mine)
			if mine.Secret.SecretValue != "harmless" {
				t.Fatalf("the owner reads its personal value as %q", mine.Secret.SecretValue)
			}
		}
	})
}

// TestARenameOrRetagKeepsADeleteDenial: a role that may read, create, edit
// and delete secrets but not delete CRITICAL, nor anything tagged
// protected, cannot rename CRITICAL or untag a protected secret to delete
// it then (before, a change was refused only if it revealed more; deleting
// a secret also deletes its history).
func TestARenameOrRetagKeepsADeleteDenial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "keep"})
		var tag struct{ Tag struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": "protected", "color": "#f00"}).Decode(t, &tag)
		putSecret(t, e, e.Token, p.ID, "dev", "/", "CRITICAL", "c")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/GUARDED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "g", "tagIds": []string{tag.Tag.ID}})
		tok := customRole(t, e, p.ID, "no-delete-critical", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secrets", "action": []string{"delete"}, "inverted": true, "conditions": map[string]any{"secretName": "CRITICAL"}},
			{"subject": "secrets", "action": []string{"delete"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"protected"}}}},
		})
		body := func(extra map[string]any) map[string]any {
			m := map[string]any{"workspaceId": p.ID, "environment": "dev"}
			maps.Copy(m, extra)
			return m
		}
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/CRITICAL", tok, body(nil)), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/CRITICAL", tok, body(map[string]any{"newSecretName": "TMP"})), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/GUARDED", tok, body(nil)), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/GUARDED", tok, body(map[string]any{"tagIds": []string{}})), 403, "PermissionDenied")
		// Both are still there; other changes go through.
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/CRITICAL?"+secretQ(p.ID, "dev", "/"), tok, nil)
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/GUARDED?"+secretQ(p.ID, "dev", "/"), tok, nil)
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/CRITICAL", tok, body(map[string]any{"secretValue": "c2"}))
		putSecret(t, e, tok, p.ID, "dev", "/", "OTHER", "o")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/OTHER", tok, body(map[string]any{"newSecretName": "RENAMED"}))
		// Renaming a secret to CRITICAL narrows what the role may do: allowed.
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/CRITICAL", e.Token, body(nil))
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/RENAMED", tok, body(map[string]any{"newSecretName": "CRITICAL"}))
		// A role that creates only APP_* may still rename a secret to APP_*:
		// creating under its new name gives nothing over the secret.
		narrow := customRole(t, e, p.ID, "create-app-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "edit", "delete"}},
			{"subject": "secrets", "action": []string{"create"}, "conditions": map[string]any{"secretName": map[string]any{"$glob": "APP_*"}}},
		})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "LEGACY", "l")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/LEGACY", narrow, body(map[string]any{"newSecretName": "APP_LEGACY"}))
	})
}

// TestLargeAnswersAreBounded: values are answered as they are, not with <, >
// and & written as six bytes each (a listing of such values was six times
// their size); a listing or a page of versions whose JSON would pass
// secret.MaxAnswerBytes (values of control characters, six bytes each) is a
// 400 and not hundreds of megabytes built for every read, while the same
// listing without values is served.
func TestLargeAnswersAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "large-answers"})
	_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
	html := strings.Repeat("<>&", 50_000)
	putSecret(t, e, e.Token, p.ID, "dev", "/", "HTML", html)
	r := e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/"), viewer, nil)
	if !strings.Contains(string(r.Body), html) || len(r.Body) > len(html)+4096 {
		t.Fatalf("a %d-byte value of <>& answered in %d bytes", len(html), len(r.Body))
	}

	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "ctl"))
	ctl := strings.Repeat("\x01", 170_000) // 1,020,000 bytes as JSON, under the 1 MiB body limit
	n := secret.MaxAnswerBytes/(6*len(ctl)) + 1
	for i := range n {
		putSecret(t, e, e.Token, p.ID, "dev", "/ctl", fmt.Sprintf("CTL_%d", i), ctl)
	}
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/ctl"), viewer, nil), 400, "BadRequest")
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/")+"&recursive=true", viewer, nil), 400, "BadRequest")
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/ctl")+"&viewSecretValue=false", e.Token, nil)
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/"), viewer, nil)

	// The same in one secret's versions (the project keeps up to 100).
	e.Must(t, 200, "PUT", "/api/v1/workspace/"+p.Slug+"/version-limit", e.Token, map[string]any{"pitVersionLimit": 100})
	id := secretID(t, e, p.ID, "dev", "HTML")
	for range n {
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/HTML", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": ctl})
	}
	assertError(t, e.Do(t, "GET", "/api/v1/secret/"+id+"/secret-versions?limit=100", viewer, nil), 400, "BadRequest")
	e.Must(t, 200, "GET", "/api/v1/secret/"+id+"/secret-versions?limit=5", viewer, nil)
}

// TestAnswerCapCountsWhatIsOpened: the cap on what one read opens counts the
// rows whose values it answers or expands and every folder its references
// open, and nothing the reader cannot see. A member who may write only
// /team fills it past secret.MaxAnswerBytes: a reader of /app alone still
// lists / recursively (its rows were counted and the read refused), while a
// read expanding a reference into /team is refused (each reference opened
// its whole folder, uncounted: 534 bytes answered for 155 MiB allocated).
func TestAnswerCapCountsWhatIsOpened(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "cap-opened"})
	rw := []string{"read", "describeSecret", "readValue", "create", "edit", "delete"}
	writer := customRole(t, e, p.ID, "team-writer", []map[string]any{{"subject": "secrets", "action": rw,
		"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/team/**"}}}})
	reader := customRole(t, e, p.ID, "app-reader", []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"},
		"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}}})
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "team"))
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
	putSecret(t, e, e.Token, p.ID, "dev", "/app", "APP_KEY", "app-value")
	blob := strings.Repeat("z", 512<<10)
	putSecret(t, e, writer, p.ID, "dev", "/team", "BLOB_0", blob)
	// REF is written while /team is small; the folder grows past the cap afterwards.
	putSecret(t, e, e.Token, p.ID, "dev", "/app", "REF", "${dev.team.BLOB_0}")
	for i := 1; i <= secret.MaxAnswerBytes/len(blob); i++ {
		putSecret(t, e, writer, p.ID, "dev", "/team", fmt.Sprintf("BLOB_%d", i), blob)
	}
	var out struct{ Secrets []secretOut }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/")+"&recursive=true", reader, nil).Decode(t, &out)
	if len(out.Secrets) != 2 || out.Secrets[0].SecretPath != "/app" || out.Secrets[1].SecretPath != "/app" {
		t.Fatalf("the reader of /app lists %+v", out.Secrets)
	}
	// The admin lists /team without values; expanding a reference into it opens it whole.
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/team")+"&viewSecretValue=false", e.Token, nil)
	// Written now, the same reference opens more than an answer may: the write-time check refuses it.
	m := assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/REF2", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"secretPath": "/app", "secretValue": "${dev.team.BLOB_0}"}), 422, "ValidationFailure")
	if msg := fmt.Sprint(m["message"]); !strings.Contains(msg, "more than 32 MiB") || strings.Contains(msg, "zzzz") {
		t.Fatalf("422 message %q", msg)
	}
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/REF?"+secretQ(p.ID, "dev", "/app")+"&expandSecretReferences=true", e.Token, nil), 400, "BadRequest")
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/REF?"+secretQ(p.ID, "dev", "/app")+"&expandSecretReferences=false", e.Token, nil)
}

// TestRefusalsQuoteABoundedPartOfTheRequest: a refusal that names what the
// request named (a project id) quoted it whole, in the answer and in the log
// line of every refusal: a 900 KB workspaceId came back 900 KB.
func TestRefusalsQuoteABoundedPartOfTheRequest(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	long := strings.Repeat("p", 900<<10)
	for _, r := range []apptest.Response{
		e.Do(t, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "w", "workspaceId": long,
			"scopes": []map[string]any{{"environment": "dev", "secretPath": "/"}}, "permissions": []string{"read"}}),
		e.Do(t, "GET", "/api/v3/secrets/raw?environment=dev&workspaceId="+long[:60<<10], e.Token, nil),
	} {
		var body struct{ Message string }
		if err := json.Unmarshal(r.Body, &body); err != nil || r.Status != 404 {
			t.Fatalf("%d %v %.200s", r.Status, err, r.Body)
		}
		if !strings.Contains(body.Message, "pppp") || len(body.Message) > 2<<10 {
			t.Fatalf("a refusal quoting the request is %d bytes: %.200s", len(body.Message), body.Message)
		}
	}
	// A 403 also writes a permission-denied event with its message, which
	// every reader of the organization's audit log gets.
	if r := e.Do(t, "GET", "/api/v2/organizations/"+long[:60<<10]+"/identity-memberships", e.Token, nil); r.Status != 403 {
		t.Fatalf("another organization's identities: %d %.200s", r.Status, r.Body)
	}
	var evs struct {
		AuditLogs []struct {
			Event struct{ Metadata map[string]any }
		}
	}
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=permission-denied", e.Token, nil).Decode(t, &evs)
	if len(evs.AuditLogs) == 0 {
		t.Fatal("no permission-denied event")
	}
	for _, ev := range evs.AuditLogs {
		if reason := fmt.Sprint(ev.Event.Metadata["reason"]); len(reason) > audit.MaxReasonBytes || !strings.Contains(reason, "pppp") {
			t.Fatalf("a permission-denied event keeps a reason of %d bytes: %.200s", len(reason), reason)
		}
	}
}
