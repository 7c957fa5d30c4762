package sqldb_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestDisableManyPostgres, on a cluster that checks scram-sha-256 passwords:
// after DisableMany a lease's user cannot log in with its password, its open
// session is ended, and the role is still there (not logging in, no
// password) for RevokeMany to drop; disabling again, or a user that does
// not exist, is success.
func TestDisableManyPostgres(t *testing.T) {
	admin := testsvc.ScramPostgres(t)
	au, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	adminPass, _ := au.User.Password()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := newProvider(t, map[string]any{"client": "postgres", "host": au.Hostname(), "port": au.Port(),
		"database": "postgres", "username": "postgres", "password": adminPass})
	d, ok := p.(provider.Disabler)
	if !ok || !d.Disables() {
		t.Fatal("the PostgreSQL provider with the default statements does not disable")
	}
	login := func(user, pass string) (*pgx.Conn, error) {
		u := *au
		u.User = url.UserPassword(user, pass)
		return pgx.Connect(ctx, u.String())
	}
	su, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)

	users := []string{"lbx_d" + testsvc.Suffix(), "lbx_d" + testsvc.Suffix()}
	pass := map[string]string{}
	for _, u := range users {
		pass[u] = "Pw" + testsvc.Suffix() + testsvc.Suffix()
		t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: u}) })
		if _, err := p.Create(ctx, provider.CreateRequest{Username: u, Password: pass[u], Expiration: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := login(users[0], pass[users[0]])
	if err != nil {
		t.Fatalf("login before the disable: %v", err)
	}
	defer sess.Close(ctx)
	if _, err := sess.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}

	batch := append(append([]string(nil), users...), "lbx_missing"+testsvc.Suffix())
	if err := d.DisableMany(ctx, batch); err != nil {
		t.Fatalf("disable: %v", err)
	}
	for _, u := range users {
		c, err := login(u, pass[u])
		if err == nil {
			c.Close(ctx)
			t.Fatalf("%s logs in with its password after the disable", u)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Fatalf("login as disabled %s: want SQLSTATE 28P01 (invalid_password), got %v", u, err)
		}
		var canLogin bool
		var pw *string
		if err := su.QueryRow(ctx, `SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1`, u).Scan(&canLogin, &pw); err != nil {
			t.Fatalf("role %s after the disable: %v", u, err)
		}
		if canLogin || pw != nil {
			t.Fatalf("role %s after the disable: can log in %v, has a password %v", u, canLogin, pw != nil)
		}
	}
	if _, err := sess.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a disabled user's open session still runs statements")
	}
	var sessions int
	if err := su.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE usename = $1`, users[0]).Scan(&sessions); err != nil || sessions != 0 {
		t.Fatalf("%d sessions of a disabled user left (%v)", sessions, err)
	}
	if err := d.DisableMany(ctx, batch); err != nil {
		t.Fatalf("disabling again: %v", err)
	}
	if err := d.RevokeMany(ctx, batch); err != nil {
		t.Fatalf("drop: %v", err)
	}
	for _, u := range users {
		var n int
		if err := su.QueryRow(ctx, `SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`, u).Scan(&n); err != nil || n != 0 {
			t.Fatalf("role %s after the drop: %d (%v)", u, n, err)
		}
	}
}

// TestDisablesOnlyWithTheDefaultRevocation: a custom revocation statement
// runs as written, in one phase, and MySQL has no disable phase.
func TestDisablesOnlyWithTheDefaultRevocation(t *testing.T) {
	for _, c := range []struct {
		inputs map[string]any
		want   bool
	}{
		{map[string]any{"client": "postgres", "host": "127.0.0.1", "port": 5432, "database": "d", "username": "u", "password": ""}, true},
		{map[string]any{"client": "postgres", "host": "127.0.0.1", "port": 5432, "database": "d", "username": "u", "password": "",
			"revocationStatement": `DROP ROLE IF EXISTS "{{username}}";`}, false},
		{map[string]any{"client": "mysql2", "host": "127.0.0.1", "port": 3306, "database": "d", "username": "u", "password": ""}, false},
	} {
		p := newProvider(t, c.inputs)
		d, ok := p.(provider.Disabler)
		if got := ok && d.Disables(); got != c.want {
			t.Errorf("%v: disables %v, want %v", c.inputs, got, c.want)
		}
	}
}
