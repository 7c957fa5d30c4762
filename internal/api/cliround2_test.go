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
