package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
)

// Key generation holds a slot of genPool; with every slot taken, a
// generation waits and is refused with a 429, and runs again once one frees.
func TestGenerationIsBounded(t *testing.T) {
	pool := keygen.NewPool(2, 200*time.Millisecond)
	pool0 := genPool
	genPool = pool
	t.Cleanup(func() { genPool = pool0 })
	var held []func()
	for range pool.Cap() {
		release, err := pool.Acquire(context.Background(), "test")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	start := time.Now()
	_, err := generate(context.Background(), ECP256)
	if !errs.Is(err, errs.RateLimited) {
		t.Fatalf("generate with every slot taken: %v, want RateLimited", err)
	}
	if d := time.Since(start); d < pool.Wait/2 {
		t.Fatalf("refused after %v, before waiting for a slot", d)
	}
	held[0]()
	k, err := generate(context.Background(), ECP256)
	if err != nil || algorithmOf(k.Public()) != ECP256 {
		t.Fatalf("generate with a free slot: %v", err)
	}
	for _, release := range held[1:] {
		release()
	}
	if pool.InUse() != 0 {
		t.Fatalf("%d slots still held after generate returned", pool.InUse())
	}
}

func TestGlobs(t *testing.T) {
	for _, c := range []struct {
		globs, v string
		k        globKind
		want     bool
	}{
		{"*.example.com", "www.example.com", nameGlob, true},
		{"*.example.com", "a.b.example.com", nameGlob, false},
		{"**.example.com", "a.b.example.com", nameGlob, true},
		{"*.example.com", "example.com", nameGlob, false},
		{"*.example.com", "www.example.com.evil.org", nameGlob, false},
		{"*.example.com", "wwwXexample.com", nameGlob, false}, // the dot is literal
		{"api.example.com, *.internal", "db.internal", nameGlob, true},
		{"127.0.0.*", "127.0.0.1", ipGlob, true},
		{"127.0.0.*", "127.0.1.1", ipGlob, false},
		{"spiffe://example.com/**", "spiffe://example.com/ns/api", nameGlob, true},
		{"", "anything", nameGlob, false},
		{"*", "", nameGlob, true},
		// Wildcards stay inside a name: no other type's separators.
		{"*.example.com", "ceo@corp.example.com", nameGlob, false},
		{"**.example.com", "ceo@corp.example.com", nameGlob, false},
		{"*.example.com", "spiffe://prod/sa/admin.example.com", nameGlob, false},
		{"**.example.com", "spiffe://prod/sa/admin.example.com", nameGlob, false},
		{"*.example.com", "a/b.example.com", nameGlob, false},
		{"*.example.com", "a\nb.example.com", nameGlob, false},
		{"*@example.com", "alice@example.com", nameGlob, true},
		{"*@example.com", "a@b@example.com", nameGlob, false},
		// IPv6 addresses are matched with their colons.
		{"fd00::**", "fd00::1:2", ipGlob, true},
		{"fd00::*", "fd00::1", ipGlob, true},
		{"fd00::*", "fd00::1:2", ipGlob, false},
		{"*", "2001:db8::1", ipGlob, false}, // one label's glob takes in no IPv6 address
		{"**", "2001:db8::1", ipGlob, true},
		{"**", "2001:db8::1", nameGlob, false},
		// A common name may hold spaces, not control characters.
		{"*", "John Doe", cnGlob, true},
		{"*", "a\x00b", cnGlob, false},
		{"*.example.com", "a b.example.com", cnGlob, true},
		{"*.example.com", "a.b.example.com", cnGlob, false},
	} {
		if got := (globCache{}).match(c.globs, c.v, c.k); got != c.want {
			t.Errorf("match(%q, %q, %d) = %v, want %v", c.globs, c.v, c.k, got, c.want)
		}
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"3600": time.Hour, "90m": 90 * time.Minute, "24h": 24 * time.Hour, "30d": 30 * 24 * time.Hour,
		"2w": 14 * 24 * time.Hour, "1y": 365*24*time.Hour + 6*time.Hour, "10s": 10 * time.Second} {
		if got, err := ParseTTL("ttl", in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1h", "1x", "h", "1.5h", "10ms", "99999999999999999999", "4000d", "11y"} {
		if _, err := ParseTTL("ttl", in); !errs.Is(err, errs.Validation) {
			t.Errorf("ParseTTL(%q): %v, want a validation error", in, err)
		}
	}
}

func TestAltNames(t *testing.T) {
	for in, typ := range map[string]string{"a.example.com": SANDNS, "*.example.com": SANDNS, "10.0.0.1": SANIP, "::1": SANIP,
		"ops@example.com": SANEmail, "https://example.com/x": SANURI} {
		a := DetectAltName(in)
		if a.Type != typ {
			t.Errorf("DetectAltName(%q) = %s, want %s", in, a.Type, typ)
		}
		if _, err := checkAltNames([]AltName{a}); err != nil {
			t.Errorf("checkAltNames(%q): %v", in, err)
		}
	}
	for _, a := range []AltName{{SANDNS, "bad host"}, {SANDNS, "a..b"}, {SANDNS, "a.*.b"}, {SANIP, "300.1.1.1"}, {SANEmail, "no-at"},
		{SANURI, "not a uri"}, {"x400", "x"}, {SANDNS, ""},
		// Not ASCII: a certificate cannot carry the e-mail (x509 refused
		// to sign, a 500), and would carry the URI escaped.
		{SANEmail, "ä@example.com"}, {SANEmail, "a@exämple.com"}, {SANURI, "https://ä.example.com/"}} {
		if _, err := checkAltNames([]AltName{a}); !errs.Is(err, errs.Validation) {
			t.Errorf("checkAltNames(%+v): %v, want a validation error", a, err)
		}
	}
}

// BenchmarkSignLeafECP256 is the CPU of one issuance of an ECDSA P-256
// certificate by an ECDSA P-256 CA: the leaf key, the signature, the PKCS#8
// encoding (no storage, no sealing).
func BenchmarkSignLeafECP256(b *testing.B) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := newSerial()
	caT := caTemplate(serial, pkix.Name{CommonName: "bench root"}, time.Now(), time.Now().Add(time.Hour*24*365), -1)
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	b.ReportAllocs()
	for b.Loop() {
		k, err := GenerateKey(ECP256)
		if err != nil {
			b.Fatal(err)
		}
		sn, _ := newSerial()
		t := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: "svc.example.com"}, DNSNames: []string{"svc.example.com"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
		if _, err := x509.CreateCertificate(rand.Reader, t, ca, k.Public(), caKey); err != nil {
			b.Fatal(err)
		}
		if _, err := MarshalKey(k); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIPAltNamesAreCheckedAsCarried: an IP alternative name is checked
// against the template's globs, and kept, as the certificate carries it:
// an IPv4-mapped IPv6 address is the IPv4 address, so "::ffff:c0a8:101"
// is 192.168.1.1, which a glob "*" (one DNS label) does not allow.
func TestIPAltNamesAreCheckedAsCarried(t *testing.T) {
	s, err := checkAltNames([]AltName{{SANIP, "::ffff:c0a8:101"}, {SANDNS, "www"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.all[0] != "192.168.1.1" || s.kinds[0] != ipGlob || s.kinds[1] != nameGlob {
		t.Fatalf("checked as %q %v", s.all, s.kinds)
	}
	if (globCache{}).match("*", s.all[0], s.kinds[0]) {
		t.Fatal("a one-label glob allows an IP address")
	}
	if !(globCache{}).match("192.168.1.*", s.all[0], s.kinds[0]) {
		t.Fatal("the address's own glob refuses it")
	}
}

// TestAGlobIsCompiledOncePerRequest: the template's patterns are compiled
// once for all the names of a request, not once per name.
func TestAGlobIsCompiledOncePerRequest(t *testing.T) {
	c := globCache{}
	for i := range 100 {
		if !c.match("*.a.example.com, *.b.example.com", fmt.Sprintf("h%d.b.example.com", i), nameGlob) {
			t.Fatalf("name %d refused", i)
		}
	}
	if len(c) != 2 {
		t.Fatalf("%d compiled patterns for two, over 100 names", len(c))
	}
}

// An issued certificate or a CRL signed with an RSA key larger than 2048
// bits holds a slot of signPool (keygen.Signatures); with every slot taken
// it is refused with a 429, while ECDSA and RSA-2048 keys sign without one.
func TestRSASignaturesHoldASlot(t *testing.T) {
	pool := keygen.NewPool(1, 50*time.Millisecond)
	pool0 := signPool
	signPool = pool
	t.Cleanup(func() { signPool = pool0 })
	big, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	held, err := pool.Acquire(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rsaSignSlot(context.Background(), big); !errs.Is(err, errs.RateLimited) {
		t.Fatalf("RSA-3072 with every slot taken: %v, want RateLimited", err)
	}
	for name, k := range map[string]crypto.Signer{"RSA-2048": small, "P-256": ec} {
		release, err := rsaSignSlot(context.Background(), k)
		if err != nil {
			t.Fatalf("%s waited for a slot: %v", name, err)
		}
		release()
	}
	held()
	release, err := rsaSignSlot(context.Background(), big)
	if err != nil {
		t.Fatalf("RSA-3072 with a free slot: %v", err)
	}
	release()
	if pool.InUse() != 0 {
		t.Fatalf("%d slots still held", pool.InUse())
	}
}
