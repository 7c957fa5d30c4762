// Package cloudtest stands in, on loopback, for the identity providers the
// platform logins check against: a token issuer's keys (Signer), AWS STS
// (STS), Google's key endpoints (GoogleKeys) and Entra ID (Entra). Each
// answers as the real service does for what lockbox asks of it, and counts
// the requests it gets, so tests can prove caching. For tests only.
package cloudtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer is a workload's token issuer: a key, its algorithm and kid.
type Signer struct {
	Method jwt.SigningMethod
	Key    crypto.Signer
	Kid    string
}

// NewSigner makes a signer of kind "rsa" (RS256), "ec" (ES256) or "ed"
// (EdDSA).
func NewSigner(t testing.TB, kind, kid string) Signer {
	t.Helper()
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return Signer{jwt.SigningMethodRS256, k, kid}
	case "ec":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return Signer{jwt.SigningMethodES256, k, kid}
	case "ed":
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return Signer{jwt.SigningMethodEdDSA, k, kid}
	}
	t.Fatalf("kind %s", kind)
	return Signer{}
}

// PublicPEM is the public key, PKIX in PEM.
func (s Signer) PublicPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// CertPEM is a self-signed certificate of the key, as Google publishes its
// signing keys ({kid: PEM certificate}).
func (s Signer) CertPEM(t testing.TB) string {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: s.Kid},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, s.Key.Public(), s.Key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// JWK is the key as a JWKS member.
func (s Signer) JWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := s.Key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": s.Kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, _ := k.Bytes()
		return map[string]any{"kty": "EC", "kid": s.Kid, "crv": "P-256", "x": b64(b[1:33]), "y": b64(b[33:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": s.Kid, "crv": "Ed25519", "x": b64(k)}
	}
	return nil
}

// Sign signs claims, with the kid in the header when the signer has one.
func (s Signer) Sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.Method, c)
	if s.Kid != "" {
		tok.Header["kid"] = s.Kid
	}
	out, err := tok.SignedString(s.Key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TLSServerFor starts a TLS server whose certificate, from a fresh CA,
// names hosts, and returns the CA as a pool.
func TLSServerFor(t testing.TB, h http.Handler, hosts ...string) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lockbox test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: hosts, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return srv, pool
}

// caPEM is a TLS test server's certificate in PEM, for a caCert setting.
func caPEM(srv *httptest.Server) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}
