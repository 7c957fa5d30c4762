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

// The machine's PostgreSQL trusts loopback, so any password logs in there.
// On a cluster that checks scram-sha-256 passwords, a lease's password must be
// the one that logs in: a wrong one, a replaced one and a revoked one fail
// with invalid_password, and so does the right one past VALID UNTIL.
func TestPostgresLeasePasswordIsChecked(t *testing.T) {
	admin := testsvc.ScramPostgres(t)
	au, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	adminPass, _ := au.User.Password()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newProvider(t, map[string]any{"client": "postgres", "host": au.Hostname(), "port": au.Port(),
		"database": "postgres", "username": "postgres", "password": adminPass})
	if err := p.Validate(ctx); err != nil {
		t.Fatalf("validate with the superuser's password: %v", err)
	}

	// login connects as user and runs SELECT 1.
	login := func(user, pass string) error {
		u := *au
		u.User = url.UserPassword(user, pass)
		c, err := pgx.Connect(ctx, u.String())
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1 as %s: %d, %v", user, one, err)
		}
		return nil
	}
	mustLogin := func(what, user, pass string) {
		t.Helper()
		if err := login(user, pass); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// mustBeRefused wants the server's refusal of the password, not any
	// failure (a refused connection or a missing database would pass too).
	mustBeRefused := func(what, user, pass string) {
		t.Helper()
		err := login(user, pass)
		if err == nil {
			t.Fatalf("%s: logs in", what)
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Fatalf("%s: want SQLSTATE 28P01 (invalid_password), got %v", what, err)
		}
	}

	user, pass := "lbx_"+testsvc.Suffix(), "Pw"+testsvc.Suffix()+testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
	exp := time.Now().Add(time.Hour)
	res, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass, Expiration: exp})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if res.Data["DB_USERNAME"] != user || res.Data["DB_PASSWORD"] != pass {
		t.Fatalf("lease data: username %v, password matches %v", res.Data["DB_USERNAME"], res.Data["DB_PASSWORD"] == pass)
	}
	mustLogin("the lease's password", user, pass)
	mustBeRefused("a wrong password", user, "wrong-"+pass)
	mustBeRefused("the lease's password less its last character", user, pass[:len(pass)-1])
	if err := p.(provider.Renewer).Renew(ctx, provider.RenewRequest{Username: user, Expiration: exp.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mustLogin("the lease's password after renew", user, pass)

	// A Create of a name that exists is refused and changes nothing: the
	// lease's password still works, the one offered does not.
	changed := "Pw" + testsvc.Suffix() + testsvc.Suffix()
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: changed, Expiration: exp}); !errors.Is(err, provider.ErrExists) {
		t.Fatalf("create again with another password: %v, want ErrExists", err)
	}
	mustBeRefused("the password of a refused create", user, changed)
	mustLogin("the lease's password after a refused create", user, pass)
	changed = pass
	altered := "Pw" + testsvc.Suffix() + testsvc.Suffix()
	su, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	if _, err := su.Exec(ctx, `ALTER ROLE "`+user+`" PASSWORD '`+altered+`'`); err != nil {
		t.Fatal(err)
	}
	mustBeRefused("the lease's password after ALTER ROLE", user, changed)
	mustLogin("the altered password", user, altered)

	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	for what, pw := range map[string]string{"first": pass, "altered": altered} {
		mustBeRefused("the "+what+" password after revoke", user, pw)
	}

	// VALID UNTIL only bites where passwords are checked: a lease past its
	// expiry does not log in with its right password until it is renewed.
	late, latePass := "lbx_"+testsvc.Suffix(), "Pw"+testsvc.Suffix()+testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: late}) })
	if _, err := p.Create(ctx, provider.CreateRequest{Username: late, Password: latePass, Expiration: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	mustBeRefused("an expired lease's password", late, latePass)
	if err := p.(provider.Renewer).Renew(ctx, provider.RenewRequest{Username: late, Expiration: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mustLogin("a renewed lease's password", late, latePass)
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: late}); err != nil {
		t.Fatal(err)
	}
	mustBeRefused("a renewed lease's password after revoke", late, latePass)
}
