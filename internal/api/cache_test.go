package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// twoNodes starts node a, bootstrapped, and node b on the same database:
// each with its own caches.
func twoNodes(t *testing.T, d store.Dialect) (a, b *apptest.Env) {
	t.Helper()
	a = apptest.Bootstrapped(t, d)
	b = apptest.Start(t, d, apptest.Options{Share: a})
	b.Token, b.OrgID = a.Token, a.OrgID
	return a, b
}

// cached asserts that node e answered at least one lookup from its caches
// while fn ran (so that the freshness checks around it test a cache).
func cached(t *testing.T, e *apptest.Env, fn func()) {
	t.Helper()
	h0, _ := e.App.Cache.Stats()
	fn()
	if h1, _ := e.App.Cache.Stats(); h1 == h0 {
		t.Fatal("node answered nothing from its caches: this check tests no cache")
	}
}

// TestCachesSeeEveryChangeOnTheNextRequestOfEveryNode warms node b's caches
// (tokens, permission sets, listings, single reads), changes something
// through node a, and expects b's very next request to see the change.
func TestCachesSeeEveryChangeOnTheNextRequestOfEveryNode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		a, b := twoNodes(t, d)
		p := createProject(t, a, a.Token, map[string]any{"projectName": "cached"})
		q := secretQ(p.ID, "dev", "/")
		putSecret(t, a, a.Token, p.ID, "dev", "/", "KEY", "v1")
		values := func(e *apptest.Env, tok string) string {
			t.Helper()
			var out []string
			for _, s := range listSecrets(t, e, tok, q) {
				out = append(out, s.SecretKey+"="+s.SecretValue)
			}
			return strings.Join(out, ",")
		}
		warm := func(tok string) {
			t.Helper()
			values(b, tok)
			cached(t, b, func() { values(b, tok) })
		}

		t.Run("secret write, delete and single read", func(t *testing.T) {
			warm(a.Token)
			b.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, a.Token, nil)
			a.Must(t, 200, "PATCH", "/api/v3/secrets/raw/KEY", a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "v2"})
			if got := values(b, a.Token); got != "KEY=v2" {
				t.Fatalf("list after update on the other node: %s", got)
			}
			var one struct{ Secret secretOut }
			b.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, a.Token, nil).Decode(t, &one)
			if one.Secret.SecretValue != "v2" {
				t.Fatalf("get after update on the other node: %+v", one.Secret)
			}
			putSecret(t, a, a.Token, p.ID, "dev", "/", "GONE", "x")
			warm(a.Token)
			a.Must(t, 200, "DELETE", "/api/v3/secrets/raw/GONE", a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev"})
			if got := values(b, a.Token); got != "KEY=v2" {
				t.Fatalf("list after delete on the other node: %s", got)
			}
		})

		t.Run("imports and folders", func(t *testing.T) {
			putSecret(t, a, a.Token, p.ID, "staging", "/", "FROM_STAGING", "s")
			r := b.Must(t, 200, "GET", "/api/v3/secrets/raw?include_imports=true&"+q, a.Token, nil)
			b.Must(t, 200, "GET", "/api/v3/secrets/raw?include_imports=true&"+q, a.Token, nil)
			if strings.Contains(string(r.Body), "FROM_STAGING") {
				t.Fatal("import present before it was added")
			}
			id := addImport(t, a, p.ID, "dev", "/", "staging", "/")
			if r := b.Must(t, 200, "GET", "/api/v3/secrets/raw?include_imports=true&"+q, a.Token, nil); !strings.Contains(string(r.Body), "FROM_STAGING") {
				t.Fatalf("import added on the other node not seen: %s", r.Body)
			}
			a.Must(t, 200, "DELETE", "/api/v1/secret-imports/"+id, a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
			if r := b.Must(t, 200, "GET", "/api/v3/secrets/raw?include_imports=true&"+q, a.Token, nil); strings.Contains(string(r.Body), "FROM_STAGING") {
				t.Fatalf("import deleted on the other node still served: %s", r.Body)
			}
			a.Must(t, 200, "POST", "/api/v1/folders", a.Token, folder(p.ID, "dev", "/", "sub"))
			putSecret(t, a, a.Token, p.ID, "dev", "/sub", "DEEP", "d")
			sq := secretQ(p.ID, "dev", "/sub")
			listSecrets(t, b, a.Token, sq)
			if got := listSecrets(t, b, a.Token, sq); len(got) != 1 {
				t.Fatalf("sub folder %+v", got)
			}
			a.Must(t, 200, "DELETE", "/api/v1/folders/sub", a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
			if got := listSecrets(t, b, a.Token, sq); len(got) != 0 {
				t.Fatalf("deleted folder still listed on the other node: %+v", got)
			}
		})

		t.Run("token revocation", func(t *testing.T) {
			_, tok := projectMember(t, a, p.ID, "revoked", "viewer")
			warm(tok)
			a.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]string{"accessToken": tok})
			assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 401, "UnauthorizedError")
		})

		t.Run("identity deletion", func(t *testing.T) {
			id, tok := projectMember(t, a, p.ID, "deleted", "viewer")
			warm(tok)
			a.Must(t, 200, "DELETE", "/api/v1/identities/"+id, a.Token, nil)
			assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 401, "UnauthorizedError")
		})

		t.Run("membership change and removal", func(t *testing.T) {
			id, tok := projectMember(t, a, p.ID, "demoted", "viewer")
			warm(tok)
			a.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id, a.Token, map[string]any{"roles": []map[string]any{{"role": "no-access"}}})
			assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
			a.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id, a.Token, map[string]any{"roles": []map[string]any{{"role": "viewer"}}})
			warm(tok)
			a.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+id, a.Token, nil)
			if r := b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil); r.Status != 403 && r.Status != 404 {
				t.Fatalf("removed member still reads on the other node: %d %s", r.Status, r.Body)
			}
		})

		t.Run("organization role change", func(t *testing.T) {
			id, tok := a.NewIdentity(t, "org-admin", "admin")
			warm(tok)
			a.Must(t, 200, "PATCH", "/api/v1/identities/"+id, a.Token, map[string]any{"role": "member"})
			if r := b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil); r.Status != 403 {
				t.Fatalf("demoted organization admin still reads the project on the other node: %d %s", r.Status, r.Body)
			}
		})

		t.Run("custom role rules and tags", func(t *testing.T) {
			var role struct{ Role struct{ ID string } }
			a.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", a.Token, map[string]any{"slug": "untagged-only", "name": "u",
				"permissions": []map[string]any{
					{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}},
					{"subject": "secrets", "action": []string{"read", "readValue"}, "inverted": true, "conditions": map[string]any{"secretTags": map[string]any{"$in": []string{"hidden"}}}},
				}}).Decode(t, &role)
			id, tok := a.NewIdentity(t, "tag-reader", "member")
			addMember(t, a, p.ID, id, map[string]any{"role": "untagged-only"})
			warm(tok)
			if got := values(b, tok); got != "KEY=v2" {
				t.Fatalf("before tagging: %s", got)
			}
			var tag struct{ Tag struct{ ID string } }
			a.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/tags", a.Token, map[string]any{"slug": "hidden", "color": "#000"}).Decode(t, &tag)
			a.Must(t, 200, "PATCH", "/api/v3/secrets/raw/KEY", a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": []string{tag.Tag.ID}})
			if got := values(b, tok); strings.Contains(got, "v2") {
				t.Fatalf("value tagged hidden on the other node still served: %s", got)
			}
			a.Must(t, 200, "PATCH", "/api/v3/secrets/raw/KEY", a.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": []string{}})
			warm(tok)
			a.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/roles/"+role.Role.ID, a.Token, map[string]any{"permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"describeSecret"}}}})
			if got := values(b, tok); strings.Contains(got, "v2") {
				t.Fatalf("role narrowed on the other node still reads values: %s", got)
			}
		})
	})
}

// TestCachedPermissionsEndWithATemporaryRole: a permission set holding a
// temporary role is kept only until the role's window closes, with no write
// to move anything.
func TestCachedPermissionsEndWithATemporaryRole(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "temporary"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "v")
		q := secretQ(p.ID, "dev", "/")
		id, tok := e.NewIdentity(t, "contractor", "member")
		// A one-hour window that started just under an hour ago.
		start := time.Now().Add(-time.Hour + 3*time.Second).UTC().Truncate(time.Second)
		addMember(t, e, p.ID, id, map[string]any{"role": "viewer", "isTemporary": true, "temporaryMode": "relative",
			"temporaryRange": "1h", "temporaryAccessStartTime": start.Format(time.RFC3339)})
		end := start.Add(time.Hour)
		if time.Until(end) < time.Second {
			t.Skip("machine too slow to set up the window in time")
		}
		listSecrets(t, e, tok, q)
		cached(t, e, func() { listSecrets(t, e, tok, q) })
		time.Sleep(time.Until(end) + 50*time.Millisecond)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
	})
}

// TestCachedReadsAreAllAudited: a read served from a cache is still audited.
func TestCachedReadsAreAllAudited(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "audited"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "v")
		q := secretQ(p.ID, "dev", "/")
		_, tok := projectMember(t, e, p.ID, "reader", "viewer")
		const n = 5
		cached(t, e, func() {
			for range n {
				listSecrets(t, e, tok, q)
				e.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, tok, nil)
			}
		})
		for typ, want := range map[string]int{"get-secrets": n, "get-secret": n} {
			var out struct{ AuditLogs []map[string]any }
			e.Must(t, 200, "GET", fmt.Sprintf("/api/v1/organization/audit-logs?projectId=%s&eventType=%s&limit=100", p.ID, typ), e.Token, nil).Decode(t, &out)
			if len(out.AuditLogs) != want {
				t.Fatalf("%s: %d audit events for %d reads", typ, len(out.AuditLogs), want)
			}
		}
		metrics := string(e.Must(t, 200, "GET", "/metrics", "", nil).Body)
		if !strings.Contains(metrics, "lockbox_cache_misses_total") || strings.Contains(metrics, "lockbox_cache_hits_total 0\n") ||
			!strings.Contains(metrics, "lockbox_cache_hits_total ") {
			t.Fatalf("metrics do not count the cache hits:\n%.3000s", metrics)
		}
	})
}

// TestReadsLeaveTheCachesWarm: reads, their audit events and logins change
// nothing a cache holds, so they must not move the change counter (each
// would empty every node's caches).
func TestReadsLeaveTheCachesWarm(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "warm"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "KEY", "v")
		clientID := uaSetup(t, e, map[string]any{})
		secret, _ := newSecret(t, e, map[string]any{})
		q := secretQ(p.ID, "dev", "/")
		before, err := e.DB.Epoch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			listSecrets(t, e, e.Token, q)
			e.Must(t, 200, "GET", "/api/v3/secrets/raw/KEY?"+q, e.Token, nil)
			e.Do(t, "GET", "/api/v3/secrets/raw/MISSING?"+q, e.Token, nil)
			login(t, e, clientID, secret)
		}
		if after, _ := e.DB.Epoch(t.Context()); after != before {
			t.Fatalf("reads and logins moved the change counter from %d to %d", before, after)
		}
	})
}

// TestCachedTokenStillExpires: a token answered from the caches (its JWT
// and its row) stops working when its TTL ends, with no write in between.
func TestCachedTokenStillExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "short-lived", "admin")
		e.Must(t, 200, "PATCH", "/api/v1/auth/token-auth/identities/"+id, e.Token, map[string]any{"accessTokenTTL": 2, "accessTokenMaxTTL": 2})
		var tok struct{ AccessToken string }
		e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+id+"/tokens", e.Token, map[string]any{"name": "short"}).Decode(t, &tok)
		issued := time.Now()
		e.Must(t, 200, "GET", "/api/v1/identities/details", tok.AccessToken, nil)
		cached(t, e, func() { e.Must(t, 200, "GET", "/api/v1/identities/details", tok.AccessToken, nil) })
		time.Sleep(time.Until(issued.Add(2100 * time.Millisecond)))
		if r := e.Do(t, "GET", "/api/v1/identities/details", tok.AccessToken, nil); r.Status != 401 && r.Status != 403 {
			t.Fatalf("expired token answered from the cache: %d %s", r.Status, r.Body)
		}
	})
}
