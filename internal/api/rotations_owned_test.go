package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/rotation"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestRotationOwnsItsSecrets, on both engines against PostgreSQL with
// password authentication: passwordRequirements shape the generated
// password (and it logs in, symbols and all); the mapped secrets refuse
// changes of value or name and deletion through v3 raw, v3 batch and v4 with
// Infisical's messages, while their comment stays editable and the rotation
// still writes them; a caller without rotation read permission sees no
// rotation and no message; a failed run's message holds no password;
// deleting with revokeGeneratedCredentials makes both issued credentials
// stop logging in and releases the secrets; deleting without it leaves the
// credentials working and the secrets editable.
func TestRotationOwnsItsSecrets(t *testing.T) {
	pgURL := testsvc.ScramPostgres(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		tg := pgTarget(t, pgURL)
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "owned"})
		connID := createConn(t, e, e.Token, "postgres", "pg", tg.creds)
		reqs := map[string]any{"length": 24, "required": map[string]int{"digits": 3, "lowercase": 2, "uppercase": 2, "symbols": 4}, "allowedSymbols": "!#%*"}
		body := map[string]any{"name": "db", "projectId": p.ID, "connectionId": connID, "environment": "dev", "secretPath": "/", "rotationInterval": 30,
			"parameters":     map[string]any{"username1": tg.users[0], "username2": tg.users[1], "passwordRequirements": reqs},
			"secretsMapping": map[string]string{"username": "DB_USER", "password": "DB_PASS"}}
		bad := map[string]any{"length": 4, "required": map[string]int{"digits": 3, "lowercase": 2, "uppercase": 0, "symbols": 0}}
		body["parameters"].(map[string]any)["passwordRequirements"] = bad
		r := e.Do(t, "POST", "/api/v2/secret-rotations/postgres-credentials", e.Token, body)
		assertError(t, r, 422, "ValidationFailure")
		if !strings.Contains(string(r.Body), "Sum of required characters cannot exceed the total length") {
			t.Fatalf("bad requirements: %s", r.Body)
		}
		body["parameters"].(map[string]any)["passwordRequirements"] = reqs
		var rot struct {
			SecretRotation struct {
				rotOut
				Parameters map[string]any
			}
		}
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/postgres-credentials", e.Token, body).Decode(t, &rot)
		id := rot.SecretRotation.ID
		if pr, _ := rot.SecretRotation.Parameters["passwordRequirements"].(map[string]any); pr == nil || pr["length"] != float64(24) || pr["allowedSymbols"] != "!#%*" {
			t.Fatalf("parameters answered %v", rot.SecretRotation.Parameters)
		}
		want := rotation.PasswordRequirements{Length: 24, Digits: 3, Lowercase: 2, Uppercase: 2, Symbols: 4, AllowedSymbols: "!#%*"}
		u1, _ := secretValue(t, e, p.ID, "DB_USER")
		p1, _ := secretValue(t, e, p.ID, "DB_PASS")
		if !want.Satisfied(p1) || !strings.ContainsAny(p1, "!#%*") {
			t.Fatalf("generated password of length %d does not meet the requirements", len(p1))
		}
		if err := tg.login(u1, p1); err != nil {
			t.Fatalf("the generated password does not log in: %v", err)
		}

		// Nor by moving the folder under it: the environment's slug cannot
		// change and it cannot be deleted while the rotation writes there.
		devID := ""
		for _, env := range p.Environments {
			if env.Slug == "dev" {
				devID = env.ID
			}
		}
		if devID == "" {
			t.Fatalf("no dev environment in %+v", p.Environments)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/workspace/"+p.ID+"/environments/"+devID, e.Token, map[string]any{"slug": "dev2"}), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v1/workspace/"+p.ID+"/environments/"+devID, e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "PATCH", "/api/v1/workspace/"+p.ID+"/environments/"+devID, e.Token, map[string]any{"name": "Development 2"})

		// Hands off: value, name, delete; single, batch, v3 and v4.
		q := map[string]any{"workspaceId": p.ID, "projectId": p.ID, "environment": "dev", "secretPath": "/"}
		with := func(kv ...any) map[string]any {
			m := map[string]any{}
			for k, v := range q {
				m[k] = v
			}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}
		refused := []struct {
			method, path string
			body         map[string]any
			msg          string
		}{
			{"PATCH", "/api/v3/secrets/raw/DB_PASS", with("secretValue", "mine"), "Cannot update rotated secret value"},
			{"PATCH", "/api/v3/secrets/raw/DB_PASS", with("newSecretName", "OTHER"), "Cannot update rotated secret name"},
			{"DELETE", "/api/v3/secrets/raw/DB_PASS", with(), "Cannot delete rotated secrets"},
			{"PATCH", "/api/v4/secrets/DB_USER", with("secretValue", "root"), "Cannot update rotated secret value"},
			{"DELETE", "/api/v4/secrets/DB_USER", with(), "Cannot delete rotated secrets"},
			{"PATCH", "/api/v3/secrets/batch/raw", with("secrets", []map[string]any{{"secretKey": "FREE", "secretValue": "x"}, {"secretKey": "DB_PASS", "secretValue": "mine"}}), "Cannot update rotated secret value"},
			{"PATCH", "/api/v4/secrets/batch", with("mode", "upsert", "secrets", []map[string]any{{"secretKey": "FREE", "secretValue": "x"}, {"secretKey": "DB_USER", "secretValue": "root"}}), "Cannot update rotated secret value"},
			{"DELETE", "/api/v3/secrets/batch/raw", with("secrets", []map[string]any{{"secretKey": "DB_PASS"}}), "Cannot delete rotated secrets"},
			{"DELETE", "/api/v4/secrets/batch", with("secrets", []map[string]any{{"secretKey": "DB_USER"}}), "Cannot delete rotated secrets"},
		}
		for _, c := range refused {
			r := e.Do(t, c.method, c.path, e.Token, c.body)
			if r.Status != 400 || !strings.Contains(string(r.Body), c.msg) {
				t.Fatalf("%s %s: %d %s, want 400 %q", c.method, c.path, r.Status, r.Body, c.msg)
			}
		}
		if u, _ := secretValue(t, e, p.ID, "DB_USER"); u != u1 {
			t.Fatal("a refused write changed DB_USER")
		}
		if pw, v := secretValue(t, e, p.ID, "DB_PASS"); pw != p1 || v != 1 {
			t.Fatalf("a refused write changed DB_PASS (version %d)", v)
		}
		if r := e.Do(t, "GET", "/api/v3/secrets/raw/FREE?workspaceId="+p.ID+"&environment=dev", e.Token, nil); r.Status != 404 {
			t.Fatalf("a refused batch applied its first item: %d", r.Status)
		}
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/DB_PASS", e.Token, with("secretComment", "rotated by db"))

		// The rotation itself still writes.
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/postgres-credentials/"+id+"/rotate-secrets", e.Token, nil)
		u2, _ := secretValue(t, e, p.ID, "DB_USER")
		p2, _ := secretValue(t, e, p.ID, "DB_PASS")
		if u2 != tg.users[1] || p2 == p1 || !want.Satisfied(p2) || tg.login(u2, p2) != nil || tg.login(u1, p1) != nil {
			t.Fatal("rotate-now did not write working credentials over the protected secrets")
		}

		// A failing run: its message says why and holds no password, and
		// a caller who may read secrets but not rotations sees neither.
		tg.drop(tg.users[0])
		r = e.Do(t, "POST", "/api/v2/secret-rotations/postgres-credentials/"+id+"/rotate-secrets", e.Token, nil)
		if r.Status != 400 {
			t.Fatalf("failing rotate-now: %d %s", r.Status, r.Body)
		}
		var got struct{ SecretRotation rotOut }
		e.Must(t, 200, "GET", "/api/v2/secret-rotations/postgres-credentials/"+id, e.Token, nil).Decode(t, &got)
		msg := got.SecretRotation.LastRotationMessage
		if got.SecretRotation.RotationStatus != "failed" || msg == nil || !strings.Contains(*msg, tg.users[0]) {
			t.Fatalf("failed run recorded as %+v", got.SecretRotation)
		}
		reader := customRole(t, e, p.ID, "secrets-reader", []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}}})
		assertError(t, e.Do(t, "GET", "/api/v2/secret-rotations/postgres-credentials/"+id, reader, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v2/secret-rotations/postgres-credentials/rotation-name/db?projectId="+p.ID+"&environment=dev&secretPath=/", reader, nil), 403, "PermissionDenied")
		for _, path := range []string{"/api/v2/secret-rotations?projectId=" + p.ID, "/api/v2/secret-rotations/postgres-credentials?projectId=" + p.ID} {
			if b := e.Must(t, 200, "GET", path, reader, nil).Body; strings.Contains(string(b), id) || strings.Contains(string(b), *msg) {
				t.Fatalf("GET %s shows a rotation to a caller without rotation read permission: %s", path, b)
			}
		}
		tg.recreate(tg.users[0])
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/postgres-credentials/"+id+"/rotate-secrets", e.Token, nil)
		u3, _ := secretValue(t, e, p.ID, "DB_USER")
		p3, _ := secretValue(t, e, p.ID, "DB_PASS")
		if u3 != tg.users[0] || tg.login(u3, p3) != nil {
			t.Fatal("the retried run does not log in")
		}
		// The run that failed had already chosen p3 (its pending password):
		// neither the answer, the rotation nor the audit log ever showed it.
		audit := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=200", e.Token, nil).Body
		for _, where := range []string{string(r.Body), *msg, string(audit)} {
			for _, pw := range []string{p1, p2, p3, tg.creds["password"].(string)} {
				if strings.Contains(where, pw) {
					t.Fatal("a failure message or audit entry holds a password")
				}
			}
		}

		// Delete with revokeGeneratedCredentials: both issued credentials
		// stop logging in; the secrets stay and are ordinary again.
		e.Must(t, 200, "DELETE", "/api/v2/secret-rotations/postgres-credentials/"+id+"?revokeGeneratedCredentials=true", e.Token, nil)
		if tg.login(u3, p3) == nil || tg.login(u2, p2) == nil {
			t.Fatal("revoked credentials still log in")
		}
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/DB_PASS", e.Token, with("secretValue", "mine now"))
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/DB_USER", e.Token, with())

		// Delete without it: the credentials keep working, the secrets are released.
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/postgres-credentials", e.Token, body).Decode(t, &rot)
		u4, _ := secretValue(t, e, p.ID, "DB_USER")
		p4, _ := secretValue(t, e, p.ID, "DB_PASS")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/DB_PASS", e.Token, with()), 400, "BadRequest")
		b := e.Must(t, 200, "DELETE", "/api/v2/secret-rotations/postgres-credentials/"+rot.SecretRotation.ID, e.Token, nil).Body
		if !json.Valid(b) || tg.login(u4, p4) != nil {
			t.Fatal("deleting without revokeGeneratedCredentials broke the credentials")
		}
		e.Must(t, 200, "PATCH", "/api/v4/secrets/DB_USER", e.Token, with("secretValue", "someone"))
		e.Must(t, 200, "DELETE", "/api/v3/secrets/batch/raw", e.Token, with("secrets", []map[string]any{{"secretKey": "DB_PASS"}, {"secretKey": "DB_USER"}}))
	})
}
