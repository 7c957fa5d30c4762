package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestRotationSurvivesSIGKILL kills the server while a rotation is changing
// a PostgreSQL user's password (its ALTER ROLE held on a lock), and proves
// that the secrets name working credentials meanwhile and that the
// restarted server finishes the rotation with credentials that log in, the
// previous ones still working. PostgreSQL checks passwords (scram-sha-256).
func TestRotationSurvivesSIGKILL(t *testing.T) {
	adminURL := testsvc.ScramPostgres(t)
	ctx := context.Background()
	u, _ := url.Parse(adminURL)
	pgPass, _ := u.User.Password()
	pg, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(ctx)
	users := []string{"kill_a", "kill_b"}
	for _, n := range users {
		if _, err := pg.Exec(ctx, `CREATE ROLE "`+n+`" LOGIN PASSWORD 'initial'`); err != nil {
			t.Fatal(err)
		}
	}
	login := func(user, pw string) error {
		c, err := pgx.Connect(ctx, "postgres://"+url.UserPassword(user, pw).String()+"@"+u.Host+"/postgres?sslmode=disable")
		if err == nil {
			c.Close(ctx)
		}
		return err
	}

	dir := t.TempDir()
	addr, cmd, _, _ := startServer(t, dir, nil, "--rotation-claim-timeout", "2s")
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	creds := filepath.Join(t.TempDir(), "creds.json")
	b, _ := json.Marshal(map[string]any{"host": "127.0.0.1", "port": u.Port(), "database": "postgres", "username": "postgres", "password": pgPass})
	os.WriteFile(creds, b, 0o600)
	var conn client.AppConnection
	json.Unmarshal([]byte(c.must(admin, "connections", "create", "--app", "postgres", "--name", "pg", "--credentials-file", creds, "-o", "json")), &conn)
	var rot client.SecretRotation
	json.Unmarshal([]byte(c.must(admin, "rotations", "create", "-o", "json", "--type", "postgres-credentials", "--project", project,
		"--connection", conn.ID, "--env", "dev", "--name", "db", "--username1", users[0], "--username2", users[1],
		"--map-username", "DB_USER", "--map-password", "DB_PASS")), &rot)
	if rot.ID == "" {
		t.Fatal("rotation not created")
	}
	secret := func(key string) string {
		return strings.TrimSpace(c.must(admin, "secrets", "get", key, "--projectId", project, "--env", "dev", "--plain"))
	}
	u1, p1 := secret("DB_USER"), secret("DB_PASS")
	if u1 != users[0] || login(u1, p1) != nil {
		t.Fatalf("first credentials of %s do not log in", u1)
	}

	// Hold ALTER ROLE on a lock, start a rotation, kill the server while it waits.
	tx, err := pg.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE pg_authid IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	go c.run(admin, "rotations", "rotate", "postgres-credentials", rot.ID)
	watch, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER ROLE%'`).Scan(&n)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotation never reached ALTER ROLE")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	tx.Rollback(ctx) // the orphaned ALTER ROLE may now run: the password it sets is the recorded one

	addr, _, _, _ = startServer(t, dir, nil, "--rotation-claim-timeout", "2s")
	c.addr = addr
	if got, pw := secret("DB_USER"), secret("DB_PASS"); got != u1 || pw != p1 || login(got, pw) != nil {
		t.Fatal("after the kill the secrets do not name working credentials")
	}
	// The restarted server's worker finishes the run once the dead claim ends.
	deadline = time.Now().Add(30 * time.Second)
	for secret("DB_USER") != users[1] {
		if time.Now().After(deadline) {
			t.Fatalf("the rotation was not finished: %s", c.must(admin, "rotations", "list", "--project", project))
		}
		time.Sleep(200 * time.Millisecond)
	}
	u2, p2 := secret("DB_USER"), secret("DB_PASS")
	if err := login(u2, p2); err != nil {
		t.Fatalf("the finished rotation's credentials do not log in: %v", err)
	}
	if err := login(u1, p1); err != nil {
		t.Fatalf("the previous credentials stopped working: %v", err)
	}
	if out := c.must(admin, "rotations", "list", "--project", project); !strings.Contains(out, "success") {
		t.Fatalf("status after recovery:\n%s", out)
	}
}
