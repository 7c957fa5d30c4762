package api_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// mariaDB gives a fresh database on the machine's MariaDB, dropped at cleanup.
func mariaDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 is required: %v", err)
	}
	name := "lockbox_dyn_" + randHex(5)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name); admin.Close() })
	return admin, name
}

// dropMySQLUsersAtCleanup drops, when the test ends, every user whose name
// starts with prefix and "_": what a failed run would leave in the target.
func dropMySQLUsersAtCleanup(t *testing.T, admin *sql.DB, prefix string) {
	t.Cleanup(func() {
		rows, err := admin.Query(`SELECT User, Host FROM mysql.user WHERE User LIKE ?`, prefix+`\_%`)
		if err != nil {
			t.Error(err)
			return
		}
		var drop []string
		for rows.Next() {
			var u, h string
			if rows.Scan(&u, &h) == nil {
				drop = append(drop, fmt.Sprintf("DROP USER '%s'@'%s'", u, h))
			}
		}
		rows.Close()
		for _, q := range drop {
			if _, err := admin.Exec(q); err != nil {
				t.Error(err)
			}
		}
	})
}

func mysqlUserExists(t *testing.T, admin *sql.DB, user string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow(`SELECT COUNT(*) FROM mysql.user WHERE User = ?`, user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func mysqlLogin(user, pass, db string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = user, pass, "tcp", "127.0.0.1:3306", db
	c, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping()
}

// proxy forwards a loopback port to target until cut, and can be restored on the same port.
type proxy struct {
	mu     sync.Mutex
	addr   string
	target string
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection: the target refuses connections.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

type leaseOut struct {
	Lease struct {
		ID, ExternalEntityID, ExpireAt, Status string
		StatusDetails                          *string
	}
	Data map[string]string
}

func createDynamic(t *testing.T, e *apptest.Env, slug, name, host, port, db string, extra map[string]any) {
	t.Helper()
	body := map[string]any{"projectSlug": slug, "environmentSlug": "dev", "path": "/", "name": name, "defaultTTL": "1h", "maxTTL": "2h",
		"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "mysql2", "host": host, "port": port,
			"database": db, "username": "root", "password": ""}}}
	for k, v := range extra {
		body[k] = v
	}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, body)
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v", d)
	return 0
}

func TestDynamicSecretLeaseLifecycleMariaDB(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		admin, db := mariaDB(t)
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "dyn"})
		assertError(t, e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev",
			"name": "bad", "defaultTTL": "1h", "provider": map[string]any{"type": "sql-database", "inputs": map[string]any{
				"client": "mysql2", "host": "127.0.0.1", "port": 1, "database": db, "username": "root", "password": "hunter2"}}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev",
			"name": "typo", "defaultTTL": "1h", "provider": map[string]any{"type": "sql-database", "inputs": map[string]any{
				"client": "mysql2", "host": "127.0.0.1", "port": 3306, "database": db, "username": "root", "pasword": "x"}}}), 400, "BadRequest")
		createDynamic(t, e, p.Slug, "mariadb", "127.0.0.1", "3306", db, nil)
		// The admin may read the root credential: inputs in clear (as Infisical,
		// for Terraform's comparison); a viewer may not: masked.
		got := e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/mariadb?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", e.Token, nil).JSON(t)
		in := got["dynamicSecret"].(map[string]any)["inputs"].(map[string]any)
		if in["password"] != "" || in["host"] != "127.0.0.1" {
			t.Fatalf("inputs %v", in)
		}
		_, viewer := projectMember(t, e, p.ID, "dyn-viewer", "viewer")
		got = e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/mariadb?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", viewer, nil).JSON(t)
		if in := got["dynamicSecret"].(map[string]any)["inputs"].(map[string]any); in["password"] != "******" || in["host"] != "127.0.0.1" {
			t.Fatalf("inputs as a viewer %v", in)
		}

		var l leaseOut
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb", "projectSlug": p.Slug,
			"environmentSlug": "dev", "path": "/", "ttl": "", "config": nil}).Decode(t, &l)
		user, pass := l.Data["DB_USERNAME"], l.Data["DB_PASSWORD"]
		if l.Lease.Status != "active" || user == "" || l.Lease.ExternalEntityID != user || len(pass) < 32 {
			t.Fatalf("lease %+v", l)
		}
		if err := mysqlLogin(user, pass, db); err != nil {
			t.Fatalf("lease credentials do not log in: %v", err)
		}
		exp, _ := time.Parse(time.RFC3339, l.Lease.ExpireAt)
		if d := time.Until(exp); d < 59*time.Minute || d > 61*time.Minute {
			t.Fatalf("default TTL: expires in %v", d)
		}
		q := "?projectSlug=" + p.Slug + "&environmentSlug=dev&path=/"
		scope := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/"}
		var list struct{ Leases []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/mariadb/leases"+q, e.Token, nil).Decode(t, &list)
		if len(list.Leases) != 1 || list.Leases[0].ID != l.Lease.ID {
			t.Fatalf("leases %+v", list)
		}
		// Renew adds to the current expiry (1h + 30m) within max TTL (2h); past it is a 400.
		renew := func(ttl string) apptest.Response {
			b := map[string]any{"ttl": ttl}
			for k, v := range scope {
				b[k] = v
			}
			return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", e.Token, b)
		}
		if r := renew("30m"); r.Status != 200 {
			t.Fatalf("renew: %d %s", r.Status, r.Body)
		}
		assertError(t, renew("1h"), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb",
			"projectSlug": p.Slug, "environmentSlug": "dev", "ttl": "3h"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb",
			"projectSlug": p.Slug, "environmentSlug": "dev", "ttl": "soon"}), 422, "ValidationFailure")

		// Revoke: the user is gone.
		var rv leaseOut
		e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, scope).Decode(t, &rv)
		if rv.Lease.Status != "revoked" || mysqlUserExists(t, admin, user) {
			t.Fatalf("after revoke: %+v, user exists %v", rv.Lease, mysqlUserExists(t, admin, user))
		}
		if err := mysqlLogin(user, pass, db); err == nil {
			t.Fatal("revoked credentials still log in")
		}

		// Expiry: a short lease is revoked by the worker soon after expireAt.
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb",
			"projectSlug": p.Slug, "environmentSlug": "dev", "ttl": "2s"}).Decode(t, &l)
		exp, _ = time.Parse(time.RFC3339, l.Lease.ExpireAt)
		waitFor(t, 15*time.Second, func() bool { return !mysqlUserExists(t, admin, l.Data["DB_USERNAME"]) })
		t.Logf("revoked %v after expireAt", time.Since(exp).Round(time.Millisecond))
		waitFor(t, 5*time.Second, func() bool {
			m := string(e.Must(t, 200, "GET", "/metrics", "", nil).Body)
			return strings.Contains(m, `lockbox_lease_revocations_total{outcome="ok"}`) &&
				strings.Contains(m, "lockbox_lease_revocation_lag_seconds_count 1") && strings.Contains(m, "lockbox_leases_active 0")
		})

		// Deleting the dynamic secret revokes its live leases first.
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb",
			"projectSlug": p.Slug, "environmentSlug": "dev"}).Decode(t, &l)
		e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/mariadb", e.Token, scope)
		if mysqlUserExists(t, admin, l.Data["DB_USERNAME"]) {
			t.Fatal("deleting the dynamic secret left its lease's user")
		}
		assertError(t, e.Do(t, "GET", "/api/v1/dynamic-secrets/mariadb"+q, e.Token, nil), 404, "NotFound")
	})
}

func TestLeaseRevocationSurvivesTargetOutage(t *testing.T) {
	admin, db := mariaDB(t)
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "outage"})
	px := newProxy(t, "127.0.0.1:3306")
	host, port, _ := net.SplitHostPort(px.addr)
	createDynamic(t, e, p.Slug, "flaky", host, port, db, nil)
	var l leaseOut
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "flaky",
		"projectSlug": p.Slug, "environmentSlug": "dev", "ttl": "1s"}).Decode(t, &l)
	user := l.Data["DB_USERNAME"]
	px.cut()
	q := "?projectSlug=" + p.Slug + "&environmentSlug=dev&path=/"
	var got struct {
		Lease struct {
			Status        string
			StatusDetails *string
		}
	}
	waitFor(t, 15*time.Second, func() bool {
		e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+q, e.Token, nil).Decode(t, &got)
		return got.Lease.Status == "revoke_failed"
	})
	if got.Lease.StatusDetails == nil || !strings.Contains(*got.Lease.StatusDetails, "retrying") {
		t.Fatalf("statusDetails %v", got.Lease.StatusDetails)
	}
	// What failed is no member's business (a port scanner): a fixed text.
	if d := *got.Lease.StatusDetails; !strings.Contains(d, "could not be reached") || strings.Contains(d, px.addr) || strings.Contains(d, port) {
		t.Fatalf("statusDetails of an unreachable target: %q", d)
	}
	if !mysqlUserExists(t, admin, user) {
		t.Fatal("user vanished while the target was down?")
	}
	// A dynamic secret whose lease cannot be revoked is not deleted, unless forced.
	m := assertError(t, e.Do(t, "DELETE", "/api/v1/dynamic-secrets/flaky", e.Token, map[string]any{"projectSlug": p.Slug,
		"environmentSlug": "dev", "path": "/"}), 400, "BadRequest")
	if !strings.Contains(m["message"].(string), "isForced") {
		t.Fatalf("message %v", m["message"])
	}
	if !strings.Contains(string(e.Must(t, 200, "GET", "/metrics", "", nil).Body), `lockbox_lease_revocations_total{outcome="failed"}`) {
		t.Fatal("failed revocations are not counted")
	}
	px.restore(t)
	waitFor(t, 30*time.Second, func() bool { return !mysqlUserExists(t, admin, user) })
	// The user is dropped before its lease row is marked: give the worker its commit.
	waitFor(t, 5*time.Second, func() bool {
		e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+q, e.Token, nil).Decode(t, &got)
		return got.Lease.Status == "revoked"
	})
}

func TestGoSDKLeases(t *testing.T) {
	admin, db := mariaDB(t)
	e := apptest.Bootstrapped(t, store.Postgres)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-leases"})
	createDynamic(t, e, p.Slug, "mysql", "127.0.0.1", "3306", db, nil)
	clientID := uaSetup(t, e, map[string]any{})
	secret, _ := newSecret(t, e, map[string]any{})
	sdk := newSDK(t, e)
	if _, err := sdk.Auth().UniversalAuthLogin(clientID, secret); err != nil {
		t.Fatal(err)
	}
	ds, err := sdk.DynamicSecrets().GetByName(infisical.GetDynamicSecretRootCredentialByNameOptions{DynamicSecretName: "mysql", ProjectSlug: p.Slug,
		EnvironmentSlug: "dev", SecretPath: "/"})
	if err != nil || ds.Name != "mysql" || ds.Type != "sql-database" || ds.DefaultTTL != "1h" || ds.CreatedAt.IsZero() {
		t.Fatalf("SDK get dynamic secret: %+v %v", ds, err)
	}
	data, dsec, lease, err := sdk.DynamicSecrets().Leases().Create(infisical.CreateDynamicSecretLeaseOptions{DynamicSecretName: "mysql",
		ProjectSlug: p.Slug, EnvironmentSlug: "dev", SecretPath: "/"})
	if err != nil || lease.Id == "" || lease.ExpireAt.IsZero() || dsec.Id != ds.Id {
		t.Fatalf("SDK lease create: %+v %+v %v", lease, dsec, err)
	}
	creds := data
	if err := mysqlLogin(creds["DB_USERNAME"].(string), creds["DB_PASSWORD"].(string), db); err != nil {
		t.Fatalf("SDK lease credentials: %v", err)
	}
	byID, err := sdk.DynamicSecrets().Leases().GetById(infisical.GetDynamicSecretLeaseByIdOptions{LeaseId: lease.Id, ProjectSlug: p.Slug,
		EnvironmentSlug: "dev", SecretPath: "/"})
	if err != nil || byID.Id != lease.Id || byID.DynamicSecret.Name != "mysql" {
		t.Fatalf("SDK lease get: %+v %v", byID, err)
	}
	renewed, err := sdk.DynamicSecrets().Leases().RenewById(infisical.RenewDynamicSecretLeaseOptions{LeaseId: lease.Id, TTL: "30m",
		ProjectSlug: p.Slug, EnvironmentSlug: "dev", SecretPath: "/"})
	if err != nil || !renewed.ExpireAt.After(lease.ExpireAt) {
		t.Fatalf("SDK renew: %+v %v", renewed, err)
	}
	if _, err := sdk.DynamicSecrets().Leases().DeleteById(infisical.DeleteDynamicSecretLeaseOptions{LeaseId: lease.Id, ProjectSlug: p.Slug,
		EnvironmentSlug: "dev", SecretPath: "/"}); err != nil {
		t.Fatalf("SDK revoke: %v", err)
	}
	if mysqlUserExists(t, admin, creds["DB_USERNAME"].(string)) {
		t.Fatal("SDK revoke left the user")
	}
}

// TestLeaseConfigIsBounded: a lease's config is stored with the lease and
// read back by every listing of its leases: more than
// dynamic.MaxLeaseConfig bytes, or anything but an object, is refused
// before anything else is looked at; within the bound the request goes
// on. A listing answers each config as stored (its keys in their order),
// not a tree of values decoded from it: configs of empty objects made one
// listing of 1,000 leases hold 471 MiB.
func TestLeaseConfigIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "lease-config"})
	with := dynScope{e: e, slug: p.Slug}.body
	lease := func(name string, config any) apptest.Response {
		return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", e.Token, with(map[string]any{"dynamicSecretName": name, "config": config}))
	}
	if r := lease("none", map[string]any{"namespace": strings.Repeat("x", dynamic.MaxLeaseConfig)}); r.Status != 422 || !strings.Contains(string(r.Body), "config") {
		t.Fatalf("a config over the bound: %d %.300s", r.Status, r.Body)
	}
	if dynamic.MaxLeaseConfig > 1<<10 {
		t.Fatalf("MaxLeaseConfig %d: a listing of 10,000 leases would answer more than 10 MiB of configs", dynamic.MaxLeaseConfig)
	}
	for _, notObject := range []any{[]any{map[string]any{}, map[string]any{}}, "x", 1} {
		if r := lease("none", notObject); r.Status != 422 || !strings.Contains(string(r.Body), "config") {
			t.Fatalf("config %v: %d %.300s", notObject, r.Status, r.Body)
		}
	}
	if r := lease("none", map[string]any{"namespace": "x"}); r.Status != 404 {
		t.Fatalf("a config within the bound: %d %.300s", r.Status, r.Body)
	}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, with(map[string]any{"name": "otp", "defaultTTL": "1h",
		"provider": map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"}}}))
	raw := json.RawMessage(`{"zeta":{"b":1,"a":[]},"alpha":"x"}`)
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, with(map[string]any{"dynamicSecretName": "otp", "config": raw}))
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, with(map[string]any{"dynamicSecretName": "otp"}))
	body := string(e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/otp/leases?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", e.Token, nil).Body)
	if !strings.Contains(body, `"config":`+string(raw)) || !strings.Contains(body, `"config":{}`) {
		t.Fatalf("configs not answered as stored: %.600s", body)
	}
}

// TestDynamicSecretMetadataIsBounded: a dynamic secret's metadata comes back
// whole in every listing of its folder and every lease answer; a create or
// an update past its bounds is refused and changes nothing (5 secrets of
// 340,000 empty entries made one listing 37 MB).
func TestDynamicSecretMetadataIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "dyn-metadata"})
	with := dynScope{e: e, slug: p.Slug}.body
	totp := map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"}}
	entries := func(n, valueBytes int) []map[string]string {
		md := make([]map[string]string, n)
		for i := range md {
			md[i] = map[string]string{"key": fmt.Sprintf("k%d", i), "value": strings.Repeat("v", valueBytes)}
		}
		return md
	}
	tooMuch := map[string]any{
		"entries":     entries(dynamic.MaxMetadataEntries+1, 0),
		"empty key":   []map[string]string{{"key": "", "value": "x"}},
		"long key":    []map[string]string{{"key": strings.Repeat("k", dynamic.MaxMetadataKeyBytes+1), "value": ""}},
		"long value":  []map[string]string{{"key": "k", "value": strings.Repeat("v", dynamic.MaxMetadataValueBytes+1)}},
		"total bytes": entries(dynamic.MaxMetadataBytes/dynamic.MaxMetadataValueBytes+1, dynamic.MaxMetadataValueBytes-8),
		"empty maps":  []map[string]any{{}, {}},
	}
	for what, md := range tooMuch {
		r := e.Do(t, "POST", "/api/v1/dynamic-secrets", e.Token, with(map[string]any{"name": "otp", "defaultTTL": "1h", "provider": totp, "metadata": md}))
		if r.Status != 422 || !strings.Contains(string(r.Body), "metadata") || strings.Contains(string(r.Body), "vvvv") {
			t.Fatalf("create with metadata past its bounds (%s): %d %.300s", what, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "GET", "/api/v1/dynamic-secrets/otp?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", e.Token, nil); r.Status != 404 {
		t.Fatalf("a refused create left a dynamic secret: %d %.300s", r.Status, r.Body)
	}
	within := entries(dynamic.MaxMetadataBytes/dynamic.MaxMetadataValueBytes, dynamic.MaxMetadataValueBytes-8)
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, with(map[string]any{"name": "otp", "defaultTTL": "1h", "provider": totp, "metadata": within}))
	for what, md := range tooMuch {
		r := e.Do(t, "PATCH", "/api/v1/dynamic-secrets/otp", e.Token, with(map[string]any{"data": map[string]any{"metadata": md}}))
		if r.Status != 422 || !strings.Contains(string(r.Body), "metadata") {
			t.Fatalf("update with metadata past its bounds (%s): %d %.300s", what, r.Status, r.Body)
		}
	}
	body := string(e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/otp?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", e.Token, nil).Body)
	if n := strings.Count(body, `"key":"k`); n != len(within) {
		t.Fatalf("after refused updates the secret has %d metadata entries, want %d as made", n, len(within))
	}
	e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/otp", e.Token, with(map[string]any{"data": map[string]any{"metadata": entries(dynamic.MaxMetadataEntries, 0)}}))
}

// TestLeaseLimit: a dynamic secret has at most MaxLeases leases not revoked
// (Infisical's MAX_LEASE_LIMIT): one more is refused 400 with Infisical's
// message before the target is touched; a revoked lease frees its place.
func TestLeaseLimit(t *testing.T) {
	admin, db := mariaDB(t)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{MaxLeases: 2})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "lease-limit"})
	prefix := "lim" + randHex(3)
	dropMySQLUsersAtCleanup(t, admin, prefix)
	createDynamic(t, e, p.Slug, "mariadb", "127.0.0.1", "3306", db, map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})
	users := func() int {
		var n int
		if err := admin.QueryRow(`SELECT COUNT(*) FROM mysql.user WHERE User LIKE ?`, prefix+`\_%`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	lease := func() apptest.Response {
		return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": "mariadb",
			"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/"})
	}
	var first leaseOut
	for i := range 2 {
		r := lease()
		if r.Status != 200 {
			t.Fatalf("lease %d: %d %.300s", i, r.Status, r.Body)
		}
		if i == 0 {
			r.Decode(t, &first)
		}
	}
	r := lease()
	assertError(t, r, 400, "BadRequest")
	if !strings.Contains(string(r.Body), "Max lease limit reached. Limit: 2") {
		t.Fatalf("over the limit: %.300s", r.Body)
	}
	if n := users(); n != 2 {
		t.Fatalf("%d users in the target, want 2: the refused lease touched it", n)
	}
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+first.Lease.ID, e.Token, map[string]any{"projectSlug": p.Slug,
		"environmentSlug": "dev", "path": "/"})
	if r := lease(); r.Status != 200 {
		t.Fatalf("a lease after one was revoked: %d %.300s", r.Status, r.Body)
	}
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/mariadb", e.Token, map[string]any{"projectSlug": p.Slug,
		"environmentSlug": "dev", "path": "/"})
	if n := users(); n != 0 {
		t.Fatalf("%d users left after the dynamic secret's deletion", n)
	}
}

// TestDeletionGivesBackWhatItCannotRevoke: a deletion that cannot reach the
// target is refused (400) and leaves no lease claimed by it (each is
// revoke_failed, the worker's to retry); once the target is back, deleting
// again succeeds and leaves none of its users. A forced deletion while it is
// unreachable records its leases revoked without their users.
func TestDeletionGivesBackWhatItCannotRevoke(t *testing.T) {
	admin, db := mariaDB(t)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "give-back"})
	px := newProxy(t, "127.0.0.1:3306")
	host, port, _ := net.SplitHostPort(px.addr)
	prefix := "gb" + randHex(3)
	dropMySQLUsersAtCleanup(t, admin, prefix)
	createDynamic(t, e, p.Slug, "flaky", host, port, db, map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})
	q := "?projectSlug=" + p.Slug + "&environmentSlug=dev&path=/"
	leases := func(name string, n int) []string {
		var ids []string
		for range n {
			var l leaseOut
			e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": name,
				"projectSlug": p.Slug, "environmentSlug": "dev"}).Decode(t, &l)
			ids = append(ids, l.Lease.ID)
		}
		return ids
	}
	// failedEvents counts the failed revocation events of the leases ids
	// whose reason holds reason.
	failedEvents := func(ids []string, reason string) int {
		evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if slices.Contains(ids, fmt.Sprint(ev.Metadata["leaseId"])) && ev.Metadata["outcome"] == "failed" &&
				strings.Contains(fmt.Sprint(ev.Metadata["reason"]), reason) {
				n++
			}
		}
		return n
	}
	ids := leases("flaky", 3)
	px.cut()
	del := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/"}
	assertError(t, e.Do(t, "DELETE", "/api/v1/dynamic-secrets/flaky", e.Token, del), 400, "BadRequest")
	for _, id := range ids {
		var got struct{ Lease struct{ Status string } }
		e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+id+q, e.Token, nil).Decode(t, &got)
		if got.Lease.Status != "revoke_failed" {
			t.Errorf("lease %s is %s after the refused deletion, want revoke_failed", id, got.Lease.Status)
		}
	}
	// Each is a failed revocation in the audit log, as the worker's are.
	if n := failedEvents(ids, "deletion stopped"); n != 3 {
		t.Fatalf("%d failed revocation events for the refused deletion, want 3", n)
	}
	// Forced, while the target is unreachable: the leases are recorded
	// revoked without their users, each with an event saying so.
	forced := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/", "isForced": true}
	px.restore(t)
	createDynamic(t, e, p.Slug, "gone", host, port, db, map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})
	goneIDs := leases("gone", 2)
	px.cut()
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/gone", e.Token, forced)
	assertError(t, e.Do(t, "GET", "/api/v1/dynamic-secrets/gone"+q, e.Token, nil), 404, "NotFound")
	if n := failedEvents(goneIDs, "forced: not revoked"); n != 2 {
		t.Fatalf("%d forced revocation events, want 2", n)
	}
	px.restore(t)
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/flaky", e.Token, del)
	// The forced deletion's users were left in the target, as documented (dropped at cleanup).
	var n int
	if err := admin.QueryRow(`SELECT COUNT(*) FROM mysql.user WHERE User LIKE ?`, prefix+`\_%`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d users left, want the forced deletion's 2 (%v)", n, err)
	}
}

// Deleting a folder, an environment or a project takes its dynamic secrets
// with it, but never while one has a lease not revoked: that user would be
// left in the target with nothing to revoke it. The refusal is a 400 with
// their count, not their names (it was a 500: the lease rows kept their
// secret's row); once
// the leases are revoked, the deletion goes through, revoked lease rows
// included, however deep the secret is.
func TestDeletingWhatHoldsDynamicSecretsKeepsLiveLeases(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		admin, db := mariaDB(t)
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "holders"})
		prefix := "lbxh" + randHex(3)
		dropMySQLUsersAtCleanup(t, admin, prefix)
		users := func() int {
			var n int
			if err := admin.QueryRow(`SELECT COUNT(*) FROM mysql.user WHERE User LIKE ?`, prefix+`\_%`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "sub"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/sub", "name": "deeper"})
		dyn := func(path, name string) {
			body := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": path, "name": name, "defaultTTL": "1h",
				"usernameTemplate": prefix + "_{{randomUsername}}",
				"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "mysql2", "host": "127.0.0.1",
					"port": "3306", "database": db, "username": "root", "password": ""}}}
			e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, body)
		}
		lease := func(path, name string) string {
			var out leaseOut
			e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, map[string]any{"dynamicSecretName": name,
				"projectSlug": p.Slug, "environmentSlug": "dev", "path": path}).Decode(t, &out)
			return out.Lease.ID
		}
		revoke := func(path, id string) {
			e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+id, e.Token, map[string]any{"projectSlug": p.Slug,
				"environmentSlug": "dev", "path": path})
		}
		dyn("/sub", "spent") // only revoked leases: its rows go with the folder
		revoke("/sub", lease("/sub", "spent"))
		dyn("/sub/deeper", "live")
		live := lease("/sub/deeper", "live")
		dyn("/", "top")
		top := lease("/", "top")
		if n := users(); n != 2 {
			t.Fatalf("%d users, want 2", n)
		}

		delFolder := func() apptest.Response {
			return e.Do(t, "DELETE", "/api/v1/folders/sub", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
		}
		m := assertError(t, delFolder(), 400, "BadRequest")
		if msg := fmt.Sprint(m["message"]); !strings.Contains(msg, "delete this folder: it holds 1 dynamic secret(s)") || strings.Contains(msg, "live") {
			t.Fatalf("refusal: %s", msg)
		}
		var envs struct {
			Workspace struct{ Environments []struct{ ID, Slug string } }
		}
		e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID, e.Token, nil).Decode(t, &envs)
		for _, en := range envs.Workspace.Environments {
			if en.Slug == "dev" {
				m = assertError(t, e.Do(t, "DELETE", "/api/v1/workspace/"+p.ID+"/environments/"+en.ID, e.Token, nil), 400, "BadRequest")
				if msg := fmt.Sprint(m["message"]); !strings.Contains(msg, "delete this environment: it holds 2 dynamic secret(s)") {
					t.Fatalf("refusal: %s", msg)
				}
			}
		}
		assertError(t, e.Do(t, "DELETE", "/api/v1/workspace/"+p.ID, e.Token, nil), 400, "BadRequest")
		if n := users(); n != 2 {
			t.Fatalf("%d users after the refusals, want 2", n)
		}
		// Nothing was deleted: the leases are still there to revoke.
		revoke("/sub/deeper", live)
		e.Must(t, 200, "DELETE", "/api/v1/folders/sub", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
		assertError(t, e.Do(t, "GET", "/api/v1/dynamic-secrets/live?projectSlug="+p.Slug+"&environmentSlug=dev&path=/sub/deeper", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v1/workspace/"+p.ID, e.Token, nil), 400, "BadRequest")
		revoke("/", top)
		e.Must(t, 200, "DELETE", "/api/v1/workspace/"+p.ID, e.Token, nil)
		if n := users(); n != 0 {
			t.Fatalf("%d users left", n)
		}
	})
}

// TestALeaseEndsWithTheTemporaryAccessItWasTakenBy: the credential lives
// on in the target whether or not its lessee's access does, so a lease
// (or a renewal) that would end after the temporary role it was taken by
// is refused, unless the lessee may lease there for good.
func TestALeaseEndsWithTheTemporaryAccessItWasTakenBy(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "temporary-lessee"})
	scope := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/"}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, mergeMaps(scope, map[string]any{"name": "otp", "defaultTTL": "1h", "maxTTL": "3h",
		"provider": map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"}}}))
	temp, tempTok := e.NewIdentity(t, "for-an-hour", "member")
	addMember(t, e, p.ID, temp, map[string]any{"role": "member", "isTemporary": true, "temporaryMode": "relative",
		"temporaryRange": "1h", "temporaryAccessStartTime": time.Now().UTC().Format(time.RFC3339)})
	lease := func(tok, ttl string) apptest.Response {
		return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", tok, mergeMaps(scope, map[string]any{"dynamicSecretName": "otp", "ttl": ttl}))
	}
	r := lease(tempTok, "2h")
	assertError(t, r, 403, "PermissionBoundaryError")
	if !strings.Contains(string(r.Body), "outlast the temporary access") {
		t.Fatalf("refusal %s", r.Body)
	}
	var l struct{ Lease struct{ ID string } }
	lease(tempTok, "30m").Decode(t, &l)
	if l.Lease.ID == "" {
		t.Fatal("a lease within the access was refused")
	}
	renew := func(ttl string) apptest.Response {
		return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", tempTok, mergeMaps(scope, map[string]any{"ttl": ttl}))
	}
	assertError(t, renew("1h"), 403, "PermissionBoundaryError")
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", tempTok, mergeMaps(scope, map[string]any{"ttl": "10m"}))
	// Leasing for good beside a temporary role: no bound.
	both, bothTok := e.NewIdentity(t, "member-and-temporary-admin", "member")
	addMember(t, e, p.ID, both, map[string]any{"role": "member"}, map[string]any{"role": "admin", "isTemporary": true,
		"temporaryMode": "relative", "temporaryRange": "1h", "temporaryAccessStartTime": time.Now().UTC().Format(time.RFC3339)})
	if r := lease(bothTok, "2h"); r.Status != 200 {
		t.Fatalf("a lessee for good was bounded by its temporary role: %d %s", r.Status, r.Body)
	}
}
