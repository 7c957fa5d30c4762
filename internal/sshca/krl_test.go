package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// keygenQuery runs ssh-keygen -Q -f krl on files and returns its verdict
// ("REVOKED" or "ok") on each, by file, with its whole report.
func keygenQuery(t *testing.T, krl string, files ...string) (map[string]string, string) {
	t.Helper()
	_, err := exec.LookPath("ssh-keygen")
	testsvc.Need(t, err, "ssh-keygen (Debian package openssh-client)")
	out, _ := exec.Command("ssh-keygen", append([]string{"-Q", "-f", krl}, files...)...).CombinedOutput()
	verdicts := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		// "<file> (<file>): REVOKED" or "...: ok"
		if i := strings.LastIndex(line, ": "); i > 0 {
			f, _, _ := strings.Cut(line[:i], " (")
			verdicts[f] = line[i+2:]
		}
	}
	return verdicts, string(out)
}

// MarshalKRL, judged by ssh-keygen -Q: the listed serials are revoked under
// their CA, others and another CA's same serial are not; an empty list
// revokes nothing.
func TestKRLJudgedBySSHKeygen(t *testing.T) {
	dir := t.TempDir()
	newSigner := func() ssh.Signer {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ca, other := newSigner(), newSigner()
	cert := func(name string, by ssh.Signer, serial uint64) string {
		key := newSigner()
		c, err := sshca.SignCert(by, key.PublicKey(), sshca.CertSpec{Type: sshca.UserCert, KeyID: name, Principals: []string{"u"},
			Serial: serial, ValidAfter: time.Now().Add(-time.Minute), ValidBefore: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+"-cert.pub")
		if err := os.WriteFile(p, ssh.MarshalAuthorizedKey(c), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	revoked1, revoked2, kept, otherCA := cert("r1", ca, 7), cert("r2", ca, 1<<62+5), cert("kept", ca, 8), cert("other", other, 7)
	krl := filepath.Join(dir, "krl")
	if err := os.WriteFile(krl, sshca.MarshalKRL(ca.PublicKey(), []uint64{1<<62 + 5, 7, 7, 0}, 3, uint64(time.Now().Unix()), "test"), 0o600); err != nil {
		t.Fatal(err)
	}
	v, out := keygenQuery(t, krl, revoked1, revoked2, kept, otherCA)
	if v[revoked1] != "REVOKED" || v[revoked2] != "REVOKED" || v[kept] != "ok" || v[otherCA] != "ok" {
		t.Fatalf("ssh-keygen -Q: %v\n%s", v, out)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, sshca.MarshalKRL(ca.PublicKey(), nil, 0, 0, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, out := keygenQuery(t, empty, revoked1); v[revoked1] != "ok" {
		t.Fatalf("ssh-keygen -Q on an empty KRL:\n%s", out)
	}
}

// A certificate revoked through the API is in the CA's KRL as served
// without a token: ssh-keygen -Q reports it revoked and another
// certificate of the CA not, and a real sshd with RevokedKeys set to the KRL
// refuses the revoked certificate while it accepts the other.
func TestOpenSSHHonoursLockboxKRL(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	c := client{t, e}
	var project struct{ Project struct{ ID string } }
	c.post("/api/v1/projects", map[string]any{"projectName": "openssh-krl"}, &project)
	pid := project.Project.ID
	userCA, userCAKey := c.ca(pid, "ED25519")
	me := currentUser(t)
	var tpl struct{ ID string }
	c.post("/api/v1/ssh/certificate-templates", map[string]any{"sshCaId": userCA, "name": "users", "allowedUsers": []string{me},
		"allowedHosts": []string{}, "allowUserCertificates": true, "allowHostCertificates": false, "allowCustomKeyIds": false}, &tpl)
	issue := func() issued {
		var out issued
		c.post("/api/v1/ssh/certificates/issue", map[string]any{"certificateTemplateId": tpl.ID, "principals": []string{me}}, &out)
		return out
	}
	bad, good := issue(), issue()
	var rev struct{ Certificate struct{ Status string } }
	c.post("/api/v1/ssh/certificates/"+bad.SerialNumber+"/revoke", map[string]any{"sshCaId": userCA}, &rev)
	if rev.Certificate.Status != "revoked" {
		t.Fatalf("revoke: %+v", rev)
	}
	krlBody := e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+userCA+"/krl", "", nil).Body

	dir := t.TempDir()
	krl := filepath.Join(dir, "ca.krl")
	if err := os.WriteFile(krl, krlBody, 0o600); err != nil {
		t.Fatal(err)
	}
	badKey, badCert := files(t, dir, "bad", bad)
	goodKey, goodCert := files(t, dir, "good", good)
	if v, out := keygenQuery(t, krl, badCert, goodCert); v[badCert] != "REVOKED" || v[goodCert] != "ok" {
		t.Fatalf("ssh-keygen -Q on lockbox's KRL:\n%s", out)
	}

	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBlock, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	sshd := testsvc.StartSSHD(t, testsvc.SSHDConfig{TrustedUserCAKeys: []string{userCAKey}, HostKey: pem.EncodeToMemory(pemBlock),
		RevokedKeys: krlBody})
	const alias = "krl.lockbox.test"
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(alias+" "+string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))), 0o600); err != nil {
		t.Fatal(err)
	}
	login := func(key, cert string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sshd.SSH(ctx, me, key, cert, knownHosts, alias, "echo", "lockbox-ok")
	}
	if out, err := login(goodKey, goodCert); err != nil || strings.TrimSpace(out) != "lockbox-ok" {
		t.Fatalf("the unrevoked certificate was refused (%v): %s\nsshd log:\n%s", err, out, sshd.Log())
	}
	if out, err := login(badKey, badCert); err == nil || strings.Contains(out, "lockbox-ok") || !strings.Contains(out, "Permission denied") {
		t.Fatalf("the revoked certificate: %v %q\nsshd log:\n%s", err, out, sshd.Log())
	}
	if !strings.Contains(sshd.Log(), "revoked") {
		t.Fatalf("sshd did not log the revocation:\n%s", sshd.Log())
	}
}
