package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// userToken logs the bootstrap admin user in and selects its organization.
func userToken(t *testing.T, e *apptest.Env) string {
	t.Helper()
	var login struct{ AccessToken string }
	e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": e.UserEmail, "password": e.Password}).Decode(t, &login)
	var sel struct{ Token string }
	e.Must(t, 200, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": e.OrgID}).Decode(t, &sel)
	return sel.Token
}

func TestSecretByIDBatchAndHistory(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "history"})
		s := putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v1")
		var byID struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/id/"+s.ID, e.Token, nil).Decode(t, &byID)
		if byID.Secret.SecretKey != "K" || byID.Secret.SecretPath != "/" || byID.Secret.Environment != "dev" {
			t.Fatalf("by id %+v", byID)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/id/00000000-0000-0000-0000-000000000000", e.Token, nil), 404, "NotFound")

		for _, v := range []string{"v2", "v3"} {
			e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/K", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": v})
		}
		var hist struct{ SecretVersions []secretOut }
		e.Must(t, 200, "GET", "/api/v1/secret/"+s.ID+"/secret-versions?offset=0&limit=10", e.Token, nil).Decode(t, &hist)
		if len(hist.SecretVersions) != 3 || hist.SecretVersions[0].SecretValue != "v3" || hist.SecretVersions[2].SecretValue != "v1" {
			t.Fatalf("history %+v", hist)
		}
		var rb struct{ Secret secretOut }
		e.Must(t, 200, "POST", "/api/v1/secret/"+s.ID+"/secret-versions/1/rollback", e.Token, nil).Decode(t, &rb)
		if rb.Secret.Version != 4 || rb.Secret.SecretValue != "v1" {
			t.Fatalf("rollback %+v", rb)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/secret/"+s.ID+"/secret-versions/99/rollback", e.Token, nil), 404, "NotFound")

		// Batch update: fail on a missing secret, upsert creates it, ignore skips it.
		item := func(k, v string) map[string]any { return map[string]any{"secretKey": k, "secretValue": v} }
		body := func(mode string, items ...map[string]any) map[string]any {
			return map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/", "mode": mode, "secrets": items}
		}
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body("", item("NEW", "n"))), 404, "NotFound")
		var up struct{ Secrets []secretOut }
		e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body("upsert", item("K", "v5"), item("NEW", "n"))).Decode(t, &up)
		if len(up.Secrets) != 2 || up.Secrets[0].Version != 5 || up.Secrets[1].Version != 1 {
			t.Fatalf("upsert %+v", up)
		}
		e.Must(t, 200, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body("ignore", item("GHOST", "g"))).Decode(t, &up)
		if len(up.Secrets) != 0 {
			t.Fatalf("ignore %+v", up)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body("yolo", item("K", "x"))), 422, "ValidationFailure")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secrets": []map[string]any{{"secretKey": "K"}, {"secretKey": "NEW"}}})
		if got := listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev"); len(got) != 0 {
			t.Fatalf("after batch delete %+v", got)
		}
		// Terraform's 404 on a deleted secret read by id.
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/id/"+s.ID, e.Token, nil), 404, "NotFound")
	})
}

func TestPersonalOverrides(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		user := userToken(t, e)
		p := createProject(t, e, user, map[string]any{"projectName": "personal"})
		putSecret(t, e, user, p.ID, "dev", "/", "DB_PASS", "shared-pass")
		personal := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "my-pass", "type": "personal"}
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NO_SHARED", user, personal), 400, "BadRequest")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/DB_PASS", user, personal)
		// An identity cannot have personal secrets (Infisical's answer).
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/DB_PASS", e.Token, personal), 400, "BadRequest")

		val := func(token, extra string) map[string]string {
			m := map[string]string{}
			for _, s := range listSecrets(t, e, token, "workspaceId="+p.ID+"&environment=dev"+extra) {
				m[s.SecretKey+"/"+s.Type] = s.SecretValue
			}
			return m
		}
		if m := val(user, "&includePersonalOverrides=true"); len(m) != 1 || m["DB_PASS/personal"] != "my-pass" {
			t.Fatalf("user with overrides: %v", m)
		}
		if m := val(user, "&includePersonalOverrides=false"); len(m) != 1 || m["DB_PASS/shared"] != "shared-pass" {
			t.Fatalf("user shared only: %v", m)
		}
		if m := val(user, ""); len(m) != 2 {
			t.Fatalf("v3 list shows both: %v", m)
		}
		if m := val(e.Token, ""); len(m) != 1 || m["DB_PASS/shared"] != "shared-pass" {
			t.Fatalf("identity sees %v", m)
		}
		var got struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB_PASS?workspaceId="+p.ID+"&environment=dev&type=personal", user, nil).Decode(t, &got)
		if got.Secret.SecretValue != "my-pass" {
			t.Fatalf("personal get %+v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/DB_PASS?workspaceId="+p.ID+"&environment=dev&type=personal", e.Token, nil), 404, "NotFound")
		// References prefer the reader's personal value.
		putSecret(t, e, user, p.ID, "dev", "/", "URL", "pg://app:${DB_PASS}@db")
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/URL?workspaceId="+p.ID+"&environment=dev&expandSecretReferences=true", user, nil).Decode(t, &got)
		if got.Secret.SecretValue != "pg://app:my-pass@db" {
			t.Fatalf("user expansion %q", got.Secret.SecretValue)
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/URL?workspaceId="+p.ID+"&environment=dev&expandSecretReferences=true", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "pg://app:shared-pass@db" {
			t.Fatalf("identity expansion %q", got.Secret.SecretValue)
		}
		// So do expanding listings, whichever rows they list.
		for _, c := range []struct{ token, extra, want string }{
			{user, "", "pg://app:my-pass@db"},
			{user, "&includePersonalOverrides=true", "pg://app:my-pass@db"},
			{user, "&includePersonalOverrides=false", "pg://app:my-pass@db"},
			{e.Token, "", "pg://app:shared-pass@db"},
		} {
			for _, s := range listSecrets(t, e, c.token, "workspaceId="+p.ID+"&environment=dev&expandSecretReferences=true"+c.extra) {
				if s.SecretKey == "URL" && s.SecretValue != c.want {
					t.Errorf("listing%s: URL = %q, want %q", c.extra, s.SecretValue, c.want)
				}
			}
		}
	})
}
