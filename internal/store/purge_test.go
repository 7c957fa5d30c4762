package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestPurgeDeletesOnlyWhatIsDead: a purge deletes access tokens that cannot
// authenticate any more (revoked, used up, past their TTL or max TTL) once
// they have been dead for store.PurgeGrace, sessions expired as long, and
// audit events past their project's retention or, when one is given, the
// server's; it keeps every token that can still authenticate, whatever its
// age, and a project's own retention decides for its events. A second purge
// finds nothing, on both engines.
func TestPurgeDeletesOnlyWhatIsDead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		us := func(d time.Duration) int64 { return now.Add(d).UnixMicro() }
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.ExecForTest(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		org, user, ident := store.NewID(), store.NewID(), store.NewID()
		exec(`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`, org, org)
		exec(`INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?, ?, 'u', 'x', 0, 0)`, user, user+"@x")
		exec(`INSERT INTO identities (id, org_id, name, created_at, updated_at) VALUES (?, ?, 'i', 0, 0)`, ident, org)
		const day, hour = 24 * time.Hour, time.Hour
		type tok struct {
			name                  string
			created, renewed, upd time.Duration // from now; renewed 0: never
			ttl, maxTTL, period   int64         // seconds
			uses, usesLimit       int64
			revoked, dead         bool
		}
		toks := []tok{
			{name: "live", created: -hour, upd: -hour, ttl: 7200, maxTTL: 7200},
			{name: "no ttl, old", created: -1000 * day, upd: -1000 * day},
			{name: "ttl ran out 3 days ago", created: -3*day - hour, upd: -3 * day, ttl: 3600, maxTTL: 86400 * 30, dead: true},
			{name: "ttl ran out an hour ago (grace)", created: -2 * hour, upd: -2 * hour, ttl: 3600, maxTTL: 86400},
			{name: "renewed 10 minutes ago", created: -3 * day, renewed: -10 * time.Minute, upd: -10 * time.Minute, ttl: 3600, maxTTL: 86400 * 30},
			{name: "max ttl ran out", created: -3 * day, renewed: -10 * time.Minute, upd: -10 * time.Minute, ttl: 3600, maxTTL: 86400, dead: true},
			{name: "periodic, renewed", created: -30 * day, renewed: -10 * time.Minute, upd: -10 * time.Minute, ttl: 3600, maxTTL: 86400, period: 3600},
			{name: "revoked 2 days ago", created: -3 * day, upd: -2 * day, revoked: true, dead: true},
			{name: "revoked an hour ago (grace)", created: -3 * day, upd: -hour, revoked: true},
			{name: "used up 2 days ago", created: -3 * day, upd: -2 * day, uses: 5, usesLimit: 5, dead: true},
			{name: "uses left", created: -3 * day, upd: -2 * day, uses: 4, usesLimit: 5},
		}
		ids := map[string]string{}
		for _, k := range toks {
			id := store.NewID()
			ids[id] = k.name
			var renewed any
			if k.renewed != 0 {
				renewed = us(k.renewed)
			}
			exec(`INSERT INTO identity_access_tokens (id, identity_id, auth_method, access_token_ttl, access_token_max_ttl,
				access_token_period, num_uses, num_uses_limit, last_renewed_at, revoked, created_at, updated_at)
				VALUES (?, ?, 'universal-auth', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, ident, k.ttl, k.maxTTL, k.period, k.uses, k.usesLimit, renewed, k.revoked, us(k.created), us(k.upd))
		}
		sessions := map[string]time.Duration{store.NewID(): -2 * day, store.NewID(): -hour, store.NewID(): day}
		for id, exp := range sessions {
			exec(`INSERT INTO user_sessions (id, user_id, org_id, revoked, created_at, expires_at) VALUES (?, ?, ?, FALSE, ?, ?)`,
				id, user, org, us(exp-day), us(exp))
		}
		short, long, none := store.NewID(), store.NewID(), store.NewID()
		for p, days := range map[string]int{short: 1, long: 100, none: 0} {
			exec(`INSERT INTO projects (id, org_id, name, slug, type, audit_logs_retention_days, created_at, updated_at)
				VALUES (?, ?, 'p', ?, 'secret-manager', ?, 0, 0)`, p, org, p, days)
		}
		type ev struct {
			project string
			age     time.Duration
		}
		events := map[string]ev{}
		for _, e := range []ev{{short, 2 * day}, {short, hour}, {long, 40 * day}, {long, 101 * day}, {none, 40 * day}, {none, 2 * day}, {"", 40 * day}} {
			id := store.NewID()
			events[id] = e
			var pid any
			if e.project != "" {
				pid = e.project
			}
			exec(`INSERT INTO audit_logs (id, org_id, project_id, actor_type, actor_id, actor_metadata, event_type, event_metadata, created_at)
				VALUES (?, ?, ?, 'user', 'u', '{}', 't', '{}', ?)`, id, org, pid, us(-e.age))
		}
		left := func(table string) []string {
			t.Helper()
			out := db.IDsForTest(t, `SELECT id FROM `+table)
			slices.Sort(out)
			return out
		}
		check := func(auditDays int, wantTokens, wantSessions, wantEvents int) {
			t.Helper()
			p, err := db.Purge(ctx, now, auditDays)
			if err != nil {
				t.Fatal(err)
			}
			if p.AccessTokens != wantTokens || p.Sessions != wantSessions || p.AuditEvents != wantEvents {
				t.Fatalf("purge (audit days %d) deleted %+v, want %d tokens, %d sessions, %d events", auditDays, p, wantTokens, wantSessions, wantEvents)
			}
		}
		check(0, 4, 1, 2) // the short project's 2-day-old event; the long project's 101-day-old one
		kept := left("identity_access_tokens")
		for id, name := range ids {
			dead := slices.ContainsFunc(toks, func(k tok) bool { return k.name == name && k.dead })
			if _, found := slices.BinarySearch(kept, id); found == dead {
				t.Errorf("token %q kept: %v", name, found)
			}
		}
		for id, exp := range sessions {
			if _, found := slices.BinarySearch(left("user_sessions"), id); found != (exp > -store.PurgeGrace) {
				t.Errorf("session expiring %v kept: %v", exp, found)
			}
		}
		check(0, 0, 0, 0)
		// The server's retention: events of projects without their own, and
		// events of no project; the long project keeps its 40-day-old event.
		check(30, 0, 0, 2)
		var want []string
		for id, e := range events {
			if e.age < 30*day && !(e.project == short && e.age > day) || e.project == long && e.age < 100*day {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := left("audit_logs"); !slices.Equal(got, want) {
			t.Fatalf("audit events left %v, want %v", got, want)
		}
		check(30, 0, 0, 0)
	})
}
