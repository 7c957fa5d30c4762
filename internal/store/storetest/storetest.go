// Package storetest opens real, empty, migrated databases for tests: SQLite in a
// temporary directory and PostgreSQL as a freshly created database that is
// dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/store"
)

// DefaultPGURL is the machine's PostgreSQL (trust auth on loopback).
const DefaultPGURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Engines lists the engines every store test runs on.
var Engines = []store.Dialect{store.SQLite, store.Postgres}

// PGAdminURL is the server tests create databases on: $LOCKBOX_TEST_PG_URL or DefaultPGURL.
func PGAdminURL() string {
	if u := os.Getenv("LOCKBOX_TEST_PG_URL"); u != "" {
		return u
	}
	return DefaultPGURL
}

// CreateDatabase creates a new, uniquely named, empty database on the server
// at adminURL and returns its URL and a function that drops it.
func CreateDatabase(ctx context.Context, adminURL string) (string, func() error, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("bad PostgreSQL url: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("PostgreSQL unreachable: %w", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "lockbox_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() error {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// RequirePG returns a URL of a new empty PostgreSQL database that is dropped at
// cleanup. Without a reachable server it skips, except under CI=true, where it fails.
func RequirePG(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, drop, err := CreateDatabase(ctx, PGAdminURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: PostgreSQL is required under CI=true: %v", err)
		}
		t.Skipf("storetest: skipping (set CI=true to fail instead): %v", err)
	}
	t.Cleanup(func() {
		if n, err := deadlocks(u); err != nil {
			t.Errorf("storetest: count deadlocks: %v", err)
		} else if n > 0 {
			t.Errorf("storetest: %d deadlock(s) in this test's database: two transactions locked the same rows in opposite "+
				"orders (the store retries them, so this is slow rather than wrong; the server log names the statements)", n)
		}
		if err := drop(); err != nil {
			t.Errorf("storetest: drop database: %v", err)
		}
	})
	return u
}

// deadlocks returns the deadlocks PostgreSQL detected in the database at
// dbURL, once the test's connections to it have closed (a backend reports
// its statistics when it exits; those still open after 3 s are counted as
// far as they have reported).
func deadlocks(dbURL string) (int64, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return 0, err
	}
	name := strings.TrimPrefix(u.Path, "/")
	db, err := sql.Open("pgx", PGAdminURL())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var open int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&open); err != nil {
			return 0, err
		}
		if open == 0 {
			break
		}
	}
	var n sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n.Int64, err
}

// Options returns store options for a fresh database of the given engine.
func Options(t testing.TB, d store.Dialect) store.Options {
	t.Helper()
	if d == store.Postgres {
		return store.Options{URL: RequirePG(t), MaxConns: 10}
	}
	return store.Options{Dir: t.TempDir(), MaxConns: 4}
}

// Open returns a fresh migrated database of the given engine, closed at cleanup.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), Options(t, d))
	if err != nil {
		t.Fatalf("storetest: open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// ForEachEngine runs fn as a subtest on each engine, each with its own fresh database.
func ForEachEngine(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Engines {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}
