package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

func TestCLIConnectionsAndRotations(t *testing.T) {
	testsvc.Redis(t)
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	sfx := testsvc.Suffix()
	users := []string{"cli-" + sfx + "-1", "cli-" + sfx + "-2"}
	rc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rc.Do(context.Background(), "ACL", "DELUSER", users[0], users[1]); rc.Close() })

	creds := filepath.Join(t.TempDir(), "creds.json")
	os.WriteFile(creds, []byte(`{"host":"127.0.0.1","port":6379}`), 0o600)
	var conn client.AppConnection
	out := c.must(admin, "connections", "create", "--app", "redis", "--name", "cache", "--credentials-file", creds, "-o", "json")
	if err := json.Unmarshal([]byte(out), &conn); err != nil || conn.ID == "" || conn.App != "redis" {
		t.Fatalf("connections create: %v\n%s", err, out)
	}
	if out := c.must(admin, "connections", "list"); !strings.Contains(out, "cache") || !strings.Contains(out, "127.0.0.1:6379") {
		t.Fatalf("connections list:\n%s", out)
	}
	c.must(admin, "connections", "get", "redis", conn.ID)

	var rot client.SecretRotation
	out = c.must(admin, "rotations", "create", "-o", "json", "--type", "redis-credentials", "--project", project, "--connection", conn.ID,
		"--env", "dev", "--name", "cache", "--interval", "7", "--at", "04:30", "--username1", users[0], "--username2", users[1],
		"--scope", "+ping", "--map-username", "REDIS_USER", "--map-password", "REDIS_PASS")
	if err := json.Unmarshal([]byte(out), &rot); err != nil || rot.RotationStatus != "success" || rot.ActiveIndex != 0 {
		t.Fatalf("rotations create: %v\n%s", err, out)
	}
	if out := c.must(admin, "rotations", "list", "--project", project); !strings.Contains(out, "cache") || !strings.Contains(out, users[0]) {
		t.Fatalf("rotations list:\n%s", out)
	}
	if out := c.must(admin, "rotations", "rotate", "redis-credentials", rot.ID); !strings.Contains(out, users[1]) {
		t.Fatalf("rotations rotate:\n%s", out)
	}
	got := strings.TrimSpace(c.must(admin, "secrets", "get", "REDIS_USER", "--projectId", project, "--env", "dev", "--plain"))
	if got != users[1] {
		t.Fatalf("REDIS_USER after rotate: %q", got)
	}
	if r := c.run(admin, "connections", "delete", "redis", conn.ID); r.code == 0 {
		t.Fatal("a connection in use was deleted")
	}
	c.must(admin, "rotations", "delete", "redis-credentials", rot.ID, "--delete-secrets", "--revoke")
	if r := c.run(admin, "secrets", "get", "REDIS_USER", "--projectId", project, "--env", "dev", "--plain"); r.code == 0 {
		t.Fatal("--delete-secrets left REDIS_USER")
	}
	// --revoke resets the ACL users (off, no password, no commands); they
	// are kept, as one may be a user lockbox did not create.
	if n, err := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"}).Do(context.Background(), "ACL", "GETUSER", users[1]).Result(); err != nil ||
		!strings.Contains(fmt.Sprint(n), "off") || !strings.Contains(fmt.Sprint(n), "-@all") {
		t.Fatalf("--revoke left the ACL user %s as %v (%v), want it reset", users[1], n, err)
	}
	c.must(admin, "connections", "delete", "redis", conn.ID)
	if out := c.must(admin, "connections", "list", "-o", "json"); strings.Contains(out, conn.ID) {
		t.Fatalf("connection still listed: %s", out)
	}
}
