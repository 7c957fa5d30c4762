package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

func TestCLIPKI(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	dir := t.TempDir()

	ca := func(args ...string) client.PKICA {
		t.Helper()
		var out client.PKICA
		if err := json.Unmarshal([]byte(c.must(admin, append([]string{"pki", "ca", "create", "-o", "json", "--project", project}, args...)...)), &out); err != nil || out.ID == "" {
			t.Fatalf("ca create %v: %v", args, err)
		}
		return out
	}
	root := ca("--type", "root", "--common-name", "CLI Root", "--key-algorithm", "ec-prime256v1")
	inter := ca("--type", "intermediate", "--common-name", "CLI Issuing", "--parent", root.ID, "--key-algorithm", "ec-prime256v1")
	if inter.Status != "active" || inter.ParentCAID == nil || *inter.ParentCAID != root.ID {
		t.Fatalf("intermediate %+v", inter)
	}
	if out := c.must(admin, "pki", "ca", "list", "--project", project); !strings.Contains(out, "CN=CLI Root") || !strings.Contains(out, "CN=CLI Issuing") {
		t.Fatalf("ca list:\n%s", out)
	}
	rootPEM := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(rootPEM, []byte(c.must(admin, "pki", "ca", "certificate", root.ID)), 0o600); err != nil {
		t.Fatal(err)
	}

	// Issue into a directory; the key file is private; the chain verifies.
	leafDir := filepath.Join(dir, "leaf")
	serial := strings.TrimSpace(c.must(admin, "pki", "issue", "--ca", inter.ID, "--common-name", "cli.example.com", "--alt-name", "cli.example.com",
		"--alt-name", "127.0.0.1", "--ttl", "2h", "--key-algorithm", "ec-prime256v1", "--out-dir", leafDir))
	if st, err := os.Stat(filepath.Join(leafDir, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v %v", st, err)
	}
	verify := func(extra ...string) (string, bool) {
		args := append([]string{"verify", "-CAfile", rootPEM, "-untrusted", filepath.Join(leafDir, "chain.pem")}, extra...)
		out, err := exec.Command("openssl", append(args, filepath.Join(leafDir, "cert.pem"))...).CombinedOutput()
		return string(out), err == nil
	}
	if out, ok := verify(); !ok {
		t.Fatalf("openssl verify: %s", out)
	}
	// Files are not replaced without --force, and nothing is issued then;
	// with --force a loose key file is replaced and made private.
	forceDir := filepath.Join(dir, "force")
	issueForce := []string{"pki", "issue", "--ca", inter.ID, "--common-name", "force.example.com", "--ttl", "2h", "--key-algorithm", "ec-prime256v1", "--out-dir", forceDir}
	c.must(admin, issueForce...)
	before, _ := os.ReadFile(filepath.Join(forceDir, "cert.pem"))
	if r := c.run(admin, issueForce...); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("issue over existing files: exit %d, %s", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(forceDir, "cert.pem")); string(after) != string(before) {
		t.Fatal("cert.pem replaced without --force")
	}
	os.Chmod(filepath.Join(forceDir, "key.pem"), 0o644)
	c.must(admin, append(issueForce, "--force")...)
	if st, err := os.Stat(filepath.Join(forceDir, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem after --force: %v %v", st, err)
	}

	// A template refuses a name outside its globs.
	var tm client.PKITemplate
	json.Unmarshal([]byte(c.must(admin, "pki", "templates", "create", "-o", "json", "--ca", inter.ID, "--name", "svc",
		"--common-name", "*.svc.internal", "--alt-names", "*.svc.internal", "--ttl", "1d")), &tm)
	if tm.ID == "" {
		t.Fatal("template not created")
	}
	if r := c.run(admin, "pki", "issue", "--template", tm.ID, "--common-name", "evil.com", "--key-algorithm", "ec-prime256v1"); r.code == 0 ||
		!strings.Contains(r.stderr, "not allowed") {
		t.Fatalf("template let evil.com through: %d %s", r.code, r.stderr)
	}
	if out := c.must(admin, "pki", "issue", "--template", tm.ID, "--common-name", "a.svc.internal", "--key-algorithm", "ec-prime256v1"); !strings.Contains(out, "BEGIN PRIVATE KEY") {
		t.Fatalf("issue by template printed:\n%s", out)
	}

	// Revoke; the CRL (fetched without logging in) makes openssl refuse it.
	c.must(admin, "pki", "certs", "revoke", serial, "--reason", "KEY_COMPROMISE")
	if out := c.must(admin, "pki", "certs", "get", serial); !strings.Contains(out, "revoked") {
		t.Fatalf("certs get after revoke:\n%s", out)
	}
	crlDER := filepath.Join(dir, "crl.der")
	c.must(nil, "pki", "crl", inter.ID, "--out", crlDER)
	// A link at --out is replaced, its target untouched.
	victim, link := filepath.Join(dir, "victim"), filepath.Join(dir, "crl-link.der")
	os.WriteFile(victim, []byte("untouched"), 0o600)
	os.Symlink(victim, link)
	c.must(nil, "pki", "crl", inter.ID, "--out", link)
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Fatalf("pki crl wrote through a link: %q", b)
	}
	crlPEM := filepath.Join(dir, "crl.pem")
	if out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlDER, "-out", crlPEM).CombinedOutput(); err != nil {
		t.Fatalf("openssl crl: %s", out)
	}
	if out, ok := verify("-crl_check", "-CRLfile", crlPEM); ok || !strings.Contains(out, "revoked") {
		t.Fatalf("openssl -crl_check accepted a revoked certificate: %s", out)
	}
	if out := c.must(admin, "pki", "expiring", "--project", project, "--days", "1"); !strings.Contains(out, "a.svc.internal") || strings.Contains(out, "cli.example.com") {
		t.Fatalf("expiring:\n%s", out)
	}
}
