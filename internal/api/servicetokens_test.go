package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type serviceTokenOut struct {
	ServiceToken     string
	ServiceTokenData struct {
		ID          string
		Name        string
		ProjectID   string
		Permissions []string
		ExpiresAt   *string
		Scopes      []struct{ Environment, SecretPath string }
	}
}

func createServiceToken(t testing.TB, e *apptest.Env, projectID string, expiresIn any, perms []string, scopes ...[2]string) serviceTokenOut {
	t.Helper()
	sc := make([]any, len(scopes))
	for i, s := range scopes {
		sc[i] = map[string]any{"environment": s[0], "secretPath": s[1]}
	}
	var out serviceTokenOut
	e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "ci", "workspaceId": projectID, "scopes": sc,
		"encryptedKey": "abc", "iv": "def", "tag": "ghi", "expiresIn": expiresIn, "permissions": perms}).Decode(t, &out)
	if !strings.HasPrefix(out.ServiceToken, "st."+out.ServiceTokenData.ID+".") {
		t.Fatalf("service token %q does not carry its id %s", out.ServiceToken, out.ServiceTokenData.ID)
	}
	return out
}

func TestServiceTokenReadsItsScope(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var logs syncBuffer
		e := apptest.Bootstrapped(t, d, apptest.Options{Log: &logs})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "svc"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/app", "db"))
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "other"))
		putSecret(t, e, e.Token, p.ID, "dev", "/app", "APP_KEY", "app-value")
		putSecret(t, e, e.Token, p.ID, "dev", "/app/db", "DB_URL", "db-value")
		putSecret(t, e, e.Token, p.ID, "dev", "/other", "OTHER", "other-value")
		putSecret(t, e, e.Token, p.ID, "prod", "/", "PROD", "prod-value")

		st := createServiceToken(t, e, p.ID, nil, []string{"read"}, [2]string{"dev", "/app"}, [2]string{"staging", "/"})
		tok := st.ServiceToken
		if st.ServiceTokenData.ExpiresAt != nil || len(st.ServiceTokenData.Scopes) != 2 || st.ServiceTokenData.ProjectID != p.ID {
			t.Fatalf("token data %+v", st.ServiceTokenData)
		}

		// What the token can see.
		var self struct {
			ID, LegacyID, Workspace, Name string
			Scopes                        []struct{ Environment, SecretPath string }
			Permissions                   []string
		}
		r := e.Must(t, 200, "GET", "/api/v2/service-token", tok, nil)
		r.Decode(t, &self)
		if self.ID != st.ServiceTokenData.ID || self.Workspace != p.ID || len(self.Scopes) != 2 || self.Permissions[0] != "read" {
			t.Fatalf("GET /api/v2/service-token: %s", r.Body)
		}
		if strings.Contains(string(r.Body), "secretHash") || strings.Contains(string(r.Body), tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Fatalf("token record leaks its secret: %s", r.Body)
		}

		// v3 raw and v4, in scope: values visible, below the scope's path too.
		for _, base := range []string{"/api/v3/secrets/raw", "/api/v4/secrets"} {
			var got struct{ Secrets []secretOut }
			e.Must(t, 200, "GET", base+"?"+secretQ(p.ID, "dev", "/app")+"&recursive=true", tok, nil).Decode(t, &got)
			vals := map[string]string{}
			for _, s := range got.Secrets {
				vals[s.SecretKey] = s.SecretValue
			}
			if vals["APP_KEY"] != "app-value" || vals["DB_URL"] != "db-value" || len(vals) != 2 {
				t.Fatalf("%s list: %v", base, vals)
			}
			var one struct{ Secret secretOut }
			e.Must(t, 200, "GET", base+"/DB_URL?"+secretQ(p.ID, "dev", "/app/db"), tok, nil).Decode(t, &one)
			if one.Secret.SecretValue != "db-value" {
				t.Fatalf("%s get: %+v", base, one.Secret)
			}
			// Out of scope: another path, another environment.
			assertError(t, e.Do(t, "GET", base+"?"+secretQ(p.ID, "dev", "/other"), tok, nil), 403, "PermissionDenied")
			assertError(t, e.Do(t, "GET", base+"/OTHER?"+secretQ(p.ID, "dev", "/other"), tok, nil), 403, "PermissionDenied")
			assertError(t, e.Do(t, "GET", base+"/PROD?"+secretQ(p.ID, "prod", "/"), tok, nil), 403, "PermissionDenied")
			assertError(t, e.Do(t, "GET", base+"?"+secretQ(p.ID, "prod", "/"), tok, nil), 403, "PermissionDenied")
			// A read-only token cannot write.
			assertError(t, e.Do(t, "POST", base+"/NEW", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secretPath": "/app", "secretValue": "x"}), 403, "PermissionDenied")
			assertError(t, e.Do(t, "PATCH", base+"/APP_KEY", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secretPath": "/app", "secretValue": "x"}), 403, "PermissionDenied")
		}
		// Nothing at the organization level.
		if r := e.Do(t, "GET", "/api/v1/projects", tok, nil); r.Status != 403 {
			t.Fatalf("service token lists projects: %d %s", r.Status, r.Body)
		}
		// It cannot mint tokens.
		if r := e.Do(t, "POST", "/api/v2/service-token", tok, map[string]any{"name": "x", "workspaceId": p.ID,
			"scopes": []any{map[string]any{"environment": "dev", "secretPath": "/app"}}, "expiresIn": nil, "permissions": []string{"read"}}); r.Status != 403 {
			t.Fatalf("service token mints a token: %d %s", r.Status, r.Body)
		}

		// The token never reaches the audit log or the server log.
		audit := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil)
		secretPart := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(string(audit.Body), secretPart) || strings.Contains(logs.String(), secretPart) {
			t.Fatal("the service token's secret reached the audit or server log")
		}
		if !strings.Contains(string(audit.Body), `"serviceId":"`+st.ServiceTokenData.ID+`"`) {
			t.Fatalf("reads by the service token are not audited as it: %.2000s", audit.Body)
		}
	})
}

func TestServiceTokenSingleScopeOverridesQuery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "svc"})
		putSecret(t, e, e.Token, p.ID, "staging", "/", "STAGE", "stage-value")
		tok := createServiceToken(t, e, p.ID, nil, []string{"read"}, [2]string{"staging", "/"}).ServiceToken
		// The CLI asks for its default environment; the token's one scope wins.
		var got struct{ Secrets []secretOut }
		e.Must(t, 200, "GET", "/api/v4/secrets?environment=dev", tok, nil).Decode(t, &got)
		if len(got.Secrets) != 1 || got.Secrets[0].SecretValue != "stage-value" {
			t.Fatalf("single-scope list: %+v", got.Secrets)
		}
	})
}

func TestServiceTokenWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "svc"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		tok := createServiceToken(t, e, p.ID, 3600, []string{"read", "write"}, [2]string{"dev", "/app"}).ServiceToken
		body := func(v string) map[string]any {
			return map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/app", "secretValue": v}
		}
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/WRITTEN", tok, body("one"))
		e.Must(t, 200, "PATCH", "/api/v4/secrets/WRITTEN", tok, body("two"))
		var one struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/WRITTEN?"+secretQ(p.ID, "dev", "/app"), e.Token, nil).Decode(t, &one)
		if one.Secret.SecretValue != "two" {
			t.Fatalf("written value %q", one.Secret.SecretValue)
		}
		// Infisical's CLI sends "st.<id>.<secret>.<key>" (it refuses three parts): the key is ignored.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/WRITTEN", tok+".e2ee-key", body("two"))
		e.Must(t, 200, "GET", "/api/v2/service-token", tok+".e2ee-key", nil)
		e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID, tok, nil) // the CLI reads the project's slug
		e.Must(t, 200, "POST", "/api/v4/secrets/GONE", tok, body("x"))
		e.Must(t, 200, "DELETE", "/api/v4/secrets/GONE", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/app"})
		// Writes outside the scope are refused.
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/ROOT", tok, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretPath": "/", "secretValue": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v4/secrets/PROD", tok, map[string]any{"workspaceId": p.ID, "environment": "prod",
			"secretPath": "/", "secretValue": "x"}), 403, "PermissionDenied")
	})
}

func TestServiceTokenExpiredAndDeleted(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "svc"})
		q := "/api/v3/secrets/raw?" + secretQ(p.ID, "dev", "/")
		short := createServiceToken(t, e, p.ID, 1, []string{"read"}, [2]string{"dev", "/"})
		if short.ServiceTokenData.ExpiresAt == nil {
			t.Fatal("expiresIn 1 gave no expiry")
		}
		kept := createServiceToken(t, e, p.ID, nil, []string{"read"}, [2]string{"dev", "/"})
		e.Must(t, 200, "GET", q, short.ServiceToken, nil)
		e.Must(t, 200, "GET", q, kept.ServiceToken, nil)

		// Listed, newest first, without secrets.
		var list struct {
			ServiceTokenData []struct{ ID string }
		}
		r := e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID+"/service-token-data", e.Token, nil)
		r.Decode(t, &list)
		if len(list.ServiceTokenData) != 2 || list.ServiceTokenData[0].ID != kept.ServiceTokenData.ID {
			t.Fatalf("list: %s", r.Body)
		}
		if strings.Contains(string(r.Body), kept.ServiceToken[strings.LastIndexByte(kept.ServiceToken, '.')+1:]) {
			t.Fatal("list leaks a token")
		}

		time.Sleep(1100 * time.Millisecond)
		assertError(t, e.Do(t, "GET", q, short.ServiceToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "GET", "/api/v2/service-token", short.ServiceToken, nil), 401, "UnauthorizedError")

		// A wrong secret with a real id.
		assertError(t, e.Do(t, "GET", q, "st."+kept.ServiceTokenData.ID+"."+strings.Repeat("0", 64), nil), 401, "UnauthorizedError")

		e.Must(t, 200, "DELETE", "/api/v2/service-token/"+kept.ServiceTokenData.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", q, kept.ServiceToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "DELETE", "/api/v2/service-token/"+kept.ServiceTokenData.ID, e.Token, nil), 404, "NotFound")
	})
}

func TestServiceTokenOtherProject(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "bravo"})
		putSecret(t, e, e.Token, b.ID, "dev", "/", "B_SECRET", "bravo-value")
		tok := createServiceToken(t, e, a.ID, nil, []string{"read", "write"}, [2]string{"dev", "/"}, [2]string{"prod", "/"}).ServiceToken
		for _, u := range []string{"/api/v3/secrets/raw?" + secretQ(b.ID, "dev", "/"), "/api/v4/secrets/B_SECRET?" + secretQ(b.ID, "dev", "/"),
			"/api/v1/workspace/" + b.ID, "/api/v1/workspace/" + b.ID + "/service-token-data"} {
			r := e.Do(t, "GET", u, tok, nil)
			if (r.Status != 403 && r.Status != 404) || strings.Contains(string(r.Body), "bravo-value") {
				t.Fatalf("GET %s with project A's token: %d %s", u, r.Status, r.Body)
			}
		}
		r := e.Do(t, "POST", "/api/v3/secrets/raw/INJECTED", tok, map[string]any{"workspaceId": b.ID, "environment": "dev", "secretPath": "/", "secretValue": "x"})
		if r.Status != 403 && r.Status != 404 {
			t.Fatalf("write to project B: %d %s", r.Status, r.Body)
		}
		// A member of A without service-token rights in B cannot delete B's tokens.
		bt := createServiceToken(t, e, b.ID, nil, []string{"read"}, [2]string{"dev", "/"})
		_, member := projectMember(t, e, a.ID, "a-member", "member")
		if r := e.Do(t, "DELETE", "/api/v2/service-token/"+bt.ServiceTokenData.ID, member, nil); r.Status != 403 && r.Status != 404 {
			t.Fatalf("member of A deletes B's token: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(b.ID, "dev", "/"), bt.ServiceToken, nil)
		// Unknown environments and bad bodies are refused.
		if r := e.Do(t, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "x", "workspaceId": a.ID,
			"scopes": []any{map[string]any{"environment": "nope", "secretPath": "/"}}, "expiresIn": nil, "permissions": []string{"read"}}); r.Status != 404 {
			t.Fatalf("unknown environment: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "x", "workspaceId": a.ID,
			"scopes": []any{}, "expiresIn": nil, "permissions": []string{"read"}}); r.Status != 422 {
			t.Fatalf("no scopes: %d %s", r.Status, r.Body)
		}
	})
}

// A service token's last use is noted in memory and written by the node's
// periodic flush (TokenUse), not by the request; neither moves the cache
// counter (each would empty every node's caches).
func TestServiceTokenLastUseIsWrittenByTheFlush(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "used"})
		tok := createServiceToken(t, e, p.ID, nil, []string{"read"}, [2]string{"dev", "/"}).ServiceToken
		lastUsed := func() *string {
			t.Helper()
			var self struct{ LastUsed *string }
			e.Must(t, 200, "GET", "/api/v2/service-token", tok, nil).Decode(t, &self)
			return self.LastUsed
		}
		epoch, err := e.DB.Epoch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		used := time.Now()
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/"), tok, nil)
		if got := lastUsed(); got != nil {
			t.Fatalf("the request wrote the last use (%s) instead of the flush", *got)
		}
		failed, cancel := context.WithCancel(t.Context())
		cancel()
		if err := e.App.TokenUse.Flush(failed); err == nil {
			t.Fatal("a Flush with a cancelled context wrote")
		}
		if got := lastUsed(); got != nil {
			t.Fatalf("the failed Flush wrote %s", *got)
		}
		if err := e.App.TokenUse.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := lastUsed()
		if got == nil {
			t.Fatal("the flush wrote no last use (or the failed one lost it)")
		}
		at, err := time.Parse(time.RFC3339, *got)
		if err != nil || at.Before(used.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("last use %s (%v), want about %s", *got, err, used.UTC().Format(time.RFC3339))
		}
		if now, err := e.DB.Epoch(t.Context()); err != nil || now != epoch {
			t.Fatalf("epoch %d -> %d (%v): a service token's use invalidated caches", epoch, now, err)
		}
	})
}

// A service token answered from a node's cache stops working on that node's
// very next request once another node deletes it, and when it expires.
func TestCachedServiceTokenEndsOnEveryNode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		a, b := twoNodes(t, d)
		p := createProject(t, a, a.Token, map[string]any{"projectName": "st-cache"})
		putSecret(t, a, a.Token, p.ID, "dev", "/", "KEY", "v")
		q := "/api/v3/secrets/raw?" + secretQ(p.ID, "dev", "/")

		st := createServiceToken(t, a, p.ID, nil, []string{"read"}, [2]string{"dev", "/"})
		b.Must(t, 200, "GET", q, st.ServiceToken, nil)
		if n := b.App.ServiceTokens.Cached(); n != 1 {
			t.Fatalf("node b caches %d service tokens after using one", n)
		}
		cached(t, b, func() { b.Must(t, 200, "GET", q, st.ServiceToken, nil) })
		a.Must(t, 200, "DELETE", "/api/v2/service-token/"+st.ServiceTokenData.ID, a.Token, nil)
		if r := b.Do(t, "GET", q, st.ServiceToken, nil); r.Status != 401 {
			t.Fatalf("deleted service token on the other node: %d %s", r.Status, r.Body)
		}

		short := createServiceToken(t, a, p.ID, 2, []string{"read"}, [2]string{"dev", "/"})
		issued := time.Now()
		b.Must(t, 200, "GET", q, short.ServiceToken, nil)
		cached(t, b, func() { b.Must(t, 200, "GET", q, short.ServiceToken, nil) })
		time.Sleep(time.Until(issued.Add(2100 * time.Millisecond)))
		if r := b.Do(t, "GET", q, short.ServiceToken, nil); r.Status != 401 {
			t.Fatalf("expired service token answered from the cache: %d %s", r.Status, r.Body)
		}
	})
}

// TestServiceTokenScopesAreBoundedAsRolesAre: a token's scope patterns
// are held to a role's $glob budget together (before, 100 scopes of 512
// characters each were accepted: ~16 MB compiled for every token loaded).
func TestServiceTokenScopesAreBoundedAsRolesAre(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "svc-bound"})
	long := "/" + strings.Repeat("*/", 255)
	scopes := func(n int, path string) []any {
		sc := make([]any, n)
		for i := range sc {
			sc[i] = map[string]any{"environment": "dev", "secretPath": path}
		}
		return sc
	}
	create := func(sc []any) apptest.Response {
		return e.Do(t, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "ci", "workspaceId": p.ID, "scopes": sc,
			"expiresIn": 3600, "permissions": []string{"read"}})
	}
	assertError(t, create(scopes(5, long)), 422, "ValidationFailure")
	assertError(t, create(scopes(100, long)), 422, "ValidationFailure")
	e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "ci", "workspaceId": p.ID,
		"scopes": scopes(4, long[:510]), "expiresIn": 3600, "permissions": []string{"read"}})
	e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "ci", "workspaceId": p.ID,
		"scopes": scopes(100, "/app/**"), "expiresIn": 3600, "permissions": []string{"read"}})
}
