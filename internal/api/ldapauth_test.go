package api_test

import (
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// directory is a throwaway slapd with users: alice (employeeType ci), bob
// (employeeType human), "star*" (a username with a filter metacharacter) and
// two entries with uid dup.
type directory struct {
	srv *testsvc.LDAP
	pw  map[string]string // uid -> password
}

func newDirectory(t *testing.T, opts ...testsvc.LDAPOption) *directory {
	t.Helper()
	srv := testsvc.StartLDAP(t, opts...)
	c, err := srv.Bind(srv.BindDN, srv.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other := "ou=other," + srv.BaseDN
	ou := ldap.NewAddRequest(other, nil)
	ou.Attribute("objectClass", []string{"organizationalUnit"})
	ou.Attribute("ou", []string{"other"})
	if err := c.Add(ou); err != nil {
		t.Fatal(err)
	}
	d := &directory{srv: srv, pw: map[string]string{}}
	for _, u := range []struct{ uid, typ, parent, cn string }{
		{"alice", "ci", srv.People, "alice"}, {"bob", "human", srv.People, "bob"}, {"star*", "ci", srv.People, "star"},
		{"dup", "ci", srv.People, "dup"}, {"dup", "ci", other, "dup"},
	} {
		pw := "pw-" + u.cn + "-" + testsvc.Suffix()
		d.pw[u.uid] = pw
		r := ldap.NewAddRequest("cn="+u.cn+","+u.parent, nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		r.Attribute("cn", []string{u.cn})
		r.Attribute("sn", []string{u.cn})
		r.Attribute("uid", []string{u.uid})
		r.Attribute("employeeType", []string{u.typ})
		r.Attribute("userPassword", []string{pw})
		if err := c.Add(r); err != nil {
			t.Fatalf("add %s: %v", u.cn, err)
		}
	}
	return d
}

func (d *directory) config(extra map[string]any) map[string]any {
	c := map[string]any{"url": d.srv.URL, "bindDN": d.srv.BindDN, "bindPass": d.srv.BindPass,
		"searchBase": d.srv.BaseDN, "lockoutEnabled": false}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func ldapLogin(t testing.TB, e *apptest.Env, identityID, username, password string) (apptest.Response, loginOut) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/auth/ldap-auth/login", "", map[string]string{"identityId": identityID,
		"username": username, "password": password})
	var out loginOut
	if r.Status == 200 {
		r.Decode(t, &out)
	}
	return r, out
}

type auditOut struct {
	AuditLogs []struct {
		Event struct {
			Type     string
			Metadata map[string]any
		}
	}
}

func TestLDAPAuthLoginChecksAndInjection(t *testing.T) {
	dir := newDirectory(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "ldap-workload", "member")
		base := "/api/v1/auth/ldap-auth/identities/" + id
		attach := e.Must(t, 200, "POST", base, e.Token, dir.config(nil))
		var got struct{ IdentityLdapAuth map[string]any }
		attach.Decode(t, &got)
		if got.IdentityLdapAuth["searchFilter"] != "(uid={{username}})" || got.IdentityLdapAuth["lockoutThreshold"] != 3.0 {
			t.Fatalf("defaults: %v", got.IdentityLdapAuth)
		}

		r, out := ldapLogin(t, e, id, "alice", dir.pw["alice"])
		if r.Status != 200 || out.AccessToken == "" {
			t.Fatalf("valid login: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		// A username with a filter metacharacter is matched literally.
		if r, _ := ldapLogin(t, e, id, "star*", dir.pw["star*"]); r.Status != 200 {
			t.Fatalf("login of star*: %d %s", r.Status, r.Body)
		}

		// An unknown user and a wrong password get the same answer.
		wrong, _ := ldapLogin(t, e, id, "alice", "not-"+dir.pw["alice"])
		unknown, _ := ldapLogin(t, e, id, "nobody", dir.pw["alice"])
		wm, um := assertError(t, wrong, 401, "UnauthorizedError")["message"], assertError(t, unknown, 401, "UnauthorizedError")["message"]
		if wm != um || wm != "Invalid credentials" {
			t.Fatalf("wrong password %q, unknown user %q: want the same answer", wm, um)
		}
		// Injection with alice's password: none reaches alice's (or any
		// other) entry, so none logs in.
		for _, u := range []string{"*", "al*", "a*e", "alice)(uid=*", "*)(uid=alice", "alice)(|(uid=*)", `\`, `alice\`,
			`\2a`, "alice\x00", "(uid=alice)", "*)(objectClass=*"} {
			r, _ := ldapLogin(t, e, id, u, dir.pw["alice"])
			if r.Status != 401 {
				t.Fatalf("username %q: %d %s", u, r.Status, r.Body)
			}
		}
		// More than one entry: refused as an invalid credential.
		r, _ = ldapLogin(t, e, id, "dup", dir.pw["dup"])
		if m := assertError(t, r, 401, "UnauthorizedError")["message"]; m != "Invalid credentials" {
			t.Fatalf("two entries: %v", m)
		}
		// An empty (or blank) password is refused before any bind.
		for _, pw := range []string{"", "   "} {
			r, _ := ldapLogin(t, e, id, "alice", pw)
			assertRefused(t, r, "Missing username or password", "")
		}

		// allowedFields: bob's employeeType is not one of the allowed values.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedFields": []map[string]string{{"key": "employeeType", "value": "ci, deploy"}}})
		if r, _ := ldapLogin(t, e, id, "alice", dir.pw["alice"]); r.Status != 200 {
			t.Fatalf("alice with allowed fields: %d %s", r.Status, r.Body)
		}
		r, _ = ldapLogin(t, e, id, "bob", dir.pw["bob"])
		assertRefused(t, r, "User field 'employeeType' does not match", dir.pw["bob"])

		// Every refusal is audited with its check; no password anywhere.
		var evs auditOut
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-ldap-auth-failed&limit=100", e.Token, nil).Decode(t, &evs)
		seen := map[string]int{}
		for _, l := range evs.AuditLogs {
			seen[fmt.Sprint(l.Event.Metadata["check"])]++
		}
		// Which guess failed, and so which usernames the directory holds,
		// is not in the audit log, which every member reads.
		if seen["credentials"] < 12 || seen["request"] != 2 || seen["allowed-field"] != 1 ||
			seen["password"]+seen["user-not-found"]+seen["multiple-users"] != 0 {
			t.Fatalf("failed-login checks %v", seen)
		}
		all := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil)
		for _, pw := range append([]string{dir.srv.BindPass}, values(dir.pw)...) {
			if strings.Contains(string(all.Body), pw) {
				t.Fatal("a password is in the audit log")
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-ldap-auth", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 3 || !strings.Contains(fmt.Sprint(evs.AuditLogs[0].Event.Metadata["claimMetadata"]), "alice") {
			t.Fatalf("login events %+v", evs.AuditLogs)
		}
	})
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestLDAPAuthBindPassIsNeverShown(t *testing.T) {
	dir := newDirectory(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var logs syncBuffer
		e := apptest.Bootstrapped(t, d, apptest.Options{Log: &logs})
		id, _ := e.NewIdentity(t, "ldap-secret", "member")
		base := "/api/v1/auth/ldap-auth/identities/" + id
		for _, r := range []apptest.Response{
			e.Must(t, 200, "POST", base, e.Token, dir.config(nil)),
			e.Must(t, 200, "GET", base, e.Token, nil),
			// An update without bindPass keeps it; with it, replaces it.
			e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"searchFilter": "(&(objectClass=inetOrgPerson)(uid={{username}}))"}),
			e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"bindPass": dir.srv.BindPass}),
			e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil),
		} {
			if strings.Contains(string(r.Body), dir.srv.BindPass) || strings.Contains(string(r.Body), `"bindPass"`) {
				t.Fatalf("bindPass shown: %s", r.Body)
			}
		}
		if r, _ := ldapLogin(t, e, id, "alice", dir.pw["alice"]); r.Status != 200 {
			t.Fatalf("login after updates: %d %s", r.Status, r.Body)
		}
		// Pointing the bind at another directory needs bindPass again: an
		// editor who cannot read it must not have it sent elsewhere.
		r0 := e.Do(t, "PATCH", base, e.Token, map[string]any{"url": "ldap://127.0.0.2:389"})
		assertError(t, r0, 422, "ValidationFailure")
		if !strings.Contains(string(r0.Body), "bindPass must be given again") {
			t.Fatalf("url change without bindPass: %s", r0.Body)
		}
		// So does a change of the CA: without one an ldap:// bind has no
		// StartTLS, and the password would cross the network in the clear.
		tlsSrv := httptest.NewTLSServer(nil)
		tlsSrv.Close()
		caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}))
		r0 = e.Do(t, "PATCH", base, e.Token, map[string]any{"ldapCaCertificate": caPEM})
		assertError(t, r0, 422, "ValidationFailure")
		if !strings.Contains(string(r0.Body), "bindPass must be given again") {
			t.Fatalf("CA change without bindPass: %s", r0.Body)
		}
		// A wrong bindPass is refused when saved: lockbox binds with it.
		r := e.Do(t, "PATCH", base, e.Token, map[string]any{"bindPass": "wrong"})
		assertError(t, r, 400, "BadRequest")
		if strings.Contains(string(r.Body), "wrong") && !strings.Contains(string(r.Body), "Failed to connect") {
			t.Fatalf("refusal: %s", r.Body)
		}
		// A closed port: the refusal says nothing of what answered, or did
		// not (the server would be a port scanner); the log has it.
		r = e.Do(t, "PATCH", base, e.Token, map[string]any{"url": "ldap://127.0.0.1:1", "bindPass": dir.srv.BindPass})
		assertError(t, r, 400, "BadRequest")
		if b := strings.ToLower(string(r.Body)); strings.Contains(b, "refused") || strings.Contains(b, "127.0.0.1") || strings.Contains(b, "dial") {
			t.Fatalf("closed port: %s", r.Body)
		}
		if !strings.Contains(logs.String(), "connection refused") {
			t.Fatal("the server log lacks the refused configuration's cause")
		}
	})
}

func TestLDAPAuthConfigurationIsValidated(t *testing.T) {
	dir := newDirectory(t)
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "ldap-cfg", "member")
	base := "/api/v1/auth/ldap-auth/identities/" + id
	for name, extra := range map[string]map[string]any{
		"http url":          {"url": "http://127.0.0.1:389"},
		"url with path":     {"url": dir.srv.URL + "/dc=x"},
		"no bindPass":       {"bindPass": ""},
		"bad bindDN":        {"bindDN": "not a dn"},
		"no searchBase":     {"searchBase": ""},
		"filter w/o user":   {"searchFilter": "(uid=alice)"},
		"bad filter":        {"searchFilter": "(uid={{username}}"},
		"bad CA":            {"ldapCaCertificate": "not pem"},
		"threshold":         {"lockoutThreshold": 0},
		"duration":          {"lockoutDurationSeconds": 5},
		"empty field":       {"allowedFields": []map[string]string{{"key": "", "value": "x"}}},
		"link-local server": {"url": "ldap://169.254.169.254"},
	} {
		r := e.Do(t, "POST", base, e.Token, dir.config(extra))
		if r.Status != 400 && r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// StartTLS needs a CA the server's certificate chains to.
	cert := testsvc.NewCert(t)
	tlsDir := newDirectory(t, testsvc.LDAPTLS(cert))
	other := testsvc.NewCert(t)
	r := e.Do(t, "POST", base, e.Token, tlsDir.config(map[string]any{"ldapCaCertificate": other.CAPEM}))
	assertError(t, r, 400, "BadRequest")
	var got struct{ IdentityLdapAuth map[string]any }
	e.Must(t, 200, "POST", base, e.Token, tlsDir.config(map[string]any{"ldapCaCertificate": cert.CAPEM})).Decode(t, &got)
	if got.IdentityLdapAuth["ldapCaCertificate"] != strings.TrimSpace(cert.CAPEM) {
		t.Fatalf("ldapCaCertificate %v", got.IdentityLdapAuth["ldapCaCertificate"])
	}
	if r, _ := ldapLogin(t, e, id, "alice", tlsDir.pw["alice"]); r.Status != 200 {
		t.Fatalf("login over StartTLS: %d %s", r.Status, r.Body)
	}
}

func TestLDAPAuthLockout(t *testing.T) {
	dir := newDirectory(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "ldap-lock", "member")
		e.Must(t, 200, "POST", "/api/v1/auth/ldap-auth/identities/"+id, e.Token, dir.config(map[string]any{
			"lockoutEnabled": true, "lockoutThreshold": 3, "lockoutDurationSeconds": 300, "lockoutCounterResetSeconds": 300}))
		const locked = "This identity auth method is temporarily locked, please try again later"
		// Concurrent guesses: exactly the threshold are answered as wrong.
		const n = 8
		var mu sync.Mutex
		count := map[string]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, _ := ldapLogin(t, e, id, "alice", fmt.Sprintf("guess-%d", i))
				mu.Lock()
				count[fmt.Sprint(r.JSON(t)["message"])]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if count["Invalid credentials"] != 3 || count[locked] != n-3 {
			t.Fatalf("answers %v", count)
		}
		// Locked: the right password too, and case or spaces do not dodge it.
		for _, u := range []string{"alice", " ALICE "} {
			r, _ := ldapLogin(t, e, id, u, dir.pw["alice"])
			if m := assertError(t, r, 401, "UnauthorizedError")["message"]; m != locked {
				t.Fatalf("%q while locked: %v", u, m)
			}
		}
		// Another username is not locked; an unknown one is counted alike.
		if r, _ := ldapLogin(t, e, id, "bob", dir.pw["bob"]); r.Status != 200 {
			t.Fatalf("bob: %d %s", r.Status, r.Body)
		}
		for range 3 {
			ldapLogin(t, e, id, "nobody", "x")
		}
		r, _ := ldapLogin(t, e, id, "nobody", "x")
		if m := assertError(t, r, 401, "UnauthorizedError")["message"]; m != locked {
			t.Fatalf("unknown user after 3 guesses: %v", m)
		}
		var evs auditOut
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-ldap-auth-failed&limit=100", e.Token, nil).Decode(t, &evs)
		seen := map[string]int{}
		for _, l := range evs.AuditLogs {
			seen[fmt.Sprint(l.Event.Metadata["check"])]++
		}
		// alice's three wrong passwords and nobody's three unknown-user
		// guesses, alike in the audit log.
		if seen["lockout"] != n-3+2+1 || seen["credentials"] != 3+3 {
			t.Fatalf("audited checks %v", seen)
		}
		// Turning the lockout off lets the right password in, and back on,
		// the count is still there.
		base := "/api/v1/auth/ldap-auth/identities/" + id
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"lockoutEnabled": false})
		if r, _ := ldapLogin(t, e, id, "alice", dir.pw["alice"]); r.Status != 200 {
			t.Fatalf("lockout off: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"lockoutEnabled": true})
		if r, _ := ldapLogin(t, e, id, "nobody", "x"); r.Status != 401 {
			t.Fatalf("nobody after the lockout is back on: %d %s", r.Status, r.Body)
		}

		// clear-lockouts lifts them (alice's and nobody's), for whoever may
		// edit the identity only; another identity's lockouts stay.
		other, _ := e.NewIdentity(t, "ldap-other", "member")
		e.Must(t, 200, "POST", "/api/v1/auth/ldap-auth/identities/"+other, e.Token, dir.config(map[string]any{"lockoutEnabled": true, "lockoutThreshold": 1}))
		ldapLogin(t, e, other, "alice", "wrong")
		_, memberTok := e.NewIdentity(t, "ldap-reader", "member")
		assertError(t, e.Do(t, "POST", base+"/clear-lockouts", memberTok, nil), 403, "PermissionDenied")
		var cleared struct{ Deleted int }
		e.Must(t, 200, "POST", base+"/clear-lockouts", e.Token, nil).Decode(t, &cleared)
		if cleared.Deleted != 2 {
			t.Fatalf("cleared %d lockouts, want alice's and nobody's", cleared.Deleted)
		}
		if r, _ := ldapLogin(t, e, id, "nobody", "x"); assertError(t, r, 401, "UnauthorizedError")["message"] != "Invalid credentials" {
			t.Fatalf("nobody after clear: %s", r.Body)
		}
		if r, _ := ldapLogin(t, e, other, "alice", dir.pw["alice"]); assertError(t, r, 401, "UnauthorizedError")["message"] != locked {
			t.Fatalf("the other identity's lockout was lifted: %s", r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=clear-identity-ldap-auth-lockouts", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 1 {
			t.Fatalf("clear-lockouts audited %d times", len(evs.AuditLogs))
		}
		// Methods without a lockout have no such route.
		jwtID, _ := e.NewIdentity(t, "jwt-nolock", "member")
		if r := e.Do(t, "POST", "/api/v1/auth/jwt-auth/identities/"+jwtID+"/clear-lockouts", e.Token, nil); r.Status != 404 {
			t.Fatalf("jwt-auth clear-lockouts: %d", r.Status)
		}
	})
}

func TestLDAPAuthUseLimitAndTrustedIPs(t *testing.T) {
	dir := newDirectory(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "ldap-limited", "member")
		base := "/api/v1/auth/ldap-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, dir.config(map[string]any{"accessTokenNumUsesLimit": 2,
			"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}}))
		r, _ := ldapLogin(t, e, id, "alice", dir.pw["alice"])
		assertError(t, r, 403, "ForbiddenError")
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}}})
		r, out := ldapLogin(t, e, id, "alice", dir.pw["alice"])
		if r.Status != 200 {
			t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
		_, live := ldapLogin(t, e, id, "alice", dir.pw["alice"])
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", live.AccessToken, nil), 401, "UnauthorizedError")
		r, _ = ldapLogin(t, e, id, "alice", dir.pw["alice"])
		assertError(t, r, 404, "NotFound")
	})
}
