package store_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestPurgeDeletesOnlyWhatIsDead: a purge deletes access tokens that can
// neither authenticate nor be renewed (revoked, used up, past their TTL or
// max TTL, their JWT expired) and client secrets that cannot log in
// (revoked, used up, past their TTL) once they have been so for store.PurgeGrace,
// sessions expired as long, and audit events past their retention: a
// project's applies to its events written since it was set, capped by the
// server's, which applies to every event. It keeps every token that can
// still authenticate or be renewed, whatever its age. A second purge finds
// nothing and, on SQLite, writes nothing. On both engines.
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
		const day, hour, minute = 24 * time.Hour, time.Hour, time.Minute
		type tok struct {
			name                        string
			created, renewed, used, upd time.Duration // from now; renewed, used 0: never
			ttl, maxTTL, period         int64         // seconds
			uses, usesLimit             int64
			revoked, dead               bool
		}
		toks := []tok{
			{name: "live", created: -hour, upd: -hour, ttl: 7200, maxTTL: 7200},
			{name: "no ttl, JWT still valid", created: -80 * day, upd: -80 * day},
			{name: "no ttl, JWT expired (90 days)", created: -92 * day, upd: -92 * day, dead: true},
			{name: "no ttl, renewed", created: -300 * day, renewed: -10 * day, upd: -10 * day},
			{name: "ttl ran out 3 days ago", created: -3*day - hour, upd: -3 * day, ttl: 3600, maxTTL: 86400 * 30, dead: true},
			{name: "ttl ran out an hour ago (grace)", created: -2 * hour, upd: -2 * hour, ttl: 3600, maxTTL: 86400},
			{name: "renewed 10 minutes ago", created: -3 * day, renewed: -10 * minute, upd: -10 * minute, ttl: 3600, maxTTL: 86400 * 30},
			{name: "max ttl ran out", created: -3 * day, renewed: -10 * minute, upd: -10 * minute, ttl: 3600, maxTTL: 86400, dead: true},
			{name: "periodic, renewed", created: -30 * day, renewed: -10 * minute, upd: -10 * minute, ttl: 3600, maxTTL: 86400, period: 3600},
			{name: "periodic, ttl gone while the period's JWT lives", created: -5 * day, renewed: -3 * day, upd: -3 * day, ttl: 3600, period: 86400 * 7, dead: true},
			{name: "periodic, ttl gone within the grace", created: -5 * day, renewed: -23 * hour, upd: -23 * hour, ttl: 3600, period: 86400 * 7},
			{name: "periodic, both gone", created: -30 * day, renewed: -10 * day, upd: -10 * day, ttl: 3600, period: 86400 * 7, dead: true},
			{name: "revoked 2 days ago", created: -3 * day, upd: -2 * day, revoked: true, dead: true},
			{name: "revoked an hour ago (grace)", created: -3 * day, upd: -hour, revoked: true},
			{name: "used up 2 days ago", created: -3 * day, used: -2 * day, upd: -3 * day, uses: 5, usesLimit: 5, dead: true},
			{name: "used up an hour ago (grace)", created: -3 * day, used: -hour, upd: -3 * day, uses: 5, usesLimit: 5},
			{name: "uses left", created: -3 * day, used: -2 * day, upd: -3 * day, uses: 4, usesLimit: 5},
		}
		ids := map[string]string{}
		opt := func(d time.Duration) any {
			if d == 0 {
				return nil
			}
			return us(d)
		}
		for _, k := range toks {
			id := store.NewID()
			ids[id] = k.name
			exec(`INSERT INTO identity_access_tokens (id, identity_id, auth_method, access_token_ttl, access_token_max_ttl,
				access_token_period, num_uses, num_uses_limit, last_renewed_at, last_used_at, revoked, created_at, updated_at)
				VALUES (?, ?, 'universal-auth', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, ident, k.ttl, k.maxTTL, k.period, k.uses, k.usesLimit, opt(k.renewed), opt(k.used), k.revoked, us(k.created), us(k.upd))
		}
		// Client secrets: dead once revoked, used up or past their TTL, and
		// deleted once dead for the grace (Infisical's daily clean-up).
		ua := store.NewID()
		exec(`INSERT INTO identity_universal_auths (id, identity_id, client_id, access_token_ttl, access_token_max_ttl,
			access_token_num_uses_limit, access_token_period, client_secret_trusted_ips, access_token_trusted_ips, lockout_enabled,
			lockout_threshold, lockout_duration_seconds, lockout_counter_reset_seconds, created_at, updated_at)
			VALUES (?, ?, ?, 0, 0, 0, 0, '[]', '[]', FALSE, 3, 300, 30, 0, 0)`, ua, ident, ua)
		secrets := []tok{
			{name: "live", created: -300 * day, upd: -300 * day},
			{name: "ttl left", created: -3 * day, upd: -3 * day, ttl: 86400 * 4},
			{name: "ttl ran out 2 days ago", created: -3 * day, upd: -3 * day, ttl: 86400, dead: true},
			{name: "ttl ran out an hour ago (grace)", created: -2*day + hour, upd: -2 * day, ttl: 86400},
			{name: "revoked 2 days ago", created: -3 * day, upd: -2 * day, revoked: true, dead: true},
			{name: "revoked an hour ago (grace)", created: -3 * day, upd: -hour, revoked: true},
			{name: "used up 2 days ago", created: -3 * day, used: -2 * day, upd: -3 * day, uses: 5, usesLimit: 5, dead: true},
			{name: "used up an hour ago (grace)", created: -3 * day, used: -hour, upd: -3 * day, uses: 5, usesLimit: 5},
			{name: "uses left", created: -3 * day, used: -2 * day, upd: -3 * day, uses: 4, usesLimit: 5},
		}
		secretIDs := map[string]string{}
		for _, k := range secrets {
			id := store.NewID()
			secretIDs[id] = k.name
			exec(`INSERT INTO identity_ua_client_secrets (id, identity_ua_id, secret_hash, prefix, num_uses, num_uses_limit, ttl, revoked,
				last_used_at, created_at, updated_at) VALUES (?, ?, ?, 'p', ?, ?, ?, ?, ?, ?, ?)`,
				id, ua, id, k.uses, k.usesLimit, k.ttl, k.revoked, opt(k.used), us(k.created), us(k.upd))
		}
		sessions := map[string]time.Duration{store.NewID(): -2 * day, store.NewID(): -hour, store.NewID(): day}
		for id, exp := range sessions {
			exec(`INSERT INTO user_sessions (id, user_id, org_id, revoked, created_at, expires_at) VALUES (?, ?, ?, FALSE, ?, ?)`,
				id, user, org, us(exp-day), us(exp))
		}
		// short: 1 day, set 5 days ago; long: 100 days, set 200 days ago;
		// none: no retention of its own.
		// legacy: 1 day, set before its time was kept (all its events).
		short, long, none, legacy := store.NewID(), store.NewID(), store.NewID(), store.NewID()
		for p, r := range map[string]struct {
			days  int
			since any
		}{short: {1, us(-5 * day)}, long: {100, us(-200 * day)}, none: {0, nil}, legacy: {1, nil}} {
			exec(`INSERT INTO projects (id, org_id, name, slug, type, audit_logs_retention_days, audit_logs_retention_since, created_at, updated_at)
				VALUES (?, ?, 'p', ?, 'secret-manager', ?, ?, 0, 0)`, p, org, p, r.days, r.since)
		}
		type ev struct {
			project string
			age     time.Duration
		}
		events := map[string]ev{}
		for _, e := range []ev{{short, 10 * day}, {short, 2 * day}, {short, hour}, {long, 40 * day}, {long, 101 * day},
			{none, 40 * day}, {none, 2 * day}, {"", 40 * day}, {legacy, 2 * day}, {legacy, hour}} {
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
		wantSecrets := 0
		check := func(auditDays int, wantTokens, wantSessions, wantEvents int) {
			t.Helper()
			p, err := db.Purge(ctx, now, auditDays)
			if err != nil {
				t.Fatal(err)
			}
			if p.AccessTokens != wantTokens || p.ClientSecrets != wantSecrets || p.Sessions != wantSessions || p.AuditEvents != wantEvents {
				t.Fatalf("purge (audit days %d) deleted %+v, want %d tokens, %d client secrets, %d sessions, %d events",
					auditDays, p, wantTokens, wantSecrets, wantSessions, wantEvents)
			}
		}
		deadOf := func(ks []tok) int {
			n := 0
			for _, k := range ks {
				if k.dead {
					n++
				}
			}
			return n
		}
		dead := deadOf(toks)
		// The short project's event of 2 days (its retention was set 5 days
		// ago, so the 10-day-old one predates it); the long project's of 101;
		// the legacy project's of 2 days.
		wantSecrets = deadOf(secrets)
		check(0, dead, 1, 3)
		wantSecrets = 0
		for table, rows := range map[string]struct {
			ids  map[string]string
			toks []tok
		}{"identity_access_tokens": {ids, toks}, "identity_ua_client_secrets": {secretIDs, secrets}} {
			kept := left(table)
			for id, name := range rows.ids {
				dead := slices.ContainsFunc(rows.toks, func(k tok) bool { return k.name == name && k.dead })
				if _, found := slices.BinarySearch(kept, id); found == dead {
					t.Errorf("%s: %q kept: %v", table, name, found)
				}
			}
		}
		for id, exp := range sessions {
			if _, found := slices.BinarySearch(left("user_sessions"), id); found != (exp > -store.PurgeGrace) {
				t.Errorf("session expiring %v kept: %v", exp, found)
			}
		}
		idle := func() (int64, time.Time) {
			fi, err := os.Stat(db.Path() + "-wal")
			if err != nil {
				t.Fatal(err)
			}
			return fi.Size(), fi.ModTime()
		}
		if db.Engine() == "sqlite" {
			size, mod := idle()
			check(0, 0, 0, 0)
			if s, m := idle(); s != size || !m.Equal(mod) {
				t.Fatalf("a purge with nothing due wrote: WAL %d → %d bytes, modified %v → %v", size, s, mod, m)
			}
		} else {
			check(0, 0, 0, 0)
		}
		// The server's retention, 30 days, applies to every event: the long
		// project's 40-day-old one too (Infisical caps a project's by the
		// plan's), the short project's 10-day-old one is within it.
		check(30, 0, 0, 3)
		var want []string
		for id, e := range events {
			if e.age < 30*day && !(e.project == short && e.age > day && e.age < 5*day) && !(e.project == legacy && e.age > day) {
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

// TestRetentionCountsFromItsChange: a project's audit retention applies from
// when it was last changed: UpdateProject stamps the change, and only a
// change (other settings leave the stamp alone).
func TestRetentionCountsFromItsChange(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db)
		since := func() string {
			t.Helper()
			return db.IDsForTest(t, `SELECT COALESCE(CAST(audit_logs_retention_since AS TEXT), 'none') FROM projects WHERE id = ?`, pid)[0]
		}
		p, err := db.ProjectByID(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		at, created := time.Now().UTC().Truncate(time.Microsecond), p.UpdatedAt
		p.AuditLogsRetentionDays, p.UpdatedAt = 7, at
		if err := db.UpdateProject(ctx, p, created, audit.Event{Type: "retention", OrgID: pid}); err != nil {
			t.Fatal(err)
		}
		// Stamped with the change's own event's time: the new retention
		// (applied to events written after it) does not reach that event.
		want := db.IDsForTest(t, `SELECT CAST(created_at AS TEXT) FROM audit_logs WHERE org_id = ? AND event_type = 'retention'`, pid)[0]
		if got := since(); got != want {
			t.Fatalf("since %s, want the change's event's time %s", got, want)
		}
		p.Description, p.UpdatedAt = "other", at.Add(time.Hour)
		if err := db.UpdateProject(ctx, p, at, audit.Event{Type: "other", OrgID: pid}); err != nil {
			t.Fatal(err)
		}
		if got := since(); got != want {
			t.Fatalf("since %s after another change, want %s", got, want)
		}
	})
}

// TestPurgeGoesPastOneBatch: more dead rows than one batch holds, with live
// ones among them, are all deleted (the id cursor reads on past the live
// ones), and the live ones kept.
func TestPurgeGoesPastOneBatch(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		user := store.NewID()
		if err := db.ExecForTest(ctx, `INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?, ?, 'u', 'x', 0, 0)`,
			user, user+"@x"); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		// Every 100th session is live; ids sort as they are numbered.
		if err := db.ExecForTest(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
			INSERT INTO user_sessions (id, user_id, revoked, created_at, expires_at)
			SELECT 's' || CAST(10000 + i AS TEXT), ?, FALSE, 0, CASE WHEN i % 100 = 0 THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END FROM n`,
			user, now.Add(time.Hour).UnixMicro(), now.Add(-2*24*time.Hour).UnixMicro()); err != nil {
			t.Fatal(err)
		}
		p, err := db.Purge(ctx, now, 0)
		if err != nil || p.Sessions != 2475 {
			t.Fatalf("purged %+v (%v), want 2,475 sessions", p, err)
		}
		if left := db.IDsForTest(t, `SELECT id FROM user_sessions WHERE user_id = ?`, user); len(left) != 25 {
			t.Fatalf("%d sessions left, want the 25 live ones", len(left))
		}
	})
}

// TestAuditPurgeReadsEachEventOnce: the purge of projects' own audit
// retention reads an organization's events once for all its projects with the
// same retention, not once for each, and a later purge reads only what came
// of age since the one before, not the history again. (Each of twenty
// projects made the purge read all of the organization's events every hour.)
func TestAuditPurgeReadsEachEventOnce(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		const day = 24 * time.Hour
		exec := func(q string, args ...any) {
			t.Helper()
			if err := db.ExecForTest(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		org := store.NewID()
		exec(`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`, org, org)
		project := func(days int) string {
			id := store.NewID()
			exec(`INSERT INTO projects (id, org_id, name, slug, type, audit_logs_retention_days, audit_logs_retention_since, created_at, updated_at)
				VALUES (?, ?, 'p', ?, 'secret-manager', ?, ?, 0, 0)`, id, org, id, days, now.Add(-10*day).UnixMicro())
			return id
		}
		event := func(p string, age time.Duration) string {
			id := store.NewID()
			exec(`INSERT INTO audit_logs (id, org_id, project_id, actor_type, actor_id, actor_metadata, event_type, event_metadata, created_at)
				VALUES (?, ?, ?, 'user', 'u', '{}', 't', '{}', ?)`, id, org, p, now.Add(-age).UnixMicro())
			return id
		}
		other := project(0)
		exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
			INSERT INTO audit_logs (id, org_id, project_id, actor_type, actor_id, actor_metadata, event_type, event_metadata, created_at)
			SELECT 'e' || CAST(i AS TEXT), ?, ?, 'user', 'u', '{}', 't', '{}', CAST(? AS BIGINT) - i * CAST(300000000 AS BIGINT) FROM n`,
			org, other, now.Add(-2*day).UnixMicro()) // 2 to 9 days old, 5 minutes apart
		var kept, projects []string
		for range 20 {
			p := project(1)
			event(p, 2*day)
			kept = append(kept, event(p, time.Hour))
			projects = append(projects, p)
		}
		purge := func(at time.Time, wantDeleted, wantRead int) {
			t.Helper()
			p, err := db.Purge(ctx, at, 0)
			if err != nil {
				t.Fatal(err)
			}
			if p.AuditEvents != wantDeleted || p.AuditRead != wantRead {
				t.Fatalf("purge deleted %d audit events and read %d, want %d and %d", p.AuditEvents, p.AuditRead, wantDeleted, wantRead)
			}
		}
		purge(now, 20, 2020)
		purge(now, 0, 0)
		// An hour later, only what came of age in that hour: one event of
		// the other project and one of a project with retention.
		event(other, day-30*time.Minute)
		event(projects[0], day-30*time.Minute)
		purge(now.Add(time.Hour), 1, 2)
		// A project whose retention is new to the purge is read from its
		// start (set 10 days ago), whatever the others' progress.
		event(project(1), day-30*time.Minute)
		purge(now.Add(time.Hour), 1, 2002)
		purge(now.Add(2*time.Hour), 0, 0)
		left := db.IDsForTest(t, `SELECT id FROM audit_logs WHERE org_id = ? AND project_id <> ?`, org, other)
		slices.Sort(left)
		slices.Sort(kept)
		if !slices.Equal(left, kept) {
			t.Fatalf("events left %v, want %v", left, kept)
		}
		if n := len(db.IDsForTest(t, `SELECT id FROM audit_logs WHERE project_id = ?`, other)); n != 2001 {
			t.Fatalf("%d events of the project without retention left, want 2,001", n)
		}
	})
}
