package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type sshCAOut struct {
	ID, ProjectID, Status, FriendlyName, KeyAlgorithm, KeySource, PublicKey, CreatedAt, UpdatedAt string
}

type sshTemplateOut struct {
	ID, ProjectID, SshCaID, Status, Name, TTL, MaxTTL string
	AllowedUsers, AllowedHosts                        []string
	AllowUserCertificates, AllowHostCertificates      bool
	AllowCustomKeyIds                                 bool
	Extensions, CriticalOptions                       map[string]string
}

type sshIssuedOut struct {
	SerialNumber, SignedKey, PrivateKey, PublicKey, KeyAlgorithm string
}

func createSSHCA(t testing.TB, e *apptest.Env, token, projectID, alg string) sshCAOut {
	t.Helper()
	var out struct{ CA sshCAOut }
	e.Must(t, 200, "POST", "/api/v1/ssh/ca", token, map[string]any{"projectId": projectID, "friendlyName": "ca " + alg, "keyAlgorithm": alg}).Decode(t, &out)
	return out.CA
}

func createSSHTemplate(t testing.TB, e *apptest.Env, token string, body map[string]any) sshTemplateOut {
	t.Helper()
	b := map[string]any{"allowedUsers": []string{}, "allowedHosts": []string{}, "allowUserCertificates": true,
		"allowHostCertificates": true, "allowCustomKeyIds": false}
	for k, v := range body {
		b[k] = v
	}
	var out sshTemplateOut
	e.Must(t, 200, "POST", "/api/v1/ssh/certificate-templates", token, b).Decode(t, &out)
	return out
}

// newSSHKey returns a fresh ed25519 public key in authorized_keys form.
func newSSHKey(t testing.TB) (string, ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(k)), k
}

// parseSSHCert reads a signedKey and checks that ca signed it.
func parseSSHCert(t testing.TB, signed, caPublicKey string) *ssh.Certificate {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(signed))
	if err != nil {
		t.Fatalf("signedKey %q: %v", signed, err)
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		t.Fatalf("signedKey is a %T", k)
	}
	ca, _, _, _, err := ssh.ParseAuthorizedKey([]byte(caPublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if string(c.SignatureKey.Marshal()) != string(ca.Marshal()) {
		t.Fatalf("certificate signed by %s, want the CA", ssh.FingerprintSHA256(c.SignatureKey))
	}
	return c
}

func TestSSHCAsTemplatesAndCertificates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh"})
		ca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
		if ca.ID == "" || ca.ProjectID != p.ID || ca.Status != "active" || ca.KeyAlgorithm != "ED25519" || ca.KeySource != "internal" ||
			!strings.HasPrefix(ca.PublicKey, "ssh-ed25519 ") || ca.FriendlyName != "ca ED25519" {
			t.Fatalf("created CA %+v", ca)
		}
		// The public key is served without a token; the CA itself is not.
		pk := e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+ca.ID+"/public-key", "", nil)
		if string(pk.Body) != ca.PublicKey+"\n" || !strings.HasPrefix(pk.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("public key %q %q", pk.Body, pk.Header.Get("Content-Type"))
		}
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/"+ca.ID, "", nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/00000000-0000-0000-0000-000000000000/public-key", "", nil), 404, "NotFound")
		var got struct{ CA sshCAOut }
		e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+ca.ID, e.Token, nil).Decode(t, &got)
		if got.CA != ca {
			t.Fatalf("get %+v, want %+v", got.CA, ca)
		}
		for _, u := range []string{"/api/v1/projects/" + p.ID + "/ssh-cas", "/api/v2/workspace/" + p.ID + "/ssh-cas"} {
			var list struct{ CAs []sshCAOut }
			e.Must(t, 200, "GET", u, e.Token, nil).Decode(t, &list)
			if len(list.CAs) != 1 || list.CAs[0].ID != ca.ID {
				t.Fatalf("%s: %+v", u, list)
			}
		}
		for alg, want := range map[string]string{"EC_prime256v1": "ecdsa-sha2-nistp256 ", "EC_secp384r1": "ecdsa-sha2-nistp384 ",
			"RSA_2048": "ssh-rsa ", "rsa-2048": "ssh-rsa "} {
			c := createSSHCA(t, e, e.Token, p.ID, alg)
			if c.KeyAlgorithm != strings.ReplaceAll(strings.Replace(alg, "rsa", "RSA", 1), "-", "_") || !strings.HasPrefix(c.PublicKey, want) {
				t.Fatalf("%s CA: %+v", alg, c)
			}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/ca", e.Token, map[string]any{"projectId": p.ID, "keyAlgorithm": "DSA"}), 422, "ValidationFailure")
		// Infisical's default algorithm is RSA 2048.
		var def struct{ CA sshCAOut }
		e.Must(t, 200, "POST", "/api/v1/ssh/ca", e.Token, map[string]any{"projectId": p.ID}).Decode(t, &def)
		if def.CA.KeyAlgorithm != "RSA_2048" || !strings.HasPrefix(def.CA.PublicKey, "ssh-rsa ") {
			t.Fatalf("default CA %+v", def.CA)
		}

		tpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": ca.ID, "name": "deployers", "ttl": "1h", "maxTTL": "2h",
			"allowedUsers": []string{"deploy", "ops-*"}, "allowedHosts": []string{"*.example.com"},
			"criticalOptions": map[string]string{"source-address": "127.0.0.1/32, ::1"}})
		if tpl.SshCaID != ca.ID || tpl.ProjectID != p.ID || tpl.Status != "active" || tpl.MaxTTL != "2h" || len(tpl.AllowedUsers) != 2 ||
			tpl.Extensions["permit-pty"] != "" || len(tpl.Extensions) != 5 || tpl.CriticalOptions["source-address"] != "127.0.0.1/32,::1" {
			t.Fatalf("template %+v", tpl)
		}
		var tpls struct{ CertificateTemplates []sshTemplateOut }
		e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+ca.ID+"/certificate-templates", e.Token, nil).Decode(t, &tpls)
		if len(tpls.CertificateTemplates) != 1 || tpls.CertificateTemplates[0].ID != tpl.ID {
			t.Fatalf("CA templates %+v", tpls)
		}
		for name, body := range map[string]map[string]any{
			"bad name":         {"name": "Not A Slug"},
			"ttl over max":     {"name": "x", "ttl": "3h", "maxTTL": "2h"},
			"bad pattern":      {"name": "x", "allowedUsers": []string{"root; rm"}},
			"bad extension":    {"name": "x", "extensions": map[string]string{"permit-everything": ""}},
			"bad option":       {"name": "x", "criticalOptions": map[string]string{"source-address": "not-an-address"}},
			"unknown option":   {"name": "x", "criticalOptions": map[string]string{"no-such-option": ""}},
			"bad ttl":          {"name": "x", "ttl": "soon"},
			"ca missing":       {"name": "x", "sshCaId": ""},
			"standard ext val": {"name": "x", "extensions": map[string]string{"permit-pty": "yes"}},
		} {
			b := map[string]any{"sshCaId": ca.ID, "allowedUsers": []string{}, "allowedHosts": []string{}, "allowUserCertificates": true,
				"allowHostCertificates": true, "allowCustomKeyIds": false}
			for k, v := range body {
				b[k] = v
			}
			if r := e.Do(t, "POST", "/api/v1/ssh/certificate-templates", e.Token, b); r.Status != 422 {
				t.Fatalf("template with %s: %d %s", name, r.Status, r.Body)
			}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificate-templates", e.Token, map[string]any{"sshCaId": ca.ID, "name": "deployers",
			"allowedUsers": []string{}, "allowedHosts": []string{}, "allowUserCertificates": true, "allowHostCertificates": true,
			"allowCustomKeyIds": false}), 400, "BadRequest")

		// Sign a user key.
		pubText, pub := newSSHKey(t)
		var signed struct{ SerialNumber, SignedKey string }
		start := time.Now()
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": tpl.ID, "publicKey": pubText,
			"principals": []string{"deploy", "ops-alice", "deploy"}, "ttl": "30m"}).Decode(t, &signed)
		c := parseSSHCert(t, signed.SignedKey, ca.PublicKey)
		if c.CertType != ssh.UserCert || strings.Join(c.ValidPrincipals, ",") != "deploy,ops-alice" || c.KeyId != "identity-"+e.IdentityID ||
			string(c.Key.Marshal()) != string(pub.Marshal()) || signed.SerialNumber == "" || signed.SerialNumber != itoa(c.Serial) {
			t.Fatalf("signed certificate %+v (serial %s)", c, signed.SerialNumber)
		}
		if before := time.Unix(int64(c.ValidBefore), 0); before.Before(start.Add(29*time.Minute)) || before.After(time.Now().Add(31*time.Minute)) {
			t.Fatalf("valid before %v", before)
		}
		if _, ok := c.Permissions.Extensions["permit-pty"]; !ok || c.Permissions.CriticalOptions["source-address"] != "127.0.0.1/32,::1" {
			t.Fatalf("permissions %+v", c.Permissions)
		}
		checker := ssh.CertChecker{SupportedCriticalOptions: []string{"source-address"}, IsUserAuthority: func(k ssh.PublicKey) bool { return string(k.Marshal()) == string(c.SignatureKey.Marshal()) }}
		if err := checker.CheckCert("deploy", c); err != nil {
			t.Fatalf("x/crypto/ssh refuses the certificate: %v", err)
		}
		// A host key through the same template, for a name below example.com.
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": tpl.ID, "publicKey": pubText,
			"certType": "host", "principals": []string{"web.eu.example.com"}}).Decode(t, &signed)
		if hc := parseSSHCert(t, signed.SignedKey, ca.PublicKey); hc.CertType != ssh.HostCert || len(hc.Permissions.Extensions) != 0 ||
			time.Unix(int64(hc.ValidBefore), 0).After(time.Now().Add(61*time.Minute)) {
			t.Fatalf("host certificate %+v", hc)
		}

		// What the template refuses.
		sign := func(body map[string]any) apptest.Response {
			b := map[string]any{"certificateTemplateId": tpl.ID, "publicKey": pubText, "principals": []string{"deploy"}}
			for k, v := range body {
				b[k] = v
			}
			return e.Do(t, "POST", "/api/v1/ssh/certificates/sign", e.Token, b)
		}
		for name, c := range map[string]struct {
			body   map[string]any
			status int
		}{
			"principal not allowed":    {map[string]any{"principals": []string{"root"}}, 400},
			"wildcard principal":       {map[string]any{"principals": []string{"ops-*"}}, 422},
			"host outside the domain":  {map[string]any{"certType": "host", "principals": []string{"web.example.org"}}, 400},
			"ttl over the maximum":     {map[string]any{"ttl": "3h"}, 400},
			"custom key id":            {map[string]any{"keyId": "me"}, 400},
			"no principals":            {map[string]any{"principals": []string{}}, 422},
			"bad cert type":            {map[string]any{"certType": "both"}, 422},
			"not a public key":         {map[string]any{"publicKey": "ssh-ed25519 AAAA"}, 422},
			"a private key":            {map[string]any{"publicKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}, 422},
			"unknown template":         {map[string]any{"certificateTemplateId": "00000000-0000-0000-0000-000000000000"}, 404},
			"malformed template id":    {map[string]any{"certificateTemplateId": "x"}, 404},
			"missing template id":      {map[string]any{"certificateTemplateId": ""}, 422},
			"too many principals":      {map[string]any{"principals": strings.Split(strings.Repeat("deploy,", 65)[:7*65-1], ",")}, 422},
			"principal with a newline": {map[string]any{"principals": []string{"deploy\nroot"}}, 422},
			"a certificate as the key": {map[string]any{"publicKey": signed.SignedKey}, 422},
		} {
			if r := sign(c.body); r.Status != c.status {
				t.Fatalf("%s: %d %s, want %d", name, r.Status, r.Body, c.status)
			}
		}
		// Custom key ids, once the template allows them; then a disabled template signs nothing.
		e.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+tpl.ID, e.Token, map[string]any{"allowCustomKeyIds": true})
		sign(map[string]any{"keyId": "alice@laptop"}).Decode(t, &signed)
		if parseSSHCert(t, signed.SignedKey, ca.PublicKey).KeyId != "alice@laptop" {
			t.Fatal("custom key id not used")
		}
		e.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+tpl.ID, e.Token, map[string]any{"status": "disabled"})
		assertError(t, sign(nil), 400, "BadRequest")
		e.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+tpl.ID, e.Token, map[string]any{"status": "active"})
		// A disabled CA signs nothing either.
		e.Must(t, 200, "PATCH", "/api/v1/ssh/ca/"+ca.ID, e.Token, map[string]any{"status": "disabled"})
		assertError(t, sign(nil), 400, "BadRequest")
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/ca/"+ca.ID, e.Token, map[string]any{"status": "paused"}), 422, "ValidationFailure")
		e.Must(t, 200, "PATCH", "/api/v1/ssh/ca/"+ca.ID, e.Token, map[string]any{"status": "active"})

		// Issue key pairs of every algorithm.
		for _, alg := range []string{"ED25519", "EC_prime256v1", "EC_secp384r1", "RSA_2048", ""} {
			var out sshIssuedOut
			r := e.Must(t, 200, "POST", "/api/v1/ssh/certificates/issue", e.Token, map[string]any{"certificateTemplateId": tpl.ID,
				"keyAlgorithm": alg, "principals": []string{"ops-bob"}})
			r.Decode(t, &out)
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("issue response may be cached: %q", r.Header.Get("Cache-Control"))
			}
			want := alg
			if want == "" {
				want = "ED25519"
			}
			c := parseSSHCert(t, out.SignedKey, ca.PublicKey)
			priv, err := ssh.ParsePrivateKey([]byte(out.PrivateKey))
			if err != nil || out.KeyAlgorithm != want || !strings.HasPrefix(out.PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----") {
				t.Fatalf("%s private key: %v (algorithm %s, serial %s)", alg, err, out.KeyAlgorithm, out.SerialNumber)
			}
			if string(priv.PublicKey().Marshal()) != string(c.Key.Marshal()) || strings.TrimSpace(out.PublicKey) != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.Key))) {
				t.Fatalf("%s: the certificate is not for the issued key", alg)
			}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/issue", e.Token, map[string]any{"certificateTemplateId": tpl.ID,
			"keyAlgorithm": "DSA_1024", "principals": []string{"deploy"}}), 422, "ValidationFailure")

		// An RSA CA signs with rsa-sha2-512, which OpenSSH accepts.
		rsaCA := createSSHCA(t, e, e.Token, p.ID, "RSA_2048")
		rsaTpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": rsaCA.ID, "name": "rsa", "allowedUsers": []string{"*"}})
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": rsaTpl.ID,
			"publicKey": pubText, "principals": []string{"anyone"}}).Decode(t, &signed)
		if rc := parseSSHCert(t, signed.SignedKey, rsaCA.PublicKey); rc.Signature.Format != ssh.KeyAlgoRSASHA512 {
			t.Fatalf("RSA CA signature format %q", rc.Signature.Format)
		}

		// Serials are unique; every issuance is recorded and audited, no private key anywhere.
		serials := map[string]bool{}
		for range 20 {
			sign(nil).Decode(t, &signed)
			if serials[signed.SerialNumber] {
				t.Fatalf("serial %s issued twice", signed.SerialNumber)
			}
			serials[signed.SerialNumber] = true
		}
		var certs struct {
			Certificates []struct {
				SerialNumber, CertType, KeyID, SshCaID string
				Principals                             []string
			}
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/ssh-certificates?limit=100", e.Token, nil).Decode(t, &certs)
		const issued = 1 + 1 + 1 + 5 + 1 + 20
		if certs.TotalCount != issued || len(certs.Certificates) != issued || !serials[certs.Certificates[0].SerialNumber] {
			t.Fatalf("certificate records: %d %+v", certs.TotalCount, certs.Certificates[:1])
		}
		evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, ProjectID: p.ID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, ev := range evs {
			counts[ev.Type]++
			b, _ := json.Marshal(ev)
			if strings.Contains(string(b), "PRIVATE KEY") {
				t.Fatalf("audit event %s holds a private key", ev.Type)
			}
		}
		if counts["sign-ssh-key"] != 1+1+1+1+20 || counts["issue-ssh-creds"] != 5 || counts["create-ssh-ca"] != 7 || counts["create-ssh-certificate-template"] != 2 {
			t.Fatalf("audit counts %v", counts)
		}

		// Deleting a template stops its use; a CA goes with its templates.
		e.Must(t, 200, "DELETE", "/api/v1/ssh/certificate-templates/"+rsaTpl.ID, e.Token, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": rsaTpl.ID,
			"publicKey": pubText, "principals": []string{"anyone"}}), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v1/ssh/ca/"+ca.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/certificate-templates/"+tpl.ID, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/"+ca.ID+"/public-key", "", nil), 404, "NotFound")
	})
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

type sshHostOut struct {
	ID, ProjectID, Hostname, Alias, UserCertTtl, HostCertTtl, UserSshCaID, HostSshCaID string
	LoginMappings                                                                      []struct {
		LoginUser         string
		AllowedPrincipals struct{ Usernames []string }
	}
}

func TestSSHAuthorization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-b"})
		caA, caB := createSSHCA(t, e, e.Token, a.ID, "ED25519"), createSSHCA(t, e, e.Token, b.ID, "ED25519")
		tplA := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": caA.ID, "name": "a", "allowedUsers": []string{"*"}})
		tplB := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": caB.ID, "name": "b", "allowedUsers": []string{"*"}})
		viewerID, viewer := projectMember(t, e, a.ID, "ssh-viewer", "viewer")
		memberID, member := projectMember(t, e, a.ID, "ssh-member", "member")
		bootID, boot := projectMember(t, e, a.ID, "ssh-bootstrapper", "ssh-host-bootstrapper")
		pubText, _ := newSSHKey(t)
		signA := func(tok, tpl string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/ssh/certificates/sign", tok, map[string]any{"certificateTemplateId": tpl, "publicKey": pubText,
				"principals": []string{"deploy"}})
		}

		// A viewer reads but cannot sign, issue or change anything.
		e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+caA.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/ssh/certificate-templates/"+tplA.ID, viewer, nil)
		assertError(t, signA(viewer, tplA.ID), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/issue", viewer, map[string]any{"certificateTemplateId": tplA.ID,
			"principals": []string{"deploy"}}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/ca", viewer, map[string]any{"projectId": a.ID, "keyAlgorithm": "ED25519"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/ca/"+caA.ID, viewer, map[string]any{"status": "disabled"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/certificate-templates/"+tplA.ID, viewer, map[string]any{"maxTTL": "10y"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/ca/"+caA.ID, viewer, nil), 403, "PermissionDenied")

		// A member signs with project A's CA, but may not create CAs or
		// widen templates (the bounds are the admins').
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", member, map[string]any{"certificateTemplateId": tplA.ID, "publicKey": pubText,
			"principals": []string{"deploy"}})
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/ca", member, map[string]any{"projectId": a.ID, "keyAlgorithm": "ED25519"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/certificate-templates/"+tplA.ID, member, map[string]any{"maxTTL": "10y"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificate-templates", member, map[string]any{"sshCaId": caA.ID, "name": "mine",
			"allowedUsers": []string{"*"}, "allowedHosts": []string{"*"}, "allowUserCertificates": true, "allowHostCertificates": true,
			"allowCustomKeyIds": true}), 403, "PermissionDenied")

		// Project A's identities cannot reach project B's CA, template or list: not found.
		assertError(t, signA(member, tplB.ID), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/"+caB.ID, member, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/"+caB.ID+"/certificate-templates", member, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/certificate-templates/"+tplB.ID, member, nil), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/ca/"+caB.ID, member, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificate-templates", member, map[string]any{"sshCaId": caB.ID, "name": "x",
			"allowedUsers": []string{}, "allowedHosts": []string{}, "allowUserCertificates": true, "allowHostCertificates": true,
			"allowCustomKeyIds": true}), 404, "NotFound")
		if r := e.Do(t, "GET", "/api/v1/projects/"+b.ID+"/ssh-cas", member, nil); r.Status != 403 && r.Status != 404 {
			t.Fatalf("member of A lists B's CAs: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "POST", "/api/v1/ssh/ca", member, map[string]any{"projectId": b.ID}); r.Status != 403 && r.Status != 404 {
			t.Fatalf("member of A creates a CA in B: %d %s", r.Status, r.Body)
		}

		// Hosts: a host of A cannot use B's CA.
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "web1.example.com",
			"userSshCaId": caB.ID, "hostSshCaId": caA.ID}), 400, "BadRequest")
		// As Infisical's member, a member reads hosts but registers none:
		// a login mapping is a standing grant of user certificates.
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", member, map[string]any{"projectId": a.ID, "hostname": "mine.example.com",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID, "loginMappings": []map[string]any{{"loginUser": "root",
				"allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}), 403, "PermissionDenied")
		var host sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "Web1.Example.com", "alias": "web",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID, "userCertTtl": "1h",
			"loginMappings": []map[string]any{{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}).Decode(t, &host)
		if host.Hostname != "web1.example.com" || host.UserCertTtl != "1h" || host.HostCertTtl != "1y" || len(host.LoginMappings) != 1 ||
			host.LoginMappings[0].AllowedPrincipals.Usernames[0] != memberID {
			t.Fatalf("host %+v", host)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "web1.example.com",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "not a host!",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID}), 422, "ValidationFailure")

		// The mapped member gets a certificate for deploy; nobody else does,
		// and nobody gets one for another login user.
		var creds sshIssuedOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", member, map[string]any{"loginUser": "deploy"}).Decode(t, &creds)
		uc := parseSSHCert(t, creds.SignedKey, caA.PublicKey)
		if strings.Join(uc.ValidPrincipals, ",") != "deploy" || uc.KeyId != "identity-"+memberID || creds.KeyAlgorithm != "ED25519" || creds.PrivateKey == "" ||
			time.Unix(int64(uc.ValidBefore), 0).After(time.Now().Add(61*time.Minute)) {
			t.Fatalf("host user certificate %+v %+v", uc, creds)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", member, map[string]any{"loginUser": "root"}), 403, "ForbiddenError")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", viewer, map[string]any{"loginUser": "deploy"}), 403, "ForbiddenError")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", e.Token, map[string]any{"loginUser": "deploy"}), 403, "ForbiddenError")

		// A viewer cannot add itself to a host's login mappings, nor issue its host certificate.
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+host.ID, viewer, map[string]any{"loginMappings": []map[string]any{
			{"loginUser": "root", "allowedPrincipals": map[string]any{"usernames": []string{viewerID}}}}}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-host-cert", viewer, map[string]any{"publicKey": pubText}), 403, "PermissionDenied")

		// The bootstrapper registers hosts and issues their host
		// certificates, but grants no logins and signs nothing else.
		var bh sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", boot, map[string]any{"projectId": a.ID, "hostname": "db1.example.com",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID}).Decode(t, &bh)
		var hc struct{ SerialNumber, SignedKey string }
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+bh.ID+"/issue-host-cert", boot, map[string]any{"publicKey": pubText}).Decode(t, &hc)
		if c := parseSSHCert(t, hc.SignedKey, caA.PublicKey); c.CertType != ssh.HostCert || strings.Join(c.ValidPrincipals, ",") != "db1.example.com" ||
			c.KeyId != "host-"+bh.ID || itoa(c.Serial) != hc.SerialNumber {
			t.Fatalf("host certificate %+v", c)
		}
		// Creating a host is ssh-hosts create; giving it login mappings is
		// ssh-hosts edit, on create as on update (Infisical asks only
		// create): the bootstrapper cannot map itself as root on a host of
		// its own and sign itself a root login for every host that trusts
		// the user CA.
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", boot, map[string]any{"projectId": a.ID, "hostname": "evil.example.com",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID, "loginMappings": []map[string]any{{"loginUser": "root",
				"allowedPrincipals": map[string]any{"usernames": []string{bootID}}}}}), 403, "PermissionDenied")
		var bh2 sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", boot, map[string]any{"projectId": a.ID, "hostname": "db2.example.com",
			"userSshCaId": caA.ID, "hostSshCaId": caA.ID, "loginMappings": []map[string]any{}}).Decode(t, &bh2)
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+bh2.ID, boot, map[string]any{"loginMappings": []map[string]any{{"loginUser": "root",
			"allowedPrincipals": map[string]any{"usernames": []string{bootID}}}}}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+bh2.ID+"/issue-user-cert", boot, map[string]any{"loginUser": "root"}), 403, "ForbiddenError")
		e.Must(t, 200, "DELETE", "/api/v1/ssh/hosts/"+bh2.ID, e.Token, nil)
		assertError(t, signA(boot, tplA.ID), 403, "PermissionDenied")

		// Another project's host: not found, to member and bootstrapper alike.
		hostB := sshHostOut{}
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": b.ID, "hostname": "b.example.com",
			"userSshCaId": caB.ID, "hostSshCaId": caB.ID}).Decode(t, &hostB)
		for _, tok := range []string{member, boot} {
			assertError(t, e.Do(t, "GET", "/api/v1/ssh/hosts/"+hostB.ID, tok, nil), 404, "NotFound")
			assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+hostB.ID+"/issue-host-cert", tok, map[string]any{"publicKey": pubText}), 404, "NotFound")
			assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+hostB.ID+"/issue-user-cert", tok, map[string]any{"loginUser": "deploy"}), 404, "NotFound")
			assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/hosts/"+hostB.ID, tok, nil), 404, "NotFound")
		}
		// The host lists: the org-wide list shows each actor what it may read or log in to.
		var list []sshHostOut
		e.Must(t, 200, "GET", "/api/v1/ssh/hosts", member, nil).Decode(t, &list)
		if len(list) != 2 || list[0].Hostname != "db1.example.com" || list[1].Hostname != "web1.example.com" {
			t.Fatalf("member's hosts %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v1/ssh/hosts", e.Token, nil).Decode(t, &list)
		if len(list) != 3 {
			t.Fatalf("admin's hosts %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-hosts", viewer, nil).Decode(t, &list)
		if len(list) != 2 {
			t.Fatalf("viewer's project hosts %+v", list)
		}
		// A CA a host uses cannot be deleted; the host's public keys are public.
		assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/ca/"+caA.ID, e.Token, nil), 400, "BadRequest")
		if r := e.Must(t, 200, "GET", "/api/v1/ssh/hosts/"+host.ID+"/user-ca-public-key", "", nil); string(r.Body) != caA.PublicKey+"\n" {
			t.Fatalf("user CA public key %q", r.Body)
		}
		assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/hosts/"+host.ID, member, nil), 403, "PermissionDenied")
		e.Must(t, 200, "DELETE", "/api/v1/ssh/hosts/"+host.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/hosts/"+host.ID, member, nil), 404, "NotFound")
	})
}

// A custom role's hostname condition scopes what it may do to hosts.
func TestSSHHostnameCondition(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-scoped"})
		ca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "prod-hosts", "name": "Prod hosts",
			"permissions": []map[string]any{{"subject": "ssh-hosts", "action": []string{"read", "create", "issue-host-cert"},
				"conditions": map[string]any{"hostname": map[string]any{"$glob": "*.prod.example.com"}}}}})
		_, tok := projectMember(t, e, p.ID, "prod-bot", "prod-hosts")
		add := func(tok, name string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/ssh/hosts", tok, map[string]any{"projectId": p.ID, "hostname": name, "userSshCaId": ca.ID, "hostSshCaId": ca.ID})
		}
		var prod, dev sshHostOut
		add(tok, "web.prod.example.com").Decode(t, &prod)
		if prod.ID == "" {
			t.Fatal("the scoped role could not add a prod host")
		}
		assertError(t, add(tok, "web.dev.example.com"), 403, "PermissionDenied")
		add(e.Token, "web.dev.example.com").Decode(t, &dev)
		pubText, _ := newSSHKey(t)
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+prod.ID+"/issue-host-cert", tok, map[string]any{"publicKey": pubText})
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+dev.ID+"/issue-host-cert", tok, map[string]any{"publicKey": pubText}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/hosts/"+dev.ID, tok, nil), 403, "PermissionDenied")
		var list []sshHostOut
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/ssh-hosts", tok, nil).Decode(t, &list)
		if len(list) != 1 || list[0].ID != prod.ID {
			t.Fatalf("scoped list %+v", list)
		}
		e.Must(t, 200, "GET", "/api/v1/ssh/hosts", tok, nil).Decode(t, &list)
		if len(list) != 1 || list[0].ID != prod.ID {
			t.Fatalf("scoped org list %+v", list)
		}
		// Renaming a host out of the role's reach is refused even with edit on the old name.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "prod-editor", "name": "Prod editor",
			"permissions": []map[string]any{{"subject": "ssh-hosts", "action": []string{"read", "edit"},
				"conditions": map[string]any{"hostname": map[string]any{"$glob": "*.prod.example.com"}}}}})
		_, editor := projectMember(t, e, p.ID, "prod-editor", "prod-editor")
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+prod.ID, editor, map[string]any{"hostname": "web.dev2.example.com"}), 403, "PermissionDenied")
		e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+prod.ID, editor, map[string]any{"hostname": "api.prod.example.com", "alias": "api"})
	})
}

// A node that has signed with a CA and template (both cached) sees another
// node disable the CA or narrow the template at once.
func TestSSHCachedSignerFollowsOtherNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e1 := apptest.Bootstrapped(t, d)
		e2 := apptest.Start(t, d, apptest.Options{Share: e1})
		p := createProject(t, e1, e1.Token, map[string]any{"projectName": "ssh-nodes"})
		ca := createSSHCA(t, e1, e1.Token, p.ID, "ED25519")
		tpl := createSSHTemplate(t, e1, e1.Token, map[string]any{"sshCaId": ca.ID, "name": "nodes", "allowedUsers": []string{"deploy", "ops"}})
		pubText, _ := newSSHKey(t)
		sign := func(principal string) apptest.Response {
			return e1.Do(t, "POST", "/api/v1/ssh/certificates/sign", e1.Token, map[string]any{"certificateTemplateId": tpl.ID,
				"publicKey": pubText, "principals": []string{principal}})
		}
		for range 3 {
			if r := sign("ops"); r.Status != 200 {
				t.Fatalf("sign: %d %s", r.Status, r.Body)
			}
		}
		e2.Must(t, 200, "PATCH", "/api/v1/ssh/certificate-templates/"+tpl.ID, e2.Token, map[string]any{"allowedUsers": []string{"deploy"}})
		assertError(t, sign("ops"), 400, "BadRequest")
		if r := sign("deploy"); r.Status != 200 {
			t.Fatalf("sign deploy: %d %s", r.Status, r.Body)
		}
		e2.Must(t, 200, "PATCH", "/api/v1/ssh/ca/"+ca.ID, e2.Token, map[string]any{"status": "disabled"})
		assertError(t, sign("deploy"), 400, "BadRequest")
		e2.Must(t, 200, "DELETE", "/api/v1/ssh/ca/"+ca.ID, e2.Token, nil)
		assertError(t, sign("deploy"), 404, "NotFound")
	})
}

// Issued private keys reach the client and nothing else: not the server's
// log (at debug), not the audit log, not the certificate records.
func TestSSHPrivateKeysStayOutOfLogs(t *testing.T) {
	var buf syncBuffer
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Log: &buf, LogLevel: slog.LevelDebug})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-logs"})
	ca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
	tpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": ca.ID, "name": "logs", "allowedUsers": []string{"deploy"}})
	var keys []string
	for _, alg := range []string{"ED25519", "RSA_2048"} {
		var out sshIssuedOut
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/issue", e.Token, map[string]any{"certificateTemplateId": tpl.ID, "keyAlgorithm": alg,
			"principals": []string{"deploy"}}).Decode(t, &out)
		keys = append(keys, out.PrivateKey)
	}
	var host sshHostOut
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": p.ID, "hostname": "logs.example.com", "userSshCaId": ca.ID,
		"hostSshCaId": ca.ID, "loginMappings": []map[string]any{{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{e.IdentityID}}}}}).Decode(t, &host)
	var hu sshIssuedOut
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", e.Token, map[string]any{"loginUser": "deploy"}).Decode(t, &hu)
	keys = append(keys, hu.PrivateKey)
	// A refused request that carries a private key where a public one belongs.
	assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": tpl.ID,
		"publicKey": keys[0], "principals": []string{"deploy"}}), 422, "ValidationFailure")

	evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	audited, _ := json.Marshal(evs)
	var records struct{ Certificates []map[string]any }
	e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/ssh-certificates", e.Token, nil).Decode(t, &records)
	recs, _ := json.Marshal(records)
	for i, k := range keys {
		// The base64 lines after the first, which is mostly the format's header,
		// hold the private part.
		lines := strings.Split(strings.TrimSpace(k), "\n")
		if len(lines) < 5 {
			t.Fatalf("key %d: %q", i, k)
		}
		for what, text := range map[string]string{"server log": buf.String(), "audit log": string(audited), "records": string(recs)} {
			if strings.Contains(text, "PRIVATE KEY") {
				t.Fatalf("a private key in the %s", what)
			}
			for _, line := range lines[2 : len(lines)-1] {
				if len(line) >= 16 && strings.Contains(text, line) {
					t.Fatalf("private key %d found in the %s", i, what)
				}
			}
		}
	}
	if !strings.Contains(buf.String(), "/api/v1/ssh/certificates/issue") {
		t.Fatal("the server log has no line of the issue requests: the check above proves nothing")
	}
}

// TestLoginMappingsNeedTheRightToEditCAs: a login mapping has the host's
// user CA sign certificates outside its templates (any login user, the
// host's lifetime), good on every server trusting the CA. A role that may
// manage only *.dev hosts could register one on the production CA with a
// mapping to root for 10 years and mint itself that certificate. Now setting
// mappings, or the lifetime of a host that has some, needs the right to edit
// the project's SSH CAs; registering a host without mappings does not.
func TestLoginMappingsNeedTheRightToEditCAs(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-mappings"})
	ca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
	var role struct{ Role struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "dev-hosts", "name": "Dev hosts",
		"permissions": []map[string]any{{"subject": "ssh-hosts", "action": []string{"read", "create", "edit"},
			"conditions": map[string]any{"hostname": map[string]any{"$glob": "*.dev.example.com"}}}}}).Decode(t, &role)
	devID, dev := projectMember(t, e, p.ID, "dev-hosts", "dev-hosts")
	root := []map[string]any{{"loginUser": "root", "allowedPrincipals": map[string]any{"usernames": []string{devID}}}}
	assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", dev, map[string]any{"projectId": p.ID, "hostname": "x.dev.example.com",
		"userSshCaId": ca.ID, "hostSshCaId": ca.ID, "userCertTtl": "3650d", "loginMappings": root}), 403, "PermissionBoundaryError")
	var h sshHostOut
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts", dev, map[string]any{"projectId": p.ID, "hostname": "y.dev.example.com",
		"userSshCaId": ca.ID, "hostSshCaId": ca.ID}).Decode(t, &h)
	assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+h.ID, dev, map[string]any{"loginMappings": root}), 403, "PermissionBoundaryError")
	assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts/"+h.ID+"/issue-user-cert", dev, map[string]any{"loginUser": "root"}), 403, "ForbiddenError")
	// The admin maps the dev user; the role still may not lengthen the certificates.
	e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+h.ID, e.Token, map[string]any{"loginMappings": []map[string]any{
		{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{devID}}}}})
	assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+h.ID, dev, map[string]any{"userCertTtl": "3650d"}), 403, "PermissionBoundaryError")
	e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+h.ID, dev, map[string]any{"alias": "renamed"})
	// Nor through a host group's mappings: a host with none of its own, in a
	// group that maps the dev user, gives the same certificates.
	var z sshHostOut
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts", dev, map[string]any{"projectId": p.ID, "hostname": "z.dev.example.com",
		"userSshCaId": ca.ID, "hostSshCaId": ca.ID}).Decode(t, &z)
	var g sshGroupOut
	e.Must(t, 200, "POST", "/api/v1/ssh/host-groups", e.Token, map[string]any{"projectId": p.ID, "name": "devs",
		"loginMappings": []map[string]any{{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{devID}}}}}).Decode(t, &g)
	e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+z.ID, e.Token, nil)
	assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+z.ID, dev, map[string]any{"userCertTtl": "3650d"}), 403, "PermissionBoundaryError")
	e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+z.ID+"/issue-user-cert", dev, map[string]any{"loginUser": "deploy"})
	// With the right to edit CAs, the same mapping is allowed.
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/roles/"+role.Role.ID, e.Token, map[string]any{
		"permissions": []map[string]any{{"subject": "ssh-hosts", "action": []string{"read", "create", "edit"},
			"conditions": map[string]any{"hostname": map[string]any{"$glob": "*.dev.example.com"}}},
			{"subject": "ssh-certificate-authorities", "action": []string{"read", "edit"}}}})
	e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+h.ID, dev, map[string]any{"loginMappings": root})
}
