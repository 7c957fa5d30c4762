package tlscertauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
)

func mint(t *testing.T, cn string, ca bool, nb, na time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// The check is the one that failed, on the listener's chain, with the
// server's clock: the leaf's validity and an issuing CA's are told apart.
func TestVerifyNamesTheCheck(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	root, rk := mint(t, "root", true, now.Add(-48*time.Hour), now.Add(48*time.Hour), nil, nil)
	inter, ik := mint(t, "inter", true, now.Add(-48*time.Hour), now.Add(-24*time.Hour), root, rk) // expired
	liveInter, lk := mint(t, "inter", true, now.Add(-48*time.Hour), now.Add(48*time.Hour), root, rk)
	cfg, _ := json.Marshal(Config{CACertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))})
	m, err := New(authmethod.Env{Now: func() time.Time { return now }}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(nb, na time.Time, parent *x509.Certificate, pk *ecdsa.PrivateKey) *x509.Certificate {
		c, _ := mint(t, "w", false, nb, na, parent, pk)
		return c
	}
	ok := leaf(now.Add(-time.Hour), now.Add(time.Hour), liveInter, lk)
	if _, err := m.(authmethod.RequestVerifier).VerifyRequest(context.Background(),
		authmethod.Credential{PeerCertificates: []*x509.Certificate{ok, liveInter}}); err != nil {
		t.Fatalf("valid chain: %v", err)
	}
	for _, c := range []struct {
		name, check string
		chain       []*x509.Certificate
	}{
		{"expired leaf", "expiry", []*x509.Certificate{leaf(now.Add(-2*time.Hour), now.Add(-time.Hour), liveInter, lk), liveInter}},
		{"leaf not yet valid", "expiry", []*x509.Certificate{leaf(now.Add(time.Hour), now.Add(2*time.Hour), liveInter, lk), liveInter}},
		{"expired issuing CA", "expiry", []*x509.Certificate{leaf(now.Add(-time.Hour), now.Add(time.Hour), inter, ik), inter}},
		{"missing intermediate", "chain", []*x509.Certificate{ok}},
		{"none", "certificate", nil},
	} {
		_, err := m.(authmethod.RequestVerifier).VerifyRequest(context.Background(), authmethod.Credential{PeerCertificates: c.chain})
		var r *authmethod.Refusal
		if !errors.As(err, &r) || r.Check != c.check {
			t.Fatalf("%s: %v, want a refusal of check %s", c.name, err, c.check)
		}
	}
}
