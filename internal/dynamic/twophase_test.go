package dynamic_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// canLogin reports whether PostgreSQL has user as a role allowed to log in.
func canLogin(t *testing.T, admin *sql.DB, user string) bool {
	t.Helper()
	var ok bool
	err := admin.QueryRow(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, user).Scan(&ok)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	return ok
}

// connectAs opens a session as user on db (the machine's PostgreSQL trusts
// loopback: NOLOGIN is what refuses a disabled role there).
func connectAs(ctx context.Context, user, db string) (*sql.Conn, func(), error) {
	pool, err := sql.Open("pgx", "postgres://"+user+"@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		return nil, nil, err
	}
	pool.SetMaxOpenConns(1)
	c, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); pool.Close() }, nil
}

// TestTwoPhaseRevocationSurvivesACrash: with the default statements on
// PostgreSQL a due lease is revoked by disabling its role (no login, no
// password, its sessions ended) and recorded revoked with a cleanup queued
// in the same transaction; the role is dropped afterwards. The node here
// stops after the first phase, as one that crashed would: one role had been
// disabled before that node could record it (disabled again, idempotent)
// and its cleanups are claimed by it, never finished. Another node sharing
// the database drops every role once the claims run out.
func TestTwoPhaseRevocationSurvivesACrash(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 1)
			a := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, a)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			type lease struct{ id, user string }
			var leases []lease
			for range 5 {
				id, user := s.lease(t, "pg", "2s")
				leases = append(leases, lease{id, user})
			}
			// A session of the first lease, open before the revocation.
			sess, closeSess, err := connectAs(ctx, leases[0].user, dbs[0])
			if err != nil {
				t.Fatalf("session as a live lease's user: %v", err)
			}
			defer closeSess()
			if err := sess.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			// A disable that was never recorded (the node died before).
			if _, err := admin.Exec(`ALTER ROLE "` + leases[1].user + `" NOLOGIN`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2100 * time.Millisecond)
			if n, err := a.App.Worker.Tick(ctx); err != nil || n != len(leases) {
				t.Fatalf("tick: %d leases, %v", n, err)
			}
			for _, l := range leases {
				if got := s.status(t, l.id); got.Status != dynamic.Revoked {
					t.Fatalf("lease %s: %s (%s), want revoked", l.id, got.Status, got.StatusDetails)
				}
				if !roleExists(t, admin, l.user) || canLogin(t, admin, l.user) {
					t.Fatalf("after the first phase, role %s exists %v, can log in %v; want disabled, not yet dropped",
						l.user, roleExists(t, admin, l.user), canLogin(t, admin, l.user))
				}
				var pw sql.NullString
				if err := admin.QueryRow(`SELECT rolpassword FROM pg_authid WHERE rolname = $1`, l.user).Scan(&pw); err != nil || pw.Valid {
					t.Fatalf("role %s keeps a password after the disable (%v)", l.user, err)
				}
			}
			_, closeNew, err := connectAs(ctx, leases[2].user, dbs[0])
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "28000" {
				if err == nil {
					closeNew()
				}
				t.Fatalf("login as a disabled role: %v, want SQLSTATE 28000 (not permitted to log in)", err)
			}
			if err := sess.PingContext(ctx); err == nil {
				t.Fatal("the session of a revoked lease's user is still open")
			}
			cs, err := a.DB.Cleanups(ctx, leasesSecret(t, s, leases[0].id))
			if err != nil || len(cs) != len(leases) {
				t.Fatalf("cleanups queued: %d (%v), want %d", len(cs), err, len(leases))
			}
			// The node claims the cleanups, then dies.
			now := time.Now().UTC()
			claimed, err := a.DB.ClaimCleanups(ctx, now, now.Add(2*time.Second), 100)
			if err != nil || len(claimed) != len(leases) {
				t.Fatalf("claim: %d, %v", len(claimed), err)
			}

			b := apptest.Start(t, d, apptest.Options{Share: a})
			waitUntil(t, "every disabled role dropped by the other node", func() bool {
				for _, l := range leases {
					if roleExists(t, admin, l.user) {
						return false
					}
				}
				return true
			})
			waitUntil(t, "the cleanups done", func() bool {
				cs, err := b.DB.Cleanups(ctx, cs[0].DynamicSecretID)
				return err == nil && len(cs) == 0
			})
		})
	}
}

// leasesSecret is the dynamic secret id of a lease.
func leasesSecret(t *testing.T, s scope, leaseID string) string {
	t.Helper()
	return s.status(t, leaseID).DynamicSecretID
}

// TestDeleteDropsDisabledRoles: deleting a dynamic secret whose revoked
// leases' roles are disabled but not yet dropped drops them first; nothing
// is left in the target, and no cleanup row is left either.
func TestDeleteDropsDisabledRoles(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 1)
			e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, e)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			var users []string
			var dsID string
			for range 3 {
				id, user := s.lease(t, "pg", "1s")
				users = append(users, user)
				dsID = leasesSecret(t, s, id)
			}
			_, live := s.lease(t, "pg", "1h")
			time.Sleep(1100 * time.Millisecond)
			if n, err := e.App.Worker.Tick(ctx); err != nil || n != len(users) {
				t.Fatalf("tick: %d, %v", n, err)
			}
			for _, u := range users {
				if !roleExists(t, admin, u) || canLogin(t, admin, u) {
					t.Fatalf("role %s: want disabled and still there before the deletion", u)
				}
			}
			e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/pg", e.Token, map[string]any{"projectSlug": s.slug,
				"environmentSlug": "dev", "path": "/"})
			for _, u := range append(users, live) {
				if roleExists(t, admin, u) {
					t.Errorf("role %s survived the deletion of its dynamic secret", u)
				}
			}
			if left, err := e.DB.Cleanups(ctx, dsID); err != nil || len(left) != 0 {
				t.Fatalf("cleanup rows left: %d (%v)", len(left), err)
			}
		})
	}
}

// TestMovingTheTargetDropsDisabledRolesFirst: pointing a dynamic secret at
// another target (host changed) drops the disabled, not yet dropped roles of
// its revoked leases on the current one first; the worker would otherwise
// drop those names on the new target and leave them on the old.
func TestMovingTheTargetDropsDisabledRolesFirst(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 1)
			e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, e)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			var users []string
			var dsID string
			for range 2 {
				id, user := s.lease(t, "pg", "1s")
				users = append(users, user)
				dsID = leasesSecret(t, s, id)
			}
			time.Sleep(1100 * time.Millisecond)
			if n, err := e.App.Worker.Tick(ctx); err != nil || n != len(users) {
				t.Fatalf("tick: %d, %v", n, err)
			}
			if left, err := e.DB.Cleanups(ctx, dsID); err != nil || len(left) != len(users) {
				t.Fatalf("cleanups before the move: %d (%v)", len(left), err)
			}
			e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/pg", e.Token, map[string]any{"projectSlug": s.slug,
				"environmentSlug": "dev", "path": "/", "data": map[string]any{"inputs": map[string]any{"host": "localhost", "password": ""}}})
			for _, u := range users {
				if roleExists(t, admin, u) {
					t.Errorf("role %s left on the old target", u)
				}
			}
			if left, err := e.DB.Cleanups(ctx, dsID); err != nil || len(left) != 0 {
				t.Fatalf("cleanup rows left after the move: %d (%v)", len(left), err)
			}
		})
	}
}

// TestDeleteRevokesLeasesInGroups: deleting a dynamic secret revokes its
// live leases, active and failed alike, a group at a time (one claim, one
// call to the target, one record), each with its revocation event. A lease
// another request or node is revoking fails the deletion (409, naming it)
// after the others are revoked; once that claim has run out (its node
// died), the deletion takes the lease, completes, and nothing is left in
// the target.
func TestDeleteRevokesLeasesInGroups(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 1)
			e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, e)
			s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
			ctx := context.Background()
			var ids, users []string
			for range 6 {
				id, user := s.lease(t, "pg", "1h")
				ids, users = append(ids, id), append(users, user)
			}
			later := time.Now().Add(time.Hour)
			for _, id := range ids[1:3] { // 1 failed, 2 being revoked elsewhere
				if ok, err := e.DB.ClaimLease(ctx, id, later); err != nil || !ok {
					t.Fatalf("claim: %v %v", ok, err)
				}
			}
			if _, err := e.DB.FinishRevoke(ctx, ids[1], false, "failed once", time.Now()); err != nil {
				t.Fatal(err)
			}
			del := func() apptest.Response {
				return e.Do(t, "DELETE", "/api/v1/dynamic-secrets/pg", e.Token, map[string]any{"projectSlug": s.slug,
					"environmentSlug": "dev", "path": "/"})
			}
			r := del()
			if r.Status != 409 || !strings.Contains(string(r.Body), ids[2]) || !strings.Contains(string(r.Body), "being revoked") {
				t.Fatalf("deletion with a lease being revoked elsewhere: %d %.300s", r.Status, r.Body)
			}
			for i, u := range users {
				if roleExists(t, admin, u) != (i == 2) {
					t.Errorf("lease %d's role exists: %v", i, i != 2)
				}
			}
			// The other claim runs out (its node died): the deletion takes it.
			if err := e.DB.ExtendClaims(ctx, []string{ids[2]}, later, time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if r := del(); r.Status != 200 {
				t.Fatalf("deletion: %d %.300s", r.Status, r.Body)
			}
			for _, u := range users {
				if roleExists(t, admin, u) {
					t.Errorf("role %s survived the deletion of its dynamic secret", u)
				}
			}
			evs, err := e.DB.AuditEvents(ctx, audit.Filter{OrgID: e.OrgID, EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, ev := range evs {
				got[fmt.Sprint(ev.Metadata["leaseId"])]++
			}
			for _, id := range ids {
				if got[id] != 1 {
					t.Errorf("lease %s has %d revocation events, want 1 (%v)", id, got[id], got)
				}
			}
		})
	}
}
