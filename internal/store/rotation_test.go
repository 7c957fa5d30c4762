package store_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/rotation"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// seedConnection makes a fresh project and an app connection of its
// organization to rotate through.
func seedConnection(t testing.TB, db *store.DB) (projectID, orgID string, conn appconn.Connection) {
	t.Helper()
	pid, _ := seedSecrets(t, db)
	org := orgOf(t, db, pid)
	conn = appconn.Connection{ID: store.NewID(), OrgID: org, App: "postgres", Method: "username-and-password", Name: "c-" + pid[:8], Version: 1,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.CreateAppConnection(context.Background(), conn, []byte{1}, audit.Event{OrgID: org, Type: "t"}); err != nil {
		t.Fatal(err)
	}
	return pid, org, conn
}

// seedRotations makes n auto rotations in a fresh project, all due at due.
func seedRotations(t testing.TB, db *store.DB, n int, due time.Time) []string {
	t.Helper()
	ctx := context.Background()
	pid, org, conn := seedConnection(t, db)
	var ids []string
	for i := range n {
		st := rotation.State{Rotation: rotation.Rotation{ID: store.NewID(), OrgID: org, ProjectID: pid, ConnectionID: conn.ID,
			Type: "postgres-credentials", Name: "r-" + strconv.Itoa(i), Environment: "e", SecretPath: "/",
			AutoRotate: true, IntervalDays: 1, ActiveIndex: 1, Status: rotation.Pending, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
		if err := db.CreateRotation(ctx, st, audit.Event{OrgID: org, Type: "t"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecForTest(ctx, `UPDATE secret_rotations SET due_at = ? WHERE id = ?`, due.UnixMicro(), st.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.ID)
	}
	return ids
}

// TestRotationClaims: concurrent claimers (nodes) take each due rotation
// exactly once; a live claim keeps rotate-now and other nodes off; a run
// whose claim was taken over can neither record its pending password nor
// finish; a recorded pending password makes the rotation due when the
// claim ends.
func TestRotationClaims(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			now := time.Now().UTC()
			ids := seedRotations(t, db, 20, now.Add(-time.Minute))

			var mu sync.Mutex
			claimed := map[string]int{}
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for {
						sts, err := db.ClaimDueRotations(ctx, now, now.Add(time.Minute), 3)
						if err != nil {
							t.Error(err)
							return
						}
						if len(sts) == 0 {
							return
						}
						mu.Lock()
						for _, st := range sts {
							claimed[st.ID]++
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(claimed) != len(ids) {
				t.Fatalf("%d of %d due rotations claimed", len(claimed), len(ids))
			}
			for id, n := range claimed {
				if n != 1 {
					t.Fatalf("rotation %s claimed %d times", id, n)
				}
			}

			// A live claim keeps everyone else off.
			id := ids[0]
			if _, ok, err := db.ClaimRotation(ctx, id, "other", now, now.Add(time.Minute)); err != nil || ok {
				t.Fatalf("claimed a held rotation: %v %v", ok, err)
			}
			// After the claim ends, another run takes it; the first run's
			// token no longer records anything.
			later := now.Add(2 * time.Minute)
			st, ok, err := db.ClaimRotation(ctx, id, "second", later, later.Add(time.Minute))
			if err != nil || !ok || st.Claim != "second" {
				t.Fatalf("claim after expiry: %v %v %q", ok, err, st.Claim)
			}
			if err := db.SetRotationPending(ctx, id, "stale", []byte{9}, 0); !errs.Is(err, errs.Conflict) {
				t.Fatalf("stale run recorded a pending password: %v", err)
			}
			if err := db.SetRotationPending(ctx, id, "second", []byte{7}, 0); err != nil {
				t.Fatal(err)
			}
			got, _ := db.Rotation(ctx, id)
			if string(got.Pending) != "\x07" || got.DueAt == nil || !got.DueAt.Equal(later.Add(time.Minute).Truncate(time.Microsecond)) {
				t.Fatalf("pending %v due %v, want due at the claim's end", got.Pending, got.DueAt)
			}
			ev := audit.Event{OrgID: got.OrgID, Type: "t"}
			if err := db.FinishRotation(ctx, id, "stale", rotation.Outcome{OK: true, At: later}, ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("stale run finished: %v", err)
			}
			next := later.Add(24 * time.Hour)
			if err := db.FinishRotation(ctx, id, "second", rotation.Outcome{OK: true, ActiveIndex: 0, Credentials: []byte{5}, At: later,
				NextRotationAt: &next, DueAt: &next}, ev); err != nil {
				t.Fatal(err)
			}
			got, _ = db.Rotation(ctx, id)
			if got.Pending != nil || got.ActiveIndex != 0 || got.Status != rotation.Success || got.Rotations != 1 || got.Claim != "" ||
				got.DueAt == nil || !got.DueAt.Equal(next.Truncate(time.Microsecond)) {
				t.Fatalf("after finish %+v", got)
			}
			// A failed run keeps nothing claimed and retries at its due time.
			st, ok, _ = db.ClaimRotation(ctx, id, "third", later, later.Add(time.Minute))
			retry := later.Add(30 * time.Second)
			if !ok || db.FinishRotation(ctx, id, "third", rotation.Outcome{Message: "target down", At: later, DueAt: &retry}, ev) != nil {
				t.Fatal("failed run not recorded")
			}
			got, _ = db.Rotation(ctx, id)
			if got.Status != rotation.Failed || got.Attempts != 1 || got.LastMessage != "target down" || got.ActiveIndex != 0 {
				t.Fatalf("after failure %+v", got)
			}
		})
	}
}

// BenchmarkRotationIdlePoll is what an idle node's rotation worker costs
// per poll with 10,000 rotations scheduled in the future: one read.
func BenchmarkRotationIdlePoll(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			seedRotations(b, db, 10_000, time.Now().Add(24*time.Hour))
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if next, err := db.NextRotationDue(ctx); err != nil || next.IsZero() {
					b.Fatal(next, err)
				}
			}
		})
	}
}

// BenchmarkClaimDueRotations is one worker claim of a batch of 4 out of
// 1,000 due rotations (each iteration moves the clock past the previous
// claims, so every claim finds work): "one-statement" is ClaimDueRotations,
// "1+2N" the query it replaced, measured side by side.
func BenchmarkClaimDueRotations(b *testing.B) {
	for _, d := range storetest.Engines {
		db := storetest.Open(b, d)
		base := time.Now()
		seedRotations(b, db, 1000, base)
		ctx := context.Background()
		i := 0
		for _, v := range []struct {
			name  string
			claim func(context.Context, time.Time, time.Time, int) ([]rotation.State, error)
		}{{"one-statement", db.ClaimDueRotations}, {"1+2N", db.ClaimDueRotationsNPlus1}} {
			b.Run(string(d)+"/"+v.name, func(b *testing.B) {
				for b.Loop() {
					now := base.Add(time.Duration(i+1) * 3 * time.Minute)
					i++
					got, err := v.claim(ctx, now, now.Add(2*time.Minute), 4)
					if err != nil || len(got) != 4 {
						b.Fatal(len(got), err)
					}
				}
			})
		}
	}
}

// BenchmarkRotationByName is the rotation-name lookup in a project of 1,000
// rotations: "index" is RotationByName, "list" what GetByName did before
// (every rotation of the project, filtered).
func BenchmarkRotationByName(b *testing.B) {
	for _, d := range storetest.Engines {
		db := storetest.Open(b, d)
		ids := seedRotations(b, db, 1000, time.Now().Add(24*time.Hour))
		ctx := context.Background()
		st, err := db.Rotation(ctx, ids[500])
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(d)+"/index", func(b *testing.B) {
			for b.Loop() {
				if got, err := db.RotationByName(ctx, st.ProjectID, "e", "/", st.Name); err != nil || got.ID != st.ID {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(d)+"/list", func(b *testing.B) {
			for b.Loop() {
				if got, err := db.RotationByNameByList(ctx, st.ProjectID, st.Type, "e", "/", st.Name); err != nil || got.ID != st.ID {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRotationsUnder: a rotation counts for its own folder and every folder
// above it, never for a sibling whose name shares a prefix.
func TestRotationsUnder(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			ids := seedRotations(t, db, 1, time.Now().Add(time.Hour))
			st, err := db.Rotation(ctx, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := db.ExecForTest(ctx, `UPDATE secret_rotations SET secret_path = '/apps/db' WHERE id = ?`, st.ID); err != nil {
				t.Fatal(err)
			}
			for path, want := range map[string]int{"": 1, "/": 1, "/apps": 1, "/apps/db": 1, "/apps/db/": 1, "/apps/d": 0,
				"/apps/db2": 0, "/app": 0, "/apps/db/x": 0, "/other": 0} {
				if n, err := db.RotationsUnder(ctx, st.ProjectID, "e", path); err != nil || n != want {
					t.Errorf("RotationsUnder(%q) = %d, %v; want %d", path, n, err, want)
				}
			}
			if n, err := db.RotationsUnder(ctx, st.ProjectID, "prod", ""); err != nil || n != 0 {
				t.Errorf("another environment: %d, %v", n, err)
			}
		})
	}
}

// TestRotationCreatesOfOneConnectionSeeEachOther: CreateRotation's check
// is given what the other creates through the same connection committed:
// of two concurrent creates each refusing when another rotation exists,
// exactly one lands (two projects claimed one principal at once).
func TestRotationCreatesOfOneConnectionSeeEachOther(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _ := seedSecrets(t, db)
		org := orgOf(t, db, pid)
		for round := range 6 {
			// A server of its own each round: rotations are judged per server.
			conn := appconn.Connection{ID: store.NewID(), OrgID: org, App: "postgres", Method: "username-and-password", Name: "race-" + strconv.Itoa(round), Version: 1,
				Credentials: appconn.Credentials{Host: "race-" + strconv.Itoa(round) + ".example", Port: 5432}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := db.CreateAppConnection(ctx, conn, []byte{1}, audit.Event{OrgID: org, Type: "t"}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var landed atomic.Int32
			for i := range 2 {
				wg.Go(func() {
					st := rotation.State{Rotation: rotation.Rotation{ID: store.NewID(), OrgID: org, ProjectID: pid, ConnectionID: conn.ID,
						Type: "postgres-credentials", Name: fmt.Sprintf("race-%d-%d", round, i), Environment: "e", SecretPath: "/",
						AutoRotate: true, IntervalDays: 1, ActiveIndex: 1, Status: rotation.Pending, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
					err := db.CreateRotation(ctx, st, audit.Event{OrgID: org, Type: "t"}, func(others []rotation.State) error {
						time.Sleep(20 * time.Millisecond) // both read before either inserts, unless serialised
						if len(others) > 0 {
							return errs.BadRequest("taken")
						}
						return nil
					})
					if err == nil {
						landed.Add(1)
					} else if !errs.Is(err, errs.Invalid) {
						t.Errorf("create: %v", err)
					}
				})
			}
			wg.Wait()
			if n := landed.Load(); n != 1 {
				t.Fatalf("round %d: %d of two racing creates landed, want 1", round, n)
			}
		}
	})
}

// TestRotationCreatesSeeTheirServersRotations: a create through one
// connection is given the rotations made through the organization's other
// connections to the same server (any database), not those of another
// server.
func TestRotationCreatesSeeTheirServersRotations(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _ := seedSecrets(t, db)
		org := orgOf(t, db, pid)
		conn := func(name, host, database string) appconn.Connection {
			c := appconn.Connection{ID: store.NewID(), OrgID: org, App: "postgres", Method: "username-and-password", Name: name, Version: 1,
				Credentials: appconn.Credentials{Host: host, Port: 5432, Database: database}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := db.CreateAppConnection(ctx, c, []byte{1}, audit.Event{OrgID: org, Type: "t"}); err != nil {
				t.Fatal(err)
			}
			return c
		}
		orders, billing, elsewhere := conn("orders", "db.example", "orders"), conn("billing", "DB.example.", "billing"), conn("other", "db2.example", "orders")
		create := func(c appconn.Connection, name string) []rotation.State {
			var seen []rotation.State
			st := rotation.State{Rotation: rotation.Rotation{ID: store.NewID(), OrgID: org, ProjectID: pid, ConnectionID: c.ID,
				Type: "postgres-credentials", Name: name, Environment: "e", SecretPath: "/",
				AutoRotate: true, IntervalDays: 1, ActiveIndex: 1, Status: rotation.Pending, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
			if err := db.CreateRotation(ctx, st, audit.Event{OrgID: org, Type: "t"}, func(others []rotation.State) error {
				seen = others
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return seen
		}
		if seen := create(orders, "first"); len(seen) != 0 {
			t.Fatalf("the first create saw %d rotations", len(seen))
		}
		if seen := create(billing, "second"); len(seen) != 1 || seen[0].Name != "first" {
			t.Fatalf("a create through another connection to the server saw %+v, want the first rotation", seen)
		}
		if seen := create(elsewhere, "third"); len(seen) != 0 {
			t.Fatalf("a create on another server saw %d rotations", len(seen))
		}
	})
}

// TestTwoRotationsNeverWriteOneSecret: the service checks that no other
// rotation at the place writes a secret of the mapping on what it read;
// the store checks again under a lock of the project, so of twelve creates
// naming one secret at once exactly one lands, and neither a create nor an
// update can take a secret another rotation writes (two rotations writing
// one secret: the second's runs are refused, after it may have changed the
// password on the server).
func TestTwoRotationsNeverWriteOneSecret(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, org, conn := seedConnection(t, db)
		mk := func(name string, m rotation.Mapping) rotation.State {
			return rotation.State{Rotation: rotation.Rotation{ID: store.NewID(), OrgID: org, ProjectID: pid, ConnectionID: conn.ID,
				Type: "postgres-credentials", Name: name, Environment: "e", SecretPath: "/", Mapping: m,
				AutoRotate: true, IntervalDays: 1, ActiveIndex: 1, Status: rotation.Pending, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
		}
		ev := audit.Event{OrgID: org, Type: "t"}
		for round := range 5 {
			var wg sync.WaitGroup
			var landed atomic.Int32
			start := make(chan struct{})
			for i := range 12 {
				wg.Go(func() {
					st := mk(fmt.Sprintf("racer-%d-%d", round, i), rotation.Mapping{Username: fmt.Sprintf("USER_%d_%d", round, i), Password: fmt.Sprintf("DB_PASSWORD_%d", round)})
					<-start
					err := db.CreateRotation(ctx, st, ev, nil)
					if err == nil {
						landed.Add(1)
					} else if !errs.Is(err, errs.Invalid) {
						t.Errorf("create: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			if n := landed.Load(); n != 1 {
				t.Fatalf("round %d: %d of twelve creates writing one secret landed, want 1", round, n)
			}
		}
		other := mk("other", rotation.Mapping{Username: "OTHER_USER", Password: "OTHER_PASSWORD"})
		if err := db.CreateRotation(ctx, other, ev, nil); err != nil {
			t.Fatal(err)
		}
		taking := other.Rotation
		taking.Mapping.Password = "DB_PASSWORD_0"
		if err := db.UpdateRotation(ctx, taking, nil, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("an update taking another rotation's secret: %v, want a 400", err)
		}
		keeping := other.Rotation
		keeping.Description = "still its own secrets"
		if err := db.UpdateRotation(ctx, keeping, nil, ev); err != nil {
			t.Fatalf("an update keeping its own secrets: %v", err)
		}
		// Two rotations that already write one secret (made before this
		// check) can still have other settings changed.
		twin := mk("twin", rotation.Mapping{Username: "TWIN_USER", Password: "OTHER_PASSWORD"})
		twin.SecretPath = "/twin"
		if err := db.CreateRotation(ctx, twin, ev, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecForTest(ctx, `UPDATE secret_rotations SET secret_path = '/' WHERE id = ?`, twin.ID); err != nil {
			t.Fatal(err)
		}
		renamed := twin.Rotation
		renamed.SecretPath, renamed.Name = "/", "twin-renamed"
		if err := db.UpdateRotation(ctx, renamed, nil, ev); err != nil {
			t.Fatalf("renaming a rotation that shares a secret made before the check: %v", err)
		}
		// Another place may use the name.
		elsewhere := mk("elsewhere", rotation.Mapping{Username: "U", Password: "DB_PASSWORD_0"})
		elsewhere.SecretPath = "/other"
		if err := db.CreateRotation(ctx, elsewhere, ev, nil); err != nil {
			t.Fatalf("the same secret name at another path: %v", err)
		}
	})
}
