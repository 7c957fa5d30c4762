package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// readEvent is a read's audit event as the secrets service makes it.
func readEvent(org, marker string) audit.Event {
	return audit.Event{OrgID: org, ActorType: "identity", ActorID: "bench-identity",
		ActorMetadata: map[string]any{"identityId": "bench-identity", "name": "bench"}, Type: "get-secrets",
		Metadata: map[string]any{"environment": "dev", "secretPath": "/", "numberOfSecrets": 100, "marker": marker},
		IP:       "127.0.0.1", UserAgent: "lockbox-bench/" + marker}
}

// openAudit opens a fresh database of engine d and, beside it, a connection
// of its own to the same database.
func openAudit(t *testing.T, d store.Dialect) (*store.DB, store.Options, *sql.DB) {
	t.Helper()
	opts := storetest.Options(t, d)
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	driver, dsn := "pgx", opts.URL
	if d == store.SQLite {
		driver, dsn = "sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return db, opts, raw
}

// holdAuditWrites keeps audit rows from being written until release is
// called: SQLite's write lock, or a lock on PostgreSQL's audit_logs table.
func holdAuditWrites(t *testing.T, d store.Dialect, raw *sql.DB) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hold := "BEGIN IMMEDIATE"
	if d == store.Postgres {
		hold = "BEGIN; LOCK TABLE audit_logs IN SHARE ROW EXCLUSIVE MODE"
	}
	if _, err := conn.ExecContext(ctx, hold); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
				t.Error(err)
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// waitQueue waits until db's audit queue satisfies ok: events queued, groups
// being written, whether Close has begun.
func waitQueue(t *testing.T, db *store.DB, what string, ok func(queued, writing int, closed bool) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ok(db.AuditQueue()) {
			return
		}
	}
	q, l, c := db.AuditQueue()
	t.Fatalf("audit queue never reached %s (queued %d, writing %d, closed %v)", what, q, l, c)
}

// appendQueued starts AppendAudit of evs one after the other while writes
// are held: each of the first db.AuditWriters() is taken at once by an idle
// writer, a group of its own; the others queue behind them. It returns the
// callers' errors once they have all returned.
func appendQueued(t *testing.T, db *store.DB, evs []audit.Event) (wait func() []error) {
	t.Helper()
	errs := make([]error, len(evs))
	var wg sync.WaitGroup
	w := db.AuditWriters()
	for i := range evs {
		wg.Go(func() { errs[i] = db.AppendAudit(context.Background(), evs[i]) })
		writing := min(i+1, w)
		waitQueue(t, db, fmt.Sprintf("%d writing and %d queued", writing, i+1-writing), func(q, l int, _ bool) bool {
			return l == writing && q == i+1-writing
		})
	}
	return func() []error { wg.Wait(); return errs }
}

func countAudit(t *testing.T, db *store.DB, org string) map[string]int {
	t.Helper()
	evs, err := db.AuditEvents(context.Background(), audit.Filter{OrgID: org, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range evs {
		n[fmt.Sprint(ev.Metadata["marker"])]++
	}
	return n
}

// Events appended while every writer holds a batch are written together in
// the next one: 50 events, one commit for each writer's lone event and one
// for those queued behind them (49 with the one writer). One of them
// PostgreSQL refuses (a NUL byte in its User-Agent; invalid UTF-8 is
// replaced before the insert now): it fails alone, the others are written.
func TestAppendAuditGroupsQueuedEvents(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db, _, raw := openAudit(t, d)
			release := holdAuditWrites(t, d, raw)
			evs := make([]audit.Event, 50)
			for i := range evs {
				evs[i] = readEvent("org-g", fmt.Sprint(i))
			}
			evs[17].UserAgent = "bad\x00"
			wait := appendQueued(t, db, evs)
			release()
			got := wait()
			rows := countAudit(t, db, "org-g")
			for i, err := range got {
				if i == 17 && d == store.Postgres {
					if !errs.Is(err, errs.Invalid) {
						t.Errorf("event with a NUL in its User-Agent: %v, want an Invalid error", err)
					}
					if rows["17"] != 0 {
						t.Errorf("event 17 stored %d times", rows["17"])
					}
					continue
				}
				if err != nil {
					t.Errorf("event %d: %v", i, err)
				}
				if rows[fmt.Sprint(i)] != 1 {
					t.Errorf("event %d stored %d times", i, rows[fmt.Sprint(i)])
				}
			}
			if c, w := db.AuditCommits(), db.AuditWriters(); c != int64(w)+1 {
				t.Errorf("%d batches for %d lone events and the others queued behind them, want %d", c, w, w+1)
			}
		})
	}
}

// Close writes the events already queued before it closes the connections,
// and refuses new ones.
func TestCloseWritesQueuedAuditEvents(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db, opts, raw := openAudit(t, d)
			release := holdAuditWrites(t, d, raw)
			evs := make([]audit.Event, 20)
			for i := range evs {
				evs[i] = readEvent("org-c", fmt.Sprint(i))
			}
			wait := appendQueued(t, db, evs)
			closed := make(chan error, 1)
			go func() { closed <- db.Close() }()
			waitQueue(t, db, "closed", func(_, _ int, c bool) bool { return c })
			if err := db.AppendAudit(context.Background(), readEvent("org-c", "late")); err == nil {
				t.Error("AppendAudit after Close began succeeded")
			}
			release()
			for i, err := range wait() {
				if err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows := countAudit(t, db, "org-c")
			for i := range evs {
				if rows[fmt.Sprint(i)] != 1 {
					t.Errorf("event %d stored %d times", i, rows[fmt.Sprint(i)])
				}
			}
			if rows["late"] != 0 {
				t.Error("the event appended after Close was stored")
			}
		})
	}
}

// A caller whose request has ended still has its event written: the write
// does not inherit the cancellation.
func TestAppendAuditOutlivesItsContext(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := db.AppendAudit(ctx, readEvent("org-x", "cancelled")); err != nil {
			t.Fatalf("AppendAudit with an ended context: %v", err)
		}
		if n := countAudit(t, db, "org-x")["cancelled"]; n != 1 {
			t.Fatalf("event stored %d times", n)
		}
	})
}

// BenchmarkAppendAudit appends read events from 16 goroutines at once (on two
// cores), as 16 clients reading secrets do.
func BenchmarkAppendAudit(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := db.AppendAudit(ctx, readEvent("bench-org", fmt.Sprint(n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/float64(max(db.AuditCommits(), 1)), "events/commit")
		})
	}
}

// BenchmarkAuditGroup commits groups of read events one after the other from
// one goroutine: the audit writer's own work per group (the caller's row
// building included), without the queueing of BenchmarkAppendAudit. With
// -benchtime Nx under callgrind it gives instructions per group.
func BenchmarkAuditGroup(b *testing.B) {
	for _, d := range storetest.Engines {
		for _, size := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%s/%d", d, size), func(b *testing.B) {
				db := storetest.Open(b, d)
				if v := os.Getenv("LOCKBOX_BENCH_AUDIT_SQL"); v != "" {
					if err := db.ExecRaw(context.Background(), v); err != nil {
						b.Fatal(err)
					}
				}
				ctx := context.Background()
				evs := make([]audit.Event, size)
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					for j := range evs {
						evs[j] = readEvent("bench-org", fmt.Sprint(i*size+j))
						evs[j].ProjectID = "bench-project"
					}
					if err := db.WriteAuditGroup(ctx, evs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
			})
		}
	}
}

// TestAuditEventsClipWhatClientsSend: a User-Agent can be as long as the
// server's header limit (64 KiB), and an audit page of 1,000 events carried
// each whole (~62 MB). Whether made by audit.New or not, an event keeps at
// most audit.MaxUserAgentBytes of it (cut at a character boundary) and
// audit.MaxIPBytes of its address, as valid UTF-8 (PostgreSQL refuses
// invalid UTF-8: such an event used to fail its request there).
func TestAuditEventsClipWhatClientsSend(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db)                                                            // the org has the project's id
		long := strings.Repeat("a", audit.MaxUserAgentBytes-1) + "é" + strings.Repeat("b", 64<<10) // é straddles the bound
		actor := authz.Actor{Kind: authz.ActorIdentity, ID: "i", OrgID: pid, IP: strings.Repeat("1", 1000), UserAgent: long}
		raw := audit.Event{OrgID: pid, ActorType: "platform", Type: "raw", UserAgent: "\xffok" + long, IP: actor.IP}
		for _, ev := range []audit.Event{audit.New(actor, "made", nil), raw} {
			if err := db.AppendAudit(ctx, ev); err != nil {
				t.Fatalf("%s: %v", ev.Type, err)
			}
		}
		if err := db.Transact(ctx, func(tx *store.Tx) error { return tx.InsertAuditForTest(ctx, raw) }); err != nil {
			t.Fatal(err)
		}
		uas := db.IDsForTest(t, `SELECT user_agent FROM audit_logs WHERE org_id = ? ORDER BY event_type`, pid)
		ips := db.IDsForTest(t, `SELECT ip_address FROM audit_logs WHERE org_id = ?`, pid)
		if len(uas) != 3 || len(ips) != 3 {
			t.Fatalf("%d events, want 3", len(uas))
		}
		want := []string{strings.Repeat("a", audit.MaxUserAgentBytes-1), "\uFFFDok" + strings.Repeat("a", audit.MaxUserAgentBytes-5)}
		for i, ua := range uas {
			w := want[min(i, 1)]
			if ua != w || !utf8.ValidString(ua) {
				t.Errorf("event %d keeps a User-Agent of %d bytes (%.20q…), want %d bytes (%.20q…)", i, len(ua), ua, len(w), w)
			}
		}
		for _, ip := range ips {
			if len(ip) != audit.MaxIPBytes {
				t.Errorf("an event keeps an address of %d bytes, want %d", len(ip), audit.MaxIPBytes)
			}
		}
	})
}
