package sshca

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
)

func TestPrincipalPatterns(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		p        string
		want     bool
	}{
		{[]string{"deploy"}, "deploy", true},
		{[]string{"deploy"}, "deployer", false},
		{[]string{"ops-*"}, "ops-alice", true},
		{[]string{"ops-*"}, "dev-alice", false},
		{[]string{"*"}, "anyone", true},
		{[]string{"*.example.com"}, "web.example.com", true},
		{[]string{"*.example.com"}, "a.b.example.com", true},
		{[]string{"*.example.com"}, "example.com", false},
		{[]string{"*.example.com"}, "web.example.com.evil.org", false},
		{[]string{"web-?.example.com"}, "web-1.example.com", true},
		{[]string{"web-?.example.com"}, "web-12.example.com", false},
		{nil, "deploy", false},
	} {
		if got := allowed(c.patterns, c.p); got != c.want {
			t.Errorf("allowed(%q, %q) = %v, want %v", c.patterns, c.p, got, c.want)
		}
	}
	for _, bad := range []string{"", "a b", "[abc]", `a\b`, "root;rm", "a/b", "x\ny"} {
		if _, err := checkPatterns("allowedUsers", []string{bad}); errs.KindOf(err) != errs.Validation {
			t.Errorf("pattern %q accepted: %v", bad, err)
		}
	}
	for _, bad := range []string{"*", "a*", "", "a,b", "a b", "ü"} {
		if _, err := checkPrincipals(UserCert, []string{bad}); errs.KindOf(err) != errs.Validation {
			t.Errorf("user principal %q accepted: %v", bad, err)
		}
	}
	for _, bad := range []string{"-web.example.com", "web_1.example.com", "web..example.com"} {
		if _, err := checkPrincipals(HostCert, []string{bad}); errs.KindOf(err) != errs.Validation {
			t.Errorf("host principal %q accepted: %v", bad, err)
		}
	}
	if ps, err := checkPrincipals(UserCert, []string{" deploy ", "deploy", "svc$"}); err != nil || len(ps) != 2 || ps[0] != "deploy" {
		t.Fatalf("principals %v %v", ps, err)
	}
}

func TestExtensionsAndCriticalOptions(t *testing.T) {
	if m, err := checkExtensions(nil); err != nil || len(m) != 5 {
		t.Fatalf("default extensions %v %v", m, err)
	}
	if m, err := checkExtensions(map[string]string{}); err != nil || len(m) != 0 {
		t.Fatalf("no extensions %v %v", m, err)
	}
	if _, err := checkExtensions(map[string]string{"permit-pty": "", "login@example.com": "x", "no-touch-required": ""}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"permit-pty": "yes"}, {"permit-root": ""}, {"x@": ""}, {"a@b@c": ""}} {
		if _, err := checkExtensions(bad); errs.KindOf(err) != errs.Validation {
			t.Errorf("extensions %v accepted", bad)
		}
	}
	m, err := checkCriticalOptions(map[string]string{"source-address": "10.0.0.0/8, 192.168.1.1,::1", "force-command": "/usr/bin/true", "verify-required": ""})
	if err != nil || m["source-address"] != "10.0.0.0/8,192.168.1.1,::1" {
		t.Fatalf("critical options %v %v", m, err)
	}
	for _, bad := range []map[string]string{{"source-address": "example.com"}, {"force-command": ""}, {"force-command": "a\nb"},
		{"verify-required": "yes"}, {"permit-pty": ""}} {
		if _, err := checkCriticalOptions(bad); errs.KindOf(err) != errs.Validation {
			t.Errorf("critical options %v accepted", bad)
		}
	}
}

func TestAlgorithmsAndKeys(t *testing.T) {
	for in, want := range map[string]Algorithm{"": ED25519, "ed25519": ED25519, "EC_prime256v1": ECDSAP256, "ec-secp384r1": ECDSAP384,
		"RSA_2048": RSA2048, "rsa-4096": RSA4096} {
		if got, err := ParseAlgorithm("keyAlgorithm", in, ED25519); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %q %v", in, got, err)
		}
	}
	if _, err := ParseAlgorithm("keyAlgorithm", "DSA", ED25519); errs.KindOf(err) != errs.Validation {
		t.Fatalf("DSA: %v", err)
	}
	// Every algorithm makes a key that signs a certificate x/crypto/ssh verifies.
	for _, a := range Algorithms {
		if a == RSA4096 && testing.Short() {
			continue
		}
		k, err := generateKey(a)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := marshalPrivate(k, "test")
		if err != nil {
			t.Fatal(err)
		}
		signer, err := parsePrivate(raw)
		if err != nil {
			t.Fatal(err)
		}
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		key, _ := ssh.NewPublicKey(pub)
		now := time.Now()
		c, err := SignCert(signer, key, CertSpec{Type: UserCert, Serial: newSerial(), KeyID: "k", Principals: []string{"u"},
			ValidAfter: now.Add(-time.Minute), ValidBefore: now.Add(time.Minute), Extensions: DefaultExtensions()})
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		checker := ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return string(k.Marshal()) == string(signer.PublicKey().Marshal()) }}
		if err := checker.CheckCert("u", c); err != nil {
			t.Fatalf("%s certificate: %v", a, err)
		}
		if (a == RSA2048 || a == RSA4096) && c.Signature.Format != ssh.KeyAlgoRSASHA512 {
			t.Fatalf("%s signs with %s", a, c.Signature.Format)
		}
	}
	// Public keys: certificates, weak RSA and junk are refused.
	weak := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDEj7h8kqYxFJh2NxwdYuvbqNKoo9NRf3tV0S+N1AQ7jXZqzFH1FIqnq3YbHQ4HGLtQmDHYQJbzCJY7GkZpNBvQyMy6L5ZFBaqwXR7lTrrhLStN3RrZmyeFmpsxQoO1KJ1zOVBFhn5VrhD8JXwH4trWhW8IH6o0S1NmRJw8ePp5ow=="
	for _, bad := range []string{"", "junk", weak, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl b"} {
		if _, err := ParsePublicKey(bad); errs.KindOf(err) != errs.Validation {
			t.Errorf("public key %.30q accepted: %v", bad, err)
		}
	}
	if _, err := ParsePublicKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host\n"); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for range 10000 {
		n := newSerial()
		if n == 0 || n >= 1<<63 || seen[n] {
			t.Fatalf("serial %d", n)
		}
		seen[n] = true
	}
}

// With every generation slot taken, an RSA key waits, then is refused with
// 429 and Retry-After; an ed25519 key needs no slot.
func TestSlowGenerationIsBounded(t *testing.T) {
	s := NewService(nil, nil, nil, nil)
	s.gen = keygen.NewPool(2, 50*time.Millisecond)
	var held []func()
	for range s.gen.Cap() {
		release, err := s.gen.Acquire(context.Background(), "test")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, release)
	}
	start := time.Now()
	_, err := s.generate(context.Background(), RSA4096)
	e, ok := err.(*errs.Error)
	if !ok || e.Kind != errs.RateLimited || e.RetryAfter != 1 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("saturated RSA generation: %v", err)
	}
	if _, err := s.generate(context.Background(), ED25519); err != nil {
		t.Fatalf("ed25519 generation needs no slot: %v", err)
	}
	held[0]()
	if _, err := s.generate(context.Background(), RSA2048); err != nil {
		t.Fatalf("with a free slot: %v", err)
	}
	if s.gen.InUse() != s.gen.Cap()-1 {
		t.Fatalf("the slot was not given back: %d of %d", s.gen.InUse(), s.gen.Cap())
	}
}
