package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/config"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// startWarnings opens the dependencies for a SQLite data dir the way the
// server does and returns its warnings that name a file or directory mode.
func startWarnings(t *testing.T, dir string) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	cfg := config.Default()
	cfg.DataDir = dir
	db, _, err := openDeps(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "WARN" && rec["mode"] != nil {
			out = append(out, rec)
		}
	}
	return out
}

func TestStartWarnsAboutAWorldReadableDatabaseFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, store.SQLiteFile)
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	w := startWarnings(t, dir)
	if len(w) != 1 || w[0]["file"] != db || w[0]["mode"] != "0644" {
		t.Fatalf("want one warning naming %s mode 0644, got %v", db, w)
	}
	// One warning, not three: the -wal and -shm SQLite made with the file's mode
	// were narrowed to 0600. The operator's file itself keeps its mode.
	if fi, _ := os.Stat(db); fi.Mode().Perm() != 0o644 {
		t.Fatalf("start-up changed %s to %04o", db, fi.Mode().Perm())
	}
}

func TestStartWarnsAboutAnOpenDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := startWarnings(t, dir)
	if len(w) != 1 || w[0]["dir"] != dir || w[0]["mode"] != "0755" {
		t.Fatalf("want one warning naming %s mode 0755, got %v", dir, w)
	}
}

func TestStartInANewDataDirWarnsAboutNoMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if w := startWarnings(t, dir); len(w) != 0 {
		t.Fatalf("fresh data dir: %v", w)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir created %04o", fi.Mode().Perm())
	}
	// A second start (existing files, -wal and -shm present while open) is quiet too.
	if w := startWarnings(t, dir); len(w) != 0 {
		t.Fatalf("second start: %v", w)
	}
}
