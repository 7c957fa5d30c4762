package dynamic_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

const pgAdmin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// pgTargets makes n databases on the machine's PostgreSQL and a role name
// prefix for the leases on them; cleanup drops the databases and every role
// with the prefix.
func pgTargets(t *testing.T, n int) (dbs []string, prefix string, admin *sql.DB) {
	t.Helper()
	admin, err := sql.Open("pgx", pgAdmin)
	if err == nil {
		err = admin.Ping()
	}
	testsvc.Need(t, err, "PostgreSQL")
	tag := testsvc.Suffix()
	prefix = "lbxw" + tag[:6] + "_"
	t.Cleanup(func() {
		for _, db := range dbs {
			admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
		}
		rows, _ := admin.Query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)`, prefix)
		var names []string
		for rows != nil && rows.Next() {
			var r string
			rows.Scan(&r)
			names = append(names, r)
		}
		for _, r := range names {
			admin.Exec(fmt.Sprintf(`DROP OWNED BY "%s"; DROP ROLE IF EXISTS "%s"`, r, r))
		}
		admin.Close()
	})
	for i := range n {
		db := fmt.Sprintf("lockbox_dyn_%s_%d", tag, i)
		if _, err := admin.Exec("CREATE DATABASE " + db); err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	return dbs, prefix, admin
}

// holdRole holds a transaction on database db that altered role user, so
// that any other change to the role waits for its lock; release (or the
// test's end) rolls it back.
func holdRole(t *testing.T, db, user string) (release func()) {
	t.Helper()
	conn, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	hold, err := conn.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Rollback() })
	if _, err := hold.Exec(`ALTER ROLE "` + user + `" CONNECTION LIMIT 5`); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := hold.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitingOnRoles counts the statements on database db waiting for a lock
// to alter a role.
func waitingOnRoles(t *testing.T, admin *sql.DB, db string) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity
		WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%ALTER ROLE%'`, db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func roleExists(t *testing.T, admin *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow(`SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

type scope struct {
	e    *apptest.Env
	slug string
	id   string
}

func newProject(t *testing.T, e *apptest.Env) scope {
	t.Helper()
	var p struct{ Project struct{ ID, Slug string } }
	e.Must(t, 200, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "leases"}).Decode(t, &p)
	return scope{e: e, slug: p.Project.Slug, id: p.Project.ID}
}

// addPG makes a sql-database dynamic secret on database db at addr.
func (s scope) addPG(t *testing.T, name, addr, db, prefix string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", s.e.Token, map[string]any{"projectSlug": s.slug, "environmentSlug": "dev",
		"path": "/", "name": name, "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}",
		"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "postgres", "host": host,
			"port": port, "database": db, "username": "postgres", "password": ""}}})
}

// lease creates a lease of the named dynamic secret; it returns its id and user.
func (s scope) lease(t *testing.T, name, ttl string) (id, user string) {
	t.Helper()
	var l struct {
		Lease struct{ ID string }
		Data  map[string]string
	}
	s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", s.e.Token, map[string]any{"dynamicSecretName": name,
		"projectSlug": s.slug, "environmentSlug": "dev", "path": "/", "ttl": ttl}).Decode(t, &l)
	return l.Lease.ID, l.Data["DB_USERNAME"]
}

func (s scope) status(t *testing.T, leaseID string) dynamic.SealedLease {
	t.Helper()
	l, err := s.e.DB.LeaseByID(context.Background(), leaseID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 90 s", what)
		}
	}
}

// TestWorkerRevokesTargetsInParallel: a revocation on target A does not wait
// for one stuck on target B. B's lease is due first and its revocation
// blocks (the test holds a transaction that altered B's role, so the
// disable waits for its row lock); A's lease, due later, must be revoked
// while B's is still waiting. A worker that revokes one dynamic secret after
// the other revokes A only once B's attempt has timed out (ProviderTimeout)
// and been recorded as failed.
func TestWorkerRevokesTargetsInParallel(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 2)
			e := apptest.Bootstrapped(t, d)
			s := newProject(t, e)
			s.addPG(t, "fast", "127.0.0.1:5432", dbs[0], prefix)
			s.addPG(t, "slow", "127.0.0.1:5432", dbs[1], prefix)
			slowID, slowUser := s.lease(t, "slow", "5s")
			release := holdRole(t, dbs[1], slowUser)
			fastID, fastUser := s.lease(t, "fast", "8s")

			waitUntil(t, "the lease on A revoked", func() bool { return s.status(t, fastID).Status == dynamic.Revoked })
			if got := s.status(t, slowID); got.Status != dynamic.Revoking {
				t.Fatalf("when A's lease was revoked, B's was %s (%s): A waited for B", got.Status, got.StatusDetails)
			}
			if waiting := waitingOnRoles(t, admin, dbs[1]); waiting != 1 {
				t.Fatalf("%d statements waiting on B when A's lease was revoked, want 1", waiting)
			}
			if canLogin(t, admin, fastUser) || !canLogin(t, admin, slowUser) {
				t.Fatalf("roles: A's can log in %v, B's can log in %v", canLogin(t, admin, fastUser), canLogin(t, admin, slowUser))
			}

			release()
			waitUntil(t, "the lease on B revoked", func() bool { return s.status(t, slowID).Status == dynamic.Revoked })
			waitUntil(t, "both roles dropped", func() bool { return !roleExists(t, admin, slowUser) && !roleExists(t, admin, fastUser) })
		})
	}
}

// TestStuckBatchStaysClaimed: two nodes share a database; a lease's
// revocation blocks past the end of its claim (the test holds a transaction
// that altered its role, so the disable waits for its row lock). The node
// working on it keeps it claimed, so the other node does not take it and
// revoke it a second time: one statement waits, never two, and the lease is
// revoked once, with one audit event, when the lock is released. Without
// the claim's extension, the other node takes the lease once the claim ends.
func TestStuckBatchStaysClaimed(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const claim = 3 * time.Second
			dbs, prefix, admin := pgTargets(t, 1)
			a := apptest.Bootstrapped(t, d, apptest.Options{WorkerClaim: claim})
			apptest.Start(t, d, apptest.Options{Share: a, WorkerClaim: claim})
			s := newProject(t, a)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			id, user := s.lease(t, "pg", "1s")
			release := holdRole(t, dbs[0], user)
			waiting := func() int { return waitingOnRoles(t, admin, dbs[0]) }
			waitUntil(t, "the lease's disable waiting", func() bool { return waiting() == 1 })
			for end := time.Now().Add(3 * claim); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				// Two would be both nodes at it. None is a moment between
				// tries: the disable gives up after pgLockTimeout (5 s, within
				// this window) and is tried again; under load that gap
				// lasted long enough for a sample to land in it.
				if n := waiting(); n > 1 {
					t.Fatalf("%d statements waiting on the lease's role, want at most 1: another node took the lease", n)
				}
				if got := s.status(t, id); got.Status != dynamic.Revoking || !got.DueAt.After(time.Now()) {
					t.Fatalf("while its disable waits, the lease is %s, claimed until %v", got.Status, got.DueAt)
				}
			}

			release()
			waitUntil(t, "the lease revoked", func() bool { return s.status(t, id).Status == dynamic.Revoked })
			if canLogin(t, admin, user) {
				t.Fatal("the revoked lease's role can log in")
			}
			evs, err := a.DB.AuditEvents(ctx, audit.Filter{OrgID: a.OrgID, ProjectID: s.id,
				EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 10})
			if err != nil || len(evs) != 1 {
				t.Fatalf("%d revocation events (%v), want 1", len(evs), err)
			}
		})
	}
}

// TestClaimsLastUntilTheRecord: a batch's recording, which a drain runs
// while it works on the next batch, may start well after the target
// disabled its users; the batch stays claimed until it has run. Two nodes
// share a database; a's batch is disabled and its recording held for three
// claim lengths, during which b's worker finds nothing to take. Without the
// extension lasting until the recording, b takes the leases once a's claim
// ends and revokes them a second time.
func TestClaimsLastUntilTheRecord(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const claim = 600 * time.Millisecond
			dbs, prefix, admin := pgTargets(t, 1)
			a := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true, WorkerClaim: claim})
			b := apptest.Start(t, d, apptest.Options{Share: a, NoWorker: true, WorkerClaim: claim})
			s := newProject(t, a)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			var ids, users []string
			for range 2 {
				id, user := s.lease(t, "pg", "1s")
				ids, users = append(ids, id), append(users, user)
			}
			dsID := leasesSecret(t, s, ids[0])
			time.Sleep(1100 * time.Millisecond)

			n, record, err := a.App.Worker.RevokeBatch(ctx, dsID, 10)
			if err != nil || n != 2 || record == nil {
				t.Fatalf("a's batch: %d claimed (%v), recording %v; want 2 disabled, to record", n, err, record != nil)
			}
			for _, u := range users {
				if canLogin(t, admin, u) {
					t.Fatal("a's batch did not disable a role")
				}
			}
			for end := time.Now().Add(3 * claim); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if n, err := b.App.Worker.Tick(ctx); err != nil || n != 0 {
					t.Fatalf("b's worker took %d leases (%v) while a's batch waited to be recorded", n, err)
				}
				for _, id := range ids {
					if got := s.status(t, id); got.Status != dynamic.Revoking || !got.DueAt.After(time.Now()) {
						t.Fatalf("while its recording waits, a lease is %s, claimed until %v", got.Status, got.DueAt)
					}
				}
			}

			record()
			for _, id := range ids {
				if got := s.status(t, id); got.Status != dynamic.Revoked {
					t.Fatalf("after the recording: %s", got.Status)
				}
			}
			evs, err := a.DB.AuditEvents(ctx, audit.Filter{OrgID: a.OrgID, ProjectID: s.id,
				EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 10})
			if err != nil || len(evs) != 2 {
				t.Fatalf("%d revocation events (%v), want 2", len(evs), err)
			}
		})
	}
}

// TestRevocationKeepsToTheTargetPolicy: the connections a revocation opens
// are checked against the target policy like a lease's creation, on the
// address dialled, so a name that resolves to a denied address by the time
// its leases are revoked (DNS rebinding) cannot make the worker run its
// statements there. Two nodes share a database: a leases on a target that
// b's policy denies (127.0.0.0/8). b's worker does not disable the role,
// whichever way it tries (in one call, as a batch, then alone), and records
// the refusal; a revokes it. The disabled role's drop is refused by b in the
// same way, and made by a.
func TestRevocationKeepsToTheTargetPolicy(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 1)
			a := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			b := apptest.Start(t, d, apptest.Options{Share: a, NoWorker: true, TargetsDeny: "127.0.0.0/8"})
			s := newProject(t, a)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			var ids, users []string
			for range 2 { // two, so that b tries a batch revocation too
				id, user := s.lease(t, "pg", "1s")
				ids, users = append(ids, id), append(users, user)
			}
			dsID := leasesSecret(t, s, ids[0])
			tick := func(e *apptest.Env, what string, want int) {
				t.Helper()
				if n, err := e.App.Worker.Tick(ctx); err != nil || n != want {
					t.Fatalf("%s: tick revoked %d (%v), want %d", what, n, err, want)
				}
			}

			time.Sleep(1100 * time.Millisecond)
			tick(b, "the denying node", 2)
			var retry time.Time
			for i, id := range ids {
				got := s.status(t, id)
				if got.Status != dynamic.RevokeFailed || !strings.Contains(got.StatusDetails, "not allowed by this server's dynamic-secret target policy") {
					t.Fatalf("after the denying node's revocation: %s %q", got.Status, got.StatusDetails)
				}
				if !canLogin(t, admin, users[i]) {
					t.Fatal("the denying node disabled a role")
				}
				if got.DueAt.After(retry) {
					retry = got.DueAt
				}
			}

			time.Sleep(time.Until(retry) + 50*time.Millisecond)
			tick(a, "the allowing node", 2)
			for i, id := range ids {
				if got := s.status(t, id); got.Status != dynamic.Revoked || canLogin(t, admin, users[i]) {
					t.Fatalf("after the allowing node's revocation: %s, role can log in %v", got.Status, canLogin(t, admin, users[i]))
				}
			}
			tick(b, "the denying node's cleanup", 0)
			cs, err := a.DB.Cleanups(ctx, dsID)
			if err != nil || len(cs) != 2 {
				t.Fatalf("cleanups after the denying node's drop: %+v (%v)", cs, err)
			}
			for _, c := range cs {
				if c.Attempts != 1 || !strings.Contains(c.LastError, "not allowed") || !roleExists(t, admin, c.Username) {
					t.Fatalf("after the denying node's drop: %+v, role exists %v", c, roleExists(t, admin, c.Username))
				}
				if c.DueAt.After(retry) {
					retry = c.DueAt
				}
			}
			time.Sleep(time.Until(retry) + 50*time.Millisecond)
			tick(a, "the allowing node's cleanup", 0)
			for _, u := range users {
				if roleExists(t, admin, u) {
					t.Fatal("the allowing node did not drop a role")
				}
			}
		})
	}
}

// TestWorkerBatchesEndInTheRightStates: leases of three dynamic secrets,
// claimed two at a time, end as they must: revoked with their roles gone
// (one role already dropped by hand counts as revoked), or, on a target that
// is down, revoke_failed with a retry scheduled and the role untouched; each
// outcome is audited.
func TestWorkerBatchesEndInTheRightStates(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 3)
			e := apptest.Bootstrapped(t, d, apptest.Options{WorkerBatch: 2})
			s := newProject(t, e)
			px := newProxy(t, "127.0.0.1:5432")
			s.addPG(t, "one", "127.0.0.1:5432", dbs[0], prefix)
			s.addPG(t, "two", "127.0.0.1:5432", dbs[1], prefix)
			s.addPG(t, "down", px.addr, dbs[2], prefix)
			type lease struct{ id, user string }
			var ok, down []lease
			for _, n := range []struct {
				name string
				n    int
			}{{"one", 5}, {"two", 3}, {"down", 2}} {
				for range n.n {
					id, user := s.lease(t, n.name, "6s")
					if n.name == "down" {
						down = append(down, lease{id, user})
					} else {
						ok = append(ok, lease{id, user})
					}
				}
			}
			px.cut() // before the leases expire: "down" was created last
			one, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+dbs[0]+"?sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			defer one.Close()
			if _, err := one.Exec(fmt.Sprintf(`DROP OWNED BY "%s"; DROP ROLE "%s"`, ok[0].user, ok[0].user)); err != nil {
				t.Fatal(err)
			}

			waitUntil(t, "every lease revoked or failed", func() bool {
				for _, l := range ok {
					if s.status(t, l.id).Status != dynamic.Revoked {
						return false
					}
				}
				for _, l := range down {
					if s.status(t, l.id).Status != dynamic.RevokeFailed {
						return false
					}
				}
				return true
			})
			for _, l := range ok {
				if canLogin(t, admin, l.user) {
					t.Errorf("role %s can log in after its lease was revoked", l.user)
				}
			}
			waitUntil(t, "the revoked leases' roles dropped", func() bool {
				for _, l := range ok {
					if roleExists(t, admin, l.user) {
						return false
					}
				}
				return true
			})
			for _, l := range down {
				got := s.status(t, l.id)
				if got.Attempts < 1 || !got.DueAt.After(got.UpdatedAt) || !strings.Contains(got.StatusDetails, "retrying") {
					t.Errorf("failed lease: attempts %d, due %v after %v, details %q", got.Attempts, got.DueAt, got.UpdatedAt, got.StatusDetails)
				}
				if !roleExists(t, admin, l.user) {
					t.Errorf("role %s of a lease that failed to revoke is gone", l.user)
				}
			}
			evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, ProjectID: s.id,
				EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			outcomes := map[string]int{}
			for _, ev := range evs {
				outcomes[fmt.Sprint(ev.Metadata["outcome"])]++
			}
			if outcomes["revoked"] != len(ok) || outcomes["failed"] < len(down) {
				t.Fatalf("audited outcomes %v, want %d revoked and at least %d failed", outcomes, len(ok), len(down))
			}
		})
	}
}

// burstScope is a dynamic secret on a PostgreSQL target of its own, on a
// server whose lease worker the test starts (startWorker).
type burstScope struct {
	scope
	admin  *sql.DB
	prefix string
	ids    []string // the leases the test made
	users  []string
}

// newBurstScope makes a dynamic secret named name and n leases of it, due
// a second after they are made.
func newBurstScope(t *testing.T, d store.Dialect, name string, n int) burstScope {
	t.Helper()
	dbs, prefix, admin := pgTargets(t, 1)
	e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
	b := burstScope{scope: newProject(t, e), admin: admin, prefix: prefix}
	b.addPG(t, name, "127.0.0.1:5432", dbs[0], prefix)
	for range n {
		id, user := b.lease(t, name, "1s")
		b.ids, b.users = append(b.ids, id), append(b.users, user)
	}
	return b
}

// startWorker runs the server's lease worker with the given batch sizes
// until the test ends, once every lease is due.
func (b burstScope) startWorker(t *testing.T, batch, burst int) {
	t.Helper()
	waitUntil(t, "every lease due", func() bool {
		for _, id := range b.ids {
			if !time.Now().After(b.status(t, id).DueAt) {
				return false
			}
		}
		return true
	})
	w := b.e.App.Worker
	w.Batch, w.BurstBatch = batch, burst
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// groups waits until the test's leases are revoked and returns how many were
// recorded together (each batch is recorded in one transaction, so the
// leases of a batch share their time), in the order they were recorded. It
// checks that no role of theirs can log in.
func (b burstScope) groups(t *testing.T) []int {
	t.Helper()
	waitUntil(t, "every lease revoked", func() bool {
		for _, id := range b.ids {
			if b.status(t, id).Status != dynamic.Revoked {
				return false
			}
		}
		return true
	})
	at := map[time.Time]int{}
	for _, id := range b.ids {
		at[b.status(t, id).UpdatedAt]++
	}
	var sizes []int
	for _, when := range slices.SortedFunc(maps.Keys(at), time.Time.Compare) {
		sizes = append(sizes, at[when])
	}
	for _, u := range b.users {
		if canLogin(t, b.admin, u) {
			t.Errorf("role %s can log in after its lease was revoked", u)
		}
	}
	return sizes
}

// TestWorkerTakesBiggerBatchesWhileABacklogLasts: twelve leases of one
// dynamic secret due at once on PostgreSQL (two-phase revocation), with
// batches of 2 and bursts of 5, are claimed 2, then 5 and 5; a worker
// without bursts takes six batches of 2, one that bursts from the start 5,
// 5 and 2. Every role ends unable to log in.
func TestWorkerTakesBiggerBatchesWhileABacklogLasts(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			b := newBurstScope(t, d, "burst", 12)
			b.startWorker(t, 2, 5)
			if sizes := b.groups(t); !slices.Equal(sizes, []int{2, 5, 5}) {
				t.Errorf("batches of %v, want 2, 5 and 5", sizes)
			}
		})
	}
}

// TestWorkerKeepsToBatchAfterARefusedBurst: a burst the target refuses
// (one of its leases names a user no statement may carry, so the batch's
// disable fails) goes on in groups of Batch, each disabled and recorded on
// its own, and the rest of the drain keeps to Batch. Twelve real leases and
// the bad one, fifth due, with batches of 2 and bursts of 5: the first
// batch is 2, the burst of 5 holds the bad lease, and no group recorded
// after it is bigger than 2. Recorded groups of 2: the first batch, at
// least one of the burst's and the last three batches, so five or more (a
// burst revoked one by one gives four; one that is not followed by batches
// of 2 gives a group of 5).
func TestWorkerKeepsToBatchAfterARefusedBurst(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			b := newBurstScope(t, d, "refused", 12)
			leases := make([]dynamic.SealedLease, len(b.ids))
			for i, id := range b.ids {
				leases[i] = b.status(t, id)
			}
			slices.SortFunc(leases, func(x, y dynamic.SealedLease) int { return x.DueAt.Compare(y.DueAt) })
			due := leases[3].DueAt.Add(leases[4].DueAt.Sub(leases[3].DueAt) / 2)
			bad := b.badLease(t, leases[0].DynamicSecretID, b.prefix, due)
			b.startWorker(t, 2, 5)
			sizes := b.groups(t)
			waitUntil(t, "the bad lease failed", func() bool { return b.status(t, bad.ID).Attempts > 0 })
			twos := 0
			for _, n := range sizes {
				if n == 2 {
					twos++
				}
			}
			if sizes[0] != 2 || slices.Max(sizes) > 2 || twos < 5 {
				t.Errorf("groups of %v, want 2 first, none over 2 and at least five of 2", sizes)
			}
			if got := b.status(t, bad.ID); got.Status == dynamic.Revoked || !strings.Contains(got.StatusDetails, "retrying") {
				t.Errorf("the bad lease: %s, %q", got.Status, got.StatusDetails)
			}
		})
	}
}

// badLease inserts an active lease of dynamic secret dsID, due at due,
// naming a user no statement may carry (a `"` in it), so that a batch
// holding it is refused and revoked lease by lease, and it fails.
func (s scope) badLease(t *testing.T, dsID, prefix string, due time.Time) dynamic.SealedLease {
	t.Helper()
	bad := dynamic.SealedLease{Lease: dynamic.Lease{ID: uuid.NewString(), DynamicSecretID: dsID, ProjectID: s.id,
		Username: prefix + `bad"name`, Config: []byte("{}"), Status: dynamic.Active,
		ExpireAt: due, DueAt: due, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
	if err := s.e.DB.InsertLease(context.Background(), bad, 0, audit.Event{OrgID: s.e.OrgID, ProjectID: s.id, ActorType: "platform", Type: "test"}); err != nil {
		t.Fatal(err)
	}
	return bad
}

// proxy forwards a loopback port to target until cut: then the target
// refuses connections, as a server that is down. After refuse it accepts
// and closes them at once; accepted counts connections either way.
type proxy struct {
	addr     string
	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
	refusing atomic.Bool
	accepted atomic.Int64
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			if p.refusing.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
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
	return p
}

// refuse closes the forwarded connections and every new one at once.
func (p *proxy) refuse() {
	p.refusing.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestAnUnreachableTargetIsTriedOncePerGroup: once a revocation finds the
// target unreachable, the worker fails the group's other leases with that
// error (retried with backoff) without dialling it again for each: a target
// a member controls, down or a tarpit holding each call for the provider
// timeout, must not keep one of the node's few revocation slots for a
// timeout per lease while other projects' leases wait. Before, eight
// leases cost 21 dials (the batch disable, the batch drop, then each, with
// the driver's own retries); now two calls, a batch disable and one lease
// alone (5 dials). The lease that was tried is due last.
func TestAnUnreachableTargetIsTriedOncePerGroup(t *testing.T) {
	dbs, prefix, _ := pgTargets(t, 1)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, e)
	px := newProxy(t, "127.0.0.1:5432")
	s.addPG(t, "pg", px.addr, dbs[0], prefix)
	var ids []string
	for range 8 {
		id, _ := s.lease(t, "pg", "1s")
		ids = append(ids, id)
	}
	px.refuse()
	before := px.accepted.Load()
	time.Sleep(1100 * time.Millisecond)
	if n, err := e.App.Worker.Tick(context.Background()); err != nil || n != len(ids) {
		t.Fatalf("tick processed %d leases (%v), want %d", n, err, len(ids))
	}
	for _, id := range ids {
		if got := s.status(t, id); got.Status != dynamic.RevokeFailed || got.Attempts != 1 {
			t.Fatalf("lease after the tick: %s, %d attempts, %q", got.Status, got.Attempts, got.StatusDetails)
		}
	}
	if dials := px.accepted.Load() - before; dials >= int64(len(ids)) {
		t.Fatalf("the target that was down was dialled %d times for %d leases", dials, len(ids))
	}
	// The lease that was tried (the first due) is now due last, so the next
	// attempt starts with another: one lease whose revocation hangs cannot
	// keep the others from ever being tried.
	tried := s.status(t, ids[0]).DueAt
	for _, id := range ids[1:] {
		if due := s.status(t, id).DueAt; due.After(tried) {
			t.Fatalf("an untried lease is due at %v, after the tried one (%v)", due, tried)
		}
	}
}
