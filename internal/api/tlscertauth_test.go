package api_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// certCA is a certificate authority made for one test.
type certCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func nextSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n
}

func newCertCA(t testing.TB, name string) *certCA {
	t.Helper()
	return issueCA(t, name, nil)
}

// issueCA makes a CA, self-signed when parent is nil, else an intermediate.
func issueCA(t testing.TB, name string, parent *certCA) *certCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &certCA{cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// clientCert is a leaf the CA issued: its key pair and its PEM.
type clientCert struct {
	pair tls.Certificate
	pem  string
}

// client issues a leaf with common name cn, valid from nb to na, for usage.
func (ca *certCA) client(t testing.TB, cn string, nb, na time.Time, usage x509.ExtKeyUsage) clientCert {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return clientCert{tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *certCA) validClient(t testing.TB, cn string) clientCert {
	return ca.client(t, cn, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), x509.ExtKeyUsageClientAuth)
}

// certLogin posts a TLS Certificate Auth login with cl and extra headers.
func certLogin(t testing.TB, e *apptest.Env, cl *http.Client, identityID string, header http.Header) (apptest.Response, loginOut) {
	t.Helper()
	if cl == nil {
		cl = http.DefaultClient
	}
	b, _ := json.Marshal(map[string]string{"identityId": identityID})
	req, _ := http.NewRequest("POST", e.URL+"/api/v1/auth/tls-cert-auth/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	var out loginOut
	if r.Status == 200 {
		r.Decode(t, &out)
	}
	return r, out
}

func certPool(cas ...*certCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

func failedLoginChecks(t *testing.T, e *apptest.Env, method string) map[string]int {
	t.Helper()
	var evs struct {
		AuditLogs []struct {
			Event struct{ Metadata map[string]any }
		}
	}
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-"+method+"-failed&limit=100", e.Token, nil).Decode(t, &evs)
	out := map[string]int{}
	for _, l := range evs.AuditLogs {
		out[fmt.Sprint(l.Event.Metadata["check"])]++
	}
	return out
}

// Through lockbox's own TLS listener (VerifyClientCertIfGiven, as lockbox
// server with LOCKBOX_TLS_CLIENT_CA_FILE): the listener trusts two CAs, the
// identity only one, so the method's own chain check is what refuses the
// other CA's certificate.
func TestTLSCertAuthThroughTheListener(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		ca, other := newCertCA(t, "workload CA"), newCertCA(t, "other CA")
		e := apptest.Bootstrapped(t, d, apptest.Options{ClientCAs: certPool(ca, other)})
		if !strings.HasPrefix(e.URL, "https://") {
			t.Fatalf("server URL %s", e.URL)
		}
		id, _ := e.NewIdentity(t, "tls-workload", "member")
		base := "/api/v1/auth/tls-cert-auth/identities/" + id
		var att struct{ IdentityTlsCertAuth map[string]any }
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"caCertificate": ca.pem, "allowedCommonNames": " app-1 , app-2,",
			"accessTokenTTL": 600, "accessTokenMaxTTL": 1200}).Decode(t, &att)
		if got := att.IdentityTlsCertAuth; got["allowedCommonNames"] != "app-1,app-2" || got["caCertificate"] != strings.TrimSpace(ca.pem) ||
			got["identityId"] != id || got["accessTokenTTL"] != 600.0 {
			t.Fatalf("attach answer %v", got)
		}

		good := ca.validClient(t, "app-2")
		r, out := certLogin(t, e, e.TLSClient(good.pair), id, nil)
		if r.Status != 200 || out.ExpiresIn != 600 || out.AccessTokenMaxTTL != 1200 || out.TokenType != "Bearer" {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		if c := jwtClaims(t, out.AccessToken); c["authMethod"] != "tls-cert-auth" || c["identityId"] != id {
			t.Fatalf("token claims %v", c)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)

		refused := []struct {
			name, check string
			cl          *http.Client
		}{
			{"no certificate", "no client certificate", e.Server.Client()},
			{"another CA", "not issued by the provided CA", e.TLSClient(other.validClient(t, "app-1").pair)},
			{"common name", "common name not allowed", e.TLSClient(ca.validClient(t, "intruder").pair)},
		}
		for _, c := range refused {
			r, _ := certLogin(t, e, c.cl, id, nil)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, "")
		}
		// A certificate no listener CA trusts never gets past the handshake.
		stranger := newCertCA(t, "stranger CA")
		if resp, err := e.TLSClient(stranger.validClient(t, "app-1").pair).Get(e.URL + "/api/status"); err == nil {
			resp.Body.Close()
			t.Fatalf("a stranger CA's certificate was accepted: %d", resp.StatusCode)
		}
		checks := failedLoginChecks(t, e, "tls-cert-auth")
		if checks["certificate"] != 1 || checks["chain"] != 1 || checks["common name"] != 1 {
			t.Fatalf("failed-login audit checks %v", checks)
		}

		// An empty list allows any common name; the CA can be replaced.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedCommonNames": nil})
		if r, _ := certLogin(t, e, e.TLSClient(ca.validClient(t, "intruder").pair), id, nil); r.Status != 200 {
			t.Fatalf("any common name: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"caCertificate": other.pem})
		r, _ = certLogin(t, e, e.TLSClient(good.pair), id, nil)
		assertRefused(t, r, "not issued by the provided CA", "")
		if r, _ := certLogin(t, e, e.TLSClient(other.validClient(t, "x").pair), id, nil); r.Status != 200 {
			t.Fatalf("after the CA changed: %d %s", r.Status, r.Body)
		}
	})
}

// Behind a TLS-terminating proxy: the certificate arrives URL-encoded in the
// client-certificate header, believed only from a trusted proxy.
func TestTLSCertAuthFromAProxyHeader(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		root := newCertCA(t, "root CA")
		inter := issueCA(t, "issuing CA", root)
		e := apptest.Bootstrapped(t, d, apptest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
			CertHeader: "x-identity-tls-cert-auth-client-cert"})
		id, _ := e.NewIdentity(t, "proxied", "member")
		e.Must(t, 200, "POST", "/api/v1/auth/tls-cert-auth/identities/"+id, e.Token,
			map[string]any{"caCertificate": root.pem, "allowedCommonNames": "svc"})
		hdr := func(pems ...string) http.Header {
			return http.Header{"X-Identity-Tls-Cert-Auth-Client-Cert": {url.PathEscape(strings.Join(pems, ""))}}
		}
		now := time.Now()
		leaf := inter.validClient(t, "svc")
		// The leaf with its intermediate, as nginx's $ssl_client_escaped_cert
		// sends a chain the proxy verified.
		r, out := certLogin(t, e, nil, id, hdr(leaf.pem, inter.pem))
		if r.Status != 200 {
			t.Fatalf("proxied login: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)

		refused := []struct {
			name, check string
			h           http.Header
		}{
			{"no header", "no client certificate", nil},
			{"leaf without its intermediate", "not issued by the provided CA", hdr(leaf.pem)},
			{"expired", "expired", hdr(inter.client(t, "svc", now.Add(-2*time.Hour), now.Add(-time.Hour), x509.ExtKeyUsageClientAuth).pem, inter.pem)},
			{"not yet valid", "not yet valid", hdr(inter.client(t, "svc", now.Add(time.Hour), now.Add(2*time.Hour), x509.ExtKeyUsageClientAuth).pem, inter.pem)},
			{"server certificate", "not valid for client authentication", hdr(inter.client(t, "svc", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageServerAuth).pem, inter.pem)},
			{"common name", "common name not allowed", hdr(inter.validClient(t, "svc2").pem, inter.pem)},
			{"another CA", "not issued by the provided CA", hdr(newCertCA(t, "evil").validClient(t, "svc").pem)},
			{"not PEM", "not a URL-encoded PEM certificate", http.Header{"X-Identity-Tls-Cert-Auth-Client-Cert": {"hello%zz"}}},
		}
		for _, c := range refused {
			r, _ := certLogin(t, e, nil, id, c.h)
			if r.Status != 401 {
				t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
			}
			assertRefused(t, r, c.check, "")
			if strings.Contains(string(r.Body), "BEGIN") || strings.Contains(string(r.Body), "BEGIN%20") {
				t.Fatalf("%s: the refusal echoes the certificate", c.name)
			}
		}
		checks := failedLoginChecks(t, e, "tls-cert-auth")
		for _, want := range []string{"certificate", "chain", "expiry", "usage", "common name"} {
			if checks[want] == 0 {
				t.Fatalf("no failed login audited for check %s: %v", want, checks)
			}
		}

		// The same header from a peer that is not a trusted proxy is ignored.
		u := apptest.Bootstrapped(t, d, apptest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			CertHeader: "x-identity-tls-cert-auth-client-cert"})
		uid, _ := u.NewIdentity(t, "unproxied", "member")
		u.Must(t, 200, "POST", "/api/v1/auth/tls-cert-auth/identities/"+uid, u.Token, map[string]any{"caCertificate": root.pem})
		r, _ = certLogin(t, u, nil, uid, hdr(leaf.pem, inter.pem))
		assertRefused(t, r, "no client certificate", "")
	})
}

// A server setting names the header; Infisical's default is then ignored.
// With no setting, no header is read at all, even from a trusted proxy: the
// header is opt-in, since anyone sending from a trusted-proxy address could
// present any certificate.
func TestTLSCertAuthHeaderIsASetting(t *testing.T) {
	ca := newCertCA(t, "ca")
	off := apptest.Bootstrapped(t, store.SQLite, apptest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	oid, _ := off.NewIdentity(t, "no-header", "member")
	off.Must(t, 200, "POST", "/api/v1/auth/tls-cert-auth/identities/"+oid, off.Token, map[string]any{"caCertificate": ca.pem})
	ov := url.PathEscape(ca.validClient(t, "any").pem)
	r0, _ := certLogin(t, off, nil, oid, http.Header{"X-Identity-Tls-Cert-Auth-Client-Cert": {ov}})
	assertRefused(t, r0, "no client certificate", "")

	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{CertHeader: "X-SSL-Client-Cert",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	id, _ := e.NewIdentity(t, "hdr", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/tls-cert-auth/identities/"+id, e.Token, map[string]any{"caCertificate": ca.pem})
	v := url.PathEscape(ca.validClient(t, "any").pem)
	r, _ := certLogin(t, e, nil, id, http.Header{"X-Identity-Tls-Cert-Auth-Client-Cert": {v}})
	assertRefused(t, r, "no client certificate", "")
	if r, _ := certLogin(t, e, nil, id, http.Header{"X-Ssl-Client-Cert": {v}}); r.Status != 200 {
		t.Fatalf("configured header: %d %s", r.Status, r.Body)
	}
}

func TestTLSCertAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		ca := newCertCA(t, "ca")
		e := apptest.Bootstrapped(t, d, apptest.Options{ClientCAs: certPool(ca)})
		id, _ := e.NewIdentity(t, "limited", "member")
		base := "/api/v1/auth/tls-cert-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"caCertificate": ca.pem, "accessTokenNumUsesLimit": 2,
			"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}})
		cl := e.TLSClient(ca.validClient(t, "w").pair)
		r, _ := certLogin(t, e, cl, id, nil)
		assertError(t, r, 403, "ForbiddenError")
		if c := failedLoginChecks(t, e, "tls-cert-auth"); c["trusted-ip"] != 1 {
			t.Fatalf("trusted-ip refusal audit %v", c)
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}}})
		r, out := certLogin(t, e, cl, id, nil)
		if r.Status != 200 {
			t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")

		var got struct{ IdentityTlsCertAuth map[string]any }
		e.Must(t, 200, "GET", base, e.Token, nil).Decode(t, &got)
		if got.IdentityTlsCertAuth["accessTokenNumUsesLimit"] != 2.0 || got.IdentityTlsCertAuth["allowedCommonNames"] != nil {
			t.Fatalf("after patch %v", got)
		}
		_, live := certLogin(t, e, cl, id, nil)
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", live.AccessToken, nil), 401, "UnauthorizedError")
		r, _ = certLogin(t, e, cl, id, nil)
		assertError(t, r, 404, "NotFound")
	})
}

func TestTLSCertAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, memberTok := e.NewIdentity(t, "cfg", "member")
	base := "/api/v1/auth/tls-cert-auth/identities/" + id
	ca := newCertCA(t, "ca")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, body := range map[string]map[string]any{
		"no CA":           {},
		"empty CA":        {"caCertificate": " "},
		"not PEM":         {"caCertificate": "hello"},
		"a private key":   {"caCertificate": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))},
		"too long":        {"caCertificate": strings.Repeat(ca.pem, 20)},
		"names not text":  {"caCertificate": ca.pem, "allowedCommonNames": []string{"a"}},
		"text after cert": {"caCertificate": ca.pem + "trailing"},
	} {
		if r := e.Do(t, "POST", base, e.Token, body); r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	assertError(t, e.Do(t, "POST", base, memberTok, map[string]any{"caCertificate": ca.pem}), 403, "PermissionDenied")
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"caCertificate": ca.pem})
	// A login needs no jwt field; an unconfigured identity is a 404.
	other, _ := e.NewIdentity(t, "other", "member")
	r, _ := certLogin(t, e, nil, other, nil)
	assertError(t, r, 404, "NotFound")
}
