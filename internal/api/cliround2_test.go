package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestSecretDeleteType: the CLI's `secrets delete NAME` sends type personal
// unless told otherwise; an identity gets Infisical's 400, an unknown type a 422.
func TestSecretDeleteType(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "del-type"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		body := func(typ string) map[string]any {
			m := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"}
			if typ != "" {
				m["type"] = typ
			}
			return m
		}
		m := assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("personal")), 400, "BadRequest")
		if m["message"] != "Must be user to delete personal secret" {
			t.Fatalf("message %v", m["message"])
		}
		assertError(t, e.Do(t, "DELETE", "/api/v4/secrets/K", e.Token, body("personal")), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("bogus")), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/K", e.Token, map[string]any{"workspaceId": p.ID,
			"environment": "dev", "secretValue": "x", "type": "bogus"}), 422, "ValidationFailure")
		batch := func(typ string) map[string]any {
			return map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secrets": []map[string]any{{"secretKey": "K", "type": typ}}}
		}
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/batch/raw", e.Token, batch("personal")), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v4/secrets/batch", e.Token, batch("bogus")), 422, "ValidationFailure")
		// Nothing was deleted; shared (explicit or default) still works.
		if got := listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev"); len(got) != 1 {
			t.Fatalf("after refused deletes %+v", got)
		}
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("shared"))
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("")), 404, "NotFound")

		// A user deletes its personal override; the shared secret stays.
		user := userToken(t, e)
		putSecret(t, e, user, p.ID, "dev", "/", "P", "shared")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/P", user, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "mine", "type": "personal"})
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/P", user, body("personal"))
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/P", user, body("personal")), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/P", user, body(""))
	})
}

// TestMissingFolderListsEmpty: Infisical lists a path that has no folder yet as
// empty, and `infisical run --path /new -- cmd` depends on it. The permission
// check still applies, and a missing project or environment is still a 404.
func TestMissingFolderListsEmpty(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "missing-folder"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "ROOT", "r")
		base := "workspaceId=" + p.ID + "&environment=dev"
		for _, u := range []string{
			"/api/v4/secrets?" + base + "&secretPath=/new",
			"/api/v4/secrets?projectId=" + p.ID + "&environment=dev&secretPath=/new/deeper&recursive=true&include_imports=true&expandSecretReferences=true",
			"/api/v3/secrets/raw?" + base + "&secretPath=/new",
			"/api/v3/secrets/raw?" + base + "&secretPath=/new&include_imports=true",
		} {
			r := e.Must(t, 200, "GET", u, e.Token, nil)
			var got struct{ Secrets []secretOut }
			r.Decode(t, &got)
			if got.Secrets == nil || len(got.Secrets) != 0 {
				t.Fatalf("%s: %s", u, r.Body)
			}
		}
		var fl struct{ Folders []any }
		r := e.Must(t, 200, "GET", "/api/v1/folders?"+base+"&path=/new/deeper", e.Token, nil)
		r.Decode(t, &fl)
		if fl.Folders == nil || len(fl.Folders) != 0 {
			t.Fatalf("folders %s", r.Body)
		}
		// Reading one secret in, or writing to, a missing folder is still a 404.
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/ROOT?"+base+"&secretPath=/new", e.Token, nil), 404, "NotFound")

		// Missing environment or project: 404 as before.
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?workspaceId="+p.ID+"&environment=nope&secretPath=/new", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=nope&path=/new", e.Token, nil), 404, "NotFound")
		ghost := "00000000-0000-7000-8000-000000000000"
		r = e.Do(t, "GET", "/api/v4/secrets?workspaceId="+ghost+"&environment=dev&secretPath=/new", e.Token, nil)
		if r.Status != 404 {
			t.Fatalf("missing project: %d %s", r.Status, r.Body)
		}

		// A caller scoped to /app/** may list /app/new but not /other/new.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "app-only", "name": "App only",
			"permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
				{"subject": "secret-folders", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
			}})
		id, tok := e.NewIdentity(t, "app-reader", "member")
		addMember(t, e, p.ID, id, map[string]any{"role": "app-only"})
		e.Must(t, 200, "GET", "/api/v4/secrets?"+base+"&secretPath=/app/new", tok, nil)
		e.Must(t, 200, "GET", "/api/v1/folders?"+base+"&path=/app/new", tok, nil)
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?"+base+"&secretPath=/other/new", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+base+"&secretPath=/other/new&recursive=true", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?"+base+"&path=/other/new", tok, nil), 403, "PermissionDenied")
		// An outsider learns nothing about which paths exist.
		_, out := e.NewIdentity(t, "outsider", "member")
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?"+base+"&secretPath=/new", out, nil), 403, "PermissionDenied")
	})
}
