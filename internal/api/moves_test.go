package api_test

import (
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The rules below keep a member out of part of a project (a folder, an
// environment, tagged secrets) while letting it manage folders, environments,
// tags and service tokens. None of those may be turned into a way in: a
// rename that moves the secrets out of the denied part, a delete of secrets
// it may not delete, a token that reaches further than its creator.

const movedValue = "kept-out-value-7f3"

func leaks(r apptest.Response) bool { return strings.Contains(string(r.Body), movedValue) }

var allSecretActions = []string{"read", "describeSecret", "readValue", "create", "edit", "delete"}

// TestServiceTokenReachesNoFurtherThanItsCreator: a service token scoped to
// a path reaches every folder below it, with read (and with write, edit and
// delete of secrets, folders and imports): its creator must hold all of that
// there. Creating one at "/" is refused to a role denied a subfolder, to one
// confined to "/" itself, and (for a read token) to one that may only
// write; a token scoped clear of the denial, and the built-in member's,
// are made as before.
func TestServiceTokenReachesNoFurtherThanItsCreator(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "st-reach"})
		for _, name := range []string{"restricted", "open"} {
			e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", name))
		}
		putSecret(t, e, e.Token, p.ID, "dev", "/restricted", "DB", movedValue)
		token := func(tok, path string, perms ...string) apptest.Response {
			return e.Do(t, "POST", "/api/v2/service-token", tok, map[string]any{"name": "t", "workspaceId": p.ID,
				"scopes": []map[string]any{{"environment": "dev", "secretPath": path}}, "permissions": perms})
		}
		denied := customRole(t, e, p.ID, "no-restricted", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secret-imports", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "service-tokens", "action": []string{"read", "create"}},
			{"subject": "secrets", "action": allSecretActions, "inverted": true,
				"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/restricted/**"}}},
		})
		if r := e.Do(t, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "dev", "/restricted"), denied, nil); r.Status != 403 || leaks(r) {
			t.Fatalf("the denied role reads /restricted: %d", r.Status)
		}
		for _, perms := range [][]string{{"read"}, {"write"}, {"read", "write"}} {
			if r := token(denied, "/", perms...); r.Status != 403 || !strings.Contains(string(r.Body), "PermissionBoundaryError") {
				t.Fatalf("a %v token at / by a role denied /restricted: %d %.300s", perms, r.Status, r.Body)
			}
		}
		var st struct{ ServiceToken string }
		token(denied, "/open", "read", "write").Decode(t, &st) // clear of the denial
		if st.ServiceToken == "" {
			t.Fatal("a token scoped to /open by the role denied /restricted was refused")
		}

		confined := customRole(t, e, p.ID, "root-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue", "create"}, "conditions": map[string]any{"secretPath": "/"}},
			{"subject": "service-tokens", "action": []string{"create"}},
		})
		if r := token(confined, "/", "read"); r.Status != 403 {
			t.Fatalf("a read token at / (and below) by a role confined to /: %d %.300s", r.Status, r.Body)
		}
		writer := customRole(t, e, p.ID, "writer", []map[string]any{
			{"subject": "secrets", "action": []string{"create", "edit", "delete"}},
			{"subject": "service-tokens", "action": []string{"create"}},
		})
		if r := token(writer, "/", "read"); r.Status != 403 {
			t.Fatalf("a read token by a role that may only write secrets: %d %.300s", r.Status, r.Body)
		}

		// Roles that hold what a token gives make one, however their rules
		// say it: read as the one action that covers values, environments
		// as a list, a path as a glob above the scope, no rules on folders
		// or imports.
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/open", "sub"))
		for name, c := range map[string]struct {
			rules []map[string]any
			path  string
			perms []string
		}{
			"legacy-read": {[]map[string]any{{"subject": "secrets", "action": []string{"read", "create"}},
				{"subject": "service-tokens", "action": []string{"create"}}}, "/", []string{"read"}},
			"env-list": {[]map[string]any{{"subject": "secrets", "action": allSecretActions,
				"conditions": map[string]any{"environment": map[string]any{"$in": []string{"dev", "staging"}}}},
				{"subject": "secret-folders", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "secret-imports", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "service-tokens", "action": []string{"create"}}}, "/", []string{"read", "write"}},
			"path-glob": {[]map[string]any{{"subject": "secrets", "action": allSecretActions,
				"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/open/**"}}},
				{"subject": "secret-folders", "action": []string{"create", "edit", "delete"},
					"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/open/**"}}},
				{"subject": "secret-imports", "action": []string{"create", "edit", "delete"}},
				{"subject": "service-tokens", "action": []string{"create"}}}, "/open/sub", []string{"read", "write"}},
		} {
			tok := customRole(t, e, p.ID, name, c.rules)
			if r := token(tok, c.path, c.perms...); r.Status != 200 {
				t.Errorf("%s: a %v token at %s: %d %.300s", name, c.perms, c.path, r.Status, r.Body)
			}
		}
		// A write token renames and deletes folders and imports: a role
		// that may not cannot make one (it can make a read token).
		noFolderWrites := customRole(t, e, p.ID, "no-folder-writes", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": []string{"read"}},
			{"subject": "secret-folders", "action": []string{"create", "edit", "delete"}, "inverted": true},
			{"subject": "service-tokens", "action": []string{"create"}}})
		if r := token(noFolderWrites, "/", "read", "write"); r.Status != 403 {
			t.Fatalf("a write token by a role that may not change folders: %d %.300s", r.Status, r.Body)
		}
		if r := token(noFolderWrites, "/", "read"); r.Status != 200 {
			t.Fatalf("a read token by a role that may not change folders: %d %.300s", r.Status, r.Body)
		}
		pathGlob := customRole(t, e, p.ID, "path-glob-wider", []map[string]any{{"subject": "secrets", "action": allSecretActions,
			"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/open/**"}}},
			{"subject": "service-tokens", "action": []string{"create"}}})
		if r := token(pathGlob, "/", "read"); r.Status != 403 {
			t.Fatalf("a token at / by a role held to /open/**: %d %.300s", r.Status, r.Body)
		}

		_, member := projectMember(t, e, p.ID, "plain-member", "member")
		token(member, "/", "read", "write").Decode(t, &st)
		r := e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "dev", "/restricted"), st.ServiceToken, nil)
		if !leaks(r) {
			t.Fatalf("the member's token does not read what the member may: %.300s", r.Body)
		}
	})
}

// TestRenamesAndDeletesKeepDenials: a member denied a folder, an
// environment or tagged secrets, but allowed to manage folders, environments
// and tags, cannot rename the folder, the environment's slug or the tag (nor
// delete the tag) to reach the secrets, nor delete the folder or the
// environment with secrets it may not delete. The same changes elsewhere
// are made.
func TestRenamesAndDeletesKeepDenials(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "moves"})
		manage := []string{"read", "create", "edit", "delete"}
		base := []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": manage},
			{"subject": "environments", "action": manage},
			{"subject": "tags", "action": manage},
			{"subject": "dynamic-secrets", "action": []string{"read"}},
		}
		role := func(slug string, deny map[string]any) string {
			return customRole(t, e, p.ID, slug, append(base, map[string]any{"subject": "secrets", "action": allSecretActions,
				"inverted": true, "conditions": deny}))
		}
		refused := func(what string, r apptest.Response) {
			t.Helper()
			if r.Status != 403 {
				t.Fatalf("%s: %d %.300s", what, r.Status, r.Body)
			}
		}

		// A folder.
		var f struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "restricted")).Decode(t, &f)
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/restricted", "deeper"))
		putSecret(t, e, e.Token, p.ID, "dev", "/restricted/deeper", "DB", movedValue)
		var other struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "other")).Decode(t, &other)
		putSecret(t, e, e.Token, p.ID, "dev", "/other", "FREE", "free")
		noFolder := role("no-restricted", map[string]any{"secretPath": map[string]any{"$glob": "/restricted/**"}})
		rename := func(id, name string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/folders/"+id, noFolder, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": name})
		}
		refused("renaming the denied folder", rename(f.Folder.ID, "open"))
		if r := e.Do(t, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "dev", "/open/deeper"), noFolder, nil); r.Status == 200 || leaks(r) {
			t.Fatalf("after the refused rename: %d", r.Status)
		}
		refused("deleting the denied folder", e.Do(t, "DELETE", "/api/v1/folders/"+f.Folder.ID, noFolder,
			map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"}))
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "dev", "/restricted/deeper"), e.Token, nil)
		if r := rename(other.Folder.ID, "elsewhere"); r.Status != 200 {
			t.Fatalf("renaming a folder clear of the denial: %d %.300s", r.Status, r.Body)
		}
		e.Must(t, 200, "DELETE", "/api/v1/folders/"+other.Folder.ID, noFolder, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})

		// A dynamic secret's folder: a role kept from the dynamic secrets
		// of /dyn (its secrets rules say nothing of paths) cannot rename or
		// delete the folder either.
		var dyn struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "dyn")).Decode(t, &dyn)
		body := pgDynamic("pg", nil)
		body["projectSlug"], body["environmentSlug"], body["path"] = p.Slug, "dev", "/dyn"
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, body)
		noDyn := customRole(t, e, p.ID, "no-dyn", append(base[:len(base):len(base)],
			map[string]any{"subject": "dynamic-secrets", "action": []string{"read", "lease", "read-root-credential", "create-root-credential",
				"edit-root-credential", "delete-root-credential"}},
			map[string]any{"subject": "dynamic-secrets", "action": []string{"read", "lease", "read-root-credential", "create-root-credential",
				"edit-root-credential", "delete-root-credential"}, "inverted": true,
				"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/dyn/**"}}}))
		refused("renaming the denied dynamic secret's folder", e.Do(t, "PATCH", "/api/v1/folders/"+dyn.Folder.ID, noDyn,
			map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "dyn-open"}))
		refused("deleting the denied dynamic secret's folder", e.Do(t, "DELETE", "/api/v1/folders/"+dyn.Folder.ID, noDyn,
			map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"}))

		// Subfolders: a role kept from managing the folders inside /nest
		// cannot rename /nest to manage them.
		var nest struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "nest")).Decode(t, &nest)
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/nest", "inner"))
		noNest := customRole(t, e, p.ID, "no-nest", append(base[:len(base):len(base)],
			map[string]any{"subject": "secret-folders", "action": manage, "inverted": true,
				"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/nest/**"}}}))
		refused("renaming the folder whose subfolders are denied", e.Do(t, "PATCH", "/api/v1/folders/"+nest.Folder.ID, noNest,
			map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "nest-open"}))

		// An environment.
		putSecret(t, e, e.Token, p.ID, "prod", "/", "DB", movedValue)
		putSecret(t, e, e.Token, p.ID, "staging", "/", "DB", "staging-value")
		envID := map[string]string{}
		for _, env := range p.Environments {
			envID[env.Slug] = env.ID
		}
		noProd := role("no-prod", map[string]any{"environment": "prod"})
		refused("re-slugging the denied environment", e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/environments/"+envID["prod"], noProd,
			map[string]any{"slug": "prod-x"}))
		if r := e.Do(t, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "prod-x", "/"), noProd, nil); r.Status == 200 || leaks(r) {
			t.Fatalf("after the refused re-slug: %d", r.Status)
		}
		refused("deleting the denied environment", e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/environments/"+envID["prod"], noProd, nil))
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "prod", "/"), e.Token, nil)
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/environments/"+envID["staging"], noProd, map[string]any{"slug": "stage"})

		// A tag.
		tag := func(slug string) string {
			var out struct{ Tag struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": slug}).Decode(t, &out)
			return out.Tag.ID
		}
		sensitive, plain := tag("sensitive"), tag("plain")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/TAGGED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": movedValue, "tagIds": []string{sensitive, plain}})
		noTag := role("no-sensitive", map[string]any{"secretTags": map[string]any{"$in": []string{"sensitive"}}})
		q := "/api/v3/secrets/raw/TAGGED?" + secretQ(p.ID, "dev", "/")
		if r := e.Do(t, "GET", q, noTag, nil); leaks(r) {
			t.Fatal("the tag rule does not hide the value")
		}
		refused("renaming the denied tag", e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/tags/"+sensitive, noTag, map[string]any{"slug": "harmless"}))
		refused("deleting the denied tag", e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/tags/"+sensitive, noTag, nil))
		if r := e.Do(t, "GET", q, noTag, nil); leaks(r) {
			t.Fatal("the value shows after the refused tag changes")
		}
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/tags/"+plain, noTag, map[string]any{"slug": "plainer"})
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/tags/"+plain, noTag, nil)
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/tags/"+sensitive, e.Token, map[string]any{"slug": "renamed-by-admin"})
	})
}

// TestConcurrentMovesCannotTogetherLiftDenials: a role denied a secret twice
// over (its environment and its folder) may lift either denial alone, not
// both: one after the other, the second move is refused. Sent side by side,
// each move is checked before the other lands, so without a guard both
// pass and the secret is read. A move is written only if no other move in
// the project committed since its check began (project.MoveGuard): of two
// moves side by side at most one succeeds, the other is refused or 409.
func TestConcurrentMovesCannotTogetherLiftDenials(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "race"})
		var f struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", "restricted")).Decode(t, &f)
		putSecret(t, e, e.Token, p.ID, "prod", "/restricted", "DB", movedValue)
		envID := map[string]string{}
		for _, env := range p.Environments {
			envID[env.Slug] = env.ID
		}
		manage := []string{"read", "create", "edit", "delete"}
		role := customRole(t, e, p.ID, "two-denials", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": manage},
			{"subject": "environments", "action": manage},
			{"subject": "secrets", "action": allSecretActions, "inverted": true, "conditions": map[string]any{"environment": "prod"}},
			{"subject": "secrets", "action": allSecretActions, "inverted": true, "conditions": map[string]any{"secretPath": map[string]any{"$glob": "/restricted/**"}}},
		})
		reslug := func(slug string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/environments/"+envID["prod"], role, map[string]any{"slug": slug})
		}
		rename := func(name string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/folders/"+f.Folder.ID, role, map[string]any{"workspaceId": p.ID, "environment": "prod", "path": "/", "name": name})
		}
		if r := reslug("prodx"); r.Status != 200 {
			t.Fatalf("re-slugging alone: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "PATCH", "/api/v1/folders/"+f.Folder.ID, role, map[string]any{"workspaceId": p.ID, "environment": "prodx",
			"path": "/", "name": "open"}); r.Status != 403 {
			t.Fatalf("the second move, after the first: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/environments/"+envID["prod"], role, map[string]any{"slug": "prod"})
		sideBySide(t, 60, func() apptest.Response { return reslug("prodx") }, func() apptest.Response { return rename("open") },
			func() apptest.Response {
				return e.Do(t, "GET", "/api/v3/secrets/raw/DB?"+secretQ(p.ID, "prodx", "/open"), role, nil)
			},
			func(resluged, renamed bool) {
				if resluged {
					e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/environments/"+envID["prod"], e.Token, map[string]any{"slug": "prod"})
				}
				if renamed {
					e.Must(t, 200, "PATCH", "/api/v1/folders/"+f.Folder.ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "prod", "path": "/", "name": "restricted"})
				}
			})
	})
}

// TestParallelMovesAllLand: moves that do not reveal anything, sent side by
// side (as Terraform applies ten at a time), all land: a guarded move that
// another beat is checked and tried again on the server, and one the
// caller's rules cannot see (an admin deleting tags) is not guarded at all.
func TestParallelMovesAllLand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "parallel"})
		const n = 8
		var ids, tags []string
		for i := range n {
			var f struct{ Folder struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", fmt.Sprintf("f%d", i))).Decode(t, &f)
			ids = append(ids, f.Folder.ID)
			var tag struct{ Tag struct{ ID string } }
			e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": fmt.Sprintf("t%d", i)}).Decode(t, &tag)
			tags = append(tags, tag.Tag.ID)
		}
		// Path rules make this role's renames checked and guarded.
		pathRole := customRole(t, e, p.ID, "path-bound", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secrets", "action": allSecretActions, "inverted": true,
				"conditions": map[string]any{"secretPath": map[string]any{"$glob": "/elsewhere/**"}}},
		})
		status := make([]int, 2*n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				status[i] = e.Do(t, "PATCH", "/api/v1/folders/"+ids[i], pathRole, map[string]any{"workspaceId": p.ID, "environment": "dev",
					"path": "/", "name": fmt.Sprintf("g%d", i)}).Status
			})
			wg.Go(func() {
				status[n+i] = e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/tags/"+tags[i], e.Token, nil).Status
			})
		}
		wg.Wait()
		for i, s := range status {
			if s != 200 {
				t.Errorf("move %d of %d side by side: %d", i, 2*n, s)
			}
		}
	})
}

// TestUncheckedMovesCountToo: a move the caller's rules cannot see is not
// checked, but it still counts itself, so that a checked move beside it is
// checked again. A member denied reading DB_* names and the folder /a makes
// a write-only service token for /a (its rules say nothing of names: its
// renames are not checked) and, side by side, renames DB_X to X with the
// token and /a to /b itself. One after the other the folder rename is
// refused (X in /b would be readable); side by side, were the token's
// rename not counted, the folder rename's check would see DB_X (denied by
// name in /b too) and both would land.
func TestUncheckedMovesCountToo(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "unchecked"})
		var f struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "a")).Decode(t, &f)
		putSecret(t, e, e.Token, p.ID, "dev", "/a", "DB_X", movedValue)
		manage := []string{"read", "create", "edit", "delete"}
		reads := []string{"read", "describeSecret", "readValue"}
		role := customRole(t, e, p.ID, "name-and-path", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": manage},
			{"subject": "secret-imports", "action": manage},
			{"subject": "service-tokens", "action": []string{"read", "create"}},
			{"subject": "secrets", "action": reads, "inverted": true, "conditions": map[string]any{"secretName": map[string]any{"$glob": "DB_*"}}},
			{"subject": "secrets", "action": reads, "inverted": true, "conditions": map[string]any{"secretPath": "/a"}},
		})
		var st struct{ ServiceToken string }
		e.Must(t, 200, "POST", "/api/v2/service-token", role, map[string]any{"name": "w", "workspaceId": p.ID,
			"scopes": []map[string]any{{"environment": "dev", "secretPath": "/a"}}, "permissions": []string{"write"}}).Decode(t, &st)
		renameSecret := func(tok, path, from, to string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v3/secrets/raw/"+from, tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secretPath": path, "newSecretName": to})
		}
		renameFolder := func(tok, to string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/folders/"+f.Folder.ID, tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": to})
		}
		// One after the other: the second move is refused.
		if r := renameSecret(st.ServiceToken, "/a", "DB_X", "X"); r.Status != 200 {
			t.Fatalf("the token's rename alone: %d %s", r.Status, r.Body)
		}
		if r := renameFolder(role, "b"); r.Status != 403 {
			t.Fatalf("the folder rename after it: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/X", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/a", "newSecretName": "DB_X"})
		sideBySide(t, 60, func() apptest.Response { return renameSecret(st.ServiceToken, "/a", "DB_X", "X") },
			func() apptest.Response { return renameFolder(role, "b") },
			func() apptest.Response {
				return e.Do(t, "GET", "/api/v3/secrets/raw/X?"+secretQ(p.ID, "dev", "/b"), role, nil)
			},
			func(secretRenamed, folderRenamed bool) {
				if folderRenamed {
					e.Must(t, 200, "PATCH", "/api/v1/folders/"+f.Folder.ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "a"})
				}
				if secretRenamed {
					e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/X", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/a", "newSecretName": "DB_X"})
				}
			})
	})
}

// TestTagNamedTwice: a tag id given twice in a create or an update is one
// tag on the secret (PostgreSQL answered 500: the second link aborted the
// transaction).
func TestTagNamedTwice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "twice"})
		var tag struct{ Tag struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", e.Token, map[string]any{"slug": "x"}).Decode(t, &tag)
		twice := []string{tag.Tag.ID, tag.Tag.ID}
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/A", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v", "tagIds": twice})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "B", "v")
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/B", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": twice})
		for _, key := range []string{"A", "B"} {
			var out struct {
				Secret struct{ Tags []struct{ Slug string } }
			}
			e.Must(t, 200, "GET", "/api/v3/secrets/raw/"+key+"?"+secretQ(p.ID, "dev", "/"), e.Token, nil).Decode(t, &out)
			if len(out.Secret.Tags) != 1 || out.Secret.Tags[0].Slug != "x" {
				t.Fatalf("%s: tags %+v, want [x]", key, out.Secret.Tags)
			}
		}
	})
}

// sideBySide sends moves a and b at the same time, tries times: they must
// never both land (read then says what they revealed), and each answers
// 200, 403, 404 or 409; undo puts back whichever landed.
func sideBySide(t *testing.T, tries int, a, b, read func() apptest.Response, undo func(aLanded, bLanded bool)) {
	t.Helper()
	for i := range tries {
		var wg sync.WaitGroup
		var ra, rb apptest.Response
		wg.Go(func() { ra = a() })
		wg.Go(func() { rb = b() })
		wg.Wait()
		if ra.Status == 200 && rb.Status == 200 {
			r := read()
			t.Fatalf("try %d: both moves landed; what they moved read %d, value shown %v", i, r.Status, leaks(r))
		}
		for _, r := range []apptest.Response{ra, rb} {
			if r.Status != 200 && r.Status != 403 && r.Status != 404 && r.Status != 409 {
				t.Fatalf("try %d: a move answered %d %s", i, r.Status, r.Body)
			}
		}
		undo(ra.Status == 200, rb.Status == 200)
	}
}

// TestCreatesCannotSlipIntoAMove: a member kept out of /hidden (it may not
// read or delete the secrets, dynamic secrets and imports there) may
// create, rename and delete folders. It makes /hidden, empty, and then
// renames it to /open (or deletes it) while someone else creates something
// in /hidden. One after the other, the rename or the deletion of a folder
// that holds it is refused. Side by side, were creates not serialised with
// moves (project.MoveGuard, Place), a create could resolve /hidden before
// the move and commit after the move's check had found the folder empty:
// what it made would land in /open, where the member reads it, or be
// deleted by one who may not delete it. A folder created under /hidden
// walks its path in its own transaction (making /hidden again if it is
// gone), so only PostgreSQL, where the rename's transaction runs beside it,
// could see it land in /open unguarded.
func TestCreatesCannotSlipIntoAMove(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "slip"})
		hidden := map[string]any{"secretPath": map[string]any{"$glob": "/hidden/**"}}
		role := customRole(t, e, p.ID, "kept-out", []map[string]any{
			{"subject": "secrets", "action": allSecretActions},
			{"subject": "secret-folders", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "secret-imports", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "dynamic-secrets", "action": []string{"read-root-credential", "create-root-credential", "edit-root-credential",
				"delete-root-credential", "lease"}},
			{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue", "delete"}, "inverted": true, "conditions": hidden},
			{"subject": "secret-imports", "action": []string{"read", "delete"}, "inverted": true, "conditions": hidden},
			{"subject": "secret-folders", "action": []string{"read", "edit", "delete"}, "inverted": true, "conditions": hidden},
			{"subject": "dynamic-secrets", "action": []string{"read-root-credential", "delete-root-credential", "lease"}, "inverted": true, "conditions": hidden},
		})
		var f struct{ Folder struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/folders", role, folder(p.ID, "dev", "/", "hidden")).Decode(t, &f)
		scope := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/hidden"}
		dynScope := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/hidden"}
		with := func(m map[string]any, more map[string]any) map[string]any {
			out := maps.Clone(m)
			maps.Copy(out, more)
			return out
		}
		var importID string
		creates := []struct {
			what      string
			undeleted bool // deleting the folder is refused with it inside (an import goes with its folder)
			create    func() apptest.Response
			remove    func()
			read      func(path string) apptest.Response // as the member
		}{
			{"secret", true,
				func() apptest.Response {
					return e.Do(t, "POST", "/api/v3/secrets/raw/K", e.Token, with(scope, map[string]any{"secretValue": movedValue}))
				},
				func() { e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/K", e.Token, scope) },
				func(path string) apptest.Response {
					return e.Do(t, "GET", "/api/v3/secrets/raw/K?"+secretQ(p.ID, "dev", path), role, nil)
				}},
			{"dynamic secret", true,
				func() apptest.Response {
					return e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, with(dynScope, pgDynamic("d", nil)))
				},
				func() { e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/d", e.Token, dynScope) },
				func(path string) apptest.Response {
					return e.Do(t, "GET", "/api/v1/dynamic-secrets/d?projectSlug="+p.Slug+"&environmentSlug=dev&path="+path, role, nil)
				}},
			{"import", false,
				func() apptest.Response {
					r := e.Do(t, "POST", "/api/v1/secret-imports", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
						"path": "/hidden", "import": map[string]any{"environment": "prod", "path": "/"}})
					if r.Status == 200 {
						var out struct{ SecretImport struct{ ID string } }
						r.Decode(t, &out)
						importID = out.SecretImport.ID
					}
					return r
				},
				func() {
					e.Must(t, 200, "DELETE", "/api/v1/secret-imports/"+importID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/hidden"})
				},
				func(path string) apptest.Response {
					return e.Do(t, "GET", "/api/v1/secret-imports?"+url.Values{"workspaceId": {p.ID}, "environment": {"dev"}, "path": {path}}.Encode(), role, nil)
				}},
		}
		rename := func(tok, to string) apptest.Response {
			return e.Do(t, "PATCH", "/api/v1/folders/"+f.Folder.ID, tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": to})
		}
		deleteFolder := func() apptest.Response {
			return e.Do(t, "DELETE", "/api/v1/folders/"+f.Folder.ID, role, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
		}
		for _, c := range creates {
			// One after the other: both moves are refused.
			if r := c.create(); r.Status != 200 {
				t.Fatalf("creating a %s alone: %d %s", c.what, r.Status, r.Body)
			}
			if r := rename(role, "open"); r.Status != 403 {
				t.Fatalf("renaming the folder with a %s in it: %d %s", c.what, r.Status, r.Body)
			}
			if c.undeleted {
				if r := deleteFolder(); r.Status != 403 {
					t.Fatalf("deleting the folder with a %s in it: %d %s", c.what, r.Status, r.Body)
				}
			}
			c.remove()

			sideBySide(t, 30, c.create, func() apptest.Response { return rename(role, "open") },
				func() apptest.Response { return c.read("/open") },
				func(created, renamed bool) {
					if renamed {
						e.Must(t, 200, "PATCH", "/api/v1/folders/"+f.Folder.ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "hidden"})
					}
					if created {
						c.remove()
					}
				})
			if !c.undeleted {
				continue
			}
			sideBySide(t, 30, c.create, deleteFolder,
				func() apptest.Response { return c.read("/hidden") },
				func(created, deleted bool) {
					if deleted {
						e.Must(t, 200, "POST", "/api/v1/folders", role, folder(p.ID, "dev", "/", "hidden")).Decode(t, &f)
					}
					if created {
						c.remove()
					}
				})
		}

		// A folder created under /hidden makes /hidden again if it is gone
		// (the create walks its path in its own transaction): the rename may
		// land beside it, but the new folder must never be in /open.
		for i := range 30 {
			var wg sync.WaitGroup
			var rc, rr apptest.Response
			wg.Go(func() { rc = e.Do(t, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/hidden", "sub")) })
			wg.Go(func() { rr = rename(role, "open") })
			wg.Wait()
			for _, r := range []apptest.Response{rc, rr} {
				if r.Status != 200 && r.Status != 403 && r.Status != 409 {
					t.Fatalf("try %d: %d %s", i, r.Status, r.Body)
				}
			}
			if rr.Status != 200 {
				if rc.Status == 200 {
					e.Must(t, 200, "DELETE", "/api/v1/folders/sub", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/hidden"})
				}
				continue
			}
			var in struct{ Folders []struct{ Name string } }
			e.Must(t, 200, "GET", "/api/v1/folders?"+url.Values{"workspaceId": {p.ID}, "environment": {"dev"}, "path": {"/open"}}.Encode(), e.Token, nil).Decode(t, &in)
			if len(in.Folders) > 0 {
				t.Fatalf("try %d: the create (%d) landed in the renamed folder: %+v", i, rc.Status, in.Folders)
			}
			if rc.Status == 200 {
				e.Must(t, 200, "DELETE", "/api/v1/folders/hidden", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
			}
			e.Must(t, 200, "PATCH", "/api/v1/folders/"+f.Folder.ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "hidden"})
		}
	})
}

// TestTagsPerSecretAreBounded: each tag a write names is looked up and
// linked, so one secret names at most secret.MaxTagsPerSecret (422).
func TestTagsPerSecretAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "many-tags"})
	ids := make([]string, secret.MaxTagsPerSecret+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	}
	r := e.Do(t, "POST", "/api/v3/secrets/raw/A", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v", "tagIds": ids})
	if r.Status != 422 || !strings.Contains(string(r.Body), "at most") {
		t.Fatalf("a secret naming %d tags: %d %.300s", len(ids), r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/api/v3/secrets/raw/A", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v", "tagIds": ids[:2]})
	if r.Status != 404 {
		t.Fatalf("a secret naming two unknown tags: %d %.300s", r.Status, r.Body)
	}
}
