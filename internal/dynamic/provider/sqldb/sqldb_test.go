package sqldb_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// target is a real database server with a fresh database for the test.
type target struct {
	client   string
	inputs   map[string]any
	admin    *sql.DB
	canLogin func(t *testing.T, user, pass string) error
	validTo  func(t *testing.T, user string) time.Time // zero when the engine keeps no expiry
}

func postgresTarget(t *testing.T) target {
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err == nil {
		err = admin.Ping()
	}
	testsvc.Need(t, err, "PostgreSQL")
	db := "lockbox_dyn_" + testsvc.Suffix()
	if _, err := admin.Exec("CREATE DATABASE " + db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); admin.Close() })
	return target{
		client: "postgres",
		inputs: map[string]any{"client": "postgres", "host": "127.0.0.1", "port": 5432, "database": db, "username": "postgres", "password": ""},
		admin:  admin,
		canLogin: func(t *testing.T, user, pass string) error {
			c, err := sql.Open("pgx", "postgres://"+user+":"+pass+"@127.0.0.1:5432/"+db+"?sslmode=disable")
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Ping()
		},
		validTo: func(t *testing.T, user string) time.Time {
			var v time.Time
			if err := admin.QueryRow(`SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, user).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		},
	}
}

func mysqlTarget(t *testing.T) target {
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err == nil {
		err = admin.Ping()
	}
	testsvc.Need(t, err, "MariaDB")
	db := "lockbox_dyn_" + testsvc.Suffix()
	if _, err := admin.Exec("CREATE DATABASE " + db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + db); admin.Close() })
	return target{
		client: "mysql2",
		inputs: map[string]any{"client": "mysql2", "host": "127.0.0.1", "port": "3306", "database": db, "username": "root", "password": ""},
		admin:  admin,
		canLogin: func(t *testing.T, user, pass string) error {
			cfg := mysql.NewConfig()
			cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, pass, "tcp", "127.0.0.1:3306", db
			c, err := sql.Open("mysql", cfg.FormatDSN())
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Ping()
		},
	}
}

func newProvider(t *testing.T, inputs map[string]any) provider.Provider {
	t.Helper()
	b, _ := json.Marshal(inputs)
	reg, ok := provider.Lookup("sql-database")
	if !ok {
		t.Fatal("sql-database not registered")
	}
	p, err := reg.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSQLDatabaseAgainstRealServers(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) target{"postgres": postgresTarget, "mariadb": mysqlTarget} {
		t.Run(name, func(t *testing.T) {
			tg := mk(t)
			ctx := context.Background()
			p := newProvider(t, tg.inputs)
			if err := p.Validate(ctx); err != nil {
				t.Fatalf("validate: %v", err)
			}
			for _, bad := range []string{`x'; DROP TABLE t; --`, `a"b`, "a b", ""} {
				if _, err := p.Create(ctx, provider.CreateRequest{Username: bad, Password: "p"}); err == nil || !strings.Contains(err.Error(), "letters, digits") {
					t.Fatalf("unsafe username %q: %v", bad, err)
				}
			}
			user, pass := "lbx_"+testsvc.Suffix(), "Pw"+testsvc.Suffix()+testsvc.Suffix()
			t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
			exp := time.Now().Add(time.Hour).Truncate(time.Second)
			res, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass, Expiration: exp})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if res.Data["DB_USERNAME"] != user || res.Data["DB_PASSWORD"] != pass {
				t.Fatalf("data %v", res.Data)
			}
			if err := tg.canLogin(t, user, pass); err != nil {
				t.Fatalf("login with the new credentials: %v", err)
			}
			if tg.client == "mysql2" {
				if err := tg.canLogin(t, user, "wrong-password"); err == nil {
					t.Fatal("a wrong password logs in")
				}
			}
			if tg.validTo != nil {
				if got := tg.validTo(t, user); !got.Equal(exp) {
					t.Fatalf("VALID UNTIL %v, want %v", got, exp)
				}
				later := exp.Add(time.Hour)
				if err := p.(provider.Renewer).Renew(ctx, provider.RenewRequest{Username: user, Expiration: later}); err != nil {
					t.Fatal(err)
				}
				if got := tg.validTo(t, user); !got.Equal(later) {
					t.Fatalf("after renew VALID UNTIL %v, want %v", got, later)
				}
			}
			// A lease never takes over a user that exists: creating it again is
			// refused and leaves it as it was.
			if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: "Other" + testsvc.Suffix(), Expiration: exp}); !errors.Is(err, provider.ErrExists) {
				t.Fatalf("create again: %v, want ErrExists", err)
			}
			if err := tg.canLogin(t, user, pass); err != nil {
				t.Fatalf("the user no longer logs in after a refused create: %v", err)
			}
			if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if err := tg.canLogin(t, user, pass); err == nil {
				t.Fatal("revoked user still logs in")
			}
			if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
				t.Fatalf("revoking a user that is gone must succeed: %v", err)
			}
		})
	}
}

func TestSQLDatabaseInputs(t *testing.T) {
	reg, _ := provider.Lookup("sql-database")
	bad := []string{
		`{"client":"oracle","host":"h","port":1,"database":"d","username":"u","password":"p"}`,
		`{"client":"postgres","host":"","port":1,"database":"d","username":"u","password":"p"}`,
		`{"client":"postgres","host":"h","port":0,"database":"d","username":"u","password":"p"}`,
		`{"client":"postgres","host":"h","port":1,"database":"d","username":"u","password":"p","pasword":"typo"}`,
		`{"client":"postgres","host":"h","port":1,"database":"d","username":"u","password":"p","ca":"not pem"}`,
		`not json`,
	}
	for _, in := range bad {
		if _, err := reg.New(json.RawMessage(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	p, err := reg.New(json.RawMessage(`{"client":"mysql","host":"127.0.0.1","port":"1","database":"d","username":"u","password":"hunter2"}`))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Validate(context.Background())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unreachable target: %v", err)
	}
	if red := reg.Redact(map[string]any{"password": "hunter2", "host": "h"}); red["password"] == "hunter2" || red["host"] != "h" {
		t.Fatalf("redact %v", red)
	}
	if len(sqldb.Inputs) == 0 {
		t.Fatal("no inputs declared")
	}
}

// Concurrent GRANT ... ON DATABASE fails in PostgreSQL ("tuple concurrently
// updated") unless the provider serialises its statements.
func TestConcurrentCreatesOnPostgres(t *testing.T) {
	tg := postgresTarget(t)
	p := newProvider(t, tg.inputs)
	ctx := context.Background()
	const n = 16
	errs := make(chan error, n)
	users := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = "lbx_c" + testsvc.Suffix()
		t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: users[i]}) })
		wg.Go(func() {
			_, err := p.Create(ctx, provider.CreateRequest{Username: users[i], Password: "Pw" + testsvc.Suffix(), Expiration: time.Now().Add(time.Hour)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent create: %v", err)
		}
	}
}

// TestUnreachableIsMarked: what fails while a connection opens (a closed
// port, a refused login, a database that does not exist) is marked
// provider.ErrUnreachable, and members are shown a fixed text; the server's
// answer to a statement on a logged-in connection is not. (Decided by where
// the error happened, not by its number: MySQL answers a GRANT the admin may
// not give with 1044 or 1045, as it answers a refused login.)
func TestUnreachableIsMarked(t *testing.T) {
	closed := testsvc.FreePort(t)
	ctx := context.Background()
	for _, tg := range []target{postgresTarget(t), mysqlTarget(t)} {
		with := func(changes map[string]any) map[string]any {
			in := maps.Clone(tg.inputs)
			maps.Copy(in, changes)
			return in
		}
		req := func() provider.CreateRequest {
			return provider.CreateRequest{Username: "lbxu" + testsvc.Suffix()[:8], Password: "Pw" + testsvc.Suffix(), Expiration: time.Now().Add(time.Hour)}
		}
		for name, in := range map[string]map[string]any{
			"closed port":   with(map[string]any{"port": closed}),
			"no database":   with(map[string]any{"database": "lockbox_none_" + testsvc.Suffix()}),
			"refused login": with(map[string]any{"username": "lockbox_nobody_" + testsvc.Suffix()[:6], "password": "wrong"}),
		} {
			if _, err := newProvider(t, in).Create(ctx, req()); !errors.Is(err, provider.ErrUnreachable) {
				t.Errorf("%s %s: %v, want it marked unreachable", tg.client, name, err)
			}
		}
		bad := map[string]any{ // refused before anything is created
			"postgres": `CREATE ROLEX "{{username}}" LOGIN PASSWORD '{{password}}';`,
			"mysql2":   `CREATE USERX '{{username}}'@'%' IDENTIFIED BY '{{password}}';`,
		}[tg.client]
		_, err := newProvider(t, with(map[string]any{"creationStatement": bad})).Create(ctx, req())
		if err == nil || errors.Is(err, provider.ErrUnreachable) {
			t.Errorf("%s: the server's answer to a statement: %v, want an error not marked unreachable", tg.client, err)
		}
	}
}
