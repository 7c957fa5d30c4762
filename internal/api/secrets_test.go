package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	infisical "github.com/infisical/go-sdk"
	"github.com/infisical/go-sdk/packages/models"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type secretOut struct {
	ID, Workspace, Environment, SecretPath, Type, SecretKey, SecretValue, SecretComment string
	Version                                                                             int
	SecretValueHidden                                                                   bool
}

func putSecret(t *testing.T, e *apptest.Env, token, projectID, env, path, key, value string) secretOut {
	t.Helper()
	var out struct{ Secret secretOut }
	e.Must(t, 200, "POST", "/api/v3/secrets/raw/"+key, token, map[string]any{"workspaceId": projectID, "environment": env,
		"secretPath": path, "secretValue": value}).Decode(t, &out)
	return out.Secret
}

func listSecrets(t *testing.T, e *apptest.Env, token, q string) []secretOut {
	t.Helper()
	var out struct{ Secrets []secretOut }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+q, token, nil).Decode(t, &out)
	return out.Secrets
}

func TestSecretsCRUDVersionsAndReferences(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "secrets"})
		s := putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_HOST", "  db.local  ")
		if s.Version != 1 || s.SecretValue != "db.local" || s.Type != "shared" || s.Workspace != p.ID || s.Environment != "dev" {
			t.Fatalf("created %+v", s)
		}
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_URL", "postgres://${DB_HOST}/app")
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", "db"))
		putSecret(t, e, e.Token, p.ID, "prod", "/db", "PASS", "s3cret")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "CROSS", "${prod.db.PASS}")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/DB_HOST", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "x"}), 400, "BadRequest")

		q := "workspaceId=" + p.ID + "&environment=dev&secretPath=/"
		raw := map[string]string{}
		for _, s := range listSecrets(t, e, e.Token, q) {
			raw[s.SecretKey] = s.SecretValue
		}
		if raw["DB_URL"] != "postgres://${DB_HOST}/app" || len(raw) != 3 {
			t.Fatalf("unexpanded list %v", raw)
		}
		exp := map[string]string{}
		for _, s := range listSecrets(t, e, e.Token, q+"&expandSecretReferences=true") {
			exp[s.SecretKey] = s.SecretValue
		}
		if exp["DB_URL"] != "postgres://db.local/app" || exp["CROSS"] != "s3cret" {
			t.Fatalf("expanded list %v", exp)
		}
		// The CLI's v4 list.
		var v4 struct{ Secrets []secretOut }
		e.Must(t, 200, "GET", "/api/v4/secrets?projectId="+p.ID+"&environment=dev&secretPath=/&includeImports=true&expandSecretReferences=true&includePersonalOverrides=true&recursive=false", e.Token, nil).Decode(t, &v4)
		if len(v4.Secrets) != 3 {
			t.Fatalf("v4 list %+v", v4)
		}

		// Update makes version 2; version=1 still reads the old value.
		var upd struct{ Secret secretOut }
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/DB_HOST", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "db2.local"}).Decode(t, &upd)
		if upd.Secret.Version != 2 || upd.Secret.SecretValue != "db2.local" {
			t.Fatalf("updated %+v", upd.Secret)
		}
		var got struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB_HOST?"+q+"&version=1", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "db.local" || got.Secret.Version != 1 {
			t.Fatalf("version 1 %+v", got.Secret)
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB_URL?"+q+"&expandSecretReferences=true", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "postgres://db2.local/app" {
			t.Fatalf("expanded get %+v", got.Secret)
		}
		// Cycles are a clear 400, not a hang.
		putSecret(t, e, e.Token, p.ID, "dev", "/", "A", "${B}")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "B", "${A}")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/A?"+q+"&expandSecretReferences=true", e.Token, nil), 400, "BadRequest")
		// Rename, then delete (JSON body).
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/B", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "newSecretName": "C"})
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/C", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "newSecretName": "A"}), 400, "BadRequest")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/C", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"})
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/C?"+q, e.Token, nil), 404, "NotFound")
		// Recursive list reaches subfolders with their paths.
		var rec struct{ Secrets []secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=prod&secretPath=/&recursive=true", e.Token, nil).Decode(t, &rec)
		if len(rec.Secrets) != 1 || rec.Secrets[0].SecretPath != "/db" {
			t.Fatalf("recursive %+v", rec)
		}
		var evs struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-secret,update-secret,delete-secret&projectId="+p.ID, e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 9 {
			t.Fatalf("secret audit events %d, want 6 creates + 2 updates + 1 delete", len(evs.AuditLogs))
		}
	})
}

func TestSecretsBadInput(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{MaxBodyBytes: 2 << 20})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "bad-secrets"})
	body := func(kv ...any) map[string]any {
		m := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name, key string
		body      any
		status    int
		errName   string
	}{
		{"space in name", "HAS%20SPACE", body(), 422, "ValidationFailure"},
		{"colon in name", "A:B", body(), 422, "ValidationFailure"},
		{"slash in name", "A%2FB", body(), 422, "ValidationFailure"},
		{"raw slash in name", "A/B", body(), 404, "NotFound"},
		{"path traversal", "K", body("secretPath", "/a/../b"), 422, "ValidationFailure"},
		{"unknown environment", "K", body("environment", "nope"), 404, "NotFound"},
		{"missing folder", "K", body("secretPath", "/does/not/exist"), 404, "NotFound"},
		{"1 MiB value", "K", body("secretValue", strings.Repeat("x", 1<<20)), 422, "ValidationFailure"},
		{"no value", "K", map[string]any{"workspaceId": p.ID, "environment": "dev"}, 422, "ValidationFailure"},
		{"value wrong type", "K", body("secretValue", 42), 422, "ValidationFailure"},
		{"bad type", "K", body("type", "secretive"), 422, "ValidationFailure"},
		{"personal for identity", "K", body("type", "personal"), 400, "BadRequest"},
		{"unknown project", "K", body("workspaceId", "00000000-0000-0000-0000-000000000000"), 404, "NotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/"+c.key, e.Token, c.body), c.status, c.errName)
		})
	}
	assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/K", e.Token, []byte(`{"workspaceId":"`+p.ID+`","environment":"dev","secretValue":"`+"\xff"+`"}`)), 400, "BadRequest")
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&expandSecretReferences=maybe", e.Token, nil), 422, "ValidationFailure")
	if got := listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev"); len(got) != 0 {
		t.Fatalf("bad input stored secrets: %+v", got)
	}
}

func TestSecretPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "b"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(a.ID, "dev", "/", "app"))
		putSecret(t, e, e.Token, a.ID, "dev", "/", "ROOT_KEY", "root")
		putSecret(t, e, e.Token, a.ID, "dev", "/app", "APP_KEY", "app")
		putSecret(t, e, e.Token, a.ID, "prod", "/", "PROD_KEY", "prod")
		putSecret(t, e, e.Token, b.ID, "dev", "/", "B_KEY", "b")

		_, viewer := projectMember(t, e, a.ID, "viewer", "viewer")
		if got := listSecrets(t, e, viewer, "workspaceId="+a.ID+"&environment=dev"); len(got) != 1 || got[0].SecretValue != "root" {
			t.Fatalf("viewer reads %+v", got)
		}
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW", viewer, map[string]any{"workspaceId": a.ID, "environment": "dev", "secretValue": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/ROOT_KEY", viewer, map[string]any{"workspaceId": a.ID, "environment": "dev", "secretValue": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/ROOT_KEY", viewer, map[string]any{"workspaceId": a.ID, "environment": "dev"}), 403, "PermissionDenied")
		// Project A's identity gets nothing of project B.
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId="+b.ID+"&environment=dev", viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/B_KEY?workspaceId="+b.ID+"&environment=dev", viewer, nil), 403, "PermissionDenied")

		// A role limited to /app/** in dev.
		e.Must(t, 200, "POST", "/api/v1/projects/"+a.ID+"/roles", e.Token, map[string]any{"slug": "app-only", "name": "App",
			"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "create", "edit", "delete"},
				"conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}}}})
		_, app := projectMember(t, e, a.ID, "app", "app-only")
		if got := listSecrets(t, e, app, "workspaceId="+a.ID+"&environment=dev&secretPath=/app"); len(got) != 1 || got[0].SecretValue != "app" {
			t.Fatalf("app role reads %+v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId="+a.ID+"&environment=dev&secretPath=/", app, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId="+a.ID+"&environment=prod&secretPath=/", app, nil), 403, "PermissionDenied")
		// A recursive read from / shows only what the role reaches.
		var rec struct{ Secrets []secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+a.ID+"&environment=dev&secretPath=/app&recursive=true", app, nil).Decode(t, &rec)
		if len(rec.Secrets) != 1 {
			t.Fatalf("recursive app read %+v", rec)
		}
		// A reference to a secret the caller may not read is refused.
		putSecret(t, e, e.Token, a.ID, "dev", "/app", "LEAK", "${dev.ROOT_KEY}")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/LEAK?workspaceId="+a.ID+"&environment=dev&secretPath=/app&expandSecretReferences=true", app, nil), 403, "PermissionDenied")
	})
}

func TestSecretsAreEncryptedAtRest(t *testing.T) {
	const planted = "planted-7d1e0c9a-unique-value"
	const comment = "planted-comment-44f2"
	check := func(t *testing.T, e *apptest.Env, dump func() []byte) {
		p := createProject(t, e, e.Token, map[string]any{"projectName": "enc"})
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/PLANTED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": planted, "secretComment": comment})
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/PLANTED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": planted + "-v2"})
		if got := listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev"); got[0].SecretValue != planted+"-v2" {
			t.Fatalf("read back %+v", got)
		}
		b := dump()
		if len(b) < 1000 || !bytes.Contains(b, []byte("PLANTED")) {
			t.Fatalf("dump looks wrong (%d bytes, key present %v)", len(b), bytes.Contains(b, []byte("PLANTED")))
		}
		for _, s := range []string{planted, comment} {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%q found in the database in clear", s)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		e := apptest.Bootstrapped(t, store.SQLite)
		check(t, e, func() []byte {
			var all []byte
			for _, suffix := range []string{"", "-wal"} {
				b, _ := os.ReadFile(e.DB.Path() + suffix)
				all = append(all, b...)
			}
			if len(all) == 0 {
				t.Fatalf("no SQLite file at %s", filepath.Dir(e.DB.Path()))
			}
			return all
		})
	})
	t.Run("postgres", func(t *testing.T) {
		e := apptest.Bootstrapped(t, store.Postgres)
		check(t, e, func() []byte {
			u, err := url.Parse(e.DBURL())
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(context.Background(), "pg_dump", "--data-only", u.String()).Output()
			if err != nil {
				t.Fatalf("pg_dump: %v", err)
			}
			return out
		})
	})
}

func TestGoSDKSecrets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-secrets"})
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		sdk := newSDK(t, e)
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
			t.Fatal(err)
		}
		created, err := sdk.Secrets().Create(infisical.CreateSecretOptions{SecretKey: "API_KEY", ProjectID: p.ID, Environment: "dev", SecretValue: "k1"})
		if err != nil || created.SecretKey != "API_KEY" || created.SecretValue != "k1" {
			t.Fatalf("SDK create: %+v %v", created, err)
		}
		batch, err := sdk.Secrets().Batch().Create(infisical.BatchCreateSecretsOptions{ProjectID: p.ID, Environment: "dev", SecretPath: "/",
			Secrets: []infisical.BatchCreateSecret{{SecretKey: "HOST", SecretValue: "h"}, {SecretKey: "URL", SecretValue: "https://${HOST}/${API_KEY}"}}})
		if err != nil || len(batch) != 2 {
			t.Fatalf("SDK batch: %+v %v", batch, err)
		}
		list, err := sdk.Secrets().List(infisical.ListSecretsOptions{ProjectID: p.ID, Environment: "dev", SecretPath: "/", ExpandSecretReferences: true})
		if err != nil || len(list) != 3 {
			t.Fatalf("SDK list: %+v %v", list, err)
		}
		for _, s := range list {
			if s.SecretKey == "URL" && s.SecretValue != "https://h/k1" {
				t.Fatalf("SDK expanded URL = %q", s.SecretValue)
			}
		}
		// Imports through the SDK: an imported secret appears in the merged list.
		putSecret(t, e, e.Token, p.ID, "staging", "/", "FROM_STAGING", "st")
		addImport(t, e, p.ID, "dev", "/", "staging", "/")
		merged, err := sdk.Secrets().List(infisical.ListSecretsOptions{ProjectID: p.ID, Environment: "dev", IncludeImports: true})
		if err != nil || !slices.ContainsFunc(merged, func(s models.Secret) bool { return s.SecretKey == "FROM_STAGING" && s.SecretValue == "st" }) {
			t.Fatalf("SDK list with imports: %+v %v", merged, err)
		}
		upd, err := sdk.Secrets().Update(infisical.UpdateSecretOptions{SecretKey: "API_KEY", ProjectID: p.ID, Environment: "dev", NewSecretValue: "k2"})
		if err != nil || upd.SecretValue != "k2" || upd.Version != 2 {
			t.Fatalf("SDK update: %+v %v", upd, err)
		}
		got, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "API_KEY", ProjectID: p.ID, Environment: "dev", Version: 1})
		if err != nil || got.SecretValue != "k1" {
			t.Fatalf("SDK retrieve v1: %+v %v", got, err)
		}
		del, err := sdk.Secrets().Delete(infisical.DeleteSecretOptions{SecretKey: "API_KEY", ProjectID: p.ID, Environment: "dev"})
		if err != nil || del.SecretKey != "API_KEY" {
			t.Fatalf("SDK delete: %+v %v", del, err)
		}
		if _, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "API_KEY", ProjectID: p.ID, Environment: "dev"}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("SDK retrieve deleted: %v", err)
		}
	})
}

// TestBatchesAreBounded: one request creates, updates or deletes at most
// secret.MaxBatch secrets; one more is a 422 (a validation failure) and
// nothing is written.
func TestBatchesAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "bounded"})
	items := make([]map[string]any, secret.MaxBatch+1)
	for i := range items {
		items[i] = map[string]any{"secretKey": fmt.Sprintf("K%d", i), "secretValue": ""}
	}
	for _, method := range []string{"POST", "PATCH", "DELETE"} {
		body := map[string]any{"workspaceId": p.ID, "environment": "dev", "secrets": items, "mode": "upsert"}
		r := e.Do(t, method, "/api/v3/secrets/batch/raw", e.Token, body)
		if r.Status != 422 || !strings.Contains(string(r.Body), "At most") {
			t.Fatalf("%s of MaxBatch+1: %d %.300s", method, r.Status, r.Body)
		}
	}
	if got := listSecrets(t, e, e.Token, secretQ(p.ID, "dev", "/")); len(got) != 0 {
		t.Fatalf("%d secrets written by refused batches", len(got))
	}
}

// TestABatchUpdateNamesEachSecretOnce: a batch update naming one secret in
// two items (under its name, another spelling of its path, or a name an
// earlier item renames it to) is a 422 that writes nothing: each item
// stores a whole new version, so 200 items {"secretKey":"BIG"} in a 4 KB
// request stored and answered 200 copies of a large secret.
func TestABatchUpdateNamesEachSecretOnce(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "once"})
	base := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"}
	for _, k := range []string{"BIG", "OTHER"} {
		body := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/", "secretValue": strings.Repeat("v", 1000)}
		if r := e.Do(t, "POST", "/api/v3/secrets/raw/"+k, e.Token, body); r.Status != 200 {
			t.Fatalf("create %s: %d %s", k, r.Status, r.Body)
		}
	}
	version := func() float64 {
		t.Helper()
		r := e.Do(t, "GET", "/api/v3/secrets/raw/BIG?workspaceId="+p.ID+"&environment=dev", e.Token, nil)
		var got struct{ Secret struct{ Version float64 } }
		if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		return got.Secret.Version
	}
	v0 := version()
	for name, items := range map[string][]map[string]any{
		"twice":         {{"secretKey": "BIG"}, {"secretKey": "OTHER"}, {"secretKey": "BIG"}},
		"path spelling": {{"secretKey": "BIG"}, {"secretKey": "BIG", "secretPath": "//"}},
		"renamed":       {{"secretKey": "BIG", "newSecretName": "BIG2"}, {"secretKey": "BIG2", "newSecretName": "BIG3"}},
		"padded rename": {{"secretKey": "BIG", "newSecretName": "BIG2 "}, {"secretKey": "BIG2", "newSecretName": "BIG3 "}},
	} {
		body := map[string]any{"secrets": items}
		for k, v := range base {
			body[k] = v
		}
		r := e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body)
		if r.Status != 422 || !strings.Contains(string(r.Body), "named by an earlier item") {
			t.Fatalf("%s: %d %.300s", name, r.Status, r.Body)
		}
	}
	if v := version(); v != v0 {
		t.Fatalf("refused batches wrote versions: %v -> %v", v0, v)
	}
	// Each secret once is fine; so is a personal override beside its shared secret.
	body := map[string]any{"secrets": []map[string]any{{"secretKey": "BIG", "secretValue": "x"}, {"secretKey": "OTHER", "secretValue": "y"}}}
	for k, v := range base {
		body[k] = v
	}
	if r := e.Do(t, "PATCH", "/api/v3/secrets/batch/raw", e.Token, body); r.Status != 200 || version() != v0+1 {
		t.Fatalf("a batch naming each secret once: %d %.300s", r.Status, r.Body)
	}
}
