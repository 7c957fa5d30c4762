package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// lockbox ssh host-groups, host add without CAs (the project defaults),
// revoke and ca krl, end to end against a server.
func TestCLISSHHostGroupsRevokeKRL(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	dir := t.TempDir()
	var ids []struct{ Identity struct{ ID string } }
	json.Unmarshal([]byte(c.must(admin, "identities", "list", "-o", "json")), &ids)
	if len(ids) != 1 {
		t.Fatalf("identities %+v", ids)
	}
	me := ids[0]

	// A host without CA ids gets the project's default CAs.
	var host client.SSHHost
	json.Unmarshal([]byte(c.must(admin, "ssh", "host", "add", "--project", project, "--hostname", "app1.example.com", "-o", "json")), &host)
	if host.ID == "" || host.UserSshCaID == "" || host.HostSshCaID == "" {
		t.Fatalf("host add without CAs: %+v", host)
	}

	var g client.SSHHostGroup
	json.Unmarshal([]byte(c.must(admin, "ssh", "host-groups", "create", "--project", project, "--name", "apps",
		"--login", "deploy="+me.Identity.ID, "-o", "json")), &g)
	if g.ID == "" || g.Name != "apps" || len(g.LoginMappings) != 1 {
		t.Fatalf("host-groups create: %+v", g)
	}
	if out := c.must(admin, "ssh", "host-groups", "list", "--project", project); !strings.Contains(out, "apps") || !strings.Contains(out, "deploy") {
		t.Fatalf("host-groups list:\n%s", out)
	}
	key := filepath.Join(dir, "login")
	if r := c.run(admin, "ssh", "host", "issue-user-cert", host.ID, "--login-user", "deploy", "--key", key); r.code == 0 {
		t.Fatal("a login before the host joined the group")
	}
	c.must(admin, "ssh", "host-groups", "add-host", g.ID, host.ID)
	if out := c.must(admin, "ssh", "host-groups", "hosts", g.ID, "--filter", "group-members"); !strings.Contains(out, "app1.example.com") ||
		!strings.Contains(out, "yes") {
		t.Fatalf("host-groups hosts:\n%s", out)
	}
	c.must(admin, "ssh", "host", "issue-user-cert", host.ID, "--login-user", "deploy", "--key", key)

	// Revoke it by serial; the KRL lists it.
	parsed := readCert(t, key+"-cert.pub", strings.TrimSpace(c.must(nil, "ssh", "host", "ca-public-key", host.ID, "--user")))
	serial := itoa64(parsed.Serial)
	var rec client.SSHCertRecord
	json.Unmarshal([]byte(c.must(admin, "ssh", "revoke", serial, "-o", "json")), &rec)
	if rec.SerialNumber != serial || rec.Status != "revoked" || rec.SshCaID != host.UserSshCaID {
		t.Fatalf("revoke: %+v", rec)
	}
	krl := filepath.Join(dir, "ca.krl")
	c.must(nil, "ssh", "ca", "krl", host.UserSshCaID, "--out", krl)
	data, err := os.ReadFile(krl)
	if err != nil || !strings.HasPrefix(string(data), "SSHKRL\n\x00") || !strings.Contains(string(data), string(be64(parsed.Serial))) {
		t.Fatalf("krl file: %v %q", err, data)
	}

	c.must(admin, "ssh", "host-groups", "update", g.ID, "--name", "apps2")
	c.must(admin, "ssh", "host-groups", "remove-host", g.ID, host.ID)
	if r := c.run(admin, "ssh", "host", "issue-user-cert", host.ID, "--login-user", "deploy", "--key", key+"2"); r.code == 0 {
		t.Fatal("a login after the host left the group")
	}
	c.must(admin, "ssh", "host-groups", "delete", g.ID)
	if r := c.run(admin, "ssh", "host-groups", "get", g.ID); r.code == 0 {
		t.Fatal("the deleted group is still there")
	}
}

func itoa64(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func be64(n uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return b
}
