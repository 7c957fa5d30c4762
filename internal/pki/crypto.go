package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// KeyAlgorithm is a key type, named as Infisical names it.
type KeyAlgorithm string

// Key algorithms.
const (
	RSA2048 KeyAlgorithm = "rsa-2048"
	RSA4096 KeyAlgorithm = "rsa-4096"
	ECP256  KeyAlgorithm = "ec-prime256v1"
	ECP384  KeyAlgorithm = "ec-secp384r1"
)

// ParseKeyAlgorithm checks a key algorithm name; empty means def.
func ParseKeyAlgorithm(field, s string, def KeyAlgorithm) (KeyAlgorithm, error) {
	switch a := KeyAlgorithm(strings.TrimSpace(s)); a {
	case "":
		return def, nil
	case RSA2048, RSA4096, ECP256, ECP384:
		return a, nil
	}
	return "", errs.Fieldf(field, "%s must be one of rsa-2048, rsa-4096, ec-prime256v1, ec-secp384r1", field)
}

// GenerateKey makes a new private key of algorithm a.
func GenerateKey(a KeyAlgorithm) (crypto.Signer, error) {
	switch a {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case ECP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key algorithm %q", a)
}

// algorithmOf names the algorithm of a public key, or "" when it is none of ours.
func algorithmOf(pub crypto.PublicKey) KeyAlgorithm {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048
		case 4096:
			return RSA4096
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECP256
		case elliptic.P384():
			return ECP384
		}
	}
	return ""
}

// checkCSRKey accepts the public keys a signed certificate may carry.
func checkCSRKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return errs.Fieldf("csr", "The CSR's RSA key must be 2048 to 8192 bits")
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
	case ed25519.PublicKey:
		return nil
	}
	return errs.Fieldf("csr", "The CSR's key must be RSA (2048 to 8192 bits), ECDSA (P-256, P-384, P-521) or Ed25519")
}

// MarshalKey encodes a private key as PKCS#8 DER.
func MarshalKey(k crypto.Signer) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }

// ParseKey decodes a PKCS#8 DER private key.
func ParseKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key cannot sign")
	}
	return s, nil
}

// PEMKey encodes a PKCS#8 DER private key as PEM.
func PEMKey(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// PEMCert encodes a certificate's DER as PEM.
func PEMCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// newSerial returns a random positive 127-bit serial number.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	b[0] |= 0x40 // never shorter than 16 bytes encoded
	return new(big.Int).SetBytes(b), nil
}

// SerialHex is the wire form of a serial number: lower-case hex.
func SerialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// parseCertsPEM reads every CERTIFICATE block of s; anything else in s is an error.
func parseCertsPEM(field, s string, max int) ([]*x509.Certificate, error) {
	rest := []byte(strings.TrimSpace(s))
	var out []*x509.Certificate
	for len(rest) > 0 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errs.Fieldf(field, "%s must be PEM-encoded certificates", field)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errs.Fieldf(field, "%s holds a certificate that cannot be parsed", field)
		}
		out = append(out, c)
		if len(out) > max {
			return nil, errs.Fieldf(field, "%s holds more than %d certificates", field, max)
		}
		rest = []byte(strings.TrimSpace(string(rest)))
	}
	return out, nil
}

// parseCSR reads one PEM CERTIFICATE REQUEST and checks its signature and key.
func parseCSR(s string) (*x509.CertificateRequest, error) {
	if len(s) > MaxCSRBytes {
		return nil, errs.Fieldf("csr", "The CSR cannot exceed %d characters", MaxCSRBytes)
	}
	b, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil || (b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST") || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errs.Fieldf("csr", "The CSR must be one PEM-encoded CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, errs.Fieldf("csr", "The CSR cannot be parsed")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errs.Fieldf("csr", "The CSR's signature does not verify")
	}
	return csr, checkCSRKey(csr.PublicKey)
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	k, ok := a.(eq)
	return ok && k.Equal(b)
}
