package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkAuditPurge is an hourly purge of an organization with 50 projects
// keeping a day of audit events, beside one project with 200,000 events of
// the last 9 days and no retention of its own (nothing due: the cost is the
// reading). One purge runs before the timer, as a node's first does.
func BenchmarkAuditPurge(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			now := time.Now().UTC()
			exec := func(q string, args ...any) {
				b.Helper()
				if err := db.ExecForTest(ctx, q, args...); err != nil {
					b.Fatal(err)
				}
			}
			org, other := store.NewID(), store.NewID()
			exec(`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`, org, org)
			for i := range 51 {
				id, days := store.NewID(), 1
				if i == 0 {
					id, days = other, 0
				}
				exec(`INSERT INTO projects (id, org_id, name, slug, type, audit_logs_retention_days, audit_logs_retention_since, created_at, updated_at)
					VALUES (?, ?, 'p', ?, 'secret-manager', ?, ?, 0, 0)`, id, org, id, days, now.Add(-10*24*time.Hour).UnixMicro())
			}
			exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
				INSERT INTO audit_logs (id, org_id, project_id, actor_type, actor_id, actor_metadata, event_type, event_metadata, created_at)
				SELECT 'e' || CAST(i AS TEXT), ?, ?, 'user', 'u', '{}', 't', '{}', CAST(? AS BIGINT) - i * CAST(3600000 AS BIGINT) FROM n`,
				org, other, now.UnixMicro())
			if _, err := db.Purge(ctx, now, 0); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := db.Purge(ctx, now.Add(time.Duration(i+1)*time.Hour), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
