package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// pgTarget makes a fresh PostgreSQL database to grant on and returns an
// admin connection; roles this test creates all start with prefix.
func pgTarget(t *testing.T) (*sql.DB, string, string) {
	t.Helper()
	storetest.RequirePG(t) // fails under CI=true when PostgreSQL is missing
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	db, prefix := "lockbox_tgt_"+tag, "p"+tag+"_"
	if _, err := admin.Exec("CREATE DATABASE " + db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever the test left (it should be nothing), remove it: the
		// database first, as it holds the roles' grants.
		admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
		for _, r := range roles(t, admin, prefix) {
			if _, err := admin.Exec(fmt.Sprintf(`DROP OWNED BY "%s"; DROP ROLE IF EXISTS "%s"`, r, r)); err != nil {
				t.Errorf("cleanup of role %s: %v", r, err)
			}
		}
		admin.Close()
	})
	return admin, db, prefix
}

func roles(t *testing.T, admin *sql.DB, prefix string) []string {
	t.Helper()
	rows, err := admin.Query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		rows.Scan(&r)
		out = append(out, r)
	}
	return out
}

type dynEnv struct {
	c    *client.Client
	slug string
	name string
}

// bootstrapProject sets up the server at addr and makes a project; it returns
// a client holding the admin token and the project's slug.
func bootstrapProject(t *testing.T, addr, name string) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	c := client.New("http://"+addr, "")
	c.HTTP.Timeout = 5 * time.Second
	boot, err := c.Bootstrap(ctx, "a@b.co", "pw", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = boot.Identity.Credentials.Token
	var p struct {
		Project struct{ Slug string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": name}, &p); err != nil {
		t.Fatal(err)
	}
	return c, p.Project.Slug
}

func setupDynamic(t *testing.T, addr, db, prefix string, creation string) dynEnv {
	t.Helper()
	ctx := context.Background()
	c, slug := bootstrapProject(t, addr, "crash")
	e := dynEnv{c: c, slug: slug, name: "pg"}
	err := c.Do(ctx, "POST", "/api/v1/dynamic-secrets", map[string]any{"projectSlug": e.slug, "environmentSlug": "dev", "path": "/",
		"name": e.name, "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}",
		"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "postgres", "host": "127.0.0.1",
			"port": 5432, "database": db, "username": "postgres", "password": "", "creationStatement": creation}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type leaseInfo struct {
	ID               string `json:"id"`
	ExternalEntityID string `json:"externalEntityId"`
	Status           string `json:"status"`
	ExpireAt         string `json:"expireAt"`
}

func (e dynEnv) lease(ctx context.Context, c *client.Client, ttl string) (leaseInfo, error) {
	var out struct {
		Lease leaseInfo `json:"lease"`
	}
	err := c.Do(ctx, "POST", "/api/v1/dynamic-secrets/leases", map[string]any{"dynamicSecretName": e.name, "projectSlug": e.slug,
		"environmentSlug": "dev", "path": "/", "ttl": ttl}, &out)
	return out.Lease, err
}

func (e dynEnv) leases(t *testing.T, c *client.Client) []leaseInfo {
	t.Helper()
	var out struct {
		Leases []leaseInfo `json:"leases"`
	}
	if err := c.Do(context.Background(), "GET", "/api/v1/dynamic-secrets/"+e.name+"/leases?projectSlug="+e.slug+"&environmentSlug=dev&path=/", nil, &out); err != nil {
		t.Fatal(err)
	}
	return out.Leases
}

func TestCrashLeavesNoOrphanedCredentials(t *testing.T) {
	admin, db, prefix := pgTarget(t)
	dir := t.TempDir()
	addr, cmd, _, _ := startServer(t, dir, nil, "--lease-creating-timeout", "3s")
	// The role is committed 300 ms before the lease can become active: a
	// kill in that window leaves a role whose lease row is still 'creating'.
	// (Without the COMMIT a killed connection rolls the role back.)
	e := setupDynamic(t, addr, db, prefix, `CREATE ROLE "{{username}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT CONNECT ON DATABASE "{{database}}" TO "{{username}}"; COMMIT; SELECT pg_sleep(0.3);`)

	// Create leases from four clients; kill the server with SIGKILL mid-way.
	var ok atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := e.lease(ctx, e.c, "1h"); err == nil {
					ok.Add(1)
				}
			}
		})
	}
	for ok.Load() < 12 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // mid-way through the next creations
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cancel()
	wg.Wait()
	before := roles(t, admin, prefix)
	t.Logf("killed after %d acknowledged leases; %d roles exist at the kill", ok.Load(), len(before))

	// Restart on the same data: the worker revokes abandoned 'creating' leases.
	addr, _, _, _ = startServer(t, dir, nil, "--lease-creating-timeout", "3s")
	e.c.BaseURL = "http://" + addr
	if after := roles(t, admin, prefix); len(after) < len(before) {
		t.Logf("%d roles were already revoked on start-up", len(before)-len(after))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pending := 0
		for _, l := range e.leases(t, e.c) {
			if l.Status != "active" {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d leases still not settled", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	active := map[string]bool{}
	for _, l := range e.leases(t, e.c) {
		active[l.ExternalEntityID] = true
	}
	// A revoked lease's role is disabled at once and dropped just after
	// (two-phase revocation): wait for the drops, then no role may be left
	// without an active lease.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n := 0
		for _, r := range roles(t, admin, prefix) {
			if !active[r] {
				n++
			}
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
	}
	after := roles(t, admin, prefix)
	for _, r := range after {
		if !active[r] {
			t.Errorf("orphaned role %s: exists in PostgreSQL with no active lease", r)
		}
	}
	for u := range active {
		if !strings.HasPrefix(u, prefix) || !contains(after, u) {
			t.Errorf("active lease %s has no role", u)
		}
	}
	if len(before) <= int(ok.Load()) {
		t.Logf("note: no creation was in flight at the kill this time")
	}
	if int64(len(active)) < ok.Load() {
		t.Errorf("%d acknowledged leases but %d active", ok.Load(), len(active))
	}
	t.Logf("after restart: %d roles, all backed by active leases (%d)", len(after), len(active))
	// Clean up through the API: deleting the dynamic secret revokes them all.
	if err := e.c.Do(context.Background(), "DELETE", "/api/v1/dynamic-secrets/"+e.name, map[string]any{"projectSlug": e.slug,
		"environmentSlug": "dev", "path": "/"}, nil); err != nil {
		t.Fatal(err)
	}
	if left := roles(t, admin, prefix); len(left) != 0 {
		t.Fatalf("roles left after deleting the dynamic secret: %v", left)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestTwoNodesSurvivorRevokesOnTime(t *testing.T) {
	admin, db, prefix := pgTarget(t)
	url := storetest.RequirePG(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	env := []string{"LOCKBOX_DATABASE_URL=" + url, "LOCKBOX_ROOT_KEY=" + key}
	addrA, cmdA, _, _ := startServer(t, t.TempDir(), env)
	addrB, _, _, _ := startServer(t, t.TempDir(), env)
	e := setupDynamic(t, addrA, db, prefix, "")
	cB := client.New("http://"+addrB, e.c.Token)
	ctx := context.Background()
	var all []leaseInfo
	for i := range 10 {
		c := e.c
		if i%2 == 1 {
			c = cB
		}
		l, err := e.lease(ctx, c, "3s")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, l)
	}
	cmdA.Process.Signal(syscall.SIGKILL)
	cmdA.Wait()
	if n := len(roles(t, admin, prefix)); n != 10 {
		t.Fatalf("%d roles before expiry, want 10", n)
	}
	var last time.Time
	for _, l := range all {
		exp, _ := time.Parse(time.RFC3339, l.ExpireAt)
		if exp.After(last) {
			last = exp
		}
	}
	for len(roles(t, admin, prefix)) > 0 {
		if time.Since(last) > 10*time.Second {
			t.Fatalf("survivor left %v more than 10s after the last expiry", roles(t, admin, prefix))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all 10 leases (5 created through the killed node) revoked %v after the last expiry", time.Since(last).Round(time.Millisecond))
}
