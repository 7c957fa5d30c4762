package testsvc_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// The throwaway cluster must check passwords on loopback TCP, or tests on it
// prove nothing the machine's trusting cluster does not.
func TestScramPostgresChecksPasswords(t *testing.T) {
	admin := testsvc.ScramPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	var method string
	err = c.QueryRow(ctx, `SELECT string_agg(DISTINCT auth_method, ',') FROM pg_hba_file_rules`).Scan(&method)
	c.Close(ctx)
	if err != nil || method != "scram-sha-256" {
		t.Fatalf("pg_hba methods %q, %v; want only scram-sha-256", method, err)
	}
	u, _ := url.Parse(admin)
	real, _ := u.User.Password()
	for i, pass := range []string{"wrong", real[:len(real)-1] + "x", ""} {
		u.User = url.UserPassword("postgres", pass)
		c, err := pgx.Connect(ctx, u.String())
		if err == nil {
			c.Close(ctx)
			t.Fatalf("superuser logs in with wrong password #%d", i)
		}
		if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Fatalf("wrong password #%d: want SQLSTATE 28P01 (invalid_password), got %v", i, err)
		}
	}
}
