package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// client drives a lockbox API as its bootstrap admin.
type client struct {
	t *testing.T
	e *apptest.Env
}

func (c client) post(path string, body map[string]any, out any) {
	c.t.Helper()
	c.e.Must(c.t, 200, "POST", path, c.e.Token, body).Decode(c.t, out)
}

func (c client) ca(projectID, alg string) (id, publicKey string) {
	c.t.Helper()
	var out struct {
		CA struct{ ID, PublicKey string }
	}
	c.post("/api/v1/ssh/ca", map[string]any{"projectId": projectID, "keyAlgorithm": alg}, &out)
	return out.CA.ID, out.CA.PublicKey
}

type issued struct{ SerialNumber, SignedKey, PrivateKey string }

// files writes a private key and its certificate for ssh -i and CertificateFile.
func files(t *testing.T, dir, name string, in issued) (key, cert string) {
	t.Helper()
	key, cert = filepath.Join(dir, name), filepath.Join(dir, name+"-cert.pub")
	if err := os.WriteFile(key, []byte(in.PrivateKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, []byte(in.SignedKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// A real OpenSSH server and client accept what lockbox signs, and refuse a
// certificate for another principal, an expired one, one from a CA the
// server does not trust, and a host certificate from the wrong CA.
func TestOpenSSHAcceptsLockboxCertificates(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	c := client{t, e}
	var project struct{ Project struct{ ID string } }
	c.post("/api/v1/projects", map[string]any{"projectName": "openssh"}, &project)
	pid := project.Project.ID
	userCA, userCAKey := c.ca(pid, "ED25519")
	rsaCA, rsaCAKey := c.ca(pid, "RSA_2048") // signs with rsa-sha2-512; OpenSSH refuses SHA-1
	hostCA, hostCAKey := c.ca(pid, "EC_prime256v1")
	otherCA, _ := c.ca(pid, "ED25519") // not trusted by the server

	// The server's host key, and its lockbox host certificate.
	const hostname = "sshd.lockbox.test"
	var host struct{ ID string }
	me := currentUser(t)
	c.post("/api/v1/ssh/hosts", map[string]any{"projectId": pid, "hostname": hostname, "userSshCaId": userCA, "hostSshCaId": hostCA,
		"loginMappings": []map[string]any{{"loginUser": me, "allowedPrincipals": map[string]any{"usernames": []string{e.IdentityID}}}}}, &host)
	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBlock, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostSSHPub, _ := ssh.NewPublicKey(hostPub)
	var hostCert issued
	c.post("/api/v1/ssh/hosts/"+host.ID+"/issue-host-cert", map[string]any{"publicKey": string(ssh.MarshalAuthorizedKey(hostSSHPub))}, &hostCert)
	// The user CA key as a server fetches it: by host, without a token.
	served := e.Must(t, 200, "GET", "/api/v1/ssh/hosts/"+host.ID+"/user-ca-public-key", "", nil)
	if strings.TrimSpace(string(served.Body)) != userCAKey {
		t.Fatalf("served user CA key %q", served.Body)
	}
	sshd := testsvc.StartSSHD(t, testsvc.SSHDConfig{TrustedUserCAKeys: []string{string(served.Body), rsaCAKey},
		HostKey: pem.EncodeToMemory(pemBlock), HostCertificate: hostCert.SignedKey})
	dir := t.TempDir()
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte("@cert-authority "+hostname+" "+hostCAKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tplFor := func(caID, name, maxTTL string) string {
		var tpl struct{ ID string }
		c.post("/api/v1/ssh/certificate-templates", map[string]any{"sshCaId": caID, "name": name, "ttl": "10m", "maxTTL": maxTTL,
			"allowedUsers": []string{me, "someone-else"}, "allowedHosts": []string{}, "allowUserCertificates": true,
			"allowHostCertificates": false, "allowCustomKeyIds": false}, &tpl)
		return tpl.ID
	}
	tpl, rsaTpl, otherTpl := tplFor(userCA, "users", "1h"), tplFor(rsaCA, "rsa-users", "1h"), tplFor(otherCA, "untrusted", "1h")
	issue := func(tplID, principal, ttl string) issued {
		var out issued
		c.post("/api/v1/ssh/certificates/issue", map[string]any{"certificateTemplateId": tplID, "principals": []string{principal}, "ttl": ttl}, &out)
		return out
	}
	login := func(name string, in issued, kh string) (string, error) {
		key, cert := files(t, dir, name, in)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return sshd.SSH(ctx, me, key, cert, kh, hostname, "echo", "lockbox-ok")
	}
	accepts := func(name string, in issued) {
		t.Helper()
		if out, err := login(name, in, knownHosts); err != nil || strings.TrimSpace(out) != "lockbox-ok" {
			t.Fatalf("%s: ssh refused (%v): %s\nsshd log:\n%s", name, err, out, sshd.Log())
		}
	}
	refuses := func(name string, in issued, kh, why string) {
		t.Helper()
		out, err := login(name, in, kh)
		if err == nil || strings.Contains(out, "lockbox-ok") || !strings.Contains(out, why) {
			t.Fatalf("%s: ssh gave %v, %q; want a refusal with %q", name, err, out, why)
		}
	}

	accepts("allowed-principal", issue(tpl, me, ""))
	accepts("rsa-ca", issue(rsaTpl, me, ""))
	var hostUser issued
	c.post("/api/v1/ssh/hosts/"+host.ID+"/issue-user-cert", map[string]any{"loginUser": me}, &hostUser)
	accepts("host-login-mapping", hostUser)

	// The template's critical options reach sshd: force-command replaces the
	// command; a source-address the client is not in refuses the login.
	optTpl := func(name string, opts map[string]string) string {
		var tpl struct{ ID string }
		c.post("/api/v1/ssh/certificate-templates", map[string]any{"sshCaId": userCA, "name": name, "allowedUsers": []string{me},
			"allowedHosts": []string{}, "allowUserCertificates": true, "allowHostCertificates": false, "allowCustomKeyIds": false,
			"criticalOptions": opts}, &tpl)
		return tpl.ID
	}
	if out, err := login("forced", issue(optTpl("forced", map[string]string{"force-command": "echo forced-by-lockbox"}), me, ""), knownHosts); err != nil ||
		strings.TrimSpace(out) != "forced-by-lockbox" {
		t.Fatalf("force-command: %v %q", err, out)
	}
	accepts("source-loopback", issue(optTpl("from-loopback", map[string]string{"source-address": "127.0.0.0/8"}), me, ""))
	refuses("source-elsewhere", issue(optTpl("from-elsewhere", map[string]string{"source-address": "10.0.0.0/8"}), me, ""), knownHosts, "Permission denied")

	refuses("other-principal", issue(tpl, "someone-else", ""), knownHosts, "Permission denied")
	if !strings.Contains(sshd.Log(), "name is not a listed principal") {
		t.Fatalf("sshd did not refuse the principal:\n%s", sshd.Log())
	}
	refuses("untrusted-ca", issue(otherTpl, me, ""), knownHosts, "Permission denied")
	// A known_hosts that trusts another CA for the host: the host certificate is refused.
	wrong := filepath.Join(dir, "known_hosts_wrong")
	if err := os.WriteFile(wrong, []byte("@cert-authority "+hostname+" "+userCAKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refuses("wrong-host-ca", issue(tpl, me, ""), wrong, "Host key verification failed")
	// An expired certificate: the shortest TTL lockbox issues, used after it ends.
	short := issue(tpl, me, "1s")
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(short.SignedKey))
	if err != nil {
		t.Fatal(err)
	}
	until := time.Unix(int64(k.(*ssh.Certificate).ValidBefore), 0)
	if d := time.Until(until); d > 2*time.Second {
		t.Fatalf("a 1s certificate valid until %v", until)
	}
	time.Sleep(time.Until(until) + 1100*time.Millisecond)
	refuses("expired", short, knownHosts, "Permission denied")
	if !strings.Contains(sshd.Log(), "expired") {
		t.Fatalf("sshd did not log the expired certificate:\n%s", sshd.Log())
	}
}

func currentUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
