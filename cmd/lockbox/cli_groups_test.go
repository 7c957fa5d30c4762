package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// TestCLIGroups drives `lockbox groups` and `lockbox projects groups`
// against a real server process.
func TestCLIGroups(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	mid := strings.TrimSpace(c.must(admin, "identities", "create", "ci", "--role", "member", "--plain"))
	c.must(admin, "users", "invite", "alice@example.com")

	var g client.Group
	if err := json.Unmarshal([]byte(c.must(admin, "groups", "create", "Platform", "--slug", "platform", "--role", "member", "-o", "json")), &g); err != nil ||
		g.Slug != "platform" || g.Role != "member" || g.ID == "" {
		t.Fatalf("create: %v %+v", err, g)
	}
	if out := c.must(admin, "groups", "list"); !strings.Contains(out, "platform") || !strings.Contains(out, "member") {
		t.Fatalf("list:\n%s", out)
	}
	c.must(admin, "groups", "add-user", "platform", "alice@example.com")
	c.must(admin, "groups", "add-identity", g.ID, mid)
	out := c.must(admin, "groups", "get", "platform")
	if !strings.Contains(out, "alice@example.com") || !strings.Contains(out, mid) || !strings.Contains(out, "organization role member") {
		t.Fatalf("get:\n%s", out)
	}
	if r := c.run(admin, "groups", "add-user", "platform", "nobody@example.com"); r.code == 0 || !strings.Contains(r.stderr, "nobody@example.com") {
		t.Fatalf("adding a stranger: %+v", r)
	}

	if out := c.must(admin, "projects", "groups", "add", "--project", project, "platform", "--role", "viewer"); !strings.Contains(out, "viewer") {
		t.Fatalf("projects groups add:\n%s", out)
	}
	if out := c.must(admin, "projects", "groups", "set-role", "--project", project, "platform", "--role", "member", "--temporary", "1h"); !strings.Contains(out, "member (until ") {
		t.Fatalf("projects groups set-role:\n%s", out)
	}
	var pgs []client.ProjectGroup
	if err := json.Unmarshal([]byte(c.must(admin, "projects", "groups", "list", "--project", project, "-o", "json")), &pgs); err != nil ||
		len(pgs) != 1 || pgs[0].GroupID != g.ID || len(pgs[0].Roles) != 1 || !pgs[0].Roles[0].IsTemporary {
		t.Fatalf("projects groups list: %v %+v", err, pgs)
	}
	c.must(admin, "projects", "groups", "remove", "--project", project, "platform")
	if out := c.must(admin, "projects", "groups", "list", "--project", project); strings.Contains(out, "platform") {
		t.Fatalf("after remove:\n%s", out)
	}

	c.must(admin, "groups", "remove-user", "platform", "alice@example.com")
	c.must(admin, "groups", "remove-identity", "platform", mid)
	if out := c.must(admin, "groups", "get", "platform"); strings.Contains(out, "alice@example.com") || strings.Contains(out, mid) {
		t.Fatalf("get after removals:\n%s", out)
	}
	c.must(admin, "groups", "delete", "platform")
	if r := c.run(admin, "groups", "get", "platform"); r.code == 0 {
		t.Fatalf("deleted group still found: %+v", r)
	}
}
