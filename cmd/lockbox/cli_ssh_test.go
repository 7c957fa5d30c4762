package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// readCert reads a certificate file and checks the CA with public key caKey signed it.
func readCert(t *testing.T, path, caKey string) *ssh.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c, ok := k.(*ssh.Certificate)
	ca, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(caKey))
	if !ok || ca == nil || string(c.SignatureKey.Marshal()) != string(ca.Marshal()) {
		t.Fatalf("%s is not a certificate of the CA", path)
	}
	return c
}

func TestCLISSHSignIssueAndHosts(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	dir := t.TempDir()

	var ca client.SSHCA
	json.Unmarshal([]byte(c.must(admin, "ssh", "ca", "create", "--project", project, "--name", "users", "-o", "json")), &ca)
	if ca.ID == "" || ca.KeyAlgorithm != "ED25519" || !strings.HasPrefix(ca.PublicKey, "ssh-ed25519 ") {
		t.Fatalf("ca create: %+v", ca)
	}
	if out := c.must(nil, "ssh", "ca", "public-key", ca.ID); strings.TrimSpace(out) != ca.PublicKey {
		t.Fatalf("ca public-key without a token: %q", out)
	}
	if out := c.must(admin, "ssh", "ca", "list", "--project", project); !strings.Contains(out, ca.ID) || !strings.Contains(out, "users") {
		t.Fatalf("ca list:\n%s", out)
	}
	var tpl client.SSHTemplate
	json.Unmarshal([]byte(c.must(admin, "ssh", "template", "create", "--ca", ca.ID, "--name", "deploy", "--allowed-users", "deploy,ops-*",
		"--max-ttl", "2h", "--critical-option", "source-address=127.0.0.1/32", "-o", "json")), &tpl)
	if tpl.ID == "" || tpl.MaxTTL != "2h" || len(tpl.AllowedUsers) != 2 || !tpl.AllowUserCertificates || tpl.AllowHostCertificates {
		t.Fatalf("template create: %+v", tpl)
	}

	// sign writes NAME-cert.pub beside NAME.pub, and will not overwrite it without --force.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	pubFile := filepath.Join(dir, "id_ed25519.pub")
	os.WriteFile(pubFile, ssh.MarshalAuthorizedKey(sp), 0o644)
	out := c.must(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "deploy,ops-ann", "--ttl", "30m")
	cert := readCert(t, filepath.Join(dir, "id_ed25519-cert.pub"), ca.PublicKey)
	if strings.Join(cert.ValidPrincipals, ",") != "deploy,ops-ann" || !strings.Contains(out, "id_ed25519-cert.pub") ||
		cert.Permissions.CriticalOptions["source-address"] != "127.0.0.1/32" {
		t.Fatalf("sign: %+v\n%s", cert, out)
	}
	if r := c.run(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "deploy"); r.code == 0 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("sign over an existing certificate: exit %d %s", r.code, r.stderr)
	}
	c.must(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "deploy", "--force")
	if r := c.run(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "root", "--out", "-"); r.code == 0 || !strings.Contains(r.stderr, "not allowed") {
		t.Fatalf("sign for a refused principal: exit %d %s", r.code, r.stderr)
	}
	privFile := filepath.Join(dir, "secret")
	os.WriteFile(privFile, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600)
	if r := c.run(admin, "ssh", "sign", privFile, "--template", tpl.ID, "--principal", "deploy"); r.code == 0 || !strings.Contains(r.stderr, "private key") {
		t.Fatalf("sign of a private key file: exit %d %s", r.code, r.stderr)
	}

	// issue writes the key pair (private key 0600) and the certificate as ssh -i expects them.
	key := filepath.Join(dir, "issued")
	c.must(admin, "ssh", "issue", "--template", tpl.ID, "--principal", "ops-bob", "--key", key, "--key-algorithm", "EC_prime256v1")
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	b, _ := os.ReadFile(key)
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	ic := readCert(t, key+"-cert.pub", ca.PublicKey)
	pb, _ := os.ReadFile(key + ".pub")
	if string(ic.Key.Marshal()) != string(signer.PublicKey().Marshal()) || strings.TrimSpace(string(pb)) != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ic.Key))) {
		t.Fatal("the issued certificate is not for the issued key")
	}
	if r := c.run(admin, "ssh", "issue", "--template", tpl.ID, "--principal", "ops-bob", "--key", key); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("issue over existing files: exit %d %s", r.code, r.stderr)
	}

	// Hosts: register one letting the admin identity log in as deploy, then log in material and a host certificate.
	var ids []struct{ Identity struct{ ID string } }
	json.Unmarshal([]byte(c.must(admin, "identities", "list", "-o", "json")), &ids)
	if len(ids) != 1 {
		t.Fatalf("identities %+v", ids)
	}
	me := ids[0]
	var host client.SSHHost
	json.Unmarshal([]byte(c.must(admin, "ssh", "host", "add", "--project", project, "--hostname", "web1.example.com", "--user-ca", ca.ID,
		"--host-ca", ca.ID, "--login", "deploy="+me.Identity.ID, "-o", "json")), &host)
	if host.ID == "" || len(host.LoginMappings) != 1 || host.LoginMappings[0].LoginUser != "deploy" {
		t.Fatalf("host add: %+v", host)
	}
	if out := c.must(admin, "ssh", "host", "list"); !strings.Contains(out, "web1.example.com") || !strings.Contains(out, "deploy") {
		t.Fatalf("host list:\n%s", out)
	}
	hk := filepath.Join(dir, "host-login")
	c.must(admin, "ssh", "host", "issue-user-cert", host.ID, "--login-user", "deploy", "--key", hk)
	if uc := readCert(t, hk+"-cert.pub", ca.PublicKey); strings.Join(uc.ValidPrincipals, ",") != "deploy" {
		t.Fatalf("host user certificate %+v", uc)
	}
	c.must(admin, "ssh", "host", "issue-host-cert", host.ID, pubFile, "--out", filepath.Join(dir, "host-cert.pub"))
	if hc := readCert(t, filepath.Join(dir, "host-cert.pub"), ca.PublicKey); hc.CertType != ssh.HostCert || hc.ValidPrincipals[0] != "web1.example.com" {
		t.Fatalf("host certificate %+v", hc)
	}
	if out := c.must(nil, "ssh", "host", "ca-public-key", host.ID, "--user"); strings.TrimSpace(out) != ca.PublicKey {
		t.Fatalf("host ca-public-key: %q", out)
	}

	// A disabled CA signs nothing until enabled; a CA goes once its host and templates are gone.
	c.must(admin, "ssh", "ca", "disable", ca.ID)
	if r := c.run(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "deploy", "--out", "-"); r.code == 0 || !strings.Contains(r.stderr, "disabled") {
		t.Fatalf("sign with a disabled CA: exit %d %s", r.code, r.stderr)
	}
	c.must(admin, "ssh", "ca", "enable", ca.ID)
	if out := c.must(admin, "ssh", "sign", pubFile, "--template", tpl.ID, "--principal", "deploy", "--out", "-"); !strings.Contains(out, "-cert-v01@openssh.com ") {
		t.Fatalf("sign --out -: %q", out)
	}
	if r := c.run(admin, "ssh", "ca", "delete", ca.ID); r.code == 0 || !strings.Contains(r.stderr, "used by an SSH host") {
		t.Fatalf("delete of a CA in use: exit %d %s", r.code, r.stderr)
	}
	c.must(admin, "ssh", "host", "delete", host.ID)
	c.must(admin, "ssh", "template", "delete", tpl.ID)
	c.must(admin, "ssh", "ca", "delete", ca.ID)
	if out := c.must(admin, "ssh", "ca", "list", "--project", project, "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("CAs left: %s", out)
	}
}
