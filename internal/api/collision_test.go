package api_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestHostileLeaseNameCollision: a lessee named like an existing principal,
// with "{{identity.name}}" as the username template, gets a principal of its
// own; the existing one (a PostgreSQL role owning a table, a Redis ACL user,
// a RabbitMQ user) is untouched by the lease and by its revocation.
func TestHostileLeaseNameCollision(t *testing.T) {
	testsvc.Redis(t)
	testsvc.RabbitMQ(t)
	ctx := context.Background()
	victim := "victim_" + testsvc.Suffix()
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "collide"})
	sc := dynScope{e: e, slug: p.Slug}
	lesseeID, lessee := e.NewIdentity(t, victim, "member")
	addMember(t, e, p.ID, lesseeID, map[string]any{"role": "member"})

	// The victims.
	pg, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	testsvc.Need(t, err, "PostgreSQL")
	t.Cleanup(func() { pg.Close() }) // after the cleanups below, which use it
	testsvc.Need(t, pg.PingContext(ctx), "PostgreSQL")
	for _, q := range []string{`CREATE ROLE "` + victim + `" LOGIN PASSWORD 'victim-pw'`, `CREATE TABLE ` + victim + `_data (x int)`,
		`ALTER TABLE ` + victim + `_data OWNER TO "` + victim + `"`} {
		if _, err := pg.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		pg.ExecContext(ctx, `DROP TABLE IF EXISTS `+victim+`_data`)
		pg.ExecContext(ctx, `DROP ROLE IF EXISTS "`+victim+`"`)
	})
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Do(ctx, "ACL", "SETUSER", victim, "on", ">victim-pw", "~app:*", "+get").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", victim) })
	rabbit := func(method, body string) int { return testsvc.RabbitAPI(t, method, "/users/"+victim, body) }
	if st := rabbit("PUT", `{"password":"victim-pw","tags":""}`); st != 201 && st != 204 {
		t.Fatalf("create rabbit victim: %d", st)
	}
	t.Cleanup(func() { rabbit("DELETE", "") })

	tmpl := map[string]any{"usernameTemplate": "{{identity.name}}"}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(mergeMaps(pgDynamic("pg", map[string]any{"password": "x"}), tmpl)))
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(mergeMaps(map[string]any{"name": "redis", "defaultTTL": "1h",
		"provider": map[string]any{"type": "redis", "inputs": map[string]any{"host": "127.0.0.1", "port": 6379, "username": "default", "password": ""}}}, tmpl)))
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(mergeMaps(map[string]any{"name": "mq", "defaultTTL": "1h",
		"provider": map[string]any{"type": "rabbit-mq", "inputs": map[string]any{"host": "http://127.0.0.1", "port": 15672, "username": "guest", "password": "guest",
			"virtualHost": map[string]any{"name": "/", "permissions": map[string]any{"configure": "^$", "write": "^$", "read": "^$"}}}}}, tmpl)))
	for _, name := range []string{"pg", "redis", "mq"} {
		var l anyLease
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", lessee, sc.body(map[string]any{"dynamicSecretName": name})).Decode(t, &l)
		if l.Lease.ExternalEntityID == victim || !strings.HasPrefix(l.Lease.ExternalEntityID, victim) {
			t.Fatalf("%s: lease principal %q; want %q with a random part", name, l.Lease.ExternalEntityID, victim)
		}
		e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, lessee, sc.body(nil))
	}
	var owner string
	if err := pg.QueryRowContext(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = $1`, victim+"_data").Scan(&owner); err != nil || owner != victim {
		t.Fatalf("victim's table: owner %q, %v", owner, err)
	}
	rules, err := rdb.Do(ctx, "ACL", "GETUSER", victim).Result()
	if err != nil || !strings.Contains(strings.Join(flatten(rules), " "), "+get") || strings.Contains(strings.Join(flatten(rules), " "), "+@all") {
		t.Fatalf("redis victim after the leases: %v, %v", rules, err)
	}
	if st := rabbit("GET", ""); st != 200 {
		t.Fatalf("rabbit victim after the leases: %d", st)
	}
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// flatten turns a nested RESP reply into its strings.
func flatten(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flatten(e)...)
		}
		return out
	case map[any]any:
		var out []string
		for k, e := range x {
			out = append(out, flatten(k)...)
			out = append(out, flatten(e)...)
		}
		return out
	}
	return nil
}

// TestAForcedRevocationLeavesNoRoleBehind: a lessee whose role cannot be
// dropped (it owns a database, which DROP OWNED leaves, so DROP ROLE fails;
// a table in another database no longer blocks it, DROP OWNED running
// there too) and that forces its
// own revocation gets the lease revoked, as asked, but not a role
// outliving it: the role is disabled and its sessions ended at once, and
// its drop is retried as a cleanup until the role is gone. (The lessee
// held a temporary table open to the same end.)
func TestAForcedRevocationLeavesNoRoleBehind(t *testing.T) {
	ctx := context.Background()
	pg, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	testsvc.Need(t, err, "PostgreSQL")
	t.Cleanup(func() { pg.Close() })
	testsvc.Need(t, pg.PingContext(ctx), "PostgreSQL")
	db := "lockbox_forced_" + testsvc.Suffix()
	if _, err := pg.ExecContext(ctx, `CREATE DATABASE `+db); err != nil {
		t.Fatal(err)
	}
	prefix := "fr_" + testsvc.Suffix()
	blocker := "lockbox_blocker_" + testsvc.Suffix()
	t.Cleanup(func() {
		pg.ExecContext(ctx, `DROP DATABASE IF EXISTS `+blocker+` WITH (FORCE)`)
		rows, _ := pg.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, prefix+`%`)
		var names []string
		for rows != nil && rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		pg.ExecContext(ctx, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
		for _, n := range names {
			pg.ExecContext(ctx, `DROP ROLE IF EXISTS "`+n+`"`)
		}
	})
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "forced"})
	sc := dynScope{e: e, slug: p.Slug}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(mergeMaps(pgDynamic("pg", map[string]any{"database": db}), map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})))
	var l struct {
		Lease struct{ ID string }
		Data  map[string]any
	}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, sc.body(map[string]any{"dynamicSecretName": "pg"})).Decode(t, &l)
	user := l.Data["DB_USERNAME"].(string)
	if _, err := pg.ExecContext(ctx, `CREATE DATABASE `+blocker+` OWNER "`+user+`"`); err != nil {
		t.Fatal(err)
	}
	lessee, err := sql.Open("pgx", "postgres://"+user+"@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer lessee.Close()
	conn, err := lessee.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Lease struct{ Status, StatusDetails string }
	}
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, sc.body(map[string]any{"isForced": true})).Decode(t, &out)
	if out.Lease.Status != "revoked" || !strings.HasPrefix(out.Lease.StatusDetails, "forced: ") {
		t.Fatalf("forced revocation past a refused drop: %+v", out.Lease)
	}
	// Disabled at once: no login, and its session ended; the role is still
	// there, its drop refused.
	var canLogin bool
	if err := pg.QueryRowContext(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, user).Scan(&canLogin); err != nil || canLogin {
		t.Fatalf("the role after its forced revocation: login %v (%v)", canLogin, err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT 1`); err == nil {
		t.Fatal("the lessee's session outlived its forced revocation")
	}
	// Once what kept the drop from succeeding is gone, the cleanup drops it.
	if _, err := pg.ExecContext(ctx, `DROP DATABASE `+blocker+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pg.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`, user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the role of a forced revocation was never dropped")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestARevokedLeasesSessionsEnd: revoking a lease ends the sessions its
// credential opened, on MariaDB (which keeps a dropped user's sessions and
// their privileges until they disconnect) and on PostgreSQL's one-lease
// revocation; before, a lessee's open connection read the database past
// its lease's revocation, TTL and max TTL.
func TestARevokedLeasesSessionsEnd(t *testing.T) {
	ctx := context.Background()
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "sessions"})
	sc := dynScope{e: e, slug: p.Slug}
	admin, mdb := mariaDB(t)
	prefix := "se" + randHex(3)
	dropMySQLUsersAtCleanup(t, admin, prefix)
	if _, err := admin.Exec("CREATE TABLE " + mdb + ".t (x int)"); err != nil {
		t.Fatal(err)
	}
	createDynamic(t, e, p.Slug, "maria", "127.0.0.1", "3306", mdb, map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})
	pgPrefix := "se_" + testsvc.Suffix()
	pg, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	testsvc.Need(t, err, "PostgreSQL")
	t.Cleanup(func() { pg.Close() })
	t.Cleanup(func() {
		rows, _ := pg.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, pgPrefix+`%`)
		for rows != nil && rows.Next() {
			var n string
			rows.Scan(&n)
			pg.ExecContext(ctx, `DROP OWNED BY "`+n+`"; DROP ROLE IF EXISTS "`+n+`"`)
		}
	})
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, sc.body(mergeMaps(pgDynamic("pg", nil), map[string]any{"usernameTemplate": pgPrefix + "_{{randomUsername}}"})))

	for _, c := range []struct{ name, driver, dsn string }{
		{"maria", "mysql", "%s:%s@tcp(127.0.0.1:3306)/" + mdb},
		{"pg", "pgx", "postgres://%s:%s@127.0.0.1:5432/postgres?sslmode=disable"},
	} {
		var l struct {
			Lease struct{ ID string }
			Data  map[string]any
		}
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, sc.body(map[string]any{"dynamicSecretName": c.name})).Decode(t, &l)
		lessee, err := sql.Open(c.driver, fmt.Sprintf(c.dsn, l.Data["DB_USERNAME"], l.Data["DB_PASSWORD"]))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := lessee.Conn(ctx)
		if err != nil {
			t.Fatal(c.name, err)
		}
		if _, err := conn.ExecContext(ctx, "SELECT 1"); err != nil {
			t.Fatal(c.name, err)
		}
		e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, sc.body(nil))
		if _, err := conn.ExecContext(ctx, "SELECT 1"); err == nil {
			t.Errorf("%s: the lessee's session outlived its lease's revocation", c.name)
		}
		conn.Close()
		lessee.Close()
	}
}

// TestTheAdminOfADynamicSecretWithLeasesStays: the admin user that made a
// dynamic secret's live leases is changed only as its target is: with the
// password sent again and no lease live. A holder of edit-root-credential
// swapped in a lessee's own login, which logs in but cannot drop users,
// and every live lease's revocation failed from then on. Its password
// alone may still change.
func TestTheAdminOfADynamicSecretWithLeasesStays(t *testing.T) {
	admin, mdb := mariaDB(t)
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "admin-swap"})
	sc := dynScope{e: e, slug: p.Slug}
	prefix := "sw" + randHex(3)
	dropMySQLUsersAtCleanup(t, admin, prefix)
	createDynamic(t, e, p.Slug, "maria", "127.0.0.1", "3306", mdb, map[string]any{"usernameTemplate": prefix + "_{{randomUsername}}"})
	var l struct {
		Lease struct{ ID string }
		Data  map[string]any
	}
	e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, sc.body(map[string]any{"dynamicSecretName": "maria"})).Decode(t, &l)
	patch := func(inputs map[string]any) apptest.Response {
		return e.Do(t, "PATCH", "/api/v1/dynamic-secrets/maria", e.Token, sc.body(map[string]any{"data": map[string]any{"inputs": inputs}}))
	}
	r := patch(map[string]any{"username": l.Data["DB_USERNAME"], "password": l.Data["DB_PASSWORD"]})
	assertError(t, r, 400, "BadRequest")
	if !strings.Contains(string(r.Body), "Revoke the dynamic secret's leases") {
		t.Fatalf("swapping the admin under a live lease: %s", r.Body)
	}
	assertError(t, patch(map[string]any{"username": l.Data["DB_USERNAME"]}), 422, "ValidationFailure")
	if r := patch(map[string]any{"password": ""}); r.Status != 200 {
		t.Fatalf("the admin's password alone: %d %s", r.Status, r.Body)
	}
	e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, sc.body(nil))
}
