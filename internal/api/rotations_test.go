package api_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// rotTarget is a real database the rotation tests drive.
type rotTarget struct {
	app, typ string
	creds    map[string]any // the app connection's credentials
	users    [2]string      // the two principals
	login    func(user, password string) error
	cleanup  func()
	// drop deletes a principal in the target and recreate brings it back
	// (with some password), to make a run fail.
	drop, recreate func(user string)
}

func pgTarget(t *testing.T, adminURL string) rotTarget {
	t.Helper()
	u, _ := url.Parse(adminURL)
	pass, _ := u.User.Password()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	sfx := testsvc.Suffix()
	users := [2]string{"rot_a_" + sfx, "rot_b_" + sfx}
	for _, n := range users {
		if _, err := admin.Exec(ctx, `CREATE ROLE "`+n+`" LOGIN PASSWORD 'initial-`+sfx+`'`); err != nil {
			t.Fatal(err)
		}
	}
	port := u.Port()
	exec := func(q string) {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return rotTarget{app: "postgres", typ: "postgres-credentials", users: users,
		drop:     func(n string) { exec(`DROP ROLE "` + n + `"`) },
		recreate: func(n string) { exec(`CREATE ROLE "` + n + `" LOGIN PASSWORD 'again-` + sfx + `'`) },
		creds:    map[string]any{"host": "127.0.0.1", "port": port, "database": "postgres", "username": "postgres", "password": pass},
		login: func(user, password string) error {
			c, err := pgx.Connect(ctx, "postgres://"+url.UserPassword(user, password).String()+"@127.0.0.1:"+port+"/postgres?sslmode=disable")
			if err == nil {
				c.Close(ctx)
			}
			return err
		}}
}

func mysqlTarget(t *testing.T) rotTarget {
	t.Helper()
	root, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err == nil {
		err = root.Ping()
	}
	testsvc.Need(t, err, "MariaDB at 127.0.0.1:3306")
	sfx := testsvc.Suffix()
	users := [2]string{"rot_a_" + sfx, "rot_b_" + sfx}
	admin, adminPass := "rot_admin_"+sfx, "Admin"+sfx
	for _, q := range []string{
		"CREATE USER '" + admin + "'@'%' IDENTIFIED BY '" + adminPass + "'",
		"GRANT CREATE USER ON *.* TO '" + admin + "'@'%'",
		"CREATE DATABASE rot_" + sfx,
		"GRANT SELECT ON rot_" + sfx + ".* TO '" + admin + "'@'%'",
		"CREATE USER '" + users[0] + "'@'%' IDENTIFIED BY 'initial" + sfx + "'",
		"CREATE USER '" + users[1] + "'@'%' IDENTIFIED BY 'initial" + sfx + "'",
		"GRANT SELECT ON rot_" + sfx + ".* TO '" + users[0] + "'@'%', '" + users[1] + "'@'%'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range []string{admin, users[0], users[1]} {
			root.Exec("DROP USER IF EXISTS '" + n + "'@'%'")
		}
		root.Exec("DROP DATABASE IF EXISTS rot_" + sfx)
		root.Close()
	})
	exec := func(q string) {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return rotTarget{app: "mysql", typ: "mysql-credentials", users: users,
		drop: func(n string) { exec("DROP USER '" + n + "'@'%'") },
		recreate: func(n string) {
			exec("CREATE USER '" + n + "'@'%' IDENTIFIED BY 'again" + sfx + "'")
			exec("GRANT SELECT ON rot_" + sfx + ".* TO '" + n + "'@'%'")
		},
		creds: map[string]any{"host": "127.0.0.1", "port": 3306, "database": "rot_" + sfx, "username": admin, "password": adminPass},
		login: func(user, password string) error {
			c := mysql.NewConfig()
			c.User, c.Passwd, c.Net, c.Addr = user, password, "tcp", "127.0.0.1:3306"
			db, err := sql.Open("mysql", c.FormatDSN())
			if err != nil {
				return err
			}
			defer db.Close()
			return db.Ping()
		}}
}

func secretValue(t *testing.T, e *apptest.Env, projectID, key string) (string, int) {
	t.Helper()
	var out struct {
		Secret struct {
			SecretValue string
			Version     int
		}
	}
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/"+key+"?workspaceId="+projectID+"&environment=dev&secretPath=/", e.Token, nil).Decode(t, &out)
	return out.Secret.SecretValue, out.Secret.Version
}

type rotOut struct {
	ID, RotationStatus, Type string
	ActiveIndex              int
	LastRotationMessage      *string
	NextRotationAt           *string
	LastRotatedAt            *string
}

// TestSecretRotationsDualPhase proves, on PostgreSQL with password
// authentication enforced and on MariaDB, that a rotation keeps the
// credentials applications read working until the rotation after, that a
// crash between any two steps is finished by the next run with working
// credentials, and that two nodes run one due rotation once.
func TestSecretRotationsDualPhase(t *testing.T) {
	pgURL := testsvc.ScramPostgres(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		for _, mk := range []func() rotTarget{func() rotTarget { return pgTarget(t, pgURL) }, func() rotTarget { return mysqlTarget(t) }} {
			tg := mk()
			t.Run(tg.app, func(t *testing.T) { testRotation(t, d, tg) })
		}
	})
}

func testRotation(t *testing.T, d store.Dialect, tg rotTarget) {
	e := apptest.Bootstrapped(t, d)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "rot"})
	pass := tg.creds["password"].(string)

	// A wrong admin password is refused at create, without echoing it.
	bad := map[string]any{}
	for k, v := range tg.creds {
		bad[k] = v
	}
	bad["password"] = "Wrong-" + pass
	r := e.Do(t, "POST", "/api/v1/app-connections/"+tg.app, e.Token, map[string]any{"name": "bad", "method": "username-and-password", "credentials": bad})
	assertError(t, r, 400, "BadRequest")
	if strings.Contains(string(r.Body), pass) {
		t.Fatalf("error echoes the password (status %d)", r.Status)
	}

	var conn struct{ AppConnection map[string]any }
	r = e.Must(t, 200, "POST", "/api/v1/app-connections/"+tg.app, e.Token, map[string]any{"name": "admin", "method": "username-and-password", "credentials": tg.creds})
	r.Decode(t, &conn)
	if strings.Contains(string(r.Body), pass) {
		t.Fatal("the create answer holds the password")
	}
	if conn.AppConnection["app"] != tg.app {
		t.Fatalf("connection app %v", conn.AppConnection["app"])
	}
	connID := conn.AppConnection["id"].(string)
	hash, _ := conn.AppConnection["credentialsHash"].(string)
	var again struct{ AppConnection map[string]any }
	e.Must(t, 200, "GET", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, nil).Decode(t, &again)
	if len(hash) != 64 || again.AppConnection["credentialsHash"] != hash {
		t.Fatalf("credentialsHash %q then %v: must be stable", hash, again.AppConnection["credentialsHash"])
	}
	// New credentials (the same, re-sent) are validated and change the hash; a name-only change does not.
	e.Must(t, 200, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"credentials": tg.creds}).Decode(t, &again)
	if again.AppConnection["credentialsHash"] == hash || again.AppConnection["version"] != float64(2) {
		t.Fatalf("after a credentials update %v", again.AppConnection)
	}
	hash = again.AppConnection["credentialsHash"].(string)
	e.Must(t, 200, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"description": "admin"}).Decode(t, &again)
	if again.AppConnection["credentialsHash"] != hash {
		t.Fatal("a description change moved credentialsHash")
	}
	assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"credentials": bad}), 400, "BadRequest")
	// Without a password the stored one is kept, for the same server only:
	// it is never sent to an address an editor names.
	noPass := map[string]any{}
	for k, v := range tg.creds {
		if k != "password" {
			noPass[k] = v
		}
	}
	e.Must(t, 200, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"credentials": noPass})
	noPass["port"] = 1
	assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"credentials": noPass}), 422, "ValidationFailure")
	// Nor in the clear: turning TLS on or off, or naming another CA, needs
	// the password again too.
	delete(noPass, "port")
	if p, ok := tg.creds["port"]; ok {
		noPass["port"] = p
	}
	noPass["sslEnabled"] = tg.creds["sslEnabled"] != true
	assertError(t, e.Do(t, "PATCH", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, map[string]any{"credentials": noPass}), 422, "ValidationFailure")
	for _, path := range []string{"/api/v1/app-connections", "/api/v1/app-connections/" + tg.app, "/api/v1/app-connections/" + tg.app + "/" + connID,
		"/api/v1/app-connections/" + tg.app + "/connection-name/admin"} {
		if b := e.Must(t, 200, "GET", path, e.Token, nil).Body; strings.Contains(string(b), pass) || !strings.Contains(string(b), connID) {
			t.Fatalf("GET %s: holds the password or lacks the connection", path)
		}
	}

	// The connection's own user is not rotated by it.
	assertError(t, e.Do(t, "POST", "/api/v2/secret-rotations/"+tg.typ, e.Token, map[string]any{"name": "self", "projectId": p.ID, "connectionId": connID,
		"environment": "dev", "secretPath": "/", "rotationInterval": 30,
		"parameters":     map[string]string{"username1": tg.creds["username"].(string), "username2": tg.users[1]},
		"secretsMapping": map[string]string{"username": "SELF_USER", "password": "SELF_PASS"}}), 422, "ValidationFailure")

	var rot struct{ SecretRotation rotOut }
	e.Must(t, 200, "POST", "/api/v2/secret-rotations/"+tg.typ, e.Token, map[string]any{"name": "db", "projectId": p.ID, "connectionId": connID,
		"environment": "dev", "secretPath": "/", "rotationInterval": 30, "rotateAtUtc": map[string]int{"hours": 3, "minutes": 15},
		"parameters":     map[string]string{"username1": tg.users[0], "username2": tg.users[1]},
		"secretsMapping": map[string]string{"username": "DB_USER", "password": "DB_PASS"}}).Decode(t, &rot)
	id := rot.SecretRotation.ID
	if rot.SecretRotation.RotationStatus != "success" || rot.SecretRotation.ActiveIndex != 0 || rot.SecretRotation.NextRotationAt == nil ||
		!strings.HasSuffix(*rot.SecretRotation.NextRotationAt, "T03:15:00.000Z") {
		t.Fatalf("rotation %+v", rot.SecretRotation)
	}
	byName := e.Must(t, 200, "GET", "/api/v2/secret-rotations/"+tg.typ+"/rotation-name/db?projectId="+p.ID+"&environment=dev&secretPath=/", e.Token, nil)
	if !strings.Contains(string(byName.Body), id) {
		t.Fatalf("rotation-name: %s", byName.Body)
	}
	assertError(t, e.Do(t, "GET", "/api/v2/secret-rotations/"+tg.typ+"/rotation-name/nope?projectId="+p.ID+"&environment=dev", e.Token, nil), 404, "NotFound")
	read := func() (string, string) {
		u, _ := secretValue(t, e, p.ID, "DB_USER")
		pw, _ := secretValue(t, e, p.ID, "DB_PASS")
		return u, pw
	}
	mustLogin := func(u, pw string, ok bool) {
		t.Helper()
		err := tg.login(u, pw)
		if ok && err != nil {
			t.Fatalf("%s cannot log in: %v", u, err)
		}
		if !ok && err == nil {
			t.Fatalf("%s still logs in with a retired password", u)
		}
	}
	u1, p1 := read()
	if u1 != tg.users[0] || len(p1) != 48 {
		t.Fatalf("secrets %q", u1)
	}
	mustLogin(u1, p1, true)

	rotate := func() {
		t.Helper()
		e.Must(t, 200, "POST", "/api/v2/secret-rotations/"+tg.typ+"/"+id+"/rotate-secrets", e.Token, nil).Decode(t, &rot)
	}
	rotate()
	u2, p2 := read()
	if u2 != tg.users[1] || p2 == p1 || rot.SecretRotation.ActiveIndex != 1 {
		t.Fatalf("after rotation: %q active %d", u2, rot.SecretRotation.ActiveIndex)
	}
	mustLogin(u2, p2, true)
	mustLogin(u1, p1, true) // what an application read before still works

	rotate()
	u3, p3 := read()
	if u3 != tg.users[0] || p3 == p1 {
		t.Fatalf("after second rotation: %q", u3)
	}
	mustLogin(u3, p3, true)
	mustLogin(u2, p2, true)
	mustLogin(u1, p1, false) // the oldest stops working
	if _, v := secretValue(t, e, p.ID, "DB_PASS"); v != 3 {
		t.Fatalf("DB_PASS version %d, want 3 (one per rotation)", v)
	}

	// Crash between steps: the run stops after each step in turn; the
	// secrets keep naming working credentials meanwhile, and the worker
	// finishes the run once the dead run's claim ends.
	svc := e.App.RotationService
	for _, step := range []string{"pending", "target", "secrets"} {
		before, beforePw := read()
		svc.ClaimTTL = 50 * time.Millisecond
		svc.Hook = func(s string) error {
			if s == step {
				return errors.New("crash")
			}
			return nil
		}
		r := e.Do(t, "POST", "/api/v2/secret-rotations/"+tg.typ+"/"+id+"/rotate-secrets", e.Token, nil)
		svc.Hook = nil
		if r.Status != 500 {
			t.Fatalf("crash at %s: status %d %s", step, r.Status, r.Body)
		}
		u, pw := read()
		if err := tg.login(u, pw); err != nil {
			t.Fatalf("after a crash at %s the secrets name credentials that do not log in: %v", step, err)
		}
		time.Sleep(100 * time.Millisecond)
		if n, err := e.App.Rotations.Tick(context.Background()); err != nil || n != 1 {
			t.Fatalf("worker after crash at %s: %d %v", step, n, err)
		}
		u, pw = read()
		if u == before || pw == beforePw {
			t.Fatalf("crash at %s: the next run did not finish the rotation", step)
		}
		mustLogin(u, pw, true)
		mustLogin(before, beforePw, true)
		svc.ClaimTTL = 2 * time.Minute
	}
	e.Must(t, 200, "GET", "/api/v2/secret-rotations/"+tg.typ+"/"+id, e.Token, nil).Decode(t, &rot)
	if rot.SecretRotation.RotationStatus != "success" || rot.SecretRotation.LastRotationMessage != nil {
		t.Fatalf("status after recovery %+v", rot.SecretRotation)
	}

	// A run that fails (the inactive principal is gone): the rotation is
	// failed and says why (never the admin password), the failure is
	// audited, the worker retries it 30 s later, then 60 s after that, and
	// once the principal is back a run succeeds and clears the failure.
	cur, curPw := read()
	inactive := tg.users[0]
	if cur == inactive {
		inactive = tg.users[1]
	}
	tg.drop(inactive)
	if r := e.Do(t, "POST", "/api/v2/secret-rotations/"+tg.typ+"/"+id+"/rotate-secrets", e.Token, nil); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("rotate-now of a broken rotation: %d", r.Status)
	}
	failedAt := time.Now()
	e.Must(t, 200, "GET", "/api/v2/secret-rotations/"+tg.typ+"/"+id, e.Token, nil).Decode(t, &rot)
	if rot.SecretRotation.RotationStatus != "failed" || rot.SecretRotation.LastRotationMessage == nil || *rot.SecretRotation.LastRotationMessage == "" ||
		strings.Contains(*rot.SecretRotation.LastRotationMessage, pass) {
		t.Fatalf("after a failed run: status %q", rot.SecretRotation.RotationStatus)
	}
	if u, pw := read(); u != cur || pw != curPw {
		t.Fatal("a failed run changed the secrets")
	}
	mustLogin(cur, curPw, true)
	if b := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=rotate-secret-rotation&limit=100", e.Token, nil).Body; !strings.Contains(string(b), `"outcome":"failed"`) {
		t.Fatal("the failed run is not audited")
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return failedAt.Add(d) } }
	tick := func(d time.Duration) int {
		e.App.RotationService.SetClock(at(d))
		n, err := e.App.Rotations.Tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := tick(25 * time.Second); n != 0 {
		t.Fatalf("retried %d before its backoff", n)
	}
	if n := tick(35 * time.Second); n != 1 { // 30 s after the first failure: fails again
		t.Fatalf("retry after 30 s ran %d", n)
	}
	if n := tick(80 * time.Second); n != 0 { // the second failure waits 60 s
		t.Fatalf("second retry ran %d before its backoff", n)
	}
	tg.recreate(inactive)
	if n := tick(100 * time.Second); n != 1 {
		t.Fatalf("second retry ran %d", n)
	}
	e.App.RotationService.SetClock(nil)
	e.Must(t, 200, "GET", "/api/v2/secret-rotations/"+tg.typ+"/"+id, e.Token, nil).Decode(t, &rot)
	if rot.SecretRotation.RotationStatus != "success" || rot.SecretRotation.LastRotationMessage != nil {
		t.Fatalf("after the principal came back: status %q", rot.SecretRotation.RotationStatus)
	}
	if u, pw := read(); u != inactive {
		t.Fatalf("the recovered run made %q active, want %q", u, inactive)
	} else {
		mustLogin(u, pw, true)
	}

	// Two nodes on one database, both past the due time: one rotation.
	e2 := apptest.Start(t, d, apptest.Options{Share: e})
	later := func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	e.App.RotationService.SetClock(later)
	e2.App.RotationService.SetClock(later)
	_, vBefore := secretValue(t, e, p.ID, "DB_PASS")
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, w := range []*apptest.Env{e, e2} {
		wg.Go(func() {
			n, err := w.App.Rotations.Tick(context.Background())
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	_, vAfter := secretValue(t, e, p.ID, "DB_PASS")
	if counts[0]+counts[1] != 1 || vAfter != vBefore+1 {
		t.Fatalf("two nodes ran %v rotations, DB_PASS %d -> %d; want exactly one", counts, vBefore, vAfter)
	}
	u, pw := read()
	mustLogin(u, pw, true)
	e.App.RotationService.SetClock(nil)

	// The connection cannot go while the rotation uses it; the rotation
	// goes with its secrets on request.
	assertError(t, e.Do(t, "DELETE", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, nil), 400, "BadRequest")
	e.Must(t, 200, "DELETE", "/api/v2/secret-rotations/"+tg.typ+"/"+id+"?deleteSecrets=true", e.Token, nil)
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/DB_PASS?workspaceId="+p.ID+"&environment=dev", e.Token, nil), 404, "NotFound")
	e.Must(t, 200, "DELETE", "/api/v1/app-connections/"+tg.app+"/"+connID, e.Token, nil)
}
