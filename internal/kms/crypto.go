// Package kms keeps project keys that callers use without ever seeing them:
// symmetric keys that encrypt and decrypt, asymmetric keys that sign and
// verify, each with numbered versions, as Infisical's KMS (its "cmek" keys)
// serves them.
package kms

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Usage says what a key is for.
type Usage string

// Key usages, spelled as on the wire.
const (
	EncryptDecrypt Usage = "encrypt-decrypt"
	SignVerify     Usage = "sign-verify"
)

// Algorithm is a key's algorithm, spelled as Infisical stores it.
type Algorithm string

// Key algorithms.
const (
	AES256GCM   Algorithm = "aes-256-gcm"
	AES128GCM   Algorithm = "aes-128-gcm"
	RSA4096     Algorithm = "RSA_4096"
	ECCNISTP256 Algorithm = "ECC_NIST_P256"
)

// ParseUsage reads a key usage; empty is encrypt-decrypt, as in Infisical.
func ParseUsage(s string) (Usage, error) {
	switch Usage(strings.TrimSpace(s)) {
	case "", EncryptDecrypt:
		return EncryptDecrypt, nil
	case SignVerify:
		return SignVerify, nil
	}
	return "", errs.Invalidf("keyUsage must be one of encrypt-decrypt, sign-verify")
}

// ParseAlgorithm reads a key algorithm for usage u, accepting Infisical's
// spellings and the lower-case ones the Go SDK documents ("rsa-4096",
// "ecc-nist-p256"); empty is aes-256-gcm for encryption keys.
func ParseAlgorithm(u Usage, s string) (Algorithm, error) {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	var a Algorithm
	switch norm {
	case "":
		if u == EncryptDecrypt {
			return AES256GCM, nil
		}
	case "aes-256-gcm":
		a = AES256GCM
	case "aes-128-gcm":
		a = AES128GCM
	case "rsa-4096":
		a = RSA4096
	case "ecc-nist-p256":
		a = ECCNISTP256
	}
	switch {
	case u == EncryptDecrypt && (a == AES256GCM || a == AES128GCM):
		return a, nil
	case u == SignVerify && (a == RSA4096 || a == ECCNISTP256):
		return a, nil
	case u == EncryptDecrypt:
		return "", errs.Invalidf("encryptionAlgorithm must be a valid symmetric encryption algorithm. Valid options are: aes-256-gcm, aes-128-gcm")
	}
	return "", errs.Invalidf("encryptionAlgorithm must be a valid asymmetric sign-verify algorithm. Valid options are: RSA_4096, ECC_NIST_P256")
}

// SigningAlgorithm names a signature scheme and its hash, as Infisical does.
type SigningAlgorithm string

// Signing algorithms.
const (
	RSAPSSSHA512   SigningAlgorithm = "RSASSA_PSS_SHA_512"
	RSAPSSSHA384   SigningAlgorithm = "RSASSA_PSS_SHA_384"
	RSAPSSSHA256   SigningAlgorithm = "RSASSA_PSS_SHA_256"
	RSAPKCS1SHA512 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_512"
	RSAPKCS1SHA384 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_384"
	RSAPKCS1SHA256 SigningAlgorithm = "RSASSA_PKCS1_V1_5_SHA_256"
	ECDSASHA512    SigningAlgorithm = "ECDSA_SHA_512"
	ECDSASHA384    SigningAlgorithm = "ECDSA_SHA_384"
	ECDSASHA256    SigningAlgorithm = "ECDSA_SHA_256"
)

// SigningAlgorithms lists what a key of algorithm a may sign with, in
// Infisical's order; nil for a symmetric key.
func SigningAlgorithms(a Algorithm) []SigningAlgorithm {
	switch a {
	case RSA4096:
		return []SigningAlgorithm{RSAPSSSHA512, RSAPSSSHA384, RSAPSSSHA256, RSAPKCS1SHA512, RSAPKCS1SHA384, RSAPKCS1SHA256}
	case ECCNISTP256:
		return []SigningAlgorithm{ECDSASHA512, ECDSASHA384, ECDSASHA256}
	}
	return nil
}

func (sa SigningAlgorithm) hash() (crypto.Hash, func() hash.Hash) {
	switch {
	case strings.HasSuffix(string(sa), "_512"):
		return crypto.SHA512, sha512.New
	case strings.HasSuffix(string(sa), "_384"):
		return crypto.SHA384, sha512.New384
	}
	return crypto.SHA256, sha256.New
}

// MaxData is the most plaintext, or data to sign, one request may carry.
const MaxData = 4096

// Generate makes new key material for a: the raw AES key, or a PKCS #8
// private key.
func Generate(a Algorithm) ([]byte, error) {
	switch a {
	case AES256GCM, AES128GCM:
		key := make([]byte, aesKeySize(a))
		rand.Read(key)
		return key, nil
	case RSA4096:
		k, err := rsa.GenerateKey(rand.Reader, 4096)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case ECCNISTP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, fmt.Errorf("kms: unknown algorithm %q", a)
}

func aesKeySize(a Algorithm) int {
	if a == AES128GCM {
		return 16
	}
	return 32
}

// Material is one version of a key, unwrapped and ready to use. It is safe
// for concurrent use.
type Material struct {
	alg    Algorithm
	aead   cipher.AEAD
	rsa    *rsa.PrivateKey
	ec     *ecdsa.PrivateKey
	pubDER []byte
}

// Load parses raw key material of algorithm a, as Generate made it.
func Load(a Algorithm, raw []byte) (*Material, error) {
	m := &Material{alg: a}
	switch a {
	case AES256GCM, AES128GCM:
		if len(raw) != aesKeySize(a) {
			return nil, fmt.Errorf("kms: %s key of %d bytes", a, len(raw))
		}
		b, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		if m.aead, err = cipher.NewGCM(b); err != nil {
			return nil, err
		}
		return m, nil
	case RSA4096, ECCNISTP256:
		k, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("kms: parse private key: %w", err)
		}
		var pub any
		switch k := k.(type) {
		case *rsa.PrivateKey:
			if a != RSA4096 || k.N.BitLen() != 4096 {
				return nil, fmt.Errorf("kms: key material is not %s", a)
			}
			m.rsa, pub = k, &k.PublicKey
		case *ecdsa.PrivateKey:
			if a != ECCNISTP256 || k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("kms: key material is not %s", a)
			}
			m.ec, pub = k, &k.PublicKey
		default:
			return nil, fmt.Errorf("kms: key material is not %s", a)
		}
		if m.pubDER, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, fmt.Errorf("kms: unknown algorithm %q", a)
}

// PublicKey returns the DER SubjectPublicKeyInfo of an asymmetric key, nil
// for a symmetric one.
func (m *Material) PublicKey() []byte { return m.pubDER }

// The ciphertext format is Infisical's, so that a version-1 key's
// ciphertexts read the same in both: nonce (12 bytes), AES-GCM ciphertext
// and tag, then a trailer naming the key version. Version 1 ends in "v01";
// later versions end in the version as 4 big-endian bytes and "v02".
const (
	nonceSize     = 12
	tagSize       = 16
	trailerV1     = "v01"
	trailerV2     = "v02"
	minCiphertext = nonceSize + tagSize + len(trailerV1)
	// CiphertextOverhead is the most Encrypt adds to a plaintext's length.
	CiphertextOverhead = nonceSize + tagSize + 4 + len(trailerV2)
	maxVersion         = 1 << 30
)

// ErrCiphertext is the client-facing failure (a 400) of a ciphertext that
// is malformed, altered, or was made by another key or a deleted version.
func ErrCiphertext() error {
	return errs.BadRequest("The ciphertext could not be decrypted: it is malformed, was altered, or was not made by this key")
}

// Encrypt seals plaintext with a symmetric key's version.
func (m *Material) Encrypt(plaintext []byte, version int) ([]byte, error) {
	if m.aead == nil {
		return nil, errors.New("kms: not an encryption key")
	}
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+CiphertextOverhead)
	rand.Read(out)
	out = m.aead.Seal(out, out[:nonceSize], plaintext, nil)
	if version <= 1 {
		return append(out, trailerV1...), nil
	}
	out = binary.BigEndian.AppendUint32(out, uint32(version))
	return append(out, trailerV2...), nil
}

// CiphertextVersion reads the key version a ciphertext names, and the
// sealed part Decrypt opens.
func CiphertextVersion(ct []byte) (int, []byte, error) {
	if len(ct) < minCiphertext {
		return 0, nil, ErrCiphertext()
	}
	switch string(ct[len(ct)-3:]) {
	case trailerV1:
		return 1, ct[:len(ct)-3], nil
	case trailerV2:
		if len(ct) < minCiphertext+4 {
			return 0, nil, ErrCiphertext()
		}
		body := ct[:len(ct)-7]
		v := binary.BigEndian.Uint32(ct[len(ct)-7 : len(ct)-3])
		if v < 2 || v > maxVersion {
			return 0, nil, ErrCiphertext()
		}
		return int(v), body, nil
	}
	return 0, nil, ErrCiphertext()
}

// Decrypt opens the sealed part of a ciphertext (CiphertextVersion). A
// ciphertext that fails authentication is ErrCiphertext, a 400.
func (m *Material) Decrypt(body []byte) ([]byte, error) {
	if m.aead == nil {
		return nil, errors.New("kms: not an encryption key")
	}
	if len(body) < nonceSize+tagSize {
		return nil, ErrCiphertext()
	}
	pt, err := m.aead.Open(nil, body[:nonceSize], body[nonceSize:], nil)
	if err != nil {
		return nil, ErrCiphertext()
	}
	return pt, nil
}

// digest checks that sa fits the key and returns the hash, and the digest
// of data (or data itself when isDigest, which must then be a digest of
// the algorithm's hash).
func (m *Material) digest(sa SigningAlgorithm, data []byte, isDigest bool) (crypto.Hash, []byte, error) {
	var ok bool
	switch m.alg {
	case RSA4096:
		ok = strings.HasPrefix(string(sa), "RSASSA_")
	case ECCNISTP256:
		ok = strings.HasPrefix(string(sa), "ECDSA_")
	}
	known := false
	for _, s := range SigningAlgorithms(m.alg) {
		known = known || s == sa
	}
	if !ok || !known {
		return 0, nil, errs.BadRequest("KMS %s key cannot be used with %s; it supports %s", m.alg, sa, joinAlgs(SigningAlgorithms(m.alg)))
	}
	h, newHash := sa.hash()
	if isDigest {
		if len(data) != h.Size() {
			return 0, nil, errs.BadRequest("isDigest is set, but data is %d bytes; a %s digest is %d bytes", len(data), h, h.Size())
		}
		return h, data, nil
	}
	hh := newHash()
	hh.Write(data)
	return h, hh.Sum(nil), nil
}

func joinAlgs(as []SigningAlgorithm) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Sign signs data (or, with isDigest, a digest made with sa's hash).
// RSA-PSS uses a salt as long as the hash, ECDSA signatures are DER, as
// Infisical and OpenSSL make them.
func (m *Material) Sign(sa SigningAlgorithm, data []byte, isDigest bool) ([]byte, error) {
	h, d, err := m.digest(sa, data, isDigest)
	if err != nil {
		return nil, err
	}
	switch {
	case m.ec != nil:
		return ecdsa.SignASN1(rand.Reader, m.ec, d)
	case strings.HasPrefix(string(sa), "RSASSA_PSS_"):
		return rsa.SignPSS(rand.Reader, m.rsa, h, d, &rsa.PSSOptions{SaltLength: h.Size()})
	default:
		return rsa.SignPKCS1v15(rand.Reader, m.rsa, h, d)
	}
}

// Verify reports whether sig is a signature of data by this key with sa. A
// signature that does not verify, malformed or not, is false with no error;
// an algorithm that does not fit the key, or a digest of the wrong size, is
// a 400.
func (m *Material) Verify(sa SigningAlgorithm, data, sig []byte, isDigest bool) (bool, error) {
	h, d, err := m.digest(sa, data, isDigest)
	if err != nil {
		return false, err
	}
	switch {
	case m.ec != nil:
		return ecdsa.VerifyASN1(&m.ec.PublicKey, d, sig), nil
	case strings.HasPrefix(string(sa), "RSASSA_PSS_"):
		// Any salt length verifies (OpenSSL and others sign with the longest);
		// lockbox signs with the hash's length.
		return rsa.VerifyPSS(&m.rsa.PublicKey, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil, nil
	default:
		return rsa.VerifyPKCS1v15(&m.rsa.PublicKey, h, d, sig) == nil, nil
	}
}
