package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type caOut struct {
	ID, ProjectID, Type, Status, DN, KeyAlgorithm, CommonName string
	ParentCAID, SerialNumber, NotBefore, NotAfter             *string
	MaxPathLength                                             int
}

type issuedOut struct {
	Certificate, CertificateChain, IssuingCaCertificate, SerialNumber string
	PrivateKey                                                        *string
}

type certOut struct {
	ID, ProjectID, CAID, Status, SerialNumber, CommonName, AltNames, NotBefore, NotAfter string
	CertificateTemplateID, RevokedAt                                                     *string
	RevocationReason                                                                     *int
	KeyUsages, ExtendedKeyUsages                                                         []string
}

func createCA(t testing.TB, e *apptest.Env, token string, body map[string]any) caOut {
	t.Helper()
	var out struct{ CA caOut }
	e.Must(t, 200, "POST", "/api/v1/pki/ca", token, body).Decode(t, &out)
	return out.CA
}

func rootCA(t testing.TB, e *apptest.Env, projectID, cn, alg string) caOut {
	t.Helper()
	return createCA(t, e, e.Token, map[string]any{"projectId": projectID, "type": "root", "commonName": cn,
		"organization": "Lockbox Test", "keyAlgorithm": alg})
}

func issue(t testing.TB, e *apptest.Env, token, caID string, body map[string]any) issuedOut {
	t.Helper()
	var out issuedOut
	e.Must(t, 200, "POST", "/api/v1/pki/ca/"+caID+"/issue-certificate", token, body).Decode(t, &out)
	return out
}

// openssl runs the real openssl; it returns the combined output and whether it exited 0.
func openssl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err == nil
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parsePEMCert(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("not PEM: %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPKIChainVerifiesWithOpenSSL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "pki"})
		root := rootCA(t, e, p.ID, "Lockbox Root", "ec-secp384r1")
		if root.Status != "active" || root.Type != "root" || root.SerialNumber == nil || root.NotAfter == nil || root.KeyAlgorithm != "ec-secp384r1" ||
			root.DN != "CN=Lockbox Root,O=Lockbox Test" || root.MaxPathLength != -1 {
			t.Fatalf("root %+v", root)
		}

		// An intermediate the way an external CA signs one: CSR out, certificate in.
		inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Lockbox Issuing",
			"keyAlgorithm": "ec-prime256v1"})
		if inter.Status != "pending-certificate" || inter.SerialNumber != nil {
			t.Fatalf("pending intermediate %+v", inter)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/issue-certificate", e.Token, map[string]any{"commonName": "x", "ttl": "1h"}), 400, "BadRequest")
		assertError(t, e.Do(t, "GET", "/api/v1/pki/ca/"+root.ID+"/csr", e.Token, nil), 400, "BadRequest")
		var csr struct{ CSR string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID+"/csr", e.Token, nil).Decode(t, &csr)
		if !strings.Contains(csr.CSR, "BEGIN CERTIFICATE REQUEST") {
			t.Fatalf("csr %q", csr.CSR)
		}
		var signed issuedOut
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+root.ID+"/sign-intermediate", e.Token, map[string]any{"csr": csr.CSR,
			"notAfter": time.Now().AddDate(2, 0, 0).Format(time.RFC3339), "maxPathLength": 0}).Decode(t, &signed)
		// A certificate for another key is refused; so is a chain that does not lead to it.
		other := rootCA(t, e, p.ID, "Other Root", "ec-prime256v1")
		var otherCert struct{ Certificate string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+other.ID+"/certificate", e.Token, nil).Decode(t, &otherCert)
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": otherCert.Certificate, "certificateChain": otherCert.Certificate}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": signed.Certificate, "certificateChain": otherCert.Certificate}), 422, "ValidationFailure")
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": signed.Certificate, "certificateChain": signed.CertificateChain})
		var got struct{ CA caOut }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID, e.Token, nil).Decode(t, &got)
		if got.CA.Status != "active" || got.CA.ParentCAID == nil || *got.CA.ParentCAID != root.ID || got.CA.MaxPathLength != 0 {
			t.Fatalf("imported intermediate %+v", got.CA)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": signed.Certificate, "certificateChain": signed.CertificateChain}), 400, "BadRequest")
		// Path length 0: this intermediate may not sign another CA.
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca", e.Token, map[string]any{"projectId": p.ID, "type": "intermediate",
			"commonName": "Too Deep", "parentCaId": inter.ID, "keyAlgorithm": "ec-prime256v1"}), 400, "BadRequest")

		// A leaf with every kind of alternative name, issued by the intermediate.
		leaf := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "api.example.com",
			"altNames": "api.example.com, 127.0.0.1, ops@example.com, spiffe://example.com/api", "ttl": "1d",
			"keyAlgorithm": "ec-prime256v1", "extendedKeyUsages": []string{"server_auth", "client_auth"}})
		if leaf.PrivateKey == nil || !strings.Contains(*leaf.PrivateKey, "PRIVATE KEY") || leaf.SerialNumber == "" ||
			strings.TrimSpace(leaf.IssuingCaCertificate) != strings.TrimSpace(signed.Certificate) {
			t.Fatalf("issued %+v", leaf)
		}
		lc := parsePEMCert(t, leaf.Certificate)
		if lc.Subject.CommonName != "api.example.com" || len(lc.DNSNames) != 1 || len(lc.IPAddresses) != 1 || len(lc.EmailAddresses) != 1 ||
			len(lc.URIs) != 1 || lc.IsCA || lc.NotAfter.Sub(lc.NotBefore) != 24*time.Hour || len(lc.ExtKeyUsage) != 2 {
			t.Fatalf("leaf %+v", lc)
		}
		if _, err := tls.X509KeyPair([]byte(leaf.Certificate), []byte(*leaf.PrivateKey)); err != nil {
			t.Fatalf("key does not match certificate: %v", err)
		}

		dir := t.TempDir()
		var rc struct{ Certificate, CertificateChain string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID+"/certificate", e.Token, nil).Decode(t, &rc)
		rootPEM := writeFile(t, dir, "root.pem", rc.Certificate)
		chain := writeFile(t, dir, "chain.pem", leaf.CertificateChain)
		leafPEM := writeFile(t, dir, "leaf.pem", leaf.Certificate)
		if out, ok := openssl(t, "verify", "-CAfile", rootPEM, "-untrusted", chain, leafPEM); !ok || !strings.Contains(out, "OK") {
			t.Fatalf("openssl verify root->intermediate->leaf: %s", out)
		}
		// Against another root it fails: the check can fail.
		var oc struct{ Certificate string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+other.ID+"/certificate", e.Token, nil).Decode(t, &oc)
		otherPEM := writeFile(t, dir, "other.pem", oc.Certificate)
		if out, ok := openssl(t, "verify", "-CAfile", otherPEM, "-untrusted", chain, leafPEM); ok {
			t.Fatalf("openssl verify against another root passed: %s", out)
		}

		// An RSA intermediate signed in one step (parentCaId), and a CSR signed by it.
		rsaInter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "RSA Issuing",
			"parentCaId": root.ID, "keyAlgorithm": "rsa-2048"})
		if rsaInter.Status != "active" || rsaInter.ParentCAID == nil || *rsaInter.ParentCAID != root.ID {
			t.Fatalf("one-step intermediate %+v", rsaInter)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "svc.internal"},
			DNSNames: []string{"svc.internal"}}, key)
		csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
		var fromCSR issuedOut
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+rsaInter.ID+"/sign-certificate", e.Token, map[string]any{"csr": csrPEM, "ttl": 3600}).Decode(t, &fromCSR)
		if fromCSR.PrivateKey != nil {
			t.Fatalf("sign-certificate returned a private key")
		}
		sc := parsePEMCert(t, fromCSR.Certificate)
		if sc.Subject.CommonName != "svc.internal" || len(sc.DNSNames) != 1 || !sc.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
			t.Fatalf("signed %+v", sc)
		}
		if out, ok := openssl(t, "verify", "-CAfile", rootPEM, "-untrusted", writeFile(t, dir, "rsa-chain.pem", fromCSR.CertificateChain),
			writeFile(t, dir, "csr-leaf.pem", fromCSR.Certificate)); !ok {
			t.Fatalf("openssl verify of the CSR-signed chain: %s", out)
		}
		var bundle struct {
			Certificate, CertificateChain, SerialNumber string
			PrivateKey                                  *string
		}
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+fromCSR.SerialNumber+"/bundle", e.Token, nil).Decode(t, &bundle)
		if bundle.PrivateKey != nil || bundle.Certificate != fromCSR.Certificate {
			t.Fatalf("bundle of a CSR-signed certificate %+v", bundle)
		}
		br := e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+leaf.SerialNumber+"/bundle", e.Token, nil)
		br.Decode(t, &bundle)
		if bundle.PrivateKey == nil || *bundle.PrivateKey != *leaf.PrivateKey || bundle.CertificateChain != leaf.CertificateChain {
			t.Fatalf("bundle of %s: key or chain differs from the issue", bundle.SerialNumber)
		}
		if br.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("a bundle with a private key is cacheable: %q", br.Header.Get("Cache-Control"))
		}
		var c struct{ Certificate certOut }
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+leaf.SerialNumber, e.Token, nil).Decode(t, &c)
		if c.Certificate.Status != "active" || c.Certificate.CAID != inter.ID || c.Certificate.CommonName != "api.example.com" ||
			!strings.Contains(c.Certificate.AltNames, "spiffe://example.com/api") || c.Certificate.RevokedAt != nil {
			t.Fatalf("certificate %+v", c.Certificate)
		}

		// The private key is kept (sealed) only for the certificate lockbox generated, never as PEM text.
		if n := countRows(t, e, `SELECT COUNT(*) FROM pki_certificates WHERE private_key IS NOT NULL`); n != 1 {
			t.Fatalf("%d certificates keep a key, want 1", n)
		}
		if n := countRows(t, e, `SELECT COUNT(*) FROM pki_certificates WHERE certificate LIKE '%PRIVATE%' OR certificate_chain LIKE '%PRIVATE%'`); n != 0 {
			t.Fatalf("PEM key in %d rows", n)
		}
		// The issue answer, which carries the key, is not cacheable either.
		ir := e.Must(t, 200, "POST", "/api/v1/pki/certificates/issue-certificate", e.Token, map[string]any{"caId": inter.ID,
			"commonName": "cache.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		if ir.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("an issued private key is cacheable: %q", ir.Header.Get("Cache-Control"))
		}
		// Audit: issuance recorded, no private key anywhere in the log.
		r := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil)
		for _, want := range []string{"issue-cert", "sign-cert", "sign-intermediate", "import-certificate-authority-cert", "get-cert-bundle", leaf.SerialNumber} {
			if !strings.Contains(string(r.Body), want) {
				t.Fatalf("audit log lacks %q", want)
			}
		}
		if strings.Contains(string(r.Body), "PRIVATE KEY") || strings.Contains(string(r.Body), "BEGIN") {
			t.Fatalf("audit log holds PEM")
		}

		// The intermediate's certificate is on record as the root's, so it
		// can be revoked: the root's CRL then lists it.
		var interCert struct{ Certificate certOut }
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+signed.SerialNumber, e.Token, nil).Decode(t, &interCert)
		if interCert.Certificate.CAID != root.ID || interCert.Certificate.Status != "active" {
			t.Fatalf("the signed intermediate's record %+v", interCert.Certificate)
		}
		// Taking it back is a CA's matter: a member, who may revoke leaves, may not.
		_, member := projectMember(t, e, p.ID, "pki-member", "member")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/"+signed.SerialNumber+"/revoke", member, map[string]any{"revocationReason": "CA_COMPROMISE"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/pki/certificates/"+signed.SerialNumber, member, nil), 403, "PermissionDenied")
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+signed.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "CA_COMPROMISE"})
		rootCRL, err := x509.ParseRevocationList(e.Must(t, 200, "GET", "/api/v1/pki/crl/"+root.ID+"/der", "", nil).Body)
		if err != nil || len(rootCRL.RevokedCertificateEntries) != 1 || fmt.Sprintf("%x", rootCRL.RevokedCertificateEntries[0].SerialNumber) !=
			strings.TrimLeft(signed.SerialNumber, "0") {
			t.Fatalf("the root's CRL after revoking the intermediate: %+v %v", rootCRL, err)
		}
	})
}

func TestPKIRevocationAndCRL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "crl"})
		root := rootCA(t, e, p.ID, "CRL Root", "ec-prime256v1")
		inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "CRL Issuing",
			"parentCaId": root.ID, "keyAlgorithm": "ec-prime256v1"})
		good := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "good.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		bad := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "bad.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})

		// Before revocation, the public CRL is empty and both verify with -crl_check.
		r := e.Do(t, "GET", "/api/v1/pki/crl/"+inter.ID+"/der", "", nil)
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("public CRL: %d %s", r.Status, r.Header.Get("Content-Type"))
		}
		crl, err := x509.ParseRevocationList(r.Body)
		if err != nil || len(crl.RevokedCertificateEntries) != 0 {
			t.Fatalf("empty CRL %v %v", crl, err)
		}
		var out struct {
			Message, SerialNumber, RevokedAt string
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/"+bad.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "BECAUSE"}), 422, "ValidationFailure")
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+bad.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "KEY_COMPROMISE"}).Decode(t, &out)
		if out.SerialNumber != bad.SerialNumber || out.RevokedAt == "" {
			t.Fatalf("revoke %+v", out)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/"+bad.SerialNumber+"/revoke", e.Token, nil), 400, "BadRequest")
		// A revoked certificate cannot be deleted before it expires: that would take it off the CRL.
		assertError(t, e.Do(t, "DELETE", "/api/v1/pki/certificates/"+bad.SerialNumber, e.Token, nil), 400, "BadRequest")
		var c struct{ Certificate certOut }
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+bad.SerialNumber, e.Token, nil).Decode(t, &c)
		if c.Certificate.Status != "revoked" || c.Certificate.RevokedAt == nil || c.Certificate.RevocationReason == nil || *c.Certificate.RevocationReason != 1 {
			t.Fatalf("revoked certificate %+v", c.Certificate)
		}

		// Both CRL routes, without a token.
		for _, path := range []string{"/api/v1/pki/crl/" + inter.ID + "/der", "/api/v1/pki/crl/" + inter.ID} {
			r = e.Do(t, "GET", path, "", nil)
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", path, r.Status, r.Body)
			}
		}
		crl, err = x509.ParseRevocationList(r.Body)
		if err != nil || len(crl.RevokedCertificateEntries) != 1 ||
			fmt.Sprintf("%x", crl.RevokedCertificateEntries[0].SerialNumber) != strings.TrimLeft(bad.SerialNumber, "0") ||
			crl.RevokedCertificateEntries[0].ReasonCode != 1 || crl.Number.Int64() < 2 {
			t.Fatalf("CRL after revocation %+v %v", crl, err)
		}
		var crls []struct{ ID, CRL string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID+"/crls", e.Token, nil).Decode(t, &crls)
		if len(crls) != 1 || crls[0].ID != inter.ID || !strings.Contains(crls[0].CRL, "BEGIN X509 CRL") {
			t.Fatalf("crls %+v", crls)
		}

		dir := t.TempDir()
		var rc struct{ Certificate string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID+"/certificate", e.Token, nil).Decode(t, &rc)
		rootPEM := writeFile(t, dir, "root.pem", rc.Certificate)
		chain := writeFile(t, dir, "chain.pem", good.CertificateChain)
		crlPEM := writeFile(t, dir, "crl.pem", crls[0].CRL)
		if out, ok := openssl(t, "verify", "-crl_check", "-CAfile", rootPEM, "-untrusted", chain, "-CRLfile", crlPEM,
			writeFile(t, dir, "good.pem", good.Certificate)); !ok {
			t.Fatalf("openssl -crl_check rejects the unrevoked certificate: %s", out)
		}
		out2, ok := openssl(t, "verify", "-crl_check", "-CAfile", rootPEM, "-untrusted", chain, "-CRLfile", crlPEM,
			writeFile(t, dir, "bad.pem", bad.Certificate))
		if ok || !strings.Contains(out2, "revoked") {
			t.Fatalf("openssl -crl_check accepts the revoked certificate: %s", out2)
		}

		// A revocation whose CRL was never made (its node died in between)
		// reaches the CRL at the next read: the CA counts revocations and
		// the stored CRL says how many it covers.
		oldCRL := e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID, "", nil).Body // one entry
		late := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "late.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+late.SerialNumber+"/revoke", e.Token, nil)
		blob := fmt.Sprintf("X'%x'", oldCRL)
		if d == store.Postgres {
			blob = fmt.Sprintf("decode('%x', 'hex')", oldCRL)
		}
		rawExec(t, e, `UPDATE pki_cas SET crl = `+blob+`, crl_rev = crl_rev - 1 WHERE id = '`+inter.ID+`'`)
		if crl, err = x509.ParseRevocationList(oldCRL); err != nil || len(crl.RevokedCertificateEntries) != 1 {
			t.Fatalf("old CRL %v %v", crl, err)
		}
		r = e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID, "", nil)
		if crl, err = x509.ParseRevocationList(r.Body); err != nil || len(crl.RevokedCertificateEntries) != 2 {
			t.Fatalf("CRL after a lost update: %v %v", crl, err)
		}
		if n := countRows(t, e, `SELECT COUNT(*) FROM pki_cas WHERE crl_rev = revocation_rev AND id = '`+inter.ID+`'`); n != 1 {
			t.Fatalf("the CRL read did not catch up")
		}
		// A revoked certificate that expired before the last CRL signed
		// after its expiry leaves the CRL (RFC 5280, 5.1.2.6): the CRL is
		// signed again on every revocation, and must not grow for ever.
		expired := strconv.FormatInt(time.Now().Add(-pki.CRLLifetime-time.Hour).UnixMicro(), 10)
		rawExec(t, e, `UPDATE pki_certificates SET not_after = `+expired+` WHERE serial_number = '`+late.SerialNumber+`'`)
		rawExec(t, e, `UPDATE pki_cas SET crl_rev = crl_rev - 1 WHERE id = '`+inter.ID+`'`)
		r = e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID, "", nil)
		if crl, err = x509.ParseRevocationList(r.Body); err != nil || len(crl.RevokedCertificateEntries) != 1 ||
			fmt.Sprintf("%x", crl.RevokedCertificateEntries[0].SerialNumber) != strings.TrimLeft(bad.SerialNumber, "0") {
			t.Fatalf("CRL once a revoked certificate has long expired: %d entries (%v), want the unexpired one", len(crl.RevokedCertificateEntries), err)
		}

		// Unknown or malformed CRL ids are 404; a pending CA has no CRL.
		pending := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Pending", "keyAlgorithm": "ec-prime256v1"})
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "nope", pending.ID} {
			assertError(t, e.Do(t, "GET", "/api/v1/pki/crl/"+id+"/der", "", nil), 404, "NotFound")
		}

		// A disabled CA issues nothing, and its CRL is still served.
		e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+inter.ID, e.Token, map[string]any{"status": "disabled"})
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/issue-certificate", e.Token, map[string]any{"commonName": "x", "ttl": "1h"}), 400, "BadRequest")
		e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID, "", nil)
		e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+inter.ID, e.Token, map[string]any{"status": "active"})
		// The root cannot go while the intermediate it signed stands.
		assertError(t, e.Do(t, "DELETE", "/api/v1/pki/ca/"+root.ID, e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "DELETE", "/api/v1/pki/ca/"+inter.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/pki/certificates/"+good.SerialNumber, e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v1/pki/ca/"+root.ID, e.Token, nil)
	})
}

func TestPKITemplateLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "templates"})
		root := rootCA(t, e, p.ID, "Template Root", "ec-prime256v1")
		var tm struct {
			CertificateTemplate struct {
				ID, Name, CAID, TTL string
				KeyUsages           []string
			}
		}
		e.Must(t, 200, "POST", "/api/v1/pki/certificate-templates", e.Token, map[string]any{"caId": root.ID, "name": "web",
			"commonName": "*.example.com", "subjectAlternativeName": "*.example.com, 127.0.0.*", "ttl": "1d",
			"keyUsages": []string{"digital_signature", "key_encipherment"}, "extendedKeyUsages": []string{"server_auth"}}).Decode(t, &tm)
		tid := tm.CertificateTemplate.ID
		if tid == "" || tm.CertificateTemplate.TTL != "1d" || tm.CertificateTemplate.CAID != root.ID {
			t.Fatalf("template %+v", tm)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificate-templates", e.Token, map[string]any{"caId": root.ID, "name": "web",
			"commonName": "*", "subjectAlternativeName": "*", "ttl": "1d"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificate-templates", e.Token, map[string]any{"caId": root.ID, "name": "bad-ttl",
			"commonName": "*", "subjectAlternativeName": "*", "ttl": "soon"}), 422, "ValidationFailure")

		issueT := func(body map[string]any) apptest.Response {
			body["certificateTemplateId"] = tid
			if _, ok := body["keyAlgorithm"]; !ok {
				body["keyAlgorithm"] = "ec-prime256v1"
			}
			return e.Do(t, "POST", "/api/v1/pki/certificates/issue-certificate", e.Token, body)
		}
		// Within bounds; the template's TTL applies when none is asked.
		var ok issuedOut
		r := issueT(map[string]any{"commonName": "www.example.com", "altNames": "www.example.com,127.0.0.1"})
		if r.Status != 200 {
			t.Fatalf("in bounds: %d %s", r.Status, r.Body)
		}
		r.Decode(t, &ok)
		lc := parsePEMCert(t, ok.Certificate)
		if lc.NotAfter.Sub(lc.NotBefore) != 24*time.Hour || len(lc.ExtKeyUsage) != 1 || lc.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Fatalf("template defaults: %v %v", lc.NotAfter.Sub(lc.NotBefore), lc.ExtKeyUsage)
		}
		// Empty usage lists are the template's: a certificate without the
		// extensions would serve any purpose.
		r = issueT(map[string]any{"commonName": "www.example.com", "ttl": "1h", "keyUsages": []string{}, "extendedKeyUsages": []string{}})
		if r.Status != 200 {
			t.Fatalf("empty usage lists: %d %s", r.Status, r.Body)
		}
		var empty issuedOut
		r.Decode(t, &empty)
		if ec := parsePEMCert(t, empty.Certificate); ec.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment ||
			len(ec.ExtKeyUsage) != 1 || ec.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Fatalf("empty usage lists gave key usage %v, extended %v", ec.KeyUsage, ec.ExtKeyUsage)
		}
		var c struct{ Certificate certOut }
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+ok.SerialNumber, e.Token, nil).Decode(t, &c)
		if c.Certificate.CertificateTemplateID == nil || *c.Certificate.CertificateTemplateID != tid {
			t.Fatalf("certificate's template %+v", c.Certificate)
		}
		for name, body := range map[string]map[string]any{
			"wrong common name":         {"commonName": "www.evil.com", "ttl": "1h"},
			"two labels for one *":      {"commonName": "a.b.example.com", "ttl": "1h"},
			"wrong alternative name":    {"commonName": "www.example.com", "altNames": "www.evil.com", "ttl": "1h"},
			"IP outside the glob":       {"commonName": "www.example.com", "altNames": "10.0.0.1", "ttl": "1h"},
			"TTL too long":              {"commonName": "www.example.com", "ttl": "2d"},
			"notAfter too far":          {"commonName": "www.example.com", "notAfter": time.Now().Add(72 * time.Hour).Format(time.RFC3339)},
			"key usage not allowed":     {"commonName": "www.example.com", "ttl": "1h", "keyUsages": []string{"data_encipherment"}},
			"ext key usage not allowed": {"commonName": "www.example.com", "ttl": "1h", "extendedKeyUsages": []string{"code_signing"}},
			// The glob's * matches a run of a name's label, nothing else.
			"an e-mail under the glob": {"commonName": "www.example.com", "altNames": "ceo@corp.example.com", "ttl": "1h"},
			"a URI under the glob":     {"commonName": "www.example.com", "altNames": "spiffe://prod/sa/admin.example.com", "ttl": "1h"},
			"a control character":      {"commonName": "a\nb.example.com", "ttl": "1h"},
			"an IP outside the glob":   {"commonName": "www.example.com", "altNames": "::1", "ttl": "1h"},
		} {
			if r := issueT(body); r.Status != 400 {
				t.Fatalf("%s: status %d, want 400", name, r.Status) // a 200's body holds a private key
			}
		}
		// The same limits bound signing a CSR.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "evil.com"}}, key)
		csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/sign-certificate", e.Token, map[string]any{"certificateTemplateId": tid,
			"csr": csrPEM, "ttl": "1h"}), 400, "BadRequest")
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/sign-certificate", e.Token, map[string]any{"certificateTemplateId": tid,
			"csr": csrPEM, "commonName": "api.example.com", "ttl": "1h"})

		// A CA that requires templates issues and signs through one only:
		// a bare caId would take any name, usage and lifetime.
		bare := map[string]any{"commonName": "login.bank.example", "ttl": "1h", "keyAlgorithm": "ec-prime256v1",
			"extendedKeyUsages": []string{"server_auth", "code_signing"}}
		issue(t, e, e.Token, root.ID, bare)
		var ca struct {
			CA struct{ RequireTemplateForIssuance bool }
		}
		e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+root.ID, e.Token, map[string]any{"requireTemplateForIssuance": true}).Decode(t, &ca)
		if !ca.CA.RequireTemplateForIssuance {
			t.Fatalf("CA after requiring templates: %+v", ca)
		}
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID, e.Token, nil).Decode(t, &ca)
		if !ca.CA.RequireTemplateForIssuance {
			t.Fatalf("CA read back: %+v", ca)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+root.ID+"/issue-certificate", e.Token, bare), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/issue-certificate", e.Token, map[string]any{"caId": root.ID,
			"commonName": "www.example.com", "ttl": "1h"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/sign-certificate", e.Token, map[string]any{"caId": root.ID,
			"csr": csrPEM, "commonName": "api.example.com", "ttl": "1h"}), 400, "BadRequest")
		if r := issueT(map[string]any{"commonName": "www.example.com", "ttl": "1h"}); r.Status != 200 {
			t.Fatalf("through the template while templates are required: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+root.ID, e.Token, map[string]any{"requireTemplateForIssuance": false})
		issue(t, e, e.Token, root.ID, bare)
		// Given at creation too.
		strict := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "root", "commonName": "Strict Root",
			"keyAlgorithm": "ec-prime256v1", "requireTemplateForIssuance": true})
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+strict.ID+"/issue-certificate", e.Token, bare), 400, "BadRequest")

		// Update widens the TTL; list and delete.
		e.Must(t, 200, "PATCH", "/api/v1/pki/certificate-templates/"+tid, e.Token, map[string]any{"ttl": "7d"})
		if r := issueT(map[string]any{"commonName": "www.example.com", "ttl": "2d"}); r.Status != 200 {
			t.Fatalf("after widening: %d %s", r.Status, r.Body)
		}
		var list struct{ CertificateTemplates []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/pki/certificate-templates?projectId="+p.ID, e.Token, nil).Decode(t, &list)
		if len(list.CertificateTemplates) != 1 {
			t.Fatalf("templates %+v", list)
		}
		e.Must(t, 200, "DELETE", "/api/v1/pki/certificate-templates/"+tid, e.Token, nil)
		assertError(t, issueT(map[string]any{"commonName": "www.example.com"}), 404, "NotFound")
	})
}

func TestPKIRefusalsAndBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "bounds"})
		root := rootCA(t, e, p.ID, "Bounds Root", "ec-prime256v1")
		many := make([]string, 101)
		for i := range many {
			many[i] = fmt.Sprintf("h%d.example.com", i)
		}
		ec := func(b map[string]any) map[string]any { b["keyAlgorithm"] = "ec-prime256v1"; return b }
		for name, c := range map[string]struct {
			body   map[string]any
			status int
		}{
			"101 alternative names":   {ec(map[string]any{"commonName": "a", "ttl": "1h", "altNames": strings.Join(many, ",")}), 422},
			"no ttl nor notAfter":     {ec(map[string]any{"commonName": "a"}), 422},
			"ttl and notAfter":        {ec(map[string]any{"commonName": "a", "ttl": "1h", "notAfter": "2030-01-01"}), 422},
			"ttl beyond ten years":    {ec(map[string]any{"commonName": "a", "ttl": "4000d"}), 422},
			"negative ttl":            {ec(map[string]any{"commonName": "a", "ttl": "-1h"}), 422},
			"no common name":          {ec(map[string]any{"ttl": "1h"}), 422},
			"long common name":        {ec(map[string]any{"commonName": strings.Repeat("a", 65), "ttl": "1h"}), 422},
			"bad key algorithm":       {map[string]any{"commonName": "a", "ttl": "1h", "keyAlgorithm": "rsa-1024"}, 422},
			"bad host name":           {ec(map[string]any{"commonName": "a", "ttl": "1h", "altNames": "bad host!"}), 422},
			"bad typed name":          {ec(map[string]any{"commonName": "a", "ttl": "1h", "altNames": []map[string]string{{"type": "ip_address", "value": "x"}}}), 422},
			"leaf with cert signing":  {ec(map[string]any{"commonName": "a", "ttl": "1h", "keyUsages": []string{"key_cert_sign"}}), 422},
			"unknown usage":           {ec(map[string]any{"commonName": "a", "ttl": "1h", "extendedKeyUsages": []string{"everything"}}), 422},
			"CSR on issue":            {ec(map[string]any{"commonName": "a", "ttl": "1h", "csr": "x"}), 422},
			"notBefore before the CA": {ec(map[string]any{"commonName": "a", "notBefore": "2000-01-01", "notAfter": "2030-01-01"}), 422},
		} {
			r := e.Do(t, "POST", "/api/v1/pki/ca/"+root.ID+"/issue-certificate", e.Token, c.body)
			if r.Status != c.status {
				t.Fatalf("%s: %d, want %d: %s", name, r.Status, c.status, r.Body)
			}
		}
		short := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "root", "commonName": "Short Root", "keyAlgorithm": "ec-prime256v1",
			"notAfter": time.Now().Add(30 * 24 * time.Hour).Format(time.RFC3339)})
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+short.ID+"/issue-certificate", e.Token, ec(map[string]any{"commonName": "a", "ttl": "60d"})), 400, "BadRequest")
		huge := "-----BEGIN CERTIFICATE REQUEST-----\n" + strings.Repeat("A", 20000) + "\n-----END CERTIFICATE REQUEST-----\n"
		for name, csr := range map[string]string{"huge": huge, "garbage": "not a csr", "bad base64": "-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n"} {
			if r := e.Do(t, "POST", "/api/v1/pki/ca/"+root.ID+"/sign-certificate", e.Token, map[string]any{"csr": csr, "ttl": "1h"}); r.Status != 422 {
				t.Fatalf("CSR %s: %d %s", name, r.Status, r.Body)
			}
		}
		for name, body := range map[string]map[string]any{
			"no type":         {"projectId": p.ID, "commonName": "x"},
			"empty subject":   {"projectId": p.ID, "type": "root"},
			"bad country":     {"projectId": p.ID, "type": "root", "commonName": "x", "country": "USA"},
			"bad date":        {"projectId": p.ID, "type": "root", "commonName": "x", "notAfter": "tomorrow"},
			"over 30 years":   {"projectId": p.ID, "type": "root", "commonName": "x", "keyAlgorithm": "ec-prime256v1", "notAfter": time.Now().AddDate(31, 0, 0).Format(time.RFC3339)},
			"root w/ parent":  {"projectId": p.ID, "type": "root", "commonName": "x", "parentCaId": root.ID},
			"bad path length": {"projectId": p.ID, "type": "root", "commonName": "x", "maxPathLength": -2},
		} {
			if r := e.Do(t, "POST", "/api/v1/pki/ca", e.Token, body); r.Status != 422 {
				t.Fatalf("CA %s: %d %s", name, r.Status, r.Body)
			}
		}
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
			assertError(t, e.Do(t, "GET", "/api/v1/pki/ca/"+id, e.Token, nil), 404, "NotFound")
			assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+id+"/issue-certificate", e.Token, ec(map[string]any{"commonName": "a", "ttl": "1h"})), 404, "NotFound")
		}
		for _, serial := range []string{"00ff", "zz", strings.Repeat("a", 100)} {
			assertError(t, e.Do(t, "GET", "/api/v1/pki/certificates/"+serial, e.Token, nil), 404, "NotFound")
		}
	})
}

func TestPKIAuthorization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "bravo"})
		caA := rootCA(t, e, a.ID, "Alpha Root", "ec-prime256v1")
		caB := rootCA(t, e, b.ID, "Bravo Root", "ec-prime256v1")
		certA := issue(t, e, e.Token, caA.ID, map[string]any{"commonName": "a.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		certB := issue(t, e, e.Token, caB.ID, map[string]any{"commonName": "b.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		leaf := map[string]any{"commonName": "x.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"}

		// A viewer reads CAs and certificates but issues, revokes and reads keys not.
		_, viewer := projectMember(t, e, a.ID, "viewer-a", "viewer")
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+caA.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/ca?projectId="+a.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+certA.SerialNumber, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+certA.SerialNumber+"/certificate", viewer, nil)
		for _, r := range []apptest.Response{
			e.Do(t, "POST", "/api/v1/pki/ca/"+caA.ID+"/issue-certificate", viewer, leaf),
			e.Do(t, "POST", "/api/v1/pki/certificates/issue-certificate", viewer, map[string]any{"caId": caA.ID, "commonName": "x", "ttl": "1h"}),
			e.Do(t, "POST", "/api/v1/pki/certificates/"+certA.SerialNumber+"/revoke", viewer, nil),
			e.Do(t, "GET", "/api/v1/pki/certificates/"+certA.SerialNumber+"/bundle", viewer, nil),
			e.Do(t, "POST", "/api/v1/pki/ca", viewer, map[string]any{"projectId": a.ID, "type": "root", "commonName": "v"}),
			e.Do(t, "PATCH", "/api/v1/pki/ca/"+caA.ID, viewer, map[string]any{"status": "disabled"}),
			e.Do(t, "DELETE", "/api/v1/pki/ca/"+caA.ID, viewer, nil),
			e.Do(t, "POST", "/api/v1/pki/certificate-templates", viewer, map[string]any{"caId": caA.ID, "name": "v", "commonName": "*", "subjectAlternativeName": "*", "ttl": "1h"}),
		} {
			assertError(t, r, 403, "PermissionDenied")
		}

		// A member issues and revokes, but cannot create or change a CA.
		_, member := projectMember(t, e, a.ID, "member-a", "member")
		issue(t, e, member, caA.ID, leaf)
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca", member, map[string]any{"projectId": a.ID, "type": "root", "commonName": "m"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/pki/ca/"+caA.ID, member, map[string]any{"status": "disabled"}), 403, "PermissionDenied")

		// Project A's identity cannot touch project B's CA, certificates or CRL list:
		// B's ids are not found, and the answers do not name project B.
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/pki/ca/"+caB.ID, member, nil),
			e.Do(t, "POST", "/api/v1/pki/ca/"+caB.ID+"/issue-certificate", member, leaf),
			e.Do(t, "POST", "/api/v1/pki/certificates/issue-certificate", member, map[string]any{"caId": caB.ID, "commonName": "x", "ttl": "1h"}),
			e.Do(t, "GET", "/api/v1/pki/ca/"+caB.ID+"/crls", member, nil),
			e.Do(t, "GET", "/api/v1/pki/ca/"+caB.ID+"/certificate", member, nil),
			e.Do(t, "DELETE", "/api/v1/pki/ca/"+caB.ID, member, nil),
			e.Do(t, "GET", "/api/v1/pki/certificates/"+certB.SerialNumber, member, nil),
			e.Do(t, "GET", "/api/v1/pki/certificates/"+certB.SerialNumber+"/bundle", member, nil),
			e.Do(t, "POST", "/api/v1/pki/certificates/"+certB.SerialNumber+"/revoke", member, nil),
			e.Do(t, "DELETE", "/api/v1/pki/certificates/"+certB.SerialNumber, member, nil),
		} {
			assertError(t, r, 404, "NotFound")
			if strings.Contains(string(r.Body), b.ID) {
				t.Fatalf("the answer names project B: %s", r.Body)
			}
		}
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/pki/ca?projectId="+b.ID, member, nil),
			e.Do(t, "GET", "/api/v1/pki/certificates?projectId="+b.ID, member, nil),
			e.Do(t, "POST", "/api/v1/pki/ca", member, map[string]any{"projectId": b.ID, "type": "root", "commonName": "intruder"}),
		} {
			assertError(t, r, 403, "PermissionDenied")
		}
		// Even an admin of both cannot mix them: B's CA is not a parent, or a
		// template's CA, in A.
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca", e.Token, map[string]any{"projectId": a.ID, "type": "intermediate", "commonName": "mix",
			"parentCaId": caB.ID, "keyAlgorithm": "ec-prime256v1"}), 404, "NotFound")
		var tm struct{ CertificateTemplate struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/pki/certificate-templates", e.Token, map[string]any{"caId": caA.ID, "name": "t", "commonName": "*",
			"subjectAlternativeName": "*", "ttl": "1h"}).Decode(t, &tm)
		assertError(t, e.Do(t, "POST", "/api/v1/pki/certificates/issue-certificate", e.Token, map[string]any{"caId": caB.ID,
			"certificateTemplateId": tm.CertificateTemplate.ID, "commonName": "x", "ttl": "1h"}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PATCH", "/api/v1/pki/certificate-templates/"+tm.CertificateTemplate.ID, e.Token, map[string]any{"caId": caB.ID}), 404, "NotFound")

		// B's certificate is untouched.
		var c struct{ Certificate certOut }
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+certB.SerialNumber, e.Token, nil).Decode(t, &c)
		if c.Certificate.Status != "active" {
			t.Fatalf("B's certificate after A's member tried it: %+v", c.Certificate)
		}
		// No token: 401, except the CRL.
		assertError(t, e.Do(t, "GET", "/api/v1/pki/ca/"+caA.ID, "", nil), 401, "UnauthorizedError")
	})
}

func TestPKIExpiringCertificates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "alerts"})
		root := rootCA(t, e, p.ID, "Alert Root", "ec-prime256v1")
		soon := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "soon.example.com", "ttl": "2d", "keyAlgorithm": "ec-prime256v1"})
		issue(t, e, e.Token, root.ID, map[string]any{"commonName": "later.example.com", "ttl": "60d", "keyAlgorithm": "ec-prime256v1"})
		revoked := issue(t, e, e.Token, root.ID, map[string]any{"commonName": "gone.example.com", "ttl": "1d", "keyAlgorithm": "ec-prime256v1"})
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+revoked.SerialNumber+"/revoke", e.Token, nil)
		var out struct {
			Certificates []certOut
			TotalCount   int
		}
		e.Must(t, 200, "GET", "/api/v1/pki/alerts/expiring-certificates?projectId="+p.ID+"&days=7", e.Token, nil).Decode(t, &out)
		if len(out.Certificates) != 1 || out.Certificates[0].SerialNumber != soon.SerialNumber {
			t.Fatalf("expiring within 7 days: %+v", out)
		}
		e.Must(t, 200, "GET", "/api/v1/pki/alerts/expiring-certificates?projectId="+p.ID+"&days=90", e.Token, nil).Decode(t, &out)
		if len(out.Certificates) != 2 || out.Certificates[0].SerialNumber != soon.SerialNumber {
			t.Fatalf("expiring within 90 days: %+v", out)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/pki/alerts/expiring-certificates?projectId="+p.ID+"&days=0", e.Token, nil), 422, "ValidationFailure")
		// Infisical's project lists, by slug or id.
		for _, ref := range []string{p.Slug, p.ID} {
			e.Must(t, 200, "GET", "/api/v2/workspace/"+ref+"/certificates?limit=2", e.Token, nil).Decode(t, &out)
			if out.TotalCount != 3 || len(out.Certificates) != 2 {
				t.Fatalf("workspace certificates by %s: %+v", ref, out)
			}
			var cas struct{ CAs []caOut }
			e.Must(t, 200, "GET", "/api/v2/workspace/"+ref+"/cas", e.Token, nil).Decode(t, &cas)
			if len(cas.CAs) != 1 || cas.CAs[0].ID != root.ID {
				t.Fatalf("workspace cas by %s: %+v", ref, cas)
			}
			e.Must(t, 200, "GET", "/api/v2/workspace/"+ref+"/certificate-templates", e.Token, nil)
		}
		e.Must(t, 200, "GET", "/api/v1/pki/certificates?projectId="+p.ID, e.Token, nil).Decode(t, &out)
		if out.TotalCount != 3 || len(out.Certificates) != 3 {
			t.Fatalf("list %+v", out)
		}
	})
}

// Revocations racing each other all reach the CRL: each re-signs it under a
// compare-and-set on the CRL number, and a loser signs again.
func TestPKIConcurrentRevocationsAllReachTheCRL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "race"})
		root := rootCA(t, e, p.ID, "Race Root", "ec-prime256v1")
		const n = 8
		serials := make([]string, n)
		for i := range serials {
			serials[i] = issue(t, e, e.Token, root.ID, map[string]any{"commonName": fmt.Sprintf("c%d.example.com", i), "ttl": "1h",
				"keyAlgorithm": "ec-prime256v1"}).SerialNumber
		}
		e.Must(t, 200, "GET", "/api/v1/pki/crl/"+root.ID, "", nil) // a first CRL, to race against
		errc := make(chan error, n)
		for _, s := range serials {
			go func() {
				r := e.Do(t, "POST", "/api/v1/pki/certificates/"+s+"/revoke", e.Token, map[string]any{"revocationReason": "SUPERSEDED"})
				if r.Status != 200 {
					errc <- fmt.Errorf("revoke %s: %d %s", s, r.Status, r.Body)
					return
				}
				errc <- nil
			}()
		}
		for range n {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		r := e.Must(t, 200, "GET", "/api/v1/pki/crl/"+root.ID+"/der", "", nil)
		crl, err := x509.ParseRevocationList(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		on := map[string]bool{}
		for _, entry := range crl.RevokedCertificateEntries {
			on[fmt.Sprintf("%x", entry.SerialNumber)] = true
		}
		for _, s := range serials {
			if !on[strings.TrimLeft(s, "0")] {
				t.Fatalf("revoked %s missing from the CRL (%d entries)", s, len(on))
			}
		}
	})
}

// An intermediate signed by a CA lockbox knows nothing of: openssl makes
// the external root and signs the intermediate's CSR; lockbox imports the
// result, issues under it, and openssl verifies the chain to the external root.
func TestPKIExternalCAWithOpenSSL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "external"})
		dir := t.TempDir()
		extKey, extPEM := filepath.Join(dir, "ext.key"), filepath.Join(dir, "ext.pem")
		if out, ok := openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", extKey,
			"-out", extPEM, "-subj", "/CN=External Root", "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
			"-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash"); !ok {
			t.Fatalf("openssl req: %s", out)
		}
		inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Issued Externally",
			"keyAlgorithm": "ec-prime256v1"})
		var csr struct{ CSR string }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID+"/csr", e.Token, nil).Decode(t, &csr)
		csrFile := writeFile(t, dir, "inter.csr", csr.CSR)
		sign := func(name, ext string) string {
			t.Helper()
			out := filepath.Join(dir, name+".pem")
			if o, ok := openssl(t, "x509", "-req", "-in", csrFile, "-CA", extPEM, "-CAkey", extKey, "-set_serial", "4242", "-days", "10",
				"-out", out, "-extfile", writeFile(t, dir, name+".cnf", ext)); !ok {
				t.Fatalf("openssl x509 -req: %s", o)
			}
			b, _ := os.ReadFile(out)
			return string(b)
		}
		extRoot, _ := os.ReadFile(extPEM)
		notCA := sign("not-ca", "basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\n")
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": notCA, "certificateChain": string(extRoot)}), 422, "ValidationFailure")
		good := sign("inter", "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"+
			"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
		e.Must(t, 200, "POST", "/api/v1/pki/ca/"+inter.ID+"/import-certificate", e.Token, map[string]any{
			"certificate": good, "certificateChain": string(extRoot)})
		var got struct{ CA caOut }
		e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID, e.Token, nil).Decode(t, &got)
		if got.CA.Status != "active" || got.CA.ParentCAID != nil || got.CA.MaxPathLength != 0 || got.CA.SerialNumber == nil {
			t.Fatalf("imported %+v", got.CA)
		}
		leaf := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "ext.example.com", "ttl": "1h", "keyAlgorithm": "ec-prime256v1"})
		if out, ok := openssl(t, "verify", "-CAfile", extPEM, "-untrusted", writeFile(t, dir, "chain.pem", leaf.CertificateChain),
			writeFile(t, dir, "leaf.pem", leaf.Certificate)); !ok {
			t.Fatalf("openssl verify to the external root: %s", out)
		}
		// Its CRL is signed by the imported certificate's key and parses.
		r := e.Must(t, 200, "GET", "/api/v1/pki/crl/"+inter.ID+"/der", "", nil)
		crl, err := x509.ParseRevocationList(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(parsePEMCert(t, good)); err != nil {
			t.Fatalf("CRL signature: %v", err)
		}
	})
}

// TestACertificateIsDeletedOnlyOnceExpired: a member who may delete
// certificates cannot delete the record of one still valid, which would
// leave a certificate nobody can revoke (the revocation and the CRL are made
// from the record): refused, and it can still be revoked. Once expired it
// can be deleted.
func TestACertificateIsDeletedOnlyOnceExpired(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Clock: clock.Now})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "pki-delete"})
	_, member := projectMember(t, e, p.ID, "pki-deleter", "member")
	ca := rootCA(t, e, p.ID, "Delete Root", "ec-prime256v1")
	active := issue(t, e, member, ca.ID, map[string]any{"commonName": "admin.example.com", "ttl": "1h"})
	assertError(t, e.Do(t, "DELETE", "/api/v1/pki/certificates/"+active.SerialNumber, member, nil), 400, "BadRequest")
	e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+active.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "KEY_COMPROMISE"})
	crl, err := x509.ParseRevocationList(e.Must(t, 200, "GET", "/api/v1/pki/crl/"+ca.ID+"/der", "", nil).Body)
	if err != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the CRL after the revocation: %v, %v", crl, err)
	}
	other := issue(t, e, member, ca.ID, map[string]any{"commonName": "other.example.com", "ttl": "1h"})
	clock.Add(2 * time.Hour)
	for _, serial := range []string{active.SerialNumber, other.SerialNumber} {
		e.Must(t, 200, "DELETE", "/api/v1/pki/certificates/"+serial, member, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/pki/certificates/"+serial, member, nil), 404, "NotFound")
	}
}

// TestACertificateIsStoredOnlyUnderAnActiveCA: an issuance checks its CA
// when it starts and again when it stores the certificate, in the same
// transaction (the CA's row held until the insert is in). One that waited
// for a key-generation slot while an admin disabled the CA was stored and
// answered 200 (PKI and SSH alike): now nothing is stored, and a 400 says
// why. A certificate of an active CA is stored as before.
func TestACertificateIsStoredOnlyUnderAnActiveCA(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		ctx := context.Background()
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ca-status"})
		ca := rootCA(t, e, p.ID, "Status Root", "ec-prime256v1")
		ssh := createSSHCA(t, e, e.Token, p.ID, "ED25519")
		now := time.Now().UTC().Truncate(time.Second)
		cert := func(serial string) pki.Certificate {
			return pki.Certificate{ID: uuid.NewString(), ProjectID: p.ID, CAID: ca.ID, Status: pki.CertActive, SerialNumber: serial,
				CommonName: "x", NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
		}
		sshCert := func(serial string) sshca.Cert {
			return sshca.Cert{ID: uuid.NewString(), ProjectID: p.ID, CAID: ssh.ID, Serial: serial, Type: sshca.UserCert,
				Principals: []string{"deploy"}, KeyID: "k", NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now}
		}
		ev := audit.Event{Type: "issue-cert", OrgID: e.OrgID}
		if err := e.DB.CreateCertificate(ctx, cert("0a01"), pki.Basis{}, ev); err != nil {
			t.Fatalf("a certificate of an active CA: %v", err)
		}
		if err := e.DB.RecordSSHCert(ctx, sshCert("101"), sshca.Basis{}, ev); err != nil {
			t.Fatalf("an SSH certificate of an active CA: %v", err)
		}
		e.Must(t, 200, "PATCH", "/api/v1/pki/ca/"+ca.ID, e.Token, map[string]any{"status": "disabled"})
		e.Must(t, 200, "PATCH", "/api/v1/ssh/ca/"+ssh.ID, e.Token, map[string]any{"status": "disabled"})
		if err := e.DB.CreateCertificate(ctx, cert("0a02"), pki.Basis{}, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("a certificate of a disabled CA: %v", err)
		}
		if err := e.DB.RecordSSHCert(ctx, sshCert("102"), sshca.Basis{}, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("an SSH certificate of a disabled CA: %v", err)
		}
		if _, err := e.DB.CertificateBySerial(ctx, "0a02"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("the refused certificate was stored: %v", err)
		}
	})
}
