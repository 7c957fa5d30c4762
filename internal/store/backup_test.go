package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func keyOwner(i int) keyring.Owner { return keyring.Project(fmt.Sprintf("p%06d", i)) }

// openSQLite opens a fresh SQLite store in a new data dir.
func openSQLite(t *testing.T) (*store.DB, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(context.Background(), store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// A backup taken while a writer commits one data key after another holds
// every key committed before the backup began and, being one snapshot, no
// key without all the keys written before it.
func TestBackupSQLiteIsOneSnapshotUnderWrites(t *testing.T) {
	ctx := context.Background()
	db, dir := openSQLite(t)
	var committed atomic.Int64 // keys 0..committed-1 are committed
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.CreateDataKey(ctx, keyOwner(i), bytes.Repeat([]byte{byte(i)}, 60), "root"); err != nil {
				werr = err
				return
			}
			committed.Store(int64(i + 1))
		}
	})
	for committed.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	out := filepath.Join(t.TempDir(), "lockbox.backup")
	info, err := store.BackupSQLite(ctx, dir, out)
	after := committed.Load()
	for committed.Load() < after+50 { // the writer goes on after the backup
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d keys committed before the backup, %d after it returned; it holds %d (%d bytes)", before, after, len(info.DataKeys), info.Size)
	got := map[string]bool{}
	for _, k := range info.DataKeys {
		got[k.Owner.ID] = true
	}
	n := 0
	for got[keyOwner(n).ID] {
		n++
	}
	if n != len(info.DataKeys) {
		t.Fatalf("the backup holds %d keys but only the first %d in commit order: not one snapshot", len(info.DataKeys), n)
	}
	if int64(n) < before || int64(n) > after+1 {
		t.Fatalf("the backup holds keys 0..%d; want at least the %d committed before it began and at most the %d committed when it returned (+1 in flight)", n-1, before, after)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	again, err := store.InspectSQLite(ctx, out)
	if err != nil || len(again.DataKeys) != n || again.SchemaVersion < 1 {
		t.Fatalf("inspect the backup: %+v %v", again.SchemaVersion, err)
	}
	// A single self-contained file: nothing left beside it.
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("files beside the backup: %v", entries)
	}
}

func TestBackupSQLiteRefusals(t *testing.T) {
	ctx := context.Background()
	db, dir := openSQLite(t)
	if err := db.CreateDataKey(ctx, keyOwner(1), []byte("wrapped"), "root"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "exists")
	os.WriteFile(out, []byte("keep me"), 0o600)
	if _, err := store.BackupSQLite(ctx, dir, out); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Fatalf("existing file changed: %q", b)
	}
	empty := t.TempDir()
	if _, err := store.BackupSQLite(ctx, empty, filepath.Join(t.TempDir(), "b")); err == nil || !strings.Contains(err.Error(), "no lockbox database") {
		t.Fatalf("backup of a dir without a database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, store.SQLiteFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup created a database in the empty dir: %v", err)
	}
	if _, err := store.BackupSQLite(ctx, dir, filepath.Join(t.TempDir(), "missing", "b")); err == nil {
		t.Fatal("backup into a missing directory succeeded")
	}
	// Into a directory others may write and not sticky: another user could
	// swap the copy SQLite reopens by name, or plant its -wal.
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BackupSQLite(ctx, dir, filepath.Join(shared, "b")); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("backup into a shared directory: %v", err)
	}
	if entries, _ := os.ReadDir(shared); len(entries) != 0 {
		t.Fatalf("the refused backup left %d files", len(entries))
	}
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := store.BackupSQLite(ctx, dir, filepath.Join(shared, "b")); err != nil {
		t.Fatalf("backup into a sticky shared directory: %v", err)
	}
}

// backupOf returns a backup of a fresh database holding n data keys.
func backupOf(t *testing.T, n int) string {
	t.Helper()
	ctx := context.Background()
	db, dir := openSQLite(t)
	for i := range n {
		if err := db.CreateDataKey(ctx, keyOwner(i), []byte("wrapped"), "root"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "backup")
	if _, err := store.BackupSQLite(ctx, dir, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRestoreSQLite(t *testing.T) {
	ctx := context.Background()
	from := backupOf(t, 3)
	dir := filepath.Join(t.TempDir(), "new", "data")
	var seen store.BackupInfo
	info, err := store.RestoreSQLite(ctx, from, dir, func(i store.BackupInfo) error { seen = i; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(seen.DataKeys) != 3 || len(info.DataKeys) != 3 {
		t.Fatalf("check saw %d keys, restore reports %d; want 3", len(seen.DataKeys), len(info.DataKeys))
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("data dir mode %04o, want 0700", got)
	}
	if got := perm(t, filepath.Join(dir, store.SQLiteFile)); got != 0o600 {
		t.Errorf("database mode %04o, want 0600", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %v, want only %s", entries, store.SQLiteFile)
	}
	db, err := store.Open(ctx, store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if w, err := db.DataKey(ctx, keyOwner(2)); err != nil || string(w) != "wrapped" {
		t.Fatalf("restored key: %q %v", w, err)
	}
	// Into the same, now non-empty, dir: refused.
	if _, err := store.RestoreSQLite(ctx, from, dir, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty dir: %v", err)
	}
	// Into an empty dir other users may write in: refused, nothing written.
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RestoreSQLite(ctx, from, shared, nil); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("restore into a 0777 dir: %v", err)
	}
	if entries, _ := os.ReadDir(shared); len(entries) != 0 {
		t.Fatalf("a refused restore left %v", entries)
	}
	// Into an empty dir of another user, mode 0755: its owner could chmod it
	// and replace the files. (Only root can give a directory away.)
	if os.Getuid() == 0 {
		theirs := t.TempDir()
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := store.RestoreSQLite(ctx, from, theirs, nil); err == nil || !strings.Contains(err.Error(), "another user") {
			t.Fatalf("restore into another user's dir: %v", err)
		}
	}
}

// A plain copy of a WAL-mode database file (say, taken with the server
// stopped) restores too, and leaves no -wal or -shm files behind.
func TestRestoreSQLiteFromACopiedWALFile(t *testing.T) {
	ctx := context.Background()
	db, src := openSQLite(t)
	if err := db.CreateDataKey(ctx, keyOwner(7), []byte("wrapped"), "root"); err != nil {
		t.Fatal(err)
	}
	db.Close() // checkpoints: the main file holds everything
	b, err := os.ReadFile(filepath.Join(src, store.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	if b[18] != 2 {
		t.Fatalf("the source is not in WAL mode (header byte 18 = %d)", b[18])
	}
	from := filepath.Join(t.TempDir(), "copy.db")
	os.WriteFile(from, b, 0o600)
	dir := t.TempDir()
	info, err := store.RestoreSQLite(ctx, from, dir, nil)
	if err != nil || len(info.DataKeys) != 1 {
		t.Fatalf("restore: %d keys, %v", len(info.DataKeys), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != store.SQLiteFile {
		t.Fatalf("data dir holds %v", entries)
	}
}

func TestRestoreSQLiteRefusesBadBackups(t *testing.T) {
	ctx := context.Background()
	good := backupOf(t, 40)
	goodBytes, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A SQLite database that lockbox did not make.
	plain := filepath.Join(t.TempDir(), "plain.db")
	other, _ := sql.Open("sqlite", "file:"+plain)
	if _, err := other.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	// A backup from a newer lockbox.
	newer := write("newer", goodBytes)
	nb, _ := sql.Open("sqlite", "file:"+newer)
	if _, err := nb.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, 1)`); err != nil {
		t.Fatal(err)
	}
	nb.Close()
	// A damaged one: the last pages overwritten.
	damaged := bytes.Clone(goodBytes)
	page := 4096
	for i := len(damaged) - 2*page; i < len(damaged); i++ {
		damaged[i] = 0x5a
	}
	cases := []struct {
		name, from, want string
		check            func(store.BackupInfo) error
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope"), "backup file", nil},
		{"not SQLite", write("text", []byte("this is not a database at all, no")), "not a SQLite database", nil},
		{"not lockbox", plain, "not a lockbox database", nil},
		{"newer schema", newer, "newer than this lockbox", nil},
		{"damaged", write("damaged", damaged), "damaged", nil},
		{"check fails", good, "wrong key", func(store.BackupInfo) error { return errors.New("wrong key") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			for _, dir := range []string{filepath.Join(parent, "missing"), parent} {
				_, err := store.RestoreSQLite(ctx, c.from, dir, c.check)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("restore into %s: %v, want an error containing %q", dir, err, c.want)
				}
			}
			// Both left as found: the missing dir missing, the empty one empty.
			entries, _ := os.ReadDir(parent)
			if len(entries) != 0 {
				t.Fatalf("restore left %v", entries)
			}
		})
	}
}
