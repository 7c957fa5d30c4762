package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/api"
	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// doWith sends a request like e.Do with extra headers (X-Forwarded-For, X-Real-IP).
func doWith(t *testing.T, e *apptest.Env, hdr map[string]string, method, path, token string, body any) apptest.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func xff(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }

// loginIPs returns the ipAddress of every Universal Auth login in the audit log, newest first.
func loginIPs(t *testing.T, e *apptest.Env) []string {
	t.Helper()
	var out struct {
		AuditLogs []struct{ IPAddress string }
	}
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-universal-auth", e.Token, nil).Decode(t, &out)
	var ips []string
	for _, l := range out.AuditLogs {
		ips = append(ips, l.IPAddress)
	}
	return ips
}

func TestResolveClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name    string
		peer    string
		trusted []netip.Prefix
		hdr     http.Header
		want    string
	}{
		{"no proxies trusted", "127.0.0.1:5000", nil, http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Real-Ip": {"192.0.2.2"}}, "127.0.0.1"},
		{"untrusted peer", "198.51.100.9:5000", trusted, http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "198.51.100.9"},
		{"trusted peer, no header", "127.0.0.1:5000", trusted, nil, "127.0.0.1"},
		{"trusted peer", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "192.0.2.1"},
		{"rightmost untrusted wins over a spoofed left", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"203.0.113.66, 192.0.2.1, 10.1.1.1"}}, "192.0.2.1"},
		{"several header lines", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"203.0.113.66", "192.0.2.1,10.1.1.1"}}, "192.0.2.1"},
		{"all hops trusted", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"10.2.2.2, 10.1.1.1"}}, "10.2.2.2"},
		{"garbage stops the walk", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"192.0.2.1, nonsense, 10.1.1.1"}}, "10.1.1.1"},
		{"hop with port", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"[2001:db8::1]:443"}}, "2001:db8::1"},
		{"mapped hop", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"::ffff:192.0.2.1"}}, "192.0.2.1"},
		{"x-real-ip is not read by default", "127.0.0.1:5000", trusted, http.Header{"X-Real-Ip": {"192.0.2.5"}}, "127.0.0.1"},
		{"forwarded-for, not x-real-ip, by default", "127.0.0.1:5000", trusted, http.Header{"X-Forwarded-For": {"192.0.2.1"}, "X-Real-Ip": {"192.0.2.5"}}, "192.0.2.1"},
		{"mapped peer", "[::ffff:127.0.0.1]:5000", trusted, http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "192.0.2.1"},
		// A link-local peer's zone is dropped (no prefix contains a zoned
		// address, so every trusted-IP list refused it), and it is never a
		// trusted proxy: its address is anyone's on another link.
		{"zoned peer", "[fe80::1%eth0]:5000", nil, nil, "fe80::1"},
		{"zoned peer is no proxy", "[fe80::1%eth0]:5000", []netip.Prefix{netip.MustParsePrefix("fe80::/10")},
			http.Header{"X-Forwarded-For": {"192.0.2.1"}}, "fe80::1"},
	}
	// With the proxy's header set to X-Real-IP, that one alone is read: a
	// client's own X-Forwarded-For, which such a proxy passes on, is not.
	realIP := []struct {
		name string
		hdr  http.Header
		want string
	}{
		{"x-real-ip", http.Header{"X-Real-Ip": {"192.0.2.5"}}, "192.0.2.5"},
		{"x-real-ip garbage", http.Header{"X-Real-Ip": {"nope"}}, "127.0.0.1"},
		{"a client's forwarded-for is ignored", http.Header{"X-Forwarded-For": {"203.0.113.66"}, "X-Real-Ip": {"192.0.2.5"}}, "192.0.2.5"},
		{"a client's forwarded-for alone is ignored", http.Header{"X-Forwarded-For": {"203.0.113.66"}}, "127.0.0.1"},
	}
	for _, c := range realIP {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr, r.Header = "127.0.0.1:5000", c.hdr
			if got := api.ResolveClientIP(r, trusted, true); got != c.want {
				t.Fatalf("client %q, want %q", got, c.want)
			}
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			r.Header = c.hdr
			if r.Header == nil {
				r.Header = http.Header{}
			}
			if got := api.ResolveClientIP(r, c.trusted, false); got != c.want {
				t.Fatalf("client %q, want %q", got, c.want)
			}
		})
	}
}

func TestSpoofedForwardedForIgnoredWithoutTrustedProxies(t *testing.T) {
	t.Run("rate limit", func(t *testing.T) {
		e := apptest.Start(t, store.SQLite, apptest.Options{AuthRateLimit: 2})
		body := map[string]string{"email": "x@example.com", "password": "p"}
		var statuses []int
		for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			statuses = append(statuses, doWith(t, e, map[string]string{"X-Forwarded-For": ip, "X-Real-IP": ip}, "POST", "/api/v3/auth/login", "", body).Status)
		}
		if statuses[0] == 429 || statuses[1] == 429 || statuses[2] != 429 {
			t.Fatalf("statuses %v: a new X-Forwarded-For got a new bucket", statuses)
		}
	})
	t.Run("trusted IPs and audit", func(t *testing.T) {
		e := apptest.Bootstrapped(t, store.SQLite)
		clientID := uaSetup(t, e, map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		secret, _ := newSecret(t, e, map[string]any{})
		login := map[string]string{"clientId": clientID, "clientSecret": secret}
		assertError(t, doWith(t, e, xff("192.0.2.10"), "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")
		assertError(t, doWith(t, e, map[string]string{"X-Real-IP": "192.0.2.10"}, "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")

		// Access tokens too; and the audit log records the peer.
		e.Must(t, 200, "PATCH", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token,
			map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}},
				"accessTokenTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		r := doWith(t, e, xff("192.0.2.10"), "POST", "/api/v1/auth/universal-auth/login", "", login)
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		var out loginOut
		r.Decode(t, &out)
		assertError(t, doWith(t, e, xff("192.0.2.10"), "GET", "/api/v1/identities/details", out.AccessToken, nil), 403, "ForbiddenError")
		if ips := loginIPs(t, e); len(ips) != 1 || ips[0] != "127.0.0.1" {
			t.Fatalf("audit ipAddress %v, want [127.0.0.1]", ips)
		}
	})
}

func TestForwardedForFromTrustedProxy(t *testing.T) {
	t.Run("rate limit", func(t *testing.T) {
		e := apptest.Start(t, store.SQLite, apptest.Options{AuthRateLimit: 2, TrustedProxies: loopback})
		body := map[string]string{"email": "x@example.com", "password": "p"}
		var statuses []int
		for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "198.51.100.1, 192.0.2.2", "192.0.2.2, 127.0.0.1", "192.0.2.2"} {
			statuses = append(statuses, doWith(t, e, xff(ip), "POST", "/api/v3/auth/login", "", body).Status)
		}
		// Three from 192.0.2.1 (the third limited), then three from 192.0.2.2,
		// via one proxy and via two.
		if statuses[0] == 429 || statuses[1] == 429 || statuses[2] != 429 || statuses[3] == 429 || statuses[4] == 429 || statuses[5] != 429 {
			t.Fatalf("statuses %v, want [_ _ 429 _ _ 429]", statuses)
		}
		// The proxy itself has its own, untouched bucket.
		if s := e.Do(t, "POST", "/api/v3/auth/login", "", body).Status; s == 429 {
			t.Fatal("the proxy's own requests share the clients' bucket")
		}
	})
	t.Run("trusted IPs and audit", func(t *testing.T) {
		var logs syncBuffer
		e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TrustedProxies: loopback, Log: &logs})
		clientID := uaSetup(t, e, map[string]any{
			"clientSecretTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}},
			"accessTokenTrustedIps":  []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		secret, _ := newSecret(t, e, map[string]any{})
		login := map[string]string{"clientId": clientID, "clientSecret": secret}
		assertError(t, doWith(t, e, nil, "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")
		assertError(t, doWith(t, e, xff("192.0.2.10, 198.51.100.1"), "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")
		r := doWith(t, e, xff("198.51.100.1, 192.0.2.10"), "POST", "/api/v1/auth/universal-auth/login", "", login)
		if r.Status != 200 {
			t.Fatalf("login via the proxy: %d %s", r.Status, r.Body)
		}
		var out loginOut
		r.Decode(t, &out)
		// X-Real-IP is not read unless the proxy's header is set to it; the
		// server log says so, once.
		assertError(t, doWith(t, e, map[string]string{"X-Real-IP": "192.0.2.11"}, "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")
		doWith(t, e, map[string]string{"X-Real-IP": "192.0.2.12"}, "GET", "/api/status", "", nil)
		if n := strings.Count(logs.String(), "names its client in X-Real-IP only"); n != 1 {
			t.Fatalf("the warning about X-Real-IP was logged %d times, want once", n)
		}
		if r := doWith(t, e, xff("192.0.2.10"), "GET", "/api/v1/identities/details", out.AccessToken, nil); r.Status != 200 {
			t.Fatalf("access token from a trusted client IP: %d %s", r.Status, r.Body)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 403, "ForbiddenError")
		// Nor is it renewed from where it may not be used; from where it may, it is.
		renew := map[string]string{"accessToken": out.AccessToken}
		assertError(t, e.Do(t, "POST", "/api/v1/auth/token/renew", "", renew), 403, "ForbiddenError")
		assertError(t, doWith(t, e, xff("198.51.100.1"), "POST", "/api/v1/auth/token/renew", "", renew), 403, "ForbiddenError")
		if r := doWith(t, e, xff("192.0.2.10"), "POST", "/api/v1/auth/token/renew", "", renew); r.Status != 200 {
			t.Fatalf("renewal from a trusted client IP: %d %s", r.Status, r.Body)
		}
		if ips := loginIPs(t, e); len(ips) != 1 || ips[0] != "192.0.2.10" {
			t.Fatalf("audit ipAddress %v, want [192.0.2.10]", ips)
		}
	})
	t.Run("x-real-ip", func(t *testing.T) {
		e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TrustedProxies: loopback, ClientIPHeader: "x-real-ip"})
		clientID := uaSetup(t, e, map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "192.0.2.0/24"}}})
		secret, _ := newSecret(t, e, map[string]any{})
		login := map[string]string{"clientId": clientID, "clientSecret": secret}
		if r := doWith(t, e, map[string]string{"X-Real-IP": "192.0.2.11"}, "POST", "/api/v1/auth/universal-auth/login", "", login); r.Status != 200 {
			t.Fatalf("login with X-Real-IP via the proxy: %d %s", r.Status, r.Body)
		}
		// What a client adds in X-Forwarded-For, which such a proxy passes on, is not read.
		assertError(t, doWith(t, e, map[string]string{"X-Real-IP": "198.51.100.1", "X-Forwarded-For": "192.0.2.10"}, "POST", "/api/v1/auth/universal-auth/login", "", login), 403, "ForbiddenError")
		if ips := loginIPs(t, e); len(ips) != 1 || ips[0] != "192.0.2.11" {
			t.Fatalf("audit ipAddress %v, want [192.0.2.11]", ips)
		}
	})
}
