// Package storetest opens real, empty, migrated databases for tests: SQLite in a
// temporary directory and PostgreSQL as a freshly created database that is
// dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
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

// RequirePG returns a URL of a new empty PostgreSQL database that is dropped at
// cleanup. Without a reachable server it skips, except under CI=true, where it fails.
func RequirePG(t testing.TB) string {
	t.Helper()
	admin := PGAdminURL()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("storetest: bad LOCKBOX_TEST_PG_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: PostgreSQL is required under CI=true and is unreachable: %v", err)
		}
		t.Skipf("storetest: PostgreSQL unreachable, skipping (set CI=true to fail instead): %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "lockbox_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: parse url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
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
