package api_test

import (
	"bufio"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// volatile are columns that legitimately change on any authenticated request
// (token use counters), and tables that change on failed logins by design.
var (
	volatileColumns = map[string]bool{"identity_access_tokens.num_uses": true, "identity_access_tokens.last_used_at": true,
		"service_tokens.last_used": true}
	// device_logins: anyone may start a device login (a pending row that
	// grants nothing until a signed-in user approves it).
	volatileTables = map[string]bool{"identity_ua_lockouts": true, "user_login_lockouts": true, "goose_db_version": true, "device_logins": true}
)

// digest hashes every row of every table of the database (SQLite or
// PostgreSQL), so "no data changed" is checked on the whole database, audit
// log included.
func digest(t *testing.T, e *apptest.Env) map[string]string {
	t.Helper()
	driver, dsn, list := "sqlite", "file:"+e.DB.Path()+"?mode=ro&_pragma=busy_timeout(5000)",
		`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if e.DB.Dialect() == store.Postgres {
		driver, dsn, list = "pgx", e.DBURL(), `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(list)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string]string{}
	for _, tb := range tables {
		if volatileTables[tb] {
			continue
		}
		q := "SELECT * FROM " + tb
		if tb == "audit_logs" { // denials and failed logins are recorded, as they should be
			q += " WHERE event_type NOT IN ('permission-denied', 'login-identity-universal-auth-failed', 'login-identity-jwt-auth-failed', 'login-identity-oidc-auth-failed', 'user-login-failed', 'user-login-locked')"
		}
		rs, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		var lines []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rs.Scan(ptrs...)
			var b strings.Builder
			for i, c := range cols {
				if !volatileColumns[tb+"."+c] {
					fmt.Fprintf(&b, "%s=%v;", c, vals[i])
				}
			}
			lines = append(lines, b.String())
		}
		rs.Close()
		sort.Strings(lines)
		h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
		out[tb] = fmt.Sprintf("%d rows %s", len(lines), hex.EncodeToString(h[:8]))
	}
	return out
}

func sameDigest(t *testing.T, before, after map[string]string) {
	t.Helper()
	for tb, b := range before {
		if after[tb] != b {
			t.Errorf("table %s changed: %s -> %s", tb, b, after[tb])
		}
	}
}

// checkShape asserts a 4xx in Infisical's error shape.
func checkShape(t *testing.T, what string, r apptest.Response) {
	t.Helper()
	if r.Status < 400 || r.Status > 499 {
		t.Errorf("%s: status %d, want a 4xx\n%.300s", what, r.Status, r.Body)
		return
	}
	var m struct {
		StatusCode int    `json:"statusCode"`
		Message    any    `json:"message"`
		Error      string `json:"error"`
		ReqID      string `json:"reqId"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil || m.StatusCode != r.Status || m.Message == nil || m.Message == "" || m.Error == "" ||
		!strings.HasPrefix(m.ReqID, "req-") {
		t.Errorf("%s: %d body is not Infisical's error shape: %.300s", what, r.Status, r.Body)
	}
}

// hostileWorld is a server with two projects, resources in both, and an
// identity that belongs to project A only.
type hostileWorld struct {
	e                *apptest.Env
	a, b             projectOut
	memberA          string // token of a member of project A only
	expired, revoked string
	ids              map[string]string // path parameter -> a real id in project B (another project's ids)
}

func newHostileWorld(t *testing.T, d store.Dialect) hostileWorld {
	e := apptest.Bootstrapped(t, d)
	w := hostileWorld{e: e, ids: map[string]string{}}
	w.a = createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
	w.b = createProject(t, e, e.Token, map[string]any{"projectName": "bravo"})
	for _, p := range []projectOut{w.a, w.b} {
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "s3cret-"+p.Slug)
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "app"})
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/",
			"name": "otp", "defaultTTL": "1h", "provider": map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"}}})
	}
	var sec struct{ Secret struct{ ID string } }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB_PASSWORD?workspaceId="+w.b.ID+"&environment=dev", e.Token, nil).Decode(t, &sec)
	var tag struct{ Tag struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/projects/"+w.b.ID+"/tags", e.Token, map[string]any{"slug": "bravo-tag", "color": "#fff"}).Decode(t, &tag)
	var envs struct{ Environments []struct{ ID string } }
	e.Must(t, 200, "GET", "/api/v1/projects/"+w.b.ID+"/environments", e.Token, nil).Decode(t, &envs)
	var folders struct{ Folders []struct{ ID string } }
	e.Must(t, 200, "GET", "/api/v1/folders?workspaceId="+w.b.ID+"&environment=dev", e.Token, nil).Decode(t, &folders)
	var role struct{ Role struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/projects/"+w.b.ID+"/roles", e.Token, map[string]any{"slug": "bravo-role", "name": "b"}).Decode(t, &role)
	var ms struct{ IdentityMemberships []struct{ ID string } }
	e.Must(t, 200, "GET", "/api/v2/workspace/"+w.b.ID+"/identity-memberships", e.Token, nil).Decode(t, &ms)
	var imp struct{ SecretImport struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/secret-imports", e.Token, map[string]any{"workspaceId": w.b.ID, "environment": "dev", "path": "/app",
		"import": map[string]any{"environment": "prod", "path": "/"}}).Decode(t, &imp)
	var st struct{ ServiceTokenData struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "bravo-st", "workspaceId": w.b.ID,
		"scopes": []any{map[string]any{"environment": "dev", "secretPath": "/"}}, "expiresIn": nil, "permissions": []string{"read", "write"},
		"encryptedKey": "", "iv": "", "tag": ""}).Decode(t, &st)
	var lease struct{ Lease struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "otp", "projectSlug": w.b.Slug,
		"environmentSlug": "dev", "path": "/"}).Decode(t, &lease)
	kmsKey := createKMSKey(t, e, e.Token, w.b.ID, "bravo-kms", "encrypt-decrypt", "aes-256-gcm")
	sshCA := createSSHCA(t, e, e.Token, w.b.ID, "ED25519")
	sshTpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": sshCA.ID, "name": "bravo-ssh", "allowedUsers": []string{"*"}})
	var sshHost struct{ ID string }
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": w.b.ID, "hostname": "bravo.example.com",
		"userSshCaId": sshCA.ID, "hostSshCaId": sshCA.ID}).Decode(t, &sshHost)
	memberID, memberTok := e.NewIdentity(t, "member-a", "member")
	e.Must(t, 200, "POST", "/api/v1/projects/"+w.a.ID+"/identity-memberships/"+memberID, e.Token, map[string]any{"role": "member"})
	w.memberA = memberTok
	// An expired token: Token Auth with a 1 s TTL.
	expID, _ := e.NewIdentity(t, "short-lived", "member")
	e.Must(t, 200, "PATCH", "/api/v1/auth/token-auth/identities/"+expID, e.Token, map[string]any{"accessTokenTTL": 1, "accessTokenMaxTTL": 1})
	var tok struct{ AccessToken string }
	e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+expID+"/tokens", e.Token, map[string]any{"name": "short"}).Decode(t, &tok)
	w.expired = tok.AccessToken
	// A revoked token.
	_, w.revoked = e.NewIdentity(t, "revoked", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]any{"accessToken": w.revoked})
	w.ids = map[string]string{"projectId": w.b.ID, "workspaceId": w.b.ID, "secretId": sec.Secret.ID, "tagId": tag.Tag.ID,
		"envId": envs.Environments[0].ID, "leaseId": lease.Lease.ID, "slug": w.b.Slug, "name": "otp", "secretName": "DB_PASSWORD",
		"identityId": memberID, "folderId": folders.Folders[0].ID, "roleId": role.Role.ID, "importId": imp.SecretImport.ID, "membershipId": ms.IdentityMemberships[0].ID,
		"projectSlug": w.b.Slug, "roleSlug": "bravo-role", "tagSlug": "bravo-tag", "serviceTokenId": st.ServiceTokenData.ID,
		"keyId": kmsKey.ID, "keyName": kmsKey.Name, "sshCaId": sshCA.ID, "certificateTemplateId": sshTpl.ID, "sshHostId": sshHost.ID}
	time.Sleep(1100 * time.Millisecond) // the short token expires
	return w
}

// fill puts value into every {param} of a pattern's path.
func fill(path, value string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			b.WriteString(path)
			return b.String()
		}
		j := strings.IndexByte(path[i:], '}')
		b.WriteString(path[:i])
		b.WriteString(value)
		path = path[i+j+1:]
	}
}

// browserPage routes are opened by a browser (SSO sign-in) and answer HTML.
func browserPage(path string) bool {
	return path == "/api/v1/sso/oidc/login" || path == "/api/v1/sso/oidc/callback"
}

// public routes answer without a token.
func public(path string) bool {
	if strings.HasPrefix(path, "/api/v1/auth/") && strings.HasSuffix(path, "-auth/login") {
		return true // every machine-identity login method
	}
	if strings.HasPrefix(path, "/api/v1/pki/crl/") {
		return true // a CA's CRL, for relying parties
	}
	if strings.HasPrefix(path, "/api/v1/pki/ca/") && strings.HasSuffix(path, "/certificate/der") {
		return true // a CA's certificate, the CA issuers URL of what it issued
	}
	if strings.HasPrefix(path, "/api/v1/ssh/") && strings.HasSuffix(path, "public-key") {
		return true // SSH CA public keys, served to anyone as Infisical serves them
	}
	if strings.HasPrefix(path, "/api/v1/ssh/ca/") && strings.HasSuffix(path, "/krl") {
		return true // an SSH CA's revocation list, for sshd's RevokedKeys
	}
	if browserPage(path) {
		return true // SSO sign-in: the browser has no token yet
	}
	if path == "/api/v1/invite-org/verify" || path == "/api/v1/invite-org/accept" {
		return true // an invitation's one-time token is in the body
	}
	for _, p := range []string{"/api/status", "/metrics", "/api/v1/admin/bootstrap", "/api/v3/auth/login", "/api/v1/auth/universal-auth/login",
		"/api/v1/auth/token/renew", "/api/v1/auth/token/revoke", "/api/v1/auth/device", "/api/v1/auth/device/token"} {
		if path == p {
			return true
		}
	}
	return false
}

func TestHostileInputEveryEndpoint(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) { hostileSuite(t, newHostileWorld(t, d)) })
}

func hostileSuite(t *testing.T, w hostileWorld) {
	e := w.e
	patterns := e.App.Patterns()
	if len(patterns) < 80 {
		t.Fatalf("only %d routes registered?", len(patterns))
	}
	before := digest(t, e)

	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	wrongTypes := `{"name":123,"projectName":[],"slug":{},"workspaceId":true,"projectId":1.5,"environment":["dev"],"secretPath":{"a":1},` +
		`"secretValue":false,"secretKey":null,"type":7,"ttl":[],"role":{},"accessToken":5,"clientId":[],"clientSecret":{},"email":1,` +
		`"password":[],"provider":"x","inputs":"y","secrets":"z","import":1,"path":2,"dynamicSecretName":[],"projectSlug":{},"environmentSlug":3}`
	bodies := map[string]string{
		"malformed JSON":   `{"name": "x",`,
		"wrong types":      wrongTypes,
		"deeply nested":    deep,
		"invalid UTF-8":    "{\"name\":\"\xff\xfe\xfd\",\"projectName\":\"\xc3\x28\",\"secretValue\":\"\xed\xa0\x80\"}",
		"not an object":    `"just a string"`,
		"huge":             `{"name":"` + strings.Repeat("A", 2<<20) + `"}`,
		"null":             `null`,
		"trailing garbage": `{} {}`,
	}
	pathValues := map[string]string{
		"traversal":       "..%2F..%2F..%2Fetc%2Fpasswd",
		"SQL":             url.PathEscape("x' OR '1'='1'; DROP TABLE secrets;--"),
		"invalid UTF-8":   "%FF%FE",
		"NUL":             "a%00b",
		"very long":       strings.Repeat("x", 8000),
		"another project": "", // filled per parameter from w.ids
	}
	hostileQuery := "?workspaceId=" + url.QueryEscape("' OR 1=1 --") + "&environment=..%2F..&secretPath=%2F..%2F..%2Fetc&projectSlug=%FF&path=" +
		url.QueryEscape("/../../") + "&limit=-1&offset=999999999999999999999"

	cases := 0
	for _, pat := range patterns {
		method, path, _ := strings.Cut(pat, " ")
		if method == "" || path == "" || path == "/metrics" {
			continue
		}
		if path == "/api/v1/admin/bootstrap" {
			continue // already bootstrapped: every call is a 400 by design, checked elsewhere
		}
		hasParams := strings.Contains(path, "{")
		tokens := map[string]string{"admin": e.Token}
		if !public(path) {
			tokens = map[string]string{"admin": e.Token, "member of A": w.memberA}
		}
		// Hostile path parameters (admin token, empty JSON body where one is read).
		if hasParams {
			for name, v := range pathValues {
				p := fill(path, v)
				if name == "another project" {
					p = path
					for k, id := range w.ids {
						p = strings.ReplaceAll(p, "{"+k+"}", url.PathEscape(id))
					}
					p = fill(p, "00000000-0000-0000-0000-000000000000")
					// Identities and their auth methods belong to the organization, not to
					// a project (an org member may read them, as in Infisical).
					orgLevel := strings.Contains(path, "/identities") || strings.HasPrefix(path, "/api/v1/auth/")
					if (method == "GET" || method == "DELETE") && !orgLevel && !public(path) {
						// Another project's resource by a member of A: never served, never changed.
						r := e.Do(t, method, p+"?workspaceId="+w.b.ID+"&projectId="+w.b.ID+"&projectSlug="+w.b.Slug+"&environment=dev&environmentSlug=dev",
							w.memberA, map[string]any{"workspaceId": w.b.ID, "projectSlug": w.b.Slug, "environment": "dev", "environmentSlug": "dev"})
						checkShape(t, pat+" another project's ids as member of A", r)
						cases++
					}
					continue
				}
				var body any
				if method != "GET" {
					body = "{}"
				}
				r := e.Do(t, method, p, e.Token, body)
				if r.Status == 404 && len(r.Body) == 0 {
					t.Errorf("%s %s: empty 404", pat, name)
				}
				checkShape(t, pat+" path "+name, r)
				cases++
			}
		}
		target := fill(path, "00000000-0000-0000-0000-000000000000")
		// Hostile query strings.
		if method == "GET" {
			for who, tok := range tokens {
				r := e.Do(t, method, target+hostileQuery, tok, nil)
				if r.Status == 200 && (public(path) || who == "admin" && !hasParams && strings.HasSuffix(path, "/projects")) {
					continue // a list that ignores unknown filters may answer
				}
				if r.Status/100 == 2 {
					// A 2xx to a hostile query must still not leak project B's secret.
					if strings.Contains(string(r.Body), "s3cret-"+w.b.Slug) {
						t.Errorf("%s hostile query as %s leaked project B's secret", pat, who)
					}
					continue
				}
				if browserPage(path) {
					// The SSO login and callback answer a browser: an HTML page
					// with the error, still a 4xx.
					if r.Status/100 != 4 {
						t.Errorf("%s hostile query as %s: status %d, want a 4xx", pat, who, r.Status)
					}
					cases++
					continue
				}
				checkShape(t, pat+" hostile query as "+who, r)
				cases++
			}
		}
		// Hostile bodies.
		if method != "GET" {
			for name, b := range bodies {
				r := e.Do(t, method, target, e.Token, b)
				checkShape(t, pat+" body "+name, r)
				if name == "huge" && !hasParams && r.Status != 413 {
					t.Errorf("%s huge body: %d, want 413", pat, r.Status)
				}
				cases++
			}
		}
		// Missing, wrong, expired and revoked tokens.
		if !public(path) {
			forged := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZGVudGl0eUlkIjoieCIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl"
			forgedST := "st." + w.ids["serviceTokenId"] + "." + strings.Repeat("0", 64)
			for name, tok := range map[string]string{"missing": "", "garbage": "not-a-token", "forged": forged, "expired": w.expired, "revoked": w.revoked,
				"forged service": forgedST, "garbage service": "st.x"} {
				var body any
				if method != "GET" {
					body = "{}"
				}
				r := e.Do(t, method, target, tok, body)
				// As Infisical: no token or a revoked one is 401; a token whose
				// signature or expiry fails is 403 TokenError.
				switch name {
				case "missing", "revoked":
					if r.Status != 401 {
						t.Errorf("%s with a %s token: %d, want 401", pat, name, r.Status)
					}
				default:
					if r.Status != 401 && !(r.Status == 403 && strings.Contains(string(r.Body), `"TokenError"`)) {
						t.Errorf("%s with a %s token: %d %s, want 401 or 403 TokenError", pat, name, r.Status, r.Body)
					}
				}
				checkShape(t, pat+" "+name+" token", r)
				cases++
			}
		}
	}
	t.Logf("%d routes, %d hostile requests", len(patterns), cases)
	if r := e.Do(t, "GET", "/api/status", "", nil); r.Status != 200 {
		t.Fatalf("server unhealthy after the suite: %d", r.Status)
	}
	sameDigest(t, before, digest(t, e))
	// Project B's secret is intact and readable by the admin only.
	var got struct{ Secret struct{ SecretValue string } }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/DB_PASSWORD?workspaceId="+w.b.ID+"&environment=dev", e.Token, nil).Decode(t, &got)
	if got.Secret.SecretValue != "s3cret-"+w.b.Slug {
		t.Fatalf("project B's secret: %q", got.Secret.SecretValue)
	}
	// The digest does see a change: one legitimate write moves it.
	mid := digest(t, e)
	putSecret(t, e, e.Token, w.a.ID, "dev", "/", "CANARY", "x")
	if after := digest(t, e); after["secrets"] == mid["secrets"] || after["audit_logs"] == mid["audit_logs"] {
		t.Fatal("the digest does not notice a write")
	}
}

// Header injection and oversized headers are refused by the HTTP layer itself,
// without reflecting anything, and the server keeps serving.
func TestHostileHeaders(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	u, _ := url.Parse(e.URL)
	raw := func(req string) string {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(req))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	for name, req := range map[string]string{
		"CR in a header value":      "GET /api/v3/secrets/raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\rX-Injected: 1\r\n\r\n",
		"NUL in a header value":     "GET /api/status HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
		"space in the header name":  "GET /api/status HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
		"two Content-Length values": "POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
		"2 MiB of headers":          "GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n",
	} {
		line := raw(req)
		if !strings.HasPrefix(line, "HTTP/1.1 4") {
			t.Errorf("%s: %q", name, line)
		}
	}
	// A hostile X-Request-Id is not reflected: the server makes its own.
	r := e.Do(t, "GET", "/api/v3/secrets/raw?workspaceId=x", "", nil)
	if id := r.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req-") {
		t.Fatalf("request id %q", id)
	}
	if r := e.Do(t, "GET", "/api/status", "", nil); r.Status != 200 {
		t.Fatalf("unhealthy: %d", r.Status)
	}
}

// NUL characters are valid JSON ("\u0000") but PostgreSQL cannot store them in
// text: no write may answer 5xx for them, on either engine, and what is
// accepted reads back unchanged.
func TestNULInJSONStrings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "nul"})
		for _, c := range []struct {
			method, path string
			body         string
		}{
			{"POST", "/api/v1/projects", `{"projectName":"a\u0000b"}`},
			{"POST", "/api/v3/secrets/raw/NUL_VALUE", `{"workspaceId":"` + p.ID + `","environment":"dev","secretValue":"a\u0000b","secretComment":"c\u0000"}`},
			{"POST", "/api/v3/secrets/raw/A%00B", `{"workspaceId":"` + p.ID + `","environment":"dev","secretValue":"v"}`},
			{"POST", "/api/v1/folders", `{"workspaceId":"` + p.ID + `","environment":"dev","path":"/","name":"a\u0000b"}`},
			{"POST", "/api/v1/identities", `{"name":"a\u0000b","organizationId":"` + e.OrgID + `","role":"member"}`},
			{"POST", "/api/v1/projects/" + p.ID + "/tags", `{"slug":"a\u0000b","color":"#fff"}`},
			{"POST", "/api/v1/projects/" + p.ID + "/environments", `{"name":"a\u0000b","slug":"nul"}`},
		} {
			r := e.Do(t, c.method, c.path, e.Token, c.body)
			if r.Status >= 500 {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			} else if r.Status >= 400 {
				checkShape(t, c.method+" "+c.path, r)
			}
		}
		// A secret value is sealed (bytes), so NUL survives on both engines.
		var got struct {
			Secret struct{ SecretValue, SecretComment string }
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/NUL_VALUE?workspaceId="+p.ID+"&environment=dev", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "a\x00b" || got.Secret.SecretComment != "c\x00" {
			t.Fatalf("value with NUL read back as %q / %q", got.Secret.SecretValue, got.Secret.SecretComment)
		}
	})
}

// TestAnswersAreNotStored: every API answer, a login's token and a
// secret's value included, tells caches not to store it and browsers not
// to sniff it; before, only KMS, PKI and SSH answers with keys did.
func TestAnswersAreNotStored(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	clientID := uaSetup(t, e, map[string]any{})
	secret, _ := newSecret(t, e, map[string]any{})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "no-store"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
	for name, r := range map[string]apptest.Response{
		"login":       e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID, "clientSecret": secret}),
		"bad login":   e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID, "clientSecret": "nope"}),
		"secret read": e.Do(t, "GET", "/api/v3/secrets/raw/K?"+secretQ(p.ID, "dev", "/"), e.Token, nil),
		"status":      e.Do(t, "GET", "/api/status", "", nil),
	} {
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): Cache-Control %q, X-Content-Type-Options %q", name, r.Status, r.Header.Get("Cache-Control"), r.Header.Get("X-Content-Type-Options"))
		}
	}
}
