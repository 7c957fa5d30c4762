package dynamic_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// sleepyRevocation drops a lease's role after a pause: a member with
// edit-root-credential may write such a statement, one that is slow
// without failing.
const sleepyRevocation = `SELECT pg_sleep(0.25); DROP OWNED BY "{{username}}"; DROP ROLE IF EXISTS "{{username}}";`

// addSleepyPG makes a sql-database dynamic secret whose revocation
// statement sleeps a quarter of a second per user.
func (s scope) addSleepyPG(t *testing.T, name, db, prefix string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort("127.0.0.1:5432")
	var out struct{ DynamicSecret struct{ ID string } }
	s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", s.e.Token, map[string]any{"projectSlug": s.slug, "environmentSlug": "dev",
		"path": "/", "name": name, "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}",
		"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "postgres", "host": host,
			"port": port, "database": db, "username": "postgres", "password": "", "revocationStatement": sleepyRevocation}}}).Decode(t, &out)
	return out.DynamicSecret.ID
}

// TestASlowTargetLetsOthersHaveTheSlot: a dynamic secret whose revocations
// are slow without failing (sixteen leases, a quarter of a second each)
// keeps a slot only for the worker's slice, then waits behind the others:
// with one slot, a lease of another dynamic secret that falls due while
// the slow one drains is revoked before the slow one's last lease. Before,
// the drain kept the slot until no lease of its own was due (a member's
// statement that sleeps just under the provider timeout held it for 19 s
// a lease, and eight of them every slot of the node). Every slow lease is
// revoked in the end, none with a failed attempt.
func TestASlowTargetLetsOthersHaveTheSlot(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, admin := pgTargets(t, 2)
			e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, e)
			s.addSleepyPG(t, "slow", dbs[0], prefix)
			s.addPG(t, "fast", "127.0.0.1:5432", dbs[1], prefix)
			var slow []string
			for range 16 {
				id, _ := s.lease(t, "slow", "1s")
				slow = append(slow, id)
			}
			fast, fastUser := s.lease(t, "fast", "2s")
			waitUntil(t, "the slow leases due", func() bool { return time.Now().After(s.status(t, slow[len(slow)-1]).DueAt) })

			w := e.App.Worker
			w.Parallel, w.Batch, w.Slice = 1, 1, 700*time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })

			waitUntil(t, "the fast lease revoked", func() bool { return s.status(t, fast).Status == dynamic.Revoked })
			left := 0
			for _, id := range slow {
				if s.status(t, id).Status != dynamic.Revoked {
					left++
				}
			}
			if left == 0 {
				t.Fatalf("the other dynamic secret's lease was revoked only after all %d slow ones", len(slow))
			}
			if canLogin(t, admin, fastUser) {
				t.Fatalf("the fast lease's role can still log in")
			}
			waitUntil(t, "every slow lease revoked", func() bool {
				for _, id := range slow {
					if s.status(t, id).Status != dynamic.Revoked {
						return false
					}
				}
				return true
			})
			for _, id := range slow {
				if got := s.status(t, id); got.Attempts != 0 {
					t.Errorf("slow lease %s: %d failed attempts (%q)", id, got.Attempts, got.StatusDetails)
				}
			}
		})
	}
}

// TestLeasesNotTriedInTheSliceAreReleased: a batch the target refuses (one
// lease names a user no statement may carry) is revoked lease by lease;
// past the slice the worker tries no more and releases the rest of the
// claim: they are due again at once, with no attempt counted and no audit
// event, and the next batch revokes them.
func TestLeasesNotTriedInTheSliceAreReleased(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbs, prefix, _ := pgTargets(t, 1)
			e := apptest.Bootstrapped(t, d, apptest.Options{NoWorker: true})
			s := newProject(t, e)
			dsID := s.addSleepyPG(t, "slow", dbs[0], prefix)
			var ids []string
			for range 8 {
				id, _ := s.lease(t, "slow", "1s")
				ids = append(ids, id)
			}
			bad := s.badLease(t, dsID, prefix, s.status(t, ids[0]).DueAt)
			waitUntil(t, "the leases due", func() bool { return time.Now().After(s.status(t, ids[len(ids)-1]).DueAt) })

			w := e.App.Worker
			n, record, released, err := w.RevokeBatchUntil(context.Background(), dsID, 20, time.Now().Add(600*time.Millisecond))
			if err != nil || n != len(ids)+1 || record != nil || !released {
				t.Fatalf("batch: %d claimed, record %v, released %v, %v; want all %d, tried one by one, some released", n, record != nil, released, err, len(ids)+1)
			}
			revoked, due := 0, 0
			for _, id := range ids {
				got := s.status(t, id)
				switch {
				case got.Status == dynamic.Revoked:
					revoked++
				case got.Attempts == 0 && !got.DueAt.After(time.Now()):
					due++
				default:
					t.Errorf("lease %s after the slice: %s, %d attempts, due %v", id, got.Status, got.Attempts, got.DueAt)
				}
			}
			if revoked == 0 || due == 0 {
				t.Fatalf("after the slice %d revoked and %d released, want some of each", revoked, due)
			}
			failed := 0
			if got := s.status(t, bad.ID); got.Attempts > 0 {
				failed = 1 // tried in the slice: its failure is recorded
			} else if got.DueAt.After(time.Now()) {
				t.Errorf("the bad lease, untried, is not due again: %v", got.DueAt)
			}
			if events := revokeEvents(t, e, s.id); events != revoked+failed {
				t.Errorf("%d revocation events, want %d (one per lease tried)", events, revoked+failed)
			}
			for range 10 {
				if _, _, _, err := w.RevokeBatchUntil(context.Background(), dsID, 20, time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range ids {
				if got := s.status(t, id); got.Status != dynamic.Revoked || got.Attempts != 0 {
					t.Errorf("lease %s at the end: %s, %d attempts", id, got.Status, got.Attempts)
				}
			}
		})
	}
}

// revokeEvents counts a project's lease revocation events.
func revokeEvents(t *testing.T, e *apptest.Env, projectID string) int {
	t.Helper()
	evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, ProjectID: projectID, EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestSlowDynamicSecretsHoldAtMostHalfTheSlots: the worker's choice for its
// free slots. Dynamic secrets whose last drain ran out of its slice come
// after every other due one, and hold at most half the slots (at least
// one), so healthy targets always find a slot.
func TestSlowDynamicSecretsHoldAtMostHalfTheSlots(t *testing.T) {
	dbs, prefix, _ := pgTargets(t, 1)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, e)
	ids := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		s.addPG(t, name, "127.0.0.1:5432", dbs[0], prefix)
		l, _ := s.lease(t, name, "1s")
		ids[name] = s.status(t, l).DynamicSecretID
	}
	a, b, c := ids["a"], ids["b"], ids["c"]
	time.Sleep(1100 * time.Millisecond)
	w := e.App.Worker
	for _, tc := range []struct {
		name          string
		busy, yielded map[string]bool
		slots         int
		first         []string // picked first, in this order
		slow          int      // then this many of the yielded
	}{
		{"both yielded, two free slots", map[string]bool{}, map[string]bool{a: true, b: true}, 2, []string{c}, 1},
		{"a slow one busy, half the slots", map[string]bool{a: true}, map[string]bool{b: true}, 3, []string{c}, 0},
		{"a healthy one busy", map[string]bool{a: false}, map[string]bool{b: true}, 3, []string{c}, 1},
		{"one slot, nothing else due", map[string]bool{}, map[string]bool{a: true, b: true, c: true}, 1, nil, 1},
		{"nothing yielded", map[string]bool{}, map[string]bool{}, 8, []string{a, b, c}, 0},
	} {
		got, slow, err := w.Pick(context.Background(), tc.busy, tc.yielded, tc.slots)
		if err != nil {
			t.Fatal(err)
		}
		if slow != tc.slow || len(got) != len(tc.first)+tc.slow || !slices.Equal(got[:len(tc.first)], tc.first) {
			t.Errorf("%s: picked %v (%d slow), want %v first and %d slow", tc.name, got, slow, tc.first, tc.slow)
			continue
		}
		for _, id := range got[len(tc.first):] {
			if !tc.yielded[id] || tc.busy[id] {
				t.Errorf("%s: %s picked as slow but did not yield", tc.name, id)
			}
		}
	}
}

// TestADrainThatOutlivesItsSliceYields: a drain of a single lease whose
// revocation takes longer than the slice ends with its claim, but its
// dynamic secret is marked as having used up its slice all the same, so
// that a target slow one lease at a time (leases falling due one by one)
// also waits behind the others and holds at most half the slots.
func TestADrainThatOutlivesItsSliceYields(t *testing.T) {
	dbs, prefix, _ := pgTargets(t, 1)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, e)
	dsID := s.addSleepyPG(t, "slow", dbs[0], prefix)
	id, _ := s.lease(t, "slow", "1s")
	waitUntil(t, "the lease due", func() bool { return time.Now().After(s.status(t, id).DueAt) })
	w := e.App.Worker
	w.Slice = 100 * time.Millisecond // the revocation sleeps 250 ms
	if !w.Drain(context.Background(), dsID) {
		t.Fatal("a drain that outlived its slice did not report it")
	}
	if got := s.status(t, id); got.Status != dynamic.Revoked {
		t.Fatalf("the lease: %s (%s)", got.Status, got.StatusDetails)
	}
	// One that did not: not marked.
	id2, _ := s.lease(t, "slow", "1s")
	waitUntil(t, "the second lease due", func() bool { return time.Now().After(s.status(t, id2).DueAt) })
	w.Slice = time.Minute
	if w.Drain(context.Background(), dsID) {
		t.Fatal("a drain well within its slice reported yielding")
	}
}

// TestSlowDrainsShareHalfTheSlots: the worker itself, with two slots and
// two dynamic secrets whose every revocation outlives the slice. Once both
// have yielded, they take turns in one slot: the worker never runs two slow
// revocations at once, so the other slot stays free for healthy targets
// (before the busy slots kept whether they were slow, both were picked
// again side by side).
func TestSlowDrainsShareHalfTheSlots(t *testing.T) {
	dbs, prefix, admin := pgTargets(t, 2)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, e)
	var leases []string
	for i, name := range []string{"slow-a", "slow-b"} {
		s.addSleepyPG(t, name, dbs[i], prefix)
		for range 4 {
			id, _ := s.lease(t, name, "1s")
			leases = append(leases, id)
		}
	}
	waitUntil(t, "the leases due", func() bool { return time.Now().After(s.status(t, leases[len(leases)-1]).DueAt) })
	revoked := func(ids []string) int {
		n := 0
		for _, id := range ids {
			if s.status(t, id).Status == dynamic.Revoked {
				n++
			}
		}
		return n
	}

	w := e.App.Worker
	w.Parallel, w.Batch, w.Slice = 2, 1, 100*time.Millisecond // a revocation sleeps 250 ms
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The first drain of each is not known to be slow: they may run side
	// by side, one lease each.
	waitUntil(t, "a lease of each revoked", func() bool { return revoked(leases[:4]) > 0 && revoked(leases[4:]) > 0 })
	most := 0
	for revoked(leases) < len(leases) {
		var n int
		err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1)
			AND state = 'active' AND query LIKE '%pg_sleep(0.25)%' AND pid <> pg_backend_pid()`, dbs).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, n)
		time.Sleep(10 * time.Millisecond)
	}
	if most != 1 {
		t.Fatalf("at most %d slow revocations ran at once after both yielded, want 1 (half of two slots)", most)
	}
	for _, id := range leases {
		if got := s.status(t, id); got.Attempts != 0 {
			t.Errorf("lease %s: %d failed attempts (%q)", id, got.Attempts, got.StatusDetails)
		}
	}
}
