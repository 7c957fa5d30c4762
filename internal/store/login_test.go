package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// wire counts what a PostgreSQL pool sends: statements (pgx's query tracer)
// and round trips (writes to the socket; pgx writes each request, including
// a statement's first preparation, in one write and then waits for the answer).
type wire struct{ statements, roundTrips atomic.Int64 }

func (w *wire) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	w.statements.Add(1)
	return ctx
}

func (w *wire) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

type countingConn struct {
	net.Conn
	w *wire
}

func (c countingConn) Write(b []byte) (int, error) {
	c.w.roundTrips.Add(1)
	return c.Conn.Write(b)
}

// openCounted opens a fresh PostgreSQL store whose connections count their
// statements and round trips in w.
func openCounted(t *testing.T, w *wire) *store.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(storetest.RequirePG(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tracer = w
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, w}, nil
	}
	name := stdlib.RegisterConnConfig(cfg)
	t.Cleanup(func() { stdlib.UnregisterConnConfig(name) })
	db, err := store.Open(t.Context(), store.Options{URL: name, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestUniversalAuthLoginRoundTrips: a Universal Auth login on PostgreSQL
// costs the fewest round trips the checks allow, on a warm connection (its
// statements already prepared): without lockout, one read of configuration,
// identity and secret and one statement that consumes the use and writes
// the token and the audit event. With lockout, the attempt's reservation is
// one more (the reservation-before-check that keeps lockout exact).
func TestUniversalAuthLoginRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lockout bool
		want    int64
	}{
		{"lockout off", false, 2},
		{"lockout on", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w wire
			db := openCounted(t, &w)
			ctx := t.Context()
			root := make([]byte, keyring.KeySize)
			rand.Read(root)
			kr, _ := keyring.New(root, db)
			svc := identity.NewService(db, kr, nil)
			res, err := svc.Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			ua := identity.NewUA(db, authz.NewResolver(db, nil), svc)
			actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
			lockout := tc.lockout
			cfg, err := ua.Attach(ctx, actor, res.Identity.ID, identity.UAConfig{LockoutEnabled: &lockout})
			if err != nil {
				t.Fatal(err)
			}
			secret, _, err := ua.NewClientSecret(ctx, actor, res.Identity.ID, "", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Warm every pooled connection: the first login on a connection
			// prepares its statements (one more round trip each, once).
			for range 8 {
				if _, err := ua.Login(ctx, cfg.ClientID, secret, "", "127.0.0.1", "test"); err != nil {
					t.Fatal(err)
				}
			}
			const n = 5
			s0, r0 := w.statements.Load(), w.roundTrips.Load()
			for range n {
				if _, err := ua.Login(ctx, cfg.ClientID, secret, "", "127.0.0.1", "test"); err != nil {
					t.Fatal(err)
				}
			}
			stmts, trips := (w.statements.Load()-s0)/n, (w.roundTrips.Load()-r0)/n
			t.Logf("per login: %d statements, %d round trips", stmts, trips)
			if trips > tc.want {
				t.Errorf("a login takes %d round trips to PostgreSQL, want at most %d", trips, tc.want)
			}
		})
	}
}

// uaFixture bootstraps an instance on db and gives its admin identity
// Universal Auth; it returns the service, the client id, the admin actor and
// its identity id.
func uaFixture(t *testing.T, db *store.DB, lockout bool) (*identity.UA, string, authz.Actor) {
	t.Helper()
	ctx := t.Context()
	root := make([]byte, keyring.KeySize)
	rand.Read(root)
	kr, _ := keyring.New(root, db)
	svc := identity.NewService(db, kr, nil)
	res, err := svc.Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	ua := identity.NewUA(db, authz.NewResolver(db, nil), svc)
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
	cfg, err := ua.Attach(ctx, actor, res.Identity.ID, identity.UAConfig{LockoutEnabled: &lockout})
	if err != nil {
		t.Fatal(err)
	}
	return ua, cfg.ClientID, actor
}

// holdWrites keeps the logins' writes waiting until the returned function is
// called: on PostgreSQL a transaction locks the secret's row, on SQLite it
// holds the write lock.
func holdWrites(t *testing.T, d store.Dialect, o store.Options, db *store.DB, secretID string) (release func()) {
	t.Helper()
	driver, dsn := "pgx", o.URL
	if d == store.SQLite {
		driver, dsn = "sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	conn, err := raw.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hold := []string{"BEGIN", "SELECT 1 FROM identity_ua_client_secrets WHERE id = '" + secretID + "' FOR UPDATE"}
	if d == store.SQLite {
		hold = []string{"BEGIN IMMEDIATE"}
	}
	for _, q := range hold {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}
}

// waitFor yields until cond holds (it is polled, never timed).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatal("test ended before the condition held")
		}
		runtime.Gosched()
	}
}

// loginsBehind holds the writes, starts a login and, once it is committing,
// queues one login per user agent in agents; then it lets the writes go and
// returns each queued login's outcome.
func loginsBehind(t *testing.T, d store.Dialect, o store.Options, db *store.DB, ua *identity.UA, clientID, secret, secretID string,
	agents []string) []error {
	t.Helper()
	release := holdWrites(t, d, o, db, secretID)
	login := func(userAgent string) error {
		_, err := ua.Login(t.Context(), clientID, secret, "", "127.0.0.1", userAgent)
		return err
	}
	first := make(chan error, 1)
	go func() { first <- login("first") }()
	waitFor(t, func() bool { running, queued := db.LoginGroupState(); return running && queued == 0 })
	results := make([]error, len(agents))
	var wg sync.WaitGroup
	for i, agent := range agents {
		wg.Go(func() { results[i] = login(agent) })
		waitFor(t, func() bool { _, queued := db.LoginGroupState(); return queued == i+1 })
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first login: %v", err)
	}
	wg.Wait()
	return results
}

// TestLoginsWaitingForACommitShareTheNext: logins that arrive while a group
// is committing are committed together, in one transaction (their audit
// events carry its one time), and the group grants a limited secret's uses
// exactly, in arrival order; a login whose write fails (PostgreSQL refuses
// a user agent with a NUL byte) fails alone.
func TestLoginsWaitingForACommitShareTheNext(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			o := storetest.Options(t, d)
			db, err := store.Open(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			ua, clientID, actor := uaFixture(t, db, true)
			ctx := t.Context()
			secret, cs, err := ua.NewClientSecret(ctx, actor, actor.ID, "", 4, 0)
			if err != nil {
				t.Fatal(err)
			}
			const n = 10
			results := loginsBehind(t, d, o, db, ua, clientID, secret, cs.ID, slices.Repeat([]string{"waiting"}, n))
			granted := 0
			for i, err := range results {
				switch {
				case err == nil:
					granted++
					if i >= 3 {
						t.Errorf("login %d of the group granted, want the first 3 (4 uses, 1 taken)", i)
					}
				case !errs.Is(err, errs.Unauthorized):
					t.Errorf("login %d: %v, want a refusal", i, err)
				}
			}
			if granted != 3 {
				t.Errorf("%d of %d waiting logins granted, want 3", granted, n)
			}
			got, err := ua.ClientSecret(ctx, actor, actor.ID, cs.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.NumUses != 4 {
				t.Errorf("secret used %d times, want 4", got.NumUses)
			}
			evs, err := db.AuditEvents(ctx, audit.Filter{OrgID: actor.OrgID, EventTypes: []string{"login-identity-universal-auth"}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var times []int64
			for _, ev := range evs {
				if ev.UserAgent == "waiting" {
					times = append(times, ev.CreatedAt.UnixMicro())
				}
			}
			if len(evs) != 4 || len(times) != 3 || len(slices.Compact(times)) != 1 {
				t.Errorf("%d login events (want 4), the group's at times %v (want 3 at one time)", len(evs), times)
			}

			if d != store.Postgres {
				return
			}
			secret, cs, err = ua.NewClientSecret(ctx, actor, actor.ID, "", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			results = loginsBehind(t, d, o, db, ua, clientID, secret, cs.ID, []string{"good", "bad \x00", "good"})
			if results[0] != nil || results[2] != nil || errs.KindOf(results[1]) != errs.Invalid {
				t.Errorf("a group with one user agent PostgreSQL refuses (a NUL byte): %v, want nil, Invalid, nil", results)
			}
		})
	}
}

// TestLockedLoginCostsTheSame: while a configuration is locked, a right
// secret is refused with the same answer and the same statements as a wrong
// one, so neither tells a guesser anything.
func TestLockedLoginCostsTheSame(t *testing.T) {
	var w wire
	db := openCounted(t, &w)
	ua, clientID, actor := uaFixture(t, db, true) // threshold 3
	ctx := t.Context()
	secret, _, err := ua.NewClientSecret(ctx, actor, actor.ID, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "0000000000000000000000000000000000000000000000000000000000000000"
	for range 3 {
		ua.Login(ctx, clientID, wrong, "", "127.0.0.1", "test")
	}
	try := func(s string) (string, int64) {
		n := w.statements.Load()
		_, err := ua.Login(ctx, clientID, s, "", "127.0.0.1", "test")
		if err == nil {
			t.Fatal("a locked configuration let a login in")
		}
		return err.Error(), w.statements.Load() - n
	}
	try(secret) // warm the statements of both paths
	try(wrong)
	rightMsg, rightStmts := try(secret)
	wrongMsg, wrongStmts := try(wrong)
	if rightMsg != wrongMsg || rightStmts != wrongStmts {
		t.Errorf("locked: a right secret gets %q after %d statements, a wrong one %q after %d", rightMsg, rightStmts, wrongMsg, wrongStmts)
	}
}
