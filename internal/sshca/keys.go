package sshca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Algorithm is a key algorithm, named as Infisical names it on the wire.
type Algorithm string

// The key algorithms of CAs and issued key pairs.
const (
	ED25519   Algorithm = "ED25519"
	ECDSAP256 Algorithm = "EC_prime256v1"
	ECDSAP384 Algorithm = "EC_secp384r1"
	RSA2048   Algorithm = "RSA_2048"
	RSA4096   Algorithm = "RSA_4096"
)

// Algorithms lists every algorithm, in the order docs show them.
var Algorithms = []Algorithm{ED25519, ECDSAP256, ECDSAP384, RSA2048, RSA4096}

// ParseAlgorithm accepts a wire name (case-insensitively, "-" for "_");
// empty means def.
func ParseAlgorithm(field, s string, def Algorithm) (Algorithm, error) {
	if strings.TrimSpace(s) == "" {
		return def, nil
	}
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	for _, a := range Algorithms {
		if strings.ToLower(string(a)) == norm {
			return a, nil
		}
	}
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return "", errs.Fieldf(field, "%s must be one of %s", field, strings.Join(names, ", "))
}

// slow reports whether generating a key of a takes long enough to need a
// generation slot (RSA: tens of milliseconds to seconds of one core).
func (a Algorithm) slow() bool { return a == RSA2048 || a == RSA4096 }

// generateKey makes a new private key of algorithm a.
func generateKey(a Algorithm) (crypto.Signer, error) {
	switch a {
	case ED25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key algorithm %q", a)
}

// marshalPrivate encodes a private key in OpenSSH's format, the one
// ssh-keygen writes and ssh -i reads.
func marshalPrivate(k crypto.Signer, comment string) ([]byte, error) {
	b, err := ssh.MarshalPrivateKey(k, comment)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(b), nil
}

// parsePrivate reads what marshalPrivate wrote and returns a signer. An
// RSA CA signs with rsa-sha2-512 (OpenSSH refuses ssh-rsa, SHA-1, for
// certificates).
func parsePrivate(raw []byte) (ssh.Signer, error) {
	k, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		return nil, err
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		return nil, err
	}
	if s.PublicKey().Type() == ssh.KeyAlgoRSA {
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("RSA signer cannot choose its algorithm")
		}
		return ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512})
	}
	return s, nil
}

// authorizedKey renders a public key or certificate as one authorized_keys
// line without its newline.
func authorizedKey(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

// MaxPublicKeyBytes bounds a public key to sign (an RSA-16384 key is ~2.8 kB
// in authorized_keys form).
const MaxPublicKeyBytes = 16 << 10

// ParsePublicKey reads a public key in authorized_keys form ("ssh-ed25519
// AAAA... comment"). Certificates and keys too weak to trust are refused.
func ParsePublicKey(s string) (ssh.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errs.Fieldf("publicKey", "publicKey is required")
	}
	if len(s) > MaxPublicKeyBytes {
		return nil, errs.Fieldf("publicKey", "publicKey is longer than %d bytes", MaxPublicKeyBytes)
	}
	k, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil || strings.TrimSpace(string(rest)) != "" {
		return nil, errs.Fieldf("publicKey", "publicKey must be one OpenSSH public key (such as the contents of id_ed25519.pub)")
	}
	switch k.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	case ssh.KeyAlgoRSA:
		ck, ok := k.(ssh.CryptoPublicKey)
		if !ok {
			return nil, errs.Fieldf("publicKey", "publicKey is not a usable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || rk.N.BitLen() < 2048 {
			return nil, errs.Fieldf("publicKey", "An RSA publicKey must have at least 2048 bits")
		}
	default:
		return nil, errs.Fieldf("publicKey", "publicKey of type %s cannot be signed; use ed25519, ecdsa or rsa", k.Type())
	}
	return k, nil
}

// CertType says whom a certificate identifies.
type CertType string

// Certificate types.
const (
	UserCert CertType = "user"
	HostCert CertType = "host"
)

// ParseCertType accepts "user" or "host"; empty is user.
func ParseCertType(s string) (CertType, error) {
	switch strings.TrimSpace(s) {
	case "", "user":
		return UserCert, nil
	case "host":
		return HostCert, nil
	}
	return "", errs.Fieldf("certType", "certType must be user or host")
}

// Backdate is how far before the moment of issue a certificate becomes
// valid, so that a server whose clock is a little behind accepts it.
const Backdate = 30 * time.Second

// CertSpec is what one certificate says.
type CertSpec struct {
	Type            CertType
	Serial          uint64
	KeyID           string
	Principals      []string
	ValidAfter      time.Time
	ValidBefore     time.Time
	Extensions      map[string]string // user certificates only
	CriticalOptions map[string]string // user certificates only
}

// SignCert makes the certificate spec describes for key, signed by ca.
func SignCert(ca ssh.Signer, key ssh.PublicKey, spec CertSpec) (*ssh.Certificate, error) {
	c := &ssh.Certificate{
		Key:             key,
		Serial:          spec.Serial,
		CertType:        ssh.UserCert,
		KeyId:           spec.KeyID,
		ValidPrincipals: spec.Principals,
		ValidAfter:      uint64(spec.ValidAfter.Unix()),
		ValidBefore:     uint64(spec.ValidBefore.Unix()),
	}
	if spec.Type == HostCert {
		c.CertType = ssh.HostCert
	} else {
		c.Permissions = ssh.Permissions{CriticalOptions: spec.CriticalOptions, Extensions: spec.Extensions}
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		return nil, err
	}
	return c, nil
}

// newSerial returns a random serial number in [1, 2^63): unpredictable, so
// that serials reveal nothing about how many certificates a CA issued, and
// below 2^63 so that every tool reads it as a positive number.
func newSerial() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if n := binary.BigEndian.Uint64(b[:]) >> 1; n != 0 {
			return n
		}
	}
}
