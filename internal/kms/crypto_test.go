package kms_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/kms"
)

// material returns one key per algorithm, generated once per test binary
// (an RSA-4096 key takes a second or more to make).
var material = sync.OnceValue(func() map[kms.Algorithm][]byte {
	out := map[kms.Algorithm][]byte{}
	for _, a := range []kms.Algorithm{kms.AES256GCM, kms.AES128GCM, kms.RSA4096, kms.ECCNISTP256} {
		raw, err := kms.Generate(a)
		if err != nil {
			panic(err)
		}
		out[a] = raw
	}
	return out
})

func load(t testing.TB, a kms.Algorithm) *kms.Material {
	t.Helper()
	m, err := kms.Load(a, material()[a])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func isBadRequest(err error) bool { return errs.Is(err, errs.Invalid) }

func TestParseAlgorithm(t *testing.T) {
	for _, c := range []struct {
		usage kms.Usage
		in    string
		want  kms.Algorithm
	}{
		{kms.EncryptDecrypt, "", kms.AES256GCM},
		{kms.EncryptDecrypt, "aes-256-gcm", kms.AES256GCM},
		{kms.EncryptDecrypt, "AES-128-GCM", kms.AES128GCM},
		{kms.SignVerify, "RSA_4096", kms.RSA4096},
		{kms.SignVerify, "rsa-4096", kms.RSA4096},
		{kms.SignVerify, "ECC_NIST_P256", kms.ECCNISTP256},
		{kms.SignVerify, "ecc-nist-p256", kms.ECCNISTP256},
	} {
		got, err := kms.ParseAlgorithm(c.usage, c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseAlgorithm(%s, %q) = %q, %v; want %q", c.usage, c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		usage kms.Usage
		in    string
	}{{kms.EncryptDecrypt, "RSA_4096"}, {kms.SignVerify, "aes-256-gcm"}, {kms.SignVerify, ""}, {kms.EncryptDecrypt, "des"}} {
		if _, err := kms.ParseAlgorithm(c.usage, c.in); !errs.Is(err, errs.Validation) {
			t.Errorf("ParseAlgorithm(%s, %q): %v, want a validation error", c.usage, c.in, err)
		}
	}
}

func TestEncryptRoundTripAndVersions(t *testing.T) {
	for _, a := range []kms.Algorithm{kms.AES256GCM, kms.AES128GCM} {
		t.Run(string(a), func(t *testing.T) {
			m := load(t, a)
			for _, version := range []int{1, 2, 70000} {
				for _, pt := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{7}, kms.MaxData)} {
					ct, err := m.Encrypt(pt, version)
					if err != nil {
						t.Fatal(err)
					}
					if len(ct) > len(pt)+kms.CiphertextOverhead {
						t.Fatalf("ciphertext of %d bytes for %d of plaintext", len(ct), len(pt))
					}
					v, body, err := kms.CiphertextVersion(ct)
					if err != nil || v != version {
						t.Fatalf("version %d read as %d, %v", version, v, err)
					}
					got, err := m.Decrypt(body)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("round trip: %v", err)
					}
				}
			}
		})
	}
}

// A version-1 ciphertext made the way Infisical makes one (nonce, sealed
// data and tag, "v01") decrypts, built here without the package's Encrypt.
func TestInfisicalVersion1Format(t *testing.T) {
	raw := material()[kms.AES256GCM]
	b, _ := aes.NewCipher(raw)
	g, _ := cipher.NewGCM(b)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	blob := append(append([]byte{}, nonce...), g.Seal(nil, nonce, []byte("from infisical"), nil)...)
	blob = append(blob, "v01"...)
	v, body, err := kms.CiphertextVersion(blob)
	if err != nil || v != 1 {
		t.Fatalf("version %d, %v", v, err)
	}
	pt, err := load(t, kms.AES256GCM).Decrypt(body)
	if err != nil || string(pt) != "from infisical" {
		t.Fatalf("%q %v", pt, err)
	}
}

func TestTamperedCiphertextIsABadRequest(t *testing.T) {
	m := load(t, kms.AES256GCM)
	ct, _ := m.Encrypt([]byte("attack at dawn"), 1)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		v, body, err := kms.CiphertextVersion(bad)
		if err == nil {
			if v != 1 {
				continue // the trailer now names another version: the service finds no such version
			}
			_, err = m.Decrypt(body)
		}
		if !isBadRequest(err) {
			t.Fatalf("byte %d flipped: %v, want a 400", i, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("v01"), []byte("short-v02"), ct[:len(ct)-1], append(bytes.Clone(ct), 'x'),
		append(make([]byte, 40), 0, 0, 0, 0, 'v', '0', '2'), append(make([]byte, 40), 0, 0, 0, 1, 'v', '0', '2')} {
		v, body, err := kms.CiphertextVersion(bad)
		if err == nil {
			_, err = m.Decrypt(body)
		}
		if !isBadRequest(err) {
			t.Fatalf("%q (version %d): %v, want a 400", bad, v, err)
		}
	}
	// Another key of the same algorithm cannot open it.
	other, _ := kms.Generate(kms.AES256GCM)
	om, _ := kms.Load(kms.AES256GCM, other)
	_, body, _ := kms.CiphertextVersion(ct)
	if _, err := om.Decrypt(body); !isBadRequest(err) {
		t.Fatalf("another key: %v", err)
	}
}

func TestSignVerifyEveryAlgorithm(t *testing.T) {
	data := []byte("the quick brown fox")
	for _, a := range []kms.Algorithm{kms.RSA4096, kms.ECCNISTP256} {
		m := load(t, a)
		pub, err := x509.ParsePKIXPublicKey(m.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		for _, sa := range kms.SigningAlgorithms(a) {
			t.Run(string(sa), func(t *testing.T) {
				sig, err := m.Sign(sa, data, false)
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := m.Verify(sa, data, sig, false); !ok || err != nil {
					t.Fatalf("verify: %v %v", ok, err)
				}
				// The signature verifies with the standard library and the
				// published public key, independently of Verify.
				h, digest := hashOf(sa, data)
				if !stdVerify(pub, sa, h, digest, sig) {
					t.Fatal("the standard library does not verify the signature")
				}
				// A signature over a digest is the same kind of signature.
				dsig, err := m.Sign(sa, digest, true)
				if err != nil {
					t.Fatal(err)
				}
				if ok, _ := m.Verify(sa, data, dsig, false); !ok {
					t.Fatal("a digest's signature does not verify against the data")
				}
				if ok, _ := m.Verify(sa, digest, sig, true); !ok {
					t.Fatal("the data's signature does not verify against the digest")
				}
				// Tampering is a clean false.
				bad := bytes.Clone(sig)
				bad[len(bad)/2] ^= 0x40
				for _, s := range [][]byte{bad, nil, []byte("junk"), sig[:len(sig)-1]} {
					if ok, err := m.Verify(sa, data, s, false); ok || err != nil {
						t.Fatalf("tampered signature: %v %v", ok, err)
					}
				}
				if ok, _ := m.Verify(sa, []byte("the quick brown fix"), sig, false); ok {
					t.Fatal("signature verifies for other data")
				}
				// A digest of the wrong size is a 400.
				if _, err := m.Sign(sa, data, true); !isBadRequest(err) {
					t.Fatalf("sign non-digest with isDigest: %v", err)
				}
				if _, err := m.Verify(sa, data, sig, true); !isBadRequest(err) {
					t.Fatalf("verify non-digest with isDigest: %v", err)
				}
			})
		}
	}
}

func TestSigningAlgorithmMustFitTheKey(t *testing.T) {
	rsaKey, ecKey := load(t, kms.RSA4096), load(t, kms.ECCNISTP256)
	for _, c := range []struct {
		m  *kms.Material
		sa kms.SigningAlgorithm
	}{{rsaKey, kms.ECDSASHA256}, {ecKey, kms.RSAPSSSHA256}, {ecKey, "ED25519_SHA_512"}, {rsaKey, "RSASSA_PSS_SHA_1"}, {rsaKey, ""}} {
		if _, err := c.m.Sign(c.sa, []byte("x"), false); !isBadRequest(err) || !strings.Contains(err.Error(), "cannot be used") {
			t.Errorf("sign with %q: %v", c.sa, err)
		}
		if _, err := c.m.Verify(c.sa, []byte("x"), []byte("sig"), false); !isBadRequest(err) {
			t.Errorf("verify with %q: %v", c.sa, err)
		}
	}
	if kms.SigningAlgorithms(kms.AES256GCM) != nil {
		t.Fatal("a symmetric key lists signing algorithms")
	}
	if _, err := load(t, kms.AES256GCM).Sign(kms.RSAPSSSHA256, []byte("x"), false); !isBadRequest(err) {
		t.Fatalf("sign with a symmetric key: %v", err)
	}
}

func TestLoadRefusesMismatchedMaterial(t *testing.T) {
	mat := material()
	for _, c := range []struct {
		a   kms.Algorithm
		raw []byte
	}{{kms.AES256GCM, mat[kms.AES128GCM]}, {kms.AES128GCM, mat[kms.AES256GCM]}, {kms.RSA4096, mat[kms.ECCNISTP256]},
		{kms.ECCNISTP256, mat[kms.RSA4096]}, {kms.RSA4096, []byte("junk")}, {"none", mat[kms.AES256GCM]}} {
		if _, err := kms.Load(c.a, c.raw); err == nil {
			t.Errorf("Load(%s) of other material succeeded", c.a)
		}
	}
}

func hashOf(sa kms.SigningAlgorithm, data []byte) (crypto.Hash, []byte) {
	switch {
	case strings.HasSuffix(string(sa), "512"):
		s := sha512.Sum512(data)
		return crypto.SHA512, s[:]
	case strings.HasSuffix(string(sa), "384"):
		s := sha512.Sum384(data)
		return crypto.SHA384, s[:]
	}
	s := sha256.Sum256(data)
	return crypto.SHA256, s[:]
}

func stdVerify(pub any, sa kms.SigningAlgorithm, h crypto.Hash, digest, sig []byte) bool {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, digest, sig)
	case *rsa.PublicKey:
		if strings.Contains(string(sa), "PSS") {
			return rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size()}) == nil
		}
		return rsa.VerifyPKCS1v15(p, h, digest, sig) == nil
	}
	return false
}

var sink []byte

func BenchmarkEncrypt1KiB(b *testing.B) {
	m := load(b, kms.AES256GCM)
	pt := make([]byte, 1024)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = m.Encrypt(pt, 1)
	}
}

func BenchmarkDecrypt1KiB(b *testing.B) {
	m := load(b, kms.AES256GCM)
	ct, _ := m.Encrypt(make([]byte, 1024), 3)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		_, body, _ := kms.CiphertextVersion(ct)
		sink, _ = m.Decrypt(body)
	}
}

func benchSign(b *testing.B, a kms.Algorithm, sa kms.SigningAlgorithm) {
	m := load(b, a)
	data := make([]byte, 1024)
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = m.Sign(sa, data, false)
	}
}

func benchVerify(b *testing.B, a kms.Algorithm, sa kms.SigningAlgorithm) {
	m := load(b, a)
	data := make([]byte, 1024)
	sig, _ := m.Sign(sa, data, false)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := m.Verify(sa, data, sig, false); !ok {
			b.Fatal("does not verify")
		}
	}
}

func BenchmarkSignRSAPSS256(b *testing.B)   { benchSign(b, kms.RSA4096, kms.RSAPSSSHA256) }
func BenchmarkSignECDSA256(b *testing.B)    { benchSign(b, kms.ECCNISTP256, kms.ECDSASHA256) }
func BenchmarkVerifyRSAPSS256(b *testing.B) { benchVerify(b, kms.RSA4096, kms.RSAPSSSHA256) }
func BenchmarkVerifyECDSA256(b *testing.B)  { benchVerify(b, kms.ECCNISTP256, kms.ECDSASHA256) }
