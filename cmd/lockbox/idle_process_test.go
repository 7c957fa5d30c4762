package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// fileState is what a write would change in a file: whether it exists, its
// size, modification time and content.
func fileState(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "absent"
	}
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d bytes, modified %s, sha256 %x", fi.Size(), fi.ModTime().Format(time.RFC3339Nano), sha256.Sum256(b))
}

// idleWindow is how long the idle tests watch a server: longer than every
// periodic round of its workers that can run within it (the lease worker's
// 1 s, the rotation worker's 5 s, the last-use flush's and the cleanups'
// 30 s; the PKI alert worker, which runs with a mailer, ticks at start and
// every minute).
const idleWindow = 31 * time.Second

// idleMailer gives the server a mailer, so that the PKI alert worker runs;
// nothing is mailed (no alert exists), so the port is never dialled.
const idleMailer = "LOCKBOX_SMTP_URL=smtp://127.0.0.1:1?from=idle@example.com"

// useServer bootstraps a server, makes a project and writes and reads a
// secret in it; it returns the admin's client and the project's slug.
func useServer(t *testing.T, addr string) (*client.Client, string) {
	t.Helper()
	c, slug := bootstrapProject(t, addr, "idle")
	ctx := context.Background()
	if err := c.Do(ctx, "POST", "/api/v3/secrets/raw/GREETING", map[string]any{"projectSlug": slug, "environment": "dev",
		"secretValue": "hello"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "GET", "/api/v3/secrets/raw?projectSlug="+slug+"&environment=dev", nil, nil); err != nil {
		t.Fatal(err)
	}
	return c, slug
}

// An idle server writes nothing to its database (issue 14): no worker's
// round, flush or clean-up commits when there is nothing to do. The server
// is used (a project, a secret, logins), stopped — its shutdown writes the
// tokens' last use — and started again; from then on, for idleWindow,
// neither the SQLite file nor its write-ahead log changes. Any commit that
// changes a row appends to the write-ahead log.
func TestIdleServerDoesNotWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, cmd, stderr, _ := startServer(t, dir, []string{idleMailer})
	useServer(t, addr)
	stopServer(t, cmd, stderr)

	_, cmd, stderr, _ = startServer(t, dir, []string{idleMailer})
	data := filepath.Join(dir, "lockbox-data", store.SQLiteFile)
	files := []string{data, data + "-wal"}
	time.Sleep(time.Second) // start-up's own work, if any, is done
	before := map[string]string{}
	for _, f := range files {
		before[f] = fileState(t, f)
	}
	time.Sleep(idleWindow)
	for _, f := range files {
		if after := fileState(t, f); after != before[f] {
			t.Errorf("%s changed on an idle server:\nbefore %s\nafter  %s", filepath.Base(f), before[f], after)
		}
	}
	stopServer(t, cmd, stderr)
}

// An idle server writes nothing to PostgreSQL either. The database is the
// test's own, but its size and write-ahead position are the cluster's, so
// the test makes every write fail instead: after the server has been used
// and stopped, the database is set read-only for new sessions
// (default_transaction_read_only) and the server started again. A write by
// any worker, flush or clean-up then fails with SQLSTATE 25006 ("cannot
// execute ... in a read-only transaction"): the server logs it, and the
// database counts a rolled-back transaction (pg_stat_database, flushed by
// each session as it ends, so read once the server's sessions are gone,
// which PostgreSQL 15 and later do before they leave pg_stat_activity), even
// where the server would swallow the error. A write that asked for a
// read-write transaction would pass; the database's counts of inserted,
// updated and deleted rows catch it. The control: a secret write, on a third
// start, fails, is logged and is counted.
func TestIdleServerDoesNotWriteOnPostgres(t *testing.T) {
	t.Parallel()
	dbURL := storetest.RequirePG(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	env := []string{"LOCKBOX_DATABASE_URL=" + dbURL, "LOCKBOX_ROOT_KEY=" + key, idleMailer}
	dir := t.TempDir()
	addr, cmd, stderr, _ := startServer(t, dir, env)
	c, slug := useServer(t, addr)
	ctx := context.Background()
	stopServer(t, cmd, stderr)

	admin, err := sql.Open("pgx", storetest.PGAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`ALTER DATABASE ` + name + ` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	// counts waits for the server's sessions to end (each reports its counts
	// as it exits), then reads the database's rolled-back transactions and
	// its inserted, updated and deleted rows.
	counts := func() [2]int64 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var sessions int
			if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&sessions); err != nil {
				t.Fatal(err)
			}
			if sessions == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions of the stopped server still open", sessions)
			}
		}
		var n [2]int64
		if err := admin.QueryRow(`SELECT xact_rollback, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = $1`,
			name).Scan(&n[0], &n[1]); err != nil {
			t.Fatal(err)
		}
		return n
	}
	readOnly := func(log string) bool {
		return strings.Contains(log, "read-only transaction") || strings.Contains(log, "25006")
	}

	before := counts()
	_, cmd, stderr, _ = startServer(t, dir, env)
	time.Sleep(idleWindow)
	stopServer(t, cmd, stderr)
	if readOnly(stderr.String()) {
		t.Errorf("an idle server wrote to its database:\n%s", stderr.String())
	}
	if after := counts(); after != before {
		t.Errorf("an idle server's sessions rolled back %d transactions (a refused write, or a read ended by a rollback) and changed %d rows",
			after[0]-before[0], after[1]-before[1])
	}

	before = counts()
	addr, cmd, stderr, _ = startServer(t, dir, env)
	c = client.New("http://"+addr, c.Token)
	err = c.Do(ctx, "POST", "/api/v3/secrets/raw/OTHER", map[string]any{"projectSlug": slug, "environment": "dev", "secretValue": "x"}, nil)
	stopServer(t, cmd, stderr)
	if err == nil {
		t.Fatal("control: a secret was written to a read-only database, so the server's sessions are not read-only")
	}
	if !readOnly(stderr.String()) {
		t.Errorf("control: the refused write (%v) is not in the server's log:\n%s", err, stderr.String())
	}
	if counts()[0] == before[0] {
		t.Error("control: the refused write is not counted as a rolled-back transaction")
	}
}
