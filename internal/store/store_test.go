package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

func TestMigrationsMatchAcrossDialects(t *testing.T) {
	names := func(dir string) []string {
		var out []string
		entries, err := os.ReadDir(filepath.Join("migrations", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	sq, pg := names("sqlite"), names("postgres")
	if !slices.Equal(sq, pg) {
		t.Fatalf("migration files differ:\nsqlite:   %v\npostgres: %v", sq, pg)
	}
	if len(sq) == 0 {
		t.Fatal("no migrations")
	}
}

func TestOpenTwiceIsNoop(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			opts := storetest.Options(t, d)
			ctx := context.Background()
			db, err := store.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			v1, err := db.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if v1 < 1 {
				t.Fatalf("schema version %d after first open", v1)
			}
			db, err = store.Open(ctx, opts)
			if err != nil {
				t.Fatalf("second open: %v", err)
			}
			defer db.Close()
			v2, _ := db.SchemaVersion(ctx)
			if v2 != v1 {
				t.Fatalf("schema version changed on second open: %d -> %d", v1, v2)
			}
		})
	}
}

func TestOpenUnreachablePostgresSaysSoWithoutPassword(t *testing.T) {
	_, err := store.Open(context.Background(), store.Options{URL: "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("open of an unreachable server succeeded")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Fatalf("error leaks the password: %s", got)
	}
}

// SQLite's writer syncs the write-ahead log at every commit (synchronous=FULL),
// so an acknowledged write survives a power loss, not only a crash of the process.
func TestSQLiteWriterSyncsEveryCommit(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	got, err := db.WriterPragma(context.Background(), "synchronous")
	if err != nil {
		t.Fatal(err)
	}
	if got != "2" { // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
		t.Fatalf("writer runs with synchronous=%s, want 2 (FULL)", got)
	}
}

// TestSchemaVersionDoesNotWaitForTheWriter: the schema version, which the
// unauthenticated /api/status reports, is read again at most every ten
// seconds. On SQLite the read takes the one writer connection: asked while
// a write transaction holds it, a remembered answer comes at once (before,
// each status request queued behind every write, audit commits included).
func TestSchemaVersionDoesNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.Options(t, store.SQLite))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatal(v, err)
	}
	err = db.Transact(ctx, func(*store.Tx) error {
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		again, err := db.SchemaVersion(short)
		if err != nil || again != v {
			t.Errorf("while the writer is held: %d, %v (want %d at once)", again, err, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestADataDirNamedWithURICharactersHoldsTheDatabase: a data dir whose name
// holds ? or # keeps the database in it (the name was put into SQLite's URI
// as it was, so "/x/q?y" opened "/x/q", beside the data dir and under
// default permissions).
func TestADataDirNamedWithURICharactersHoldsTheDatabase(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "q?x#y%41")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{Dir: dir, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if fi, err := os.Stat(filepath.Join(dir, store.SQLiteFile)); err != nil || fi.Size() == 0 {
		t.Fatalf("the database in the data dir: %v, %v", fi, err)
	}
	if names, _ := os.ReadDir(parent); len(names) != 1 {
		t.Fatalf("files beside the data dir: %v", names)
	}
}
