package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// TestCLIUsersAndProjectMembers drives `lockbox users` and `lockbox projects
// members` against a real server process.
func TestCLIUsersAndProjectMembers(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)

	var links []client.InviteLink
	if err := json.Unmarshal([]byte(c.must(admin, "users", "invite", "alice@example.com", "--role", "member", "-o", "json")), &links); err != nil ||
		len(links) != 1 || !strings.Contains(links[0].Link, "http://"+addr+"/signupinvite?") {
		t.Fatalf("invite: %v, %d links (want one to http://%s/signupinvite)", err, len(links), addr)
	}
	if out := c.must(admin, "users", "list"); !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "invited") {
		t.Fatalf("users list:\n%s", out)
	}
	// Alice accepts with her link.
	u, _ := url.Parse(links[0].Link)
	body, _ := json.Marshal(map[string]string{"email": "alice@example.com", "organizationId": u.Query().Get("organization_id"),
		"code": u.Query().Get("token"), "password": "alice's long password"})
	resp, err := http.Post("http://"+addr+"/api/v1/invite-org/accept", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("accept: %v %v", err, resp)
	}
	resp.Body.Close()
	if out := c.must(admin, "users", "list"); !strings.Contains(out, "accepted") {
		t.Fatalf("users list after accept:\n%s", out)
	}

	if out := c.must(admin, "projects", "members", "add", "--project", project, "alice@example.com", "--role", "viewer"); !strings.Contains(out, "viewer") {
		t.Fatalf("members add:\n%s", out)
	}
	if out := c.must(admin, "projects", "members", "list", "--project", project); !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "viewer") {
		t.Fatalf("members list:\n%s", out)
	}
	if out := c.must(admin, "projects", "members", "set-role", "--project", project, "alice@example.com", "--role", "member", "--temporary", "1h"); !strings.Contains(out, "member (until ") {
		t.Fatalf("set-role:\n%s", out)
	}
	if r := c.run(admin, "projects", "members", "add", "--project", project, "nobody@example.com"); r.code == 0 || !strings.Contains(r.stderr, "not a member of this organization") {
		t.Fatalf("adding a stranger: %+v", r)
	}
	c.must(admin, "projects", "members", "remove", "--project", project, "alice@example.com")
	var ms []client.ProjectUser
	json.Unmarshal([]byte(c.must(admin, "projects", "members", "list", "--project", project, "-o", "json")), &ms)
	if len(ms) != 0 {
		t.Fatalf("members after remove %+v", ms)
	}
	c.must(admin, "users", "remove", "alice@example.com")
	if out := c.must(admin, "users", "list"); strings.Contains(out, "alice@example.com") {
		t.Fatalf("users list after remove:\n%s", out)
	}
	if r := c.run(admin, "users", "remove", "alice@example.com"); r.code == 0 {
		t.Fatalf("removing twice: %+v", r)
	}
}
