package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store"
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

// An idle server writes nothing to its database (issue 14): no worker's
// round, flush or clean-up commits when there is nothing to do. The server
// is used (a project, a secret, logins), stopped — its shutdown writes the
// tokens' last use — and started again; from then on, for longer than the
// longest idle wait of its workers (the rotation worker's 5 s; the lease
// worker's is 1 s), neither the SQLite file nor its write-ahead log changes.
// Any commit that changes a row appends to the write-ahead log.
func TestIdleServerDoesNotWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, cmd, stderr, _ := startServer(t, dir, nil)
	c, slug := bootstrapProject(t, addr, "idle")
	ctx := context.Background()
	if err := c.Do(ctx, "POST", "/api/v3/secrets/raw/GREETING", map[string]any{"projectSlug": slug, "environment": "dev",
		"secretValue": "hello"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "GET", "/api/v3/secrets/raw?projectSlug="+slug+"&environment=dev", nil, nil); err != nil {
		t.Fatal(err)
	}
	stopServer(t, cmd, stderr)

	_, cmd, stderr, _ = startServer(t, dir, nil)
	data := filepath.Join(dir, "lockbox-data", store.SQLiteFile)
	files := []string{data, data + "-wal"}
	time.Sleep(time.Second) // start-up's own work, if any, is done
	before := map[string]string{}
	for _, f := range files {
		before[f] = fileState(t, f)
	}
	time.Sleep(12 * time.Second)
	for _, f := range files {
		if after := fileState(t, f); after != before[f] {
			t.Errorf("%s changed on an idle server:\nbefore %s\nafter  %s", filepath.Base(f), before[f], after)
		}
	}
	stopServer(t, cmd, stderr)
}
