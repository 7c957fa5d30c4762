package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestImportedCACertificateSignsCRLs: an intermediate's certificate made by
// an external CA with no keyUsage extension (OpenSSL's v3_ca, which allows
// every usage) is taken and its CRLs are signed: Go signed none with it, so
// every revocation of the CA answered 200 and was never published, its CRL
// a 500 for good. One whose keyUsage is there but leaves out keyCertSign
// or cRLSign is refused.
func TestImportedCACertificateSignsCRLs(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "pki-import"})
	inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Imported Issuing",
		"keyAlgorithm": "ec-prime256v1"})
	var csrOut struct{ CSR string }
	e.Must(t, 200, "GET", "/api/v1/pki/ca/"+inter.ID+"/csr", e.Token, nil).Decode(t, &csrOut)
	b, _ := pem.Decode([]byte(csrOut.CSR))
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "External Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	sign := func(usage x509.KeyUsage, serial int64) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: usage, SubjectKeyId: []byte{5, 6, 7, 8}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}))
	url := "/api/v1/pki/ca/" + inter.ID + "/import-certificate"
	for _, usage := range []x509.KeyUsage{x509.KeyUsageCertSign, x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature} {
		assertError(t, e.Do(t, "POST", url, e.Token, map[string]any{"certificate": sign(usage, 2), "certificateChain": chain}),
			422, "ValidationFailure")
	}
	e.Must(t, 200, "POST", url, e.Token, map[string]any{"certificate": sign(0, 3), "certificateChain": chain})
	leaf := issue(t, e, e.Token, inter.ID, map[string]any{"commonName": "svc.example.com", "ttl": "1h"})
	e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+leaf.SerialNumber+"/revoke", e.Token, map[string]any{"revocationReason": "KEY_COMPROMISE"})
	r := e.Do(t, "GET", "/api/v1/pki/crl/"+inter.ID+"/der", "", nil)
	if r.Status != 200 {
		t.Fatalf("the imported CA's CRL: %d %s", r.Status, r.Body)
	}
	crl, err := x509.ParseRevocationList(r.Body)
	if err != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the imported CA's CRL lists %+v (%v), want the revoked certificate", crl, err)
	}
	// A name a certificate cannot carry is the caller's mistake (422), not a 500.
	for _, alt := range []any{[]map[string]any{{"type": "email", "value": "ä@example.com"}}, "ü@example.com"} {
		assertError(t, e.Do(t, "POST", "/api/v1/pki/ca/"+inter.ID+"/issue-certificate", e.Token, map[string]any{
			"commonName": "x", "ttl": "1h", "altNames": alt}), 422, "ValidationFailure")
	}
}

// TestIntermediatesMadeUnderAParentCanBeRevoked: an intermediate created
// with parentCaId, or renewed by its parent, is recorded as one of the
// parent's certificates, as sign-intermediate's are: revoking it puts it on
// the parent's CRL. Before, neither could be revoked by any means.
func TestIntermediatesMadeUnderAParentCanBeRevoked(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "pki-parent"})
	root := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "root", "commonName": "Parent Root",
		"keyAlgorithm": "ec-prime256v1", "notAfter": time.Now().AddDate(5, 0, 0).UTC().Format(time.RFC3339)})
	inter := createCA(t, e, e.Token, map[string]any{"projectId": p.ID, "type": "intermediate", "commonName": "Child Issuing",
		"parentCaId": root.ID, "keyAlgorithm": "ec-prime256v1", "notAfter": time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)})
	var renewed struct{ SerialNumber string }
	e.Must(t, 200, "POST", "/api/v1/pki/ca/"+inter.ID+"/renew", e.Token, map[string]any{"type": "existing",
		"notAfter": time.Now().AddDate(2, 0, 0).UTC().Format(time.RFC3339)}).Decode(t, &renewed)
	if renewed.SerialNumber == "" || renewed.SerialNumber == *inter.SerialNumber {
		t.Fatalf("renewed serial %q", renewed.SerialNumber)
	}
	for _, serial := range []string{*inter.SerialNumber, renewed.SerialNumber} {
		var got struct {
			Certificate struct{ CaID, SerialNumber string }
		}
		e.Must(t, 200, "GET", "/api/v1/pki/certificates/"+serial, e.Token, nil).Decode(t, &got)
		if got.Certificate.CaID != root.ID {
			t.Fatalf("certificate %s recorded under %q, want the parent %s", serial, got.Certificate.CaID, root.ID)
		}
		e.Must(t, 200, "POST", "/api/v1/pki/certificates/"+serial+"/revoke", e.Token, map[string]any{"revocationReason": "CA_COMPROMISE"})
	}
	var crls []struct{ ID, CRL string }
	e.Must(t, 200, "GET", "/api/v1/pki/ca/"+root.ID+"/crls", e.Token, nil).Decode(t, &crls)
	b, _ := pem.Decode([]byte(crls[0].CRL))
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("the parent's CRL lists %+v (%v), want both certificates of the intermediate", crl, err)
	}
}
