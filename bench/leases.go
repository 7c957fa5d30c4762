package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app"
	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

const pgAdmin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// pgTarget makes a database on the local PostgreSQL for leases to grant on;
// cleanup drops it and every role with the returned prefix.
func pgTarget() (dbName, prefix string, cleanup func(), err error) {
	names, prefix, cleanup, err := pgTargets(1)
	if err != nil {
		return "", "", nil, err
	}
	return names[0], prefix, cleanup, nil
}

// pgTargets makes n databases on the local PostgreSQL for leases to grant on;
// cleanup drops them and every role with the returned prefix.
func pgTargets(n int) (dbNames []string, prefix string, cleanup func(), err error) {
	admin, err := sql.Open("pgx", pgAdmin)
	if err != nil {
		return nil, "", nil, err
	}
	b := make([]byte, 4)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	prefix = "b" + tag + "_"
	cleanup = func() {
		// The databases first: they hold the roles' schema and table grants,
		// which DROP OWNED run elsewhere cannot remove.
		for _, db := range dbNames {
			admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
		}
		rows, _ := admin.Query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, prefix)
		var names []string
		for rows != nil && rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		for _, n := range names {
			if _, err := admin.Exec(fmt.Sprintf(`DROP OWNED BY "%s"; DROP ROLE IF EXISTS "%s"`, n, n)); err != nil {
				fmt.Fprintln(os.Stderr, "bench: cleanup of role", n, "failed:", err)
			}
		}
		admin.Close()
	}
	for i := range n {
		name := fmt.Sprintf("lockbox_bench_%s_%d", tag, i)
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			cleanup()
			return nil, "", nil, err
		}
		dbNames = append(dbNames, name)
	}
	return dbNames, prefix, cleanup, nil
}

func createPGDynamic(ctx context.Context, c *client.Client, dbName, prefix string) (slug string, err error) {
	var p struct {
		Project struct{ Slug string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-dyn"}, &p); err != nil {
		return "", err
	}
	return p.Project.Slug, addPGDynamic(ctx, c, p.Project.Slug, "pg", dbName, prefix)
}

// addPGDynamic makes a sql-database dynamic secret named name on dbName.
func addPGDynamic(ctx context.Context, c *client.Client, slug, name, dbName, prefix string) error {
	return c.Do(ctx, "POST", "/api/v1/dynamic-secrets", map[string]any{"projectSlug": slug, "environmentSlug": "dev", "path": "/",
		"name": name, "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}",
		"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "postgres", "host": "127.0.0.1",
			"port": 5432, "database": dbName, "username": "postgres", "password": ""}}}, nil)
}

// runLeaseCreate measures lease creations through the API, then the bare
// CREATE ROLE + GRANT the provider runs, against the same PostgreSQL.
func runLeaseCreate(conc int, d time.Duration, engine string) ([]result, error) {
	dbName, prefix, cleanup, err := pgTarget()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	srv, url, stop, err := start(store.Dialect(engine), true)
	if err != nil {
		return nil, err
	}
	defer stop()
	_ = srv
	ctx := context.Background()
	c := client.New(url, "")
	boot, err := c.Bootstrap(ctx, benchEmail, benchPassword, "Bench")
	if err != nil {
		return nil, err
	}
	c.Token = boot.Identity.Credentials.Token
	slug, err := createPGDynamic(ctx, c, dbName, prefix)
	if err != nil {
		return nil, err
	}
	body := fmt.Sprintf(`{"dynamicSecretName":"pg","projectSlug":%q,"environmentSlug":"dev","path":"/","ttl":"1h"}`, slug)
	api := drive(func(hc *http.Client) error {
		return send(hc, "POST", url+"/api/v1/dynamic-secrets/leases", c.Token, body)
	}, conc, d)
	api.Scenario, api.Database = "lease-create (API)", engine

	target, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+dbName+"?sslmode=disable")
	if err != nil {
		return nil, err
	}
	defer target.Close()
	target.SetMaxOpenConns(conc)
	var n atomic.Int64
	bare := drive(func(*http.Client) error {
		u := fmt.Sprintf("%sbare%d", prefix, n.Add(1))
		_, err := target.Exec(fmt.Sprintf(`SELECT pg_advisory_xact_lock(7435108); CREATE ROLE "%s" WITH LOGIN PASSWORD 'Pw0123456789abcdefghij' VALID UNTIL '2099-01-01';
GRANT CONNECT ON DATABASE "%s" TO "%s"; GRANT USAGE ON SCHEMA public TO "%s"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "%s";`,
			u, dbName, u, u, u))
		return err
	}, conc, d)
	bare.Scenario, bare.Database = "lease-create (bare SQL)", "postgres"
	// The bare run serialises its runs as the provider does (which holds a
	// lock on the node, per target database, not in the target): without it
	// concurrent GRANT ... ON DATABASE fails ("tuple concurrently updated").
	return []result{api, bare}, nil
}

// runRevokeLag makes n real roles and active leases, spread over targets
// dynamic secrets (one database each on the local PostgreSQL), that all
// expire at the same instant, starts the worker, and reports how long after
// expiry each lease was revoked. With grant "connect" every role holds
// CONNECT on its database, as the default creation statement grants, so the
// database's ACL has one entry per lease; with "group" the roles are members
// of one role that holds it. No lease's role may survive the run: it waits
// until the last one is dropped (the second phase of a revocation, in the
// background) and reports when that was.
//
// With del (scenario delete-leases) nothing expires: the first dynamic
// secret is deleted through the API, which revokes its leases inside the
// request, and the result is that request's time; no role of its leases may
// be left.
func runRevokeLag(n, history, targets, parallel, batch, burst int, grant, engine string, del bool) (result, error) {
	if targets < 1 || targets > n {
		return result{}, errors.New("-targets from 1 to -leases")
	}
	if grant != "connect" && grant != "group" {
		return result{}, errors.New("-grant is connect or group")
	}
	dbNames, prefix, cleanup, err := pgTargets(targets)
	if err != nil {
		return result{}, err
	}
	defer cleanup()
	a, url, stop, err := start(store.Dialect(engine), false)
	if err != nil {
		return result{}, err
	}
	defer stop()
	ctx := context.Background()
	c := client.New(url, "")
	boot, err := c.Bootstrap(ctx, benchEmail, benchPassword, "Bench")
	if err != nil {
		return result{}, err
	}
	c.Token = boot.Identity.Credentials.Token
	slug, err := createPGDynamic(ctx, c, dbNames[0], prefix)
	if err != nil {
		return result{}, err
	}
	for i := 1; i < targets; i++ {
		if err := addPGDynamic(ctx, c, slug, fmt.Sprintf("pg%d", i), dbNames[i], prefix); err != nil {
			return result{}, err
		}
	}
	dsIDs := make([]string, targets)
	var projectID string
	for i := range targets {
		name := "pg"
		if i > 0 {
			name = fmt.Sprintf("pg%d", i)
		}
		if err := a.raw.QueryRowContext(ctx, rebind(a.db, `SELECT id, project_id FROM dynamic_secrets WHERE name = ?`), name).Scan(&dsIDs[i], &projectID); err != nil {
			return result{}, err
		}
	}
	// Real roles, made and granted 500 at a time (one ACL rewrite per GRANT);
	// lease i is on target i % targets.
	for t, dbName := range dbNames {
		target, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+dbName+"?sslmode=disable")
		if err != nil {
			return result{}, err
		}
		group := fmt.Sprintf(`"%sgroup%d"`, prefix, t)
		if grant == "group" {
			if _, err := target.Exec(fmt.Sprintf(`CREATE ROLE %s NOLOGIN; GRANT CONNECT ON DATABASE "%s" TO %s`, group, dbName, group)); err != nil {
				target.Close()
				return result{}, err
			}
		}
		var mine []int
		for i := t; i < n; i += targets {
			mine = append(mine, i)
		}
		for chunk := range slices.Chunk(mine, 500) {
			var b strings.Builder
			names := make([]string, len(chunk))
			for k, i := range chunk {
				names[k] = fmt.Sprintf(`"%slag%d"`, prefix, i)
				fmt.Fprintf(&b, "CREATE ROLE %s LOGIN;", names[k])
			}
			if grant == "group" {
				fmt.Fprintf(&b, `GRANT %s TO %s;`, group, strings.Join(names, ", "))
			} else {
				fmt.Fprintf(&b, `GRANT CONNECT ON DATABASE "%s" TO %s;`, dbName, strings.Join(names, ", "))
			}
			if _, err := target.Exec(b.String()); err != nil {
				target.Close()
				return result{}, err
			}
		}
		target.Close()
	}
	now := time.Now().UTC()
	tx, err := a.raw.BeginTx(ctx, nil)
	if err != nil {
		return result{}, err
	}
	ins := rebind(a.db, `INSERT INTO dynamic_leases (id, dynamic_secret_id, project_id, username, config, status, status_details,
		expire_at, due_at, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', 'active', '', ?, ?, 0, ?, ?)`)
	later := now.Add(time.Hour).UnixMicro()
	for i := range n {
		if _, err := tx.ExecContext(ctx, ins, fmt.Sprintf("00000000-0000-7000-8000-%012d", i), dsIDs[i%targets], projectID,
			fmt.Sprintf("%slag%d", prefix, i), later, later, now.UnixMicro(), now.UnixMicro()); err != nil {
			tx.Rollback()
			return result{}, err
		}
	}
	// Revoked leases of the first dynamic secret, as a long-lived one keeps
	// (until it is deleted): a claim must not read them.
	gone := rebind(a.db, `INSERT INTO dynamic_leases (id, dynamic_secret_id, project_id, username, config, status, status_details,
		expire_at, due_at, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, '{}', 'revoked', '', ?, ?, 0, ?, ?)`)
	past := now.Add(-time.Hour).UnixMicro()
	for i := range history {
		if _, err := tx.ExecContext(ctx, gone, fmt.Sprintf("00000000-0000-7000-9000-%012d", i), dsIDs[0], projectID,
			fmt.Sprintf("%sgone%d", prefix, i), past, past, past, past); err != nil {
			tx.Rollback()
			return result{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return result{}, err
	}
	if engine == "postgres" {
		// Statistics, as autovacuum would have them for a table that grew over time.
		if _, err := a.raw.ExecContext(ctx, `ANALYZE dynamic_leases`); err != nil {
			return result{}, err
		}
	}
	if del {
		body := fmt.Sprintf(`{"projectSlug":%q,"environmentSlug":"dev","path":"/"}`, slug)
		began := time.Now()
		if err := send(&http.Client{}, "DELETE", url+"/api/v1/dynamic-secrets/pg", c.Token, body); err != nil {
			return result{}, fmt.Errorf("delete the dynamic secret: %v", err)
		}
		took := time.Since(began)
		admin, err := sql.Open("pgx", pgAdmin)
		if err != nil {
			return result{}, err
		}
		defer admin.Close()
		var left int
		if err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_roles WHERE starts_with(rolname, $1)`, prefix+"lag").Scan(&left); err != nil {
			return result{}, err
		}
		mine := (n + targets - 1) / targets
		if left != n-mine {
			return result{}, fmt.Errorf("%d roles left after the deletion, want %d", left, n-mine)
		}
		return result{Scenario: "delete-leases", Database: engine, Secrets: targets, Requests: mine, Seconds: took.Seconds(),
			PerSecond: float64(mine) / took.Seconds()}, nil
	}
	expire := time.Now().Add(time.Second).UTC().Truncate(time.Millisecond)
	if _, err := a.raw.ExecContext(ctx, rebind(a.db, `UPDATE dynamic_leases SET expire_at = ?, due_at = ? WHERE status = 'active'`), expire.UnixMicro(), expire.UnixMicro()); err != nil {
		return result{}, err
	}
	setWorker(a.app.Worker, parallel, batch, burst)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.app.Worker.Run(wctx); close(done) }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var left int
		a.raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM dynamic_leases WHERE status <> 'revoked'`).Scan(&left)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return result{}, fmt.Errorf("%d leases not revoked after 10 minutes", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin, err := sql.Open("pgx", pgAdmin)
	if err != nil {
		cancel()
		<-done
		return result{}, err
	}
	defer admin.Close()
	// A revoked lease's role may still exist, disabled (two-phase revocation):
	// none may log in, and the worker must drop them all.
	var canLogin int
	err = admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_roles WHERE starts_with(rolname, $1) AND rolcanlogin`, prefix+"lag").Scan(&canLogin)
	if err != nil || canLogin > 0 {
		cancel()
		<-done
		return result{}, fmt.Errorf("%d roles of revoked leases can still log in (%v)", canLogin, err)
	}
	var dropped time.Duration
	for {
		var survivors int
		err := admin.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_roles WHERE starts_with(rolname, $1)`, prefix+"lag").Scan(&survivors)
		if err == nil && survivors == 0 {
			dropped = time.Since(expire)
			break
		}
		if err != nil || time.Now().After(deadline) {
			cancel()
			<-done
			return result{}, fmt.Errorf("%d roles survived their revoked leases (%v)", survivors, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	rows, err := a.raw.QueryContext(ctx, `SELECT updated_at - expire_at FROM dynamic_leases WHERE updated_at > created_at`)
	if err != nil {
		return result{}, err
	}
	var lags []time.Duration
	for rows.Next() {
		var us int64
		rows.Scan(&us)
		lags = append(lags, time.Duration(us)*time.Microsecond)
	}
	rows.Close()
	if len(lags) != n {
		return result{}, fmt.Errorf("%d revocation times for %d leases", len(lags), n)
	}
	slices.Sort(lags)
	pct := func(p float64) float64 { return float64(lags[int(float64(len(lags)-1)*p)].Microseconds()) / 1000 }
	last := lags[len(lags)-1]
	return result{Scenario: "revoke-lag", Database: engine, Secrets: targets, Requests: len(lags), P50ms: pct(.5), P95ms: pct(.95), P99ms: pct(.99),
		Seconds: last.Seconds(), PerSecond: float64(len(lags)) / max(last.Seconds(), 0.001), DroppedS: dropped.Seconds()}, nil
}

// runStartup times a server start (open, migrate, key check, wiring, first
// status answer) on a SQLite database holding n lease rows.
func runStartup(n int, engine string) (result, error) {
	dir, err := os.MkdirTemp("", "lockbox-startup-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	root := make([]byte, keyring.KeySize)
	rand.Read(root)
	opts := store.Options{Dir: dir}
	if engine == string(store.Postgres) {
		u, drop, err := storetest.CreateDatabase(context.Background(), storetest.PGAdminURL())
		if err != nil {
			return result{}, err
		}
		defer drop()
		opts = store.Options{URL: u, MaxConns: 20}
	}
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		return result{}, err
	}
	var raw *sql.DB
	if opts.URL != "" {
		raw, err = sql.Open("pgx", opts.URL)
	} else {
		raw, err = sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		return result{}, err
	}
	now := time.Now().UnixMicro()
	stmts := []string{
		`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES ('o', 'o', 'o', 0, 0)`,
		`INSERT INTO projects (id, org_id, name, slug, type, created_at, updated_at) VALUES ('p', 'o', 'p', 'p', 'secret-manager', 0, 0)`,
		`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES ('e', 'p', 'e', 'e', 1, 0, 0)`,
		`INSERT INTO folders (id, env_id, name, created_at, updated_at) VALUES ('f', 'e', 'root', 0, 0)`,
		`INSERT INTO dynamic_secrets (id, project_id, folder_id, name, type, inputs, default_ttl, created_at, updated_at) VALUES ('d', 'p', 'f', 'd', 'sql-database', x'00', '1h', 0, 0)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
		INSERT INTO dynamic_leases (id, dynamic_secret_id, project_id, username, status, expire_at, due_at, created_at, updated_at)
		SELECT 'lease-' || i, 'd', 'p', 'user' || i, 'active', %d, %d, %d, %d FROM n`, n, now+int64(time.Hour/time.Microsecond), now+int64(time.Hour/time.Microsecond), now, now),
	}
	if opts.URL != "" {
		stmts[4] = strings.Replace(stmts[4], "x'00'", `'\x00'::bytea`, 1)
		stmts[5] = fmt.Sprintf(`INSERT INTO dynamic_leases (id, dynamic_secret_id, project_id, username, status, expire_at, due_at, created_at, updated_at)
		SELECT 'lease-' || i, 'd', 'p', 'user' || i, 'active', %d, %d, %d, %d FROM generate_series(1, %d) AS i`,
			now+int64(time.Hour/time.Microsecond), now+int64(time.Hour/time.Microsecond), now, now, n)
	}
	if n == 0 {
		stmts = stmts[:5]
	}
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			return result{}, fmt.Errorf("seed: %w", err)
		}
	}
	var got int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM dynamic_leases`).Scan(&got); err != nil || got != n {
		return result{}, fmt.Errorf("seeded %d lease rows, want %d (%v)", got, n, err)
	}
	raw.Close()
	db.Close()
	// The measured start: what `lockbox server` does before it answers.
	begin := time.Now()
	db, err = store.Open(context.Background(), opts)
	if err != nil {
		return result{}, err
	}
	defer db.Close()
	kr, _ := keyring.New(root, db)
	if _, err := kr.SystemKey(context.Background(), "jwt"); err != nil {
		return result{}, err
	}
	a := app.New(db, kr, app.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	rec := &statusWriter{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/api/status", nil)
	a.ServeHTTP(rec, req)
	if rec.code != 200 {
		return result{}, errors.New("status did not answer 200")
	}
	took := time.Since(begin)
	return result{Scenario: fmt.Sprintf("startup with %d leases", n), Database: engine, Requests: 1, Seconds: took.Seconds(),
		P50ms: float64(took.Microseconds()) / 1000}, nil
}

type statusWriter struct {
	h    http.Header
	code int
	mu   sync.Mutex
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusWriter) WriteHeader(c int)           { w.mu.Lock(); w.code = c; w.mu.Unlock() }
