package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// TestCLIPrivilegesAndTemplates: an identity given a privilege by the CLI
// reads one folder it could not, loses it on delete; a viewer cannot grant
// one; a template made by the CLI shapes a project created with it.
func TestCLIPrivilegesAndTemplates(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	c.must(admin, "secrets", "set", "--projectId", project, "--env", "dev", "KEY=v")

	id := strings.TrimSpace(c.must(admin, "identities", "create", "narrow", "--role", "member", "--plain"))
	c.must(admin, "projects", "add-identity", project, id, "--role", "no-access")
	clientID := strings.TrimSpace(c.must(admin, "identities", "universal-auth", "attach", id, "--plain"))
	secret := strings.TrimSpace(c.must(admin, "identities", "client-secrets", "create", id, "--plain"))
	narrow := []string{"LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID=" + clientID, "LOCKBOX_UNIVERSAL_AUTH_CLIENT_SECRET=" + secret}
	if r := c.run(narrow, "secrets", "get", "KEY", "--projectId", project, "--env", "dev", "--plain"); r.code == 0 {
		t.Fatalf("no-access identity read a secret: %s", r.stdout)
	}

	rules := `[{"subject":"secrets","action":["read","readValue","describeSecret"],"conditions":{"environment":"dev","secretPath":"/"}}]`
	var p client.Privilege
	out := c.must(admin, "privileges", "create", "--project", project, "--identity", id, "--slug", "read-dev", "--permissions", rules,
		"--temporary-range", "1h", "-o", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.ID == "" || p.Slug != "read-dev" || !p.IsTemporary || p.TemporaryAccessEndTime == "" {
		t.Fatalf("privileges create: %v\n%s", err, out)
	}
	if got := c.must(narrow, "secrets", "get", "KEY", "--projectId", project, "--env", "dev", "--plain"); strings.TrimSpace(got) != "v" {
		t.Fatalf("privileged read: %q", got)
	}
	if list := c.must(admin, "privileges", "list", "--project", project, "--identity", id); !strings.Contains(list, "read-dev") ||
		!strings.Contains(list, p.ID) || !strings.Contains(list, "1h") {
		t.Fatalf("privileges list:\n%s", list)
	}
	if got := c.must(admin, "privileges", "get", p.ID); !strings.Contains(got, `"secretPath"`) {
		t.Fatalf("privileges get:\n%s", got)
	}
	viewer := viewerEnv(t, c, admin, project)
	if r := c.run(viewer, "privileges", "create", "--project", project, "--identity", id, "--permissions", rules); r.code == 0 ||
		!strings.Contains(r.stderr, "PermissionDenied") && !strings.Contains(r.stderr, "permission") {
		t.Fatalf("viewer granted a privilege: exit %d %s", r.code, r.stderr)
	}
	if r := c.run(admin, "privileges", "create", "--project", project, "--identity", id, "--permissions", "[not json"); r.code == 0 {
		t.Fatal("bad JSON accepted")
	}
	c.must(admin, "privileges", "delete", p.ID)
	if r := c.run(narrow, "secrets", "get", "KEY", "--projectId", project, "--env", "dev", "--plain"); r.code == 0 {
		t.Fatalf("read after the privilege was deleted: %s", r.stdout)
	}

	var tp client.ProjectTemplate
	out = c.must(admin, "project-templates", "create", "--name", "svc", "--description", "services",
		"--environments", `[{"name":"Alpha","slug":"alpha","position":1}]`,
		"--roles", `[{"name":"Auditor","slug":"auditor","permissions":[{"subject":"secrets","action":["read"]}]}]`, "-o", "json")
	if err := json.Unmarshal([]byte(out), &tp); err != nil || tp.ID == "" || len(tp.Environments) != 1 {
		t.Fatalf("project-templates create: %v\n%s", err, out)
	}
	if list := c.must(admin, "project-templates", "list"); !strings.Contains(list, "svc") || !strings.Contains(list, "auditor") ||
		!strings.Contains(list, "default") {
		t.Fatalf("project-templates list:\n%s", list)
	}
	np := strings.TrimSpace(c.must(admin, "projects", "create", "from-svc", "--template", "svc", "--plain"))
	if envs := c.must(admin, "environments", "list", "--projectId", np); !strings.Contains(envs, "alpha") || strings.Contains(envs, "staging") {
		t.Fatalf("environments of a templated project:\n%s", envs)
	}
	c.must(admin, "project-templates", "delete", tp.ID)
	if list := c.must(admin, "project-templates", "list"); strings.Contains(list, "svc") {
		t.Fatalf("deleted template listed:\n%s", list)
	}
}
