package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// orgOf is the organisation of a seeded project.
func orgOf(t testing.TB, db *store.DB, projectID string) string {
	t.Helper()
	return projectID
}

// seedSecrets makes a project (in an organisation of the same id) with one
// dynamic secret per name, returning their ids.
func seedSecrets(t testing.TB, db *store.DB, names ...string) (projectID string, ids []string) {
	t.Helper()
	projectID, _, folder := seedProject(t, db)
	for _, n := range names {
		id := store.NewID()
		ids = append(ids, id)
		if err := db.ExecForTest(context.Background(), `INSERT INTO dynamic_secrets (id, project_id, folder_id, name, type, inputs, default_ttl, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'sql-database', ?, '1h', 0, 0)`, id, projectID, folder, n, []byte{0}); err != nil {
			t.Fatal(err)
		}
	}
	return projectID, ids
}

// seedProject makes an organization and a project (the organization's id is
// the project's: orgOf relies on it) with one environment and its root
// folder.
func seedProject(t testing.TB, db *store.DB) (projectID, envID, rootID string) {
	t.Helper()
	projectID, envID, rootID = store.NewID(), store.NewID(), store.NewID()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`, []any{projectID, projectID}},
		{`INSERT INTO projects (id, org_id, name, slug, type, created_at, updated_at) VALUES (?, ?, 'p', ?, 'secret-manager', 0, 0)`, []any{projectID, projectID, projectID}},
		{`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?, ?, 'e', 'e', 1, 0, 0)`, []any{envID, projectID}},
		{`INSERT INTO folders (id, env_id, name, created_at, updated_at) VALUES (?, ?, 'root', 0, 0)`, []any{rootID, envID}},
	} {
		if err := db.ExecForTest(context.Background(), q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	return projectID, envID, rootID
}

func insertLease(t testing.TB, db *store.DB, projectID, dsID, status string, due time.Time) string {
	t.Helper()
	id := store.NewID()
	now := time.Now().UTC()
	l := dynamic.SealedLease{Lease: dynamic.Lease{ID: id, DynamicSecretID: dsID, ProjectID: projectID, Username: "u" + id[len(id)-8:],
		Config: []byte("{}"), Status: status, ExpireAt: due, DueAt: due, CreatedAt: now, UpdatedAt: now}}
	if err := db.InsertLease(context.Background(), l, 0, audit.Event{Type: "create-dynamic-secret-lease"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func leaseIDs(ls []dynamic.SealedLease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	slices.Sort(out)
	return out
}

// TestLeaseClaimsPerDynamicSecret: the worker's reads and claims are per
// dynamic secret; claims take due live leases of that secret only, in
// batches, and a batch's outcomes are recorded with its audit events, on
// both engines; a lease revoked meanwhile by another path keeps its record,
// without a second event.
func TestLeaseClaimsPerDynamicSecret(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, ids := seedSecrets(t, db, "a", "b", "c")
			a, b, c := ids[0], ids[1], ids[2]
			now := time.Now().UTC().Truncate(time.Microsecond)
			var aDue []string
			for i := range 5 {
				aDue = append(aDue, insertLease(t, db, pid, a, dynamic.Active, now.Add(-time.Duration(5-i)*time.Second)))
			}
			insertLease(t, db, pid, a, dynamic.Active, now.Add(time.Hour))                    // not due
			insertLease(t, db, pid, a, dynamic.Revoked, now.Add(-time.Hour))                  // done
			bFirst := insertLease(t, db, pid, b, dynamic.RevokeFailed, now.Add(-time.Minute)) // longest due
			insertLease(t, db, pid, b, dynamic.Creating, now.Add(-time.Second))
			insertLease(t, db, pid, c, dynamic.Active, now.Add(time.Minute))

			if got, err := db.DueSecrets(ctx, now, nil, 10); err != nil || !slices.Equal(got, []string{b, a}) {
				t.Fatalf("due secrets %v (%v), want [b a] = %v", got, err, []string{b, a})
			}
			if got, _ := db.DueSecrets(ctx, now, []string{b}, 10); !slices.Equal(got, []string{a}) {
				t.Fatalf("due secrets except b: %v", got)
			}
			if got, _ := db.DueSecrets(ctx, now, nil, 1); !slices.Equal(got, []string{b}) {
				t.Fatalf("due secrets, limit 1: %v", got)
			}
			if next, _ := db.NextDue(ctx); !next.Equal(now.Add(-time.Minute)) {
				t.Fatalf("next due %v", next)
			}
			if next, _ := db.NextDue(ctx, b); !next.Equal(now.Add(-5 * time.Second)) {
				t.Fatalf("next due except b %v", next)
			}
			if next, _ := db.NextDue(ctx, a, b); !next.Equal(now.Add(time.Minute)) {
				t.Fatalf("next due except a and b %v", next)
			}

			until := now.Add(30 * time.Second)
			first, err := db.ClaimDueLeases(ctx, a, now, until, 3)
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Sorted(slices.Values(aDue[:3])); !slices.Equal(leaseIDs(first), want) {
				t.Fatalf("first claim of a: %v, want the 3 longest due %v", leaseIDs(first), want)
			}
			for _, l := range first {
				if l.Status != dynamic.Revoking || l.DynamicSecretID != a {
					t.Fatalf("claimed %+v", l.Lease)
				}
			}
			second, _ := db.ClaimDueLeases(ctx, a, now, until, 3)
			if want := slices.Sorted(slices.Values(aDue[3:])); !slices.Equal(leaseIDs(second), want) {
				t.Fatalf("second claim of a: %v, want %v", leaseIDs(second), want)
			}
			if third, _ := db.ClaimDueLeases(ctx, a, now, until, 3); len(third) != 0 {
				t.Fatalf("third claim of a took %d leases", len(third))
			}
			if got, _ := db.DueSecrets(ctx, now, nil, 10); !slices.Equal(got, []string{b}) {
				t.Fatalf("due secrets after a's claims: %v", got)
			}

			// A lease of the batch that another path revoked meanwhile keeps
			// its record, and its event is not written; nor is an outcome
			// recorded for it later, or for a lease of the first batch.
			gone := insertLease(t, db, pid, c, dynamic.Revoked, now)
			goneBefore, _ := db.LeaseByID(ctx, gone)
			time.Sleep(time.Millisecond) // a record's time differs from the insert's
			batch := append(leaseIDs(first), gone)
			evs := make([]audit.Event, len(batch))
			for i, id := range batch {
				evs[i] = audit.Event{Type: "revoke-dynamic-secret-lease", ProjectID: pid, Metadata: map[string]any{"leaseId": id}}
			}
			marked, err := db.RevokedMany(ctx, batch, evs)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Sort(marked); !slices.Equal(marked, leaseIDs(first)) {
				t.Fatalf("RevokedMany marked %v, want the batch less the lease revoked before: %v", marked, leaseIDs(first))
			}
			for _, ok := range []bool{true, false} {
				for _, id := range []string{gone, first[0].ID} {
					if recorded, err := db.FinishRevoke(ctx, id, ok, "late", now.Add(time.Hour),
						audit.Event{Type: "revoke-dynamic-secret-lease", ProjectID: pid, Metadata: map[string]any{"leaseId": "late"}}); err != nil || recorded {
						t.Fatalf("a late outcome for a revoked lease: recorded %v (%v)", recorded, err)
					}
				}
			}
			if after, _ := db.LeaseByID(ctx, gone); !after.UpdatedAt.Equal(goneBefore.UpdatedAt) || after.StatusDetails != goneBefore.StatusDetails {
				t.Fatalf("the lease revoked before: updated %v (%q), was %v (%q)", after.UpdatedAt, after.StatusDetails, goneBefore.UpdatedAt, goneBefore.StatusDetails)
			}
			if recorded, err := db.FinishRevoke(ctx, second[0].ID, false, "boom - retrying automatically", now.Add(time.Second),
				audit.Event{Type: "revoke-dynamic-secret-lease", ProjectID: pid, Metadata: map[string]any{"leaseId": second[0].ID}}); err != nil || !recorded {
				t.Fatalf("a failure: recorded %v (%v)", recorded, err)
			}
			for _, l := range first {
				got, _ := db.LeaseByID(ctx, l.ID)
				if got.Status != dynamic.Revoked || got.SealedData != nil || got.StatusDetails != "" {
					t.Fatalf("after RevokedMany: %s %q %v", got.Status, got.StatusDetails, got.SealedData)
				}
			}
			failed, _ := db.LeaseByID(ctx, second[0].ID)
			if failed.Status != dynamic.RevokeFailed || failed.Attempts != 1 || !failed.DueAt.Equal(now.Add(time.Second)) {
				t.Fatalf("after a failure: %s, attempt %d, due %v", failed.Status, failed.Attempts, failed.DueAt)
			}
			all, err := db.AuditEvents(ctx, audit.Filter{OrgID: orgOf(t, db, pid), ProjectID: pid, EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range all {
				got = append(got, fmt.Sprint(ev.Metadata["leaseId"]))
			}
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(append(leaseIDs(first), second[0].ID))); !slices.Equal(got, want) {
				t.Fatalf("revocation events of %v, want %v", got, want)
			}
			if n, _ := db.CountLeases(ctx, dynamic.Revoking); n != 1 {
				t.Fatalf("%d leases still claimed, want 1", n)
			}
			// A claim's extension moves only the leases still being revoked
			// under the claim it names (by its end), and leaves their
			// updated_at; a claim that is not (or no longer) the one named
			// stays.
			claimedBefore, _ := db.LeaseByID(ctx, second[1].ID)
			later := until.Add(time.Minute)
			if err := db.ExtendClaims(ctx, []string{second[1].ID}, until.Add(time.Second), later.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.LeaseByID(ctx, second[1].ID); !got.DueAt.Equal(until) {
				t.Fatalf("a claim ending at %v moved to %v by an extension of another claim", until, got.DueAt)
			}
			if err := db.ExtendClaims(ctx, []string{first[0].ID, second[0].ID, second[1].ID}, until, later); err != nil {
				t.Fatal(err)
			}
			if got, _ := db.LeaseByID(ctx, second[1].ID); !got.DueAt.Equal(later) || !got.UpdatedAt.Equal(claimedBefore.UpdatedAt) || got.Status != dynamic.Revoking {
				t.Fatalf("extended claim: %s due %v updated %v, want due %v updated %v", got.Status, got.DueAt, got.UpdatedAt, later, claimedBefore.UpdatedAt)
			}
			if got, _ := db.LeaseByID(ctx, second[0].ID); !got.DueAt.Equal(now.Add(time.Second)) || got.Status != dynamic.RevokeFailed {
				t.Fatalf("a failed lease after an extension: %s due %v", got.Status, got.DueAt)
			}
			if got, _ := db.LeaseByID(ctx, first[0].ID); got.Status != dynamic.Revoked || got.DueAt.Equal(later) {
				t.Fatalf("a revoked lease after an extension: %s due %v", got.Status, got.DueAt)
			}
			if got, _ := db.ClaimDueLeases(ctx, b, now, until, 10); len(got) != 2 || !slices.Contains(leaseIDs(got), bFirst) {
				t.Fatalf("claim of b: %v", leaseIDs(got))
			}
		})
	}
}

// TestClaimSkipsLockedLeases: on PostgreSQL a claim passes over leases
// another node's claim holds, so nodes claim disjoint batches; a claim's
// extension passes over a lease being recorded.
func TestClaimSkipsLockedLeases(t *testing.T) {
	url := storetest.RequirePG(t)
	db, err := store.Open(context.Background(), store.Options{URL: url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	pid, ids := seedSecrets(t, db, "a")
	now := time.Now().UTC()
	var all []string
	for i := range 4 {
		all = append(all, insertLease(t, db, pid, ids[0], dynamic.Active, now.Add(-time.Duration(4-i)*time.Second)))
	}
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT id FROM dynamic_leases WHERE id IN ($1, $2) FOR UPDATE`, all[0], all[1]); err != nil {
		t.Fatal(err)
	}
	got, err := db.ClaimDueLeases(ctx, ids[0], now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(all[2:])); !slices.Equal(leaseIDs(got), want) {
		t.Fatalf("claimed %v while two were locked, want %v", leaseIDs(got), want)
	}

	// An extension passes over a claimed lease that is locked (being
	// recorded) rather than wait for it: it extends the others at once.
	if _, err := tx.ExecContext(ctx, `SELECT id FROM dynamic_leases WHERE id = $1 FOR UPDATE`, got[0].ID); err != nil {
		t.Fatal(err)
	}
	from, to := got[0].DueAt, got[0].DueAt.Add(time.Hour)
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.ExtendClaims(ectx, leaseIDs(got), from, to); err != nil {
		t.Fatalf("extension with a lease locked: %v", err)
	}
	for i, l := range got {
		want := to
		if i == 0 {
			want = from
		}
		if after, err := db.LeaseByID(ctx, l.ID); err != nil || !after.DueAt.Equal(want) {
			t.Fatalf("lease %d claimed until %v (%v), want %v", i, after.DueAt, err, want)
		}
	}
}

// BenchmarkLeaseBatch is the store's part of revoking a batch of 200 leases:
// the claim, then the outcome with 200 audit events, for a dynamic secret
// that already had 100,000 leases (revoked, as old leases are).
func BenchmarkLeaseBatch(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			pid, ids := seedSecrets(b, db, "a")
			const batch = 200
			now := time.Now().UTC()
			seed := func(prefix, status string, n int) {
				if err := db.ExecForTest(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
					INSERT INTO dynamic_leases (id, dynamic_secret_id, project_id, username, status, expire_at, due_at, created_at, updated_at)
					SELECT ? || i, ?, ?, ? || i, ?, ?, ?, 0, 0 FROM n`, n, prefix, ids[0], pid, prefix, status, now.UnixMicro(), now.UnixMicro()); err != nil {
					b.Fatal(err)
				}
			}
			seed("old", dynamic.Revoked, 100000)
			seed("due", dynamic.Active, b.N*batch)
			evs := make([]audit.Event, batch)
			for i := range evs {
				evs[i] = audit.Event{Type: "revoke-dynamic-secret-lease", ProjectID: pid, Metadata: map[string]any{"leaseId": i}}
			}
			var claiming time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				claimed, err := db.ClaimDueLeases(ctx, ids[0], now, now.Add(time.Minute), batch)
				if err != nil || len(claimed) != batch {
					b.Fatalf("claimed %d: %v", len(claimed), err)
				}
				claiming += time.Since(start)
				if _, err := db.RevokedMany(ctx, leaseIDs(claimed), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(claiming.Microseconds())/1000/float64(b.N), "claim-ms/op")
		})
	}
}

// TestDisabledManyQueuesTheCleanupsOfWhatItRevokes: recording a disabled
// batch revokes its leases and queues a cleanup for each, with the batch's
// audit events, on both engines; a lease of the batch that another path
// revoked meanwhile (in one phase) gets no cleanup and no event, and keeps
// its own record.
func TestDisabledManyQueuesTheCleanupsOfWhatItRevokes(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, ids := seedSecrets(t, db, "a")
			now := time.Now().UTC().Truncate(time.Microsecond)
			x1 := insertLease(t, db, pid, ids[0], dynamic.Revoking, now)
			x2 := insertLease(t, db, pid, ids[0], dynamic.Revoking, now)
			gone := insertLease(t, db, pid, ids[0], dynamic.Revoked, now)
			before, err := db.LeaseByID(ctx, gone)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond) // the record's time differs from the insert's
			batch := []string{x1, gone, x2}
			evs := make([]audit.Event, len(batch))
			for i, id := range batch {
				evs[i] = audit.Event{OrgID: pid, ProjectID: pid, ActorType: "platform", Type: "revoke-dynamic-secret-lease", Metadata: map[string]any{"leaseId": id}}
			}
			marked, err := db.DisabledMany(ctx, batch, evs)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Sort(marked); !slices.Equal(marked, slices.Sorted(slices.Values([]string{x1, x2}))) {
				t.Fatalf("DisabledMany marked %v, want %v", marked, []string{x1, x2})
			}
			for _, id := range []string{x1, x2} {
				if l, err := db.LeaseByID(ctx, id); err != nil || l.Status != dynamic.Revoked || l.SealedData != nil {
					t.Errorf("lease %s: %s, data %v (%v)", id, l.Status, l.SealedData, err)
				}
			}
			if after, err := db.LeaseByID(ctx, gone); err != nil || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("the lease revoked before: updated %v, was %v (%v)", after.UpdatedAt, before.UpdatedAt, err)
			}
			cs, err := db.ClaimCleanups(ctx, now.Add(time.Hour), now.Add(2*time.Hour), 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cs {
				got = append(got, c.LeaseID)
				if l, _ := db.LeaseByID(ctx, c.LeaseID); c.Username != l.Username || c.DynamicSecretID != ids[0] {
					t.Errorf("cleanup %+v, lease user %s", c, l.Username)
				}
			}
			slices.Sort(got)
			if want := slices.Sorted(slices.Values([]string{x1, x2})); !slices.Equal(got, want) {
				t.Errorf("cleanups of %v, want %v", got, want)
			}
			evsGot, err := db.AuditEvents(ctx, audit.Filter{OrgID: pid, EventTypes: []string{"revoke-dynamic-secret-lease"}, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var of []string
			for _, ev := range evsGot {
				of = append(of, fmt.Sprint(ev.Metadata["leaseId"]))
			}
			slices.Sort(of)
			if want := slices.Sorted(slices.Values([]string{x1, x2})); !slices.Equal(of, want) {
				t.Errorf("audit events of %v, want %v", of, want)
			}
		})
	}
}

// TestMovesAreWrittenOnlyOnTheCountTheyRead: a guarded move (here a tag's
// new slug) counts itself; another guarded on the same count is refused
// with project.ErrMoved and changes nothing; one without a guard neither
// counts nor waits.
func TestMovesAreWrittenOnlyOnTheCountTheyRead(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			tag := secret.Tag{ID: store.NewID(), ProjectID: pid, Slug: "a", Name: "a", CreatedBy: "x", CreatedByActorType: "user",
				CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if err := db.CreateTag(ctx, tag, audit.Event{Type: "create-tag"}); err != nil {
				t.Fatal(err)
			}
			seen, err := db.ProjectMoves(ctx, pid)
			if err != nil || seen != 0 {
				t.Fatalf("moves of a new project: %d (%v)", seen, err)
			}
			guarded := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen})
			tag.Slug = "b"
			if err := db.UpdateTag(guarded, tag, audit.Event{Type: "update-tag"}); err != nil {
				t.Fatal(err)
			}
			tag.Slug = "c"
			if err := db.UpdateTag(guarded, tag, audit.Event{Type: "update-tag"}); !errors.Is(err, project.ErrMoved) {
				t.Fatalf("a second move on the same count: %v, want ErrMoved", err)
			}
			if got, _ := db.TagByID(ctx, pid, tag.ID); got.Slug != "b" {
				t.Fatalf("slug %q after the refused move", got.Slug)
			}
			if err := db.UpdateTag(ctx, tag, audit.Event{Type: "update-tag"}); err != nil {
				t.Fatal(err)
			}
			if n, _ := db.ProjectMoves(ctx, pid); n != 1 {
				t.Fatalf("moves %d, want 1 (the unguarded write does not count)", n)
			}
		})
	}
}

// TestWritesAreReadCommitted: write transactions run at READ COMMITTED on
// PostgreSQL whatever the database's default (here repeatable read), which
// the claims, the guards that re-check a row under its lock and the
// data-key insert behind a root-key rotation rely on.
func TestWritesAreReadCommitted(t *testing.T) {
	url := storetest.RequirePG(t)
	admin, err := sql.Open("pgx", storetest.PGAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := url[strings.LastIndex(url, "/")+1:]
	if i := strings.Index(name, "?"); i >= 0 {
		name = name[:i]
	}
	if _, err := admin.Exec(`ALTER DATABASE "` + name + `" SET default_transaction_isolation = 'repeatable read'`); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), store.Options{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if level, err := db.TxIsolationForTest(context.Background()); err != nil || level != "read committed" {
		t.Fatalf("a write transaction runs at %q (%v)", level, err)
	}
}

// TestLeaseLimitIsExact: a dynamic secret gets no lease over the limit,
// counting every lease not revoked (creating, active, revoking, failed) and
// none revoked nor of another secret; concurrent inserts count each other,
// on both engines; a deleted dynamic secret gets no lease.
func TestLeaseLimitIsExact(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, ids := seedSecrets(t, db, "a", "b")
			a, b := ids[0], ids[1]
			later := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
			for _, st := range []string{dynamic.Creating, dynamic.Active, dynamic.Revoking, dynamic.RevokeFailed} {
				insertLease(t, db, pid, a, st, later)
			}
			for range 3 {
				insertLease(t, db, pid, a, dynamic.Revoked, later)
				insertLease(t, db, pid, b, dynamic.Active, later)
			}
			if d == store.Postgres {
				// Each insert sleeps a moment after it counted: without the
				// dynamic secret's lock, concurrent inserts all count 4.
				if err := db.ExecForTest(ctx, `CREATE FUNCTION lease_insert_slowly() RETURNS trigger LANGUAGE plpgsql AS
					$$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$`); err != nil {
					t.Fatal(err)
				}
				if err := db.ExecForTest(ctx, `CREATE TRIGGER lease_insert_slowly BEFORE INSERT ON dynamic_leases
					FOR EACH ROW EXECUTE FUNCTION lease_insert_slowly()`); err != nil {
					t.Fatal(err)
				}
			}
			const limit = 10 // 4 live already: 6 more fit
			lease := func(ds string) dynamic.SealedLease {
				id := store.NewID()
				now := time.Now().UTC()
				return dynamic.SealedLease{Lease: dynamic.Lease{ID: id, DynamicSecretID: ds, ProjectID: pid, Username: "u" + id[len(id)-8:],
					Config: []byte("{}"), Status: dynamic.Creating, ExpireAt: later, DueAt: later, CreatedAt: now, UpdatedAt: now}}
			}
			const tries = 16
			errc := make(chan error, tries)
			start := make(chan struct{})
			for range tries {
				go func() {
					<-start
					errc <- db.InsertLease(ctx, lease(a), limit, audit.Event{Type: "create-dynamic-secret-lease"})
				}()
			}
			close(start)
			ok, refused := 0, 0
			for range tries {
				switch err := <-errc; {
				case err == nil:
					ok++
				case errors.Is(err, dynamic.ErrLeaseLimit):
					refused++
				default:
					t.Errorf("insert: %v", err)
				}
			}
			if ok != limit-4 || refused != tries-(limit-4) {
				t.Fatalf("%d inserted, %d refused; want %d and %d", ok, refused, limit-4, tries-(limit-4))
			}
			live, err := db.Leases(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, l := range live {
				if l.Status != dynamic.Revoked {
					n++
				}
			}
			if n != limit {
				t.Fatalf("%d live leases, want %d", n, limit)
			}
			// Another secret's leases are its own; no limit is no limit.
			if err := db.InsertLease(ctx, lease(b), 4, audit.Event{Type: "t"}); err != nil {
				t.Fatalf("b's fourth lease: %v", err)
			}
			if err := db.InsertLease(ctx, lease(b), 4, audit.Event{Type: "t"}); !errors.Is(err, dynamic.ErrLeaseLimit) {
				t.Fatalf("b's fifth lease: %v, want the limit", err)
			}
			if err := db.InsertLease(ctx, lease(b), 0, audit.Event{Type: "t"}); err != nil {
				t.Fatalf("no limit: %v", err)
			}
			if err := db.InsertLease(ctx, lease(store.NewID()), limit, audit.Event{Type: "t"}); !errs.Is(err, errs.NotFound) {
				t.Fatalf("lease of a missing dynamic secret: %v, want not found", err)
			}
		})
	}
}

// TestDeleteDynamicSecretLeavesNoPrincipal: a deletion is refused
// (dynamic.ErrLeasesLeft) while the dynamic secret has a lease not revoked
// or a cleanup pending, since its rows would go with it and its principal
// would stay in the target; forced, it goes with them; with every lease
// revoked and no cleanup, it goes. A lease insert after the deletion finds
// no dynamic secret (errs.NotFound).
func TestDeleteDynamicSecretLeavesNoPrincipal(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, ids := seedSecrets(t, db, "live", "cleanup", "forced", "done")
		later := time.Now().UTC().Add(time.Hour)
		insertLease(t, db, pid, ids[0], dynamic.Active, later)
		gone := insertLease(t, db, pid, ids[1], dynamic.Revoked, later)
		if err := db.ExecForTest(ctx, `INSERT INTO dynamic_cleanups (lease_id, dynamic_secret_id, username, due_at, created_at) VALUES (?, ?, 'u', 0, 0)`,
			gone, ids[1]); err != nil {
			t.Fatal(err)
		}
		insertLease(t, db, pid, ids[2], dynamic.RevokeFailed, later)
		insertLease(t, db, pid, ids[3], dynamic.Revoked, later)
		ev := audit.Event{Type: "delete-dynamic-secret"}
		for _, id := range ids[:3] {
			if err := db.DeleteDynamicSecret(ctx, id, false, ev); !errors.Is(err, dynamic.ErrLeasesLeft) {
				t.Fatalf("deletion with a live lease or a pending cleanup: %v", err)
			}
		}
		if err := db.DeleteDynamicSecret(ctx, ids[2], true, ev); err != nil {
			t.Fatalf("forced: %v", err)
		}
		if err := db.DeleteDynamicSecret(ctx, ids[3], false, ev); err != nil {
			t.Fatalf("all revoked: %v", err)
		}
		for _, id := range ids[2:] {
			if _, err := db.DynamicSecretByID(ctx, id); !errs.Is(err, errs.NotFound) {
				t.Fatalf("deleted dynamic secret: %v", err)
			}
			if err := db.InsertLease(ctx, dynamic.SealedLease{Lease: dynamic.Lease{ID: store.NewID(), DynamicSecretID: id, ProjectID: pid,
				Username: "late", Config: []byte("{}"), Status: dynamic.Creating, ExpireAt: later, DueAt: later, CreatedAt: later, UpdatedAt: later}},
				10, ev); !errs.Is(err, errs.NotFound) {
				t.Fatalf("a lease of a deleted dynamic secret: %v", err)
			}
		}
	})
}

// TestDeleteProjectKeepsPendingCleanups: a project whose dynamic secret has
// only revoked leases, one of whose users is still to be dropped (a pending
// cleanup, after a two-phase revocation), is not deleted
// (project.LeasesLeftError): its row would go, and the disabled user would
// stay in the target. Once the cleanup is done, the project goes, its lease
// rows with it.
func TestDeleteProjectKeepsPendingCleanups(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, ids := seedSecrets(t, db, "disabled")
		gone := insertLease(t, db, pid, ids[0], dynamic.Revoked, time.Now().UTC())
		if err := db.ExecForTest(ctx, `INSERT INTO dynamic_cleanups (lease_id, dynamic_secret_id, username, due_at, created_at) VALUES (?, ?, 'u', 0, 0)`,
			gone, ids[0]); err != nil {
			t.Fatal(err)
		}
		ev := audit.Event{Type: "delete-project", OrgID: pid}
		var left *project.LeasesLeftError
		if err := db.DeleteProject(ctx, pid, ev); !errors.As(err, &left) || left.Secrets != 1 {
			t.Fatalf("deleting a project with a pending cleanup: %v", err)
		}
		if err := db.FinishCleanups(ctx, []string{gone}, true, "", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteProject(ctx, pid, ev); err != nil {
			t.Fatalf("with every lease revoked and dropped: %v", err)
		}
		if _, err := db.LeaseByID(ctx, gone); !errs.Is(err, errs.NotFound) {
			t.Fatalf("the lease row outlived its project: %v", err)
		}
	})
}

// TestDynamicSecretWritesCheckWhatTheyRead: a dynamic secret's update is
// written only if the secret is still as read (project.ErrStale otherwise),
// one that moves its target only while it has no live lease
// (dynamic.ErrLeasesLeft), and a lease is inserted only if the secret is
// still as the lease read it: its principal must be where the secret's
// inputs, and so its revocation, point.
func TestDynamicSecretWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		projectID, ids := seedSecrets(t, db, "d")
		read, err := db.DynamicSecretByID(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		lease := func(stamp time.Time) error {
			id := store.NewID()
			return db.InsertLease(ctx, dynamic.SealedLease{SecretStamp: stamp, Lease: dynamic.Lease{ID: id, DynamicSecretID: ids[0], ProjectID: projectID,
				Username: "u" + id[len(id)-8:], Config: []byte("{}"), Status: dynamic.Active, ExpireAt: now.Add(time.Hour), DueAt: now.Add(time.Hour),
				CreatedAt: now, UpdatedAt: now}}, 0, audit.Event{Type: "create-dynamic-secret-lease"})
		}
		if err := lease(read.UpdatedAt); err != nil {
			t.Fatalf("a lease of the secret as it is: %v", err)
		}
		ev := audit.Event{Type: "update-dynamic-secret"}
		changed := read
		changed.DefaultTTL, changed.UpdatedAt = "2h", project.NextStamp(now, read.UpdatedAt)
		if err := db.UpdateDynamicSecret(ctx, changed, read.UpdatedAt, true, ev); !errors.Is(err, dynamic.ErrLeasesLeft) {
			t.Fatalf("moving the target of a secret with a live lease: %v", err)
		}
		if err := db.UpdateDynamicSecret(ctx, changed, read.UpdatedAt, false, ev); err != nil {
			t.Fatalf("a change from the current read: %v", err)
		}
		stale := read
		stale.DefaultTTL, stale.UpdatedAt = "3h", project.NextStamp(now, read.UpdatedAt)
		if err := db.UpdateDynamicSecret(ctx, stale, read.UpdatedAt, false, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a change from an overtaken read: %v", err)
		}
		if err := lease(read.UpdatedAt); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a lease of the secret as it was: %v", err)
		}
		if got, err := db.DynamicSecretByID(ctx, ids[0]); err != nil || got.DefaultTTL != "2h" {
			t.Fatalf("after the refusals: %q %v", got.DefaultTTL, err)
		}
		leases, err := db.Leases(ctx, ids[0])
		if err != nil || len(leases) != 1 {
			t.Fatalf("%d leases after the refused insert: %v", len(leases), err)
		}
	})
}
