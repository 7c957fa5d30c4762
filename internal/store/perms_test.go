package store_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// The data dir already exists with 0755 (so Open's MkdirAll makes nothing):
// the database and its WAL and shared-memory files are still 0600.
func TestSQLiteFilesAre0600InAnExistingDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateDataKey(ctx, keyring.Owner{Type: keyring.OwnerSystem, ID: "perm-test"}, []byte("wrapped"), "root"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{store.SQLiteFile, store.SQLiteFile + "-wal", store.SQLiteFile + "-shm"} {
		if got := perm(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", name, got)
		}
	}
	if got := perm(t, dir); got != 0o755 {
		t.Errorf("Open changed the operator's data dir to %04o", got)
	}
}

// Open relies on SQLite creating -wal and -shm with the main file's mode
// (unix VFS: findCreateFileMode, then fchmod), not the default 0644 or the umask.
// 0666 is one the usual umask (022) would narrow, so a match shows a copy.
func TestSQLiteGivesWALAndSHMTheDatabaseFileMode(t *testing.T) {
	for _, mode := range []fs.FileMode{0o600, 0o640, 0o666} {
		dir := t.TempDir()
		path := filepath.Join(dir, "x.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if got := perm(t, path+suffix); got != mode {
				t.Errorf("db %04o: %s is %04o", mode, suffix, got)
			}
		}
		db.Close()
	}
}
