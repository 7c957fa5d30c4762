package store

import (
	"context"
	"database/sql"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/identity"
)

// PurgeGrace is how long a dead access token or an expired session is kept
// before it is deleted: a day in which it is still listed (revoked, expired)
// and in which nodes whose clocks differ all agree it is dead.
const PurgeGrace = 24 * time.Hour

// purgeBatch is how many rows one purge statement deletes; a purge repeats
// it until a read finds nothing left, each batch a short transaction.
const purgeBatch = 1000

// Purged counts the rows one purge deleted.
type Purged struct {
	AccessTokens, ClientSecrets, Sessions, AuditEvents int
	// AuditRead is how many audit events the purge of the projects' own
	// retention read to find the ones it deleted: a measure of its work.
	AuditRead int
}

// qDeadAccessTokens selects, in id order after an id, access tokens that
// can neither authenticate nor be renewed any more and that died before a
// cut (microseconds): revoked, or their uses spent, before the cut; their
// JWT expired (it lives at most identity.MaxTokenAge from its issue, at
// creation or last renewal: the last argument, in microseconds); past their
// TTL since creation or last renewal; past their max TTL (periodic tokens
// have none). As identity.AccessToken and
// Tokens.Renew decide; TTLs are seconds.
const qDeadAccessTokens = `SELECT id FROM identity_access_tokens WHERE id > ? AND (
	(revoked = TRUE AND updated_at < ?)
	OR (num_uses_limit > 0 AND num_uses >= num_uses_limit AND COALESCE(last_used_at, updated_at) < ?)
	OR (COALESCE(last_renewed_at, created_at) + ? < ?)
	OR (access_token_ttl > 0 AND COALESCE(last_renewed_at, created_at) + access_token_ttl * 1000000 < ?)
	OR (access_token_max_ttl > 0 AND access_token_period = 0 AND created_at + access_token_max_ttl * 1000000 < ?)
	) ORDER BY id LIMIT ?`

// qDeadClientSecrets selects, in id order after an id, Universal Auth
// client secrets that can no longer log in and died before a cut
// (microseconds): revoked, or their uses spent, before the cut; past their
// TTL before it. As Infisical's daily clean-up deletes them (it keeps no
// grace); a login with one is then refused as with any unknown secret.
const qDeadClientSecrets = `SELECT id FROM identity_ua_client_secrets WHERE id > ? AND (
	(revoked = TRUE AND updated_at < ?)
	OR (num_uses_limit > 0 AND num_uses >= num_uses_limit AND COALESCE(last_used_at, updated_at) < ?)
	OR (ttl > 0 AND created_at + ttl * 1000000 < ?)
	) ORDER BY id LIMIT ?`

// Purge deletes what no request can use any more and the audit events past
// their retention, as of now: access tokens and client secrets dead for
// PurgeGrace, sessions (API and dashboard) expired for PurgeGrace, and audit
// events past their retention. A project's auditLogsRetentionDays applies to its events
// written since it was set (as Infisical stamps an event's expiry when it
// is written: shortening it erases nothing written before), capped by
// auditDays when that is set; auditDays > 0 applies to every event. It reads
// first and writes only when there is something to delete, so an idle
// server's purge writes nothing. The deletes are quiet: nothing cached can
// hold a dead row as live.
func (db *DB) Purge(ctx context.Context, now time.Time, auditDays int) (Purged, error) {
	var p Purged
	cut := ts(now.Add(-PurgeGrace))
	var err error
	if p.AccessTokens, err = db.purge(ctx, "identity_access_tokens", qDeadAccessTokens, true,
		cut, cut, identity.MaxTokenAge.Microseconds(), cut, cut, cut); err != nil {
		return p, err
	}
	if p.ClientSecrets, err = db.purge(ctx, "identity_ua_client_secrets", qDeadClientSecrets, true, cut, cut, cut); err != nil {
		return p, err
	}
	if p.Sessions, err = db.purge(ctx, "user_sessions", `SELECT id FROM user_sessions WHERE id > ? AND expires_at < ? ORDER BY id LIMIT ?`, true, cut); err != nil {
		return p, err
	}
	p.AuditEvents, p.AuditRead, err = db.purgeAudit(ctx, now, auditDays)
	return p, err
}

// auditMark is how far this node's purge has gone through one project's
// audit events under one retention setting (days, set at since): every event
// written up to upTo (microseconds) is done. A change of the setting (a new
// since) starts the project again from its since.
type auditMark struct {
	days        int
	since, upTo int64
}

// auditMarks are this node's auditMarks by project, kept between purges so
// that each purge reads only the events that came of age since the last one,
// not the project's whole history again. Each node starts from nothing (a
// first purge reads the history once); nothing is written for them.
type auditMarks struct {
	sync.Mutex
	m map[string]auditMark
}

// purgeAudit deletes audit events past their retention. The projects with a
// retention of their own are taken together by organization and number of
// days: one read of the (org_id, created_at) index over the events that came
// of age since the last purge (auditMarks) serves them all, so a purge's
// reads do not grow with the number of such projects or with the history
// kept. Events of organizations deleted since are not reached.
func (db *DB) purgeAudit(ctx context.Context, now time.Time, auditDays int) (deleted, read int, err error) {
	type group struct {
		org  string
		days int
	}
	type kept struct {
		project string
		since   int64
	}
	groups := map[group][]kept{}
	rows, err := db.readq(ctx, `SELECT org_id, id, audit_logs_retention_days, COALESCE(audit_logs_retention_since, created_at)
		FROM projects WHERE audit_logs_retention_days > 0`)
	if err != nil {
		return 0, 0, dbErr(err, "projects' audit retention")
	}
	for rows.Next() {
		var g group
		var k kept
		if err := rows.Scan(&g.org, &k.project, &g.days, &k.since); err != nil {
			rows.Close()
			return 0, 0, dbErr(err, "scan audit retention")
		}
		if auditDays <= 0 || g.days < auditDays { // else the server's retention covers it
			groups[g] = append(groups[g], k)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, dbErr(err, "projects' audit retention")
	}
	db.auditMarks.Lock()
	defer db.auditMarks.Unlock()
	marks := make(map[string]auditMark, len(db.auditMarks.m))
	for g, ks := range groups {
		cut := now.Add(-time.Duration(g.days) * 24 * time.Hour).UnixMicro()
		// from: each project's events written after it are its own to
		// check; the group reads from the earliest.
		from := make(map[string]int64, len(ks))
		low := cut
		for _, k := range ks {
			f := k.since
			if m, ok := db.auditMarks.m[k.project]; ok && m.days == g.days && m.since == k.since {
				f = max(f, m.upTo)
			}
			from[k.project] = f
			low = min(low, f)
		}
		if low < cut-1 {
			d, r, err := db.purgeAuditRange(ctx, g.org, low, cut, from)
			deleted, read = deleted+d, read+r
			if err != nil {
				return deleted, read, err
			}
		}
		for _, k := range ks {
			marks[k.project] = auditMark{days: g.days, since: k.since, upTo: max(from[k.project], cut-1)}
		}
	}
	db.auditMarks.m = marks // projects that no longer keep their own retention are forgotten
	if auditDays <= 0 {
		return deleted, read, nil
	}
	orgs, err := db.ids(ctx, `SELECT id FROM orgs`)
	if err != nil {
		return deleted, read, err
	}
	cut := ts(now.Add(-time.Duration(auditDays) * 24 * time.Hour))
	for _, org := range orgs {
		d, err := db.purge(ctx, "audit_logs", `SELECT id FROM audit_logs WHERE org_id = ? AND created_at < ? LIMIT ?`, false, org, cut)
		deleted += d
		if err != nil {
			return deleted, read, err
		}
	}
	return deleted, read, nil
}

// purgeAuditRange reads once the organization's audit events written after
// low and before cut (microseconds) and deletes, a batch of purgeBatch at a
// time as it reads, those of the projects in from written after the
// project's own start there. It reports how many it deleted and read.
func (db *DB) purgeAuditRange(ctx context.Context, org string, low, cut int64, from map[string]int64) (deleted, read int, err error) {
	rows, err := db.readq(ctx, `SELECT id, project_id, created_at FROM audit_logs WHERE org_id = ? AND created_at > ? AND created_at < ?`, org, low, cut)
	if err != nil {
		return 0, 0, dbErr(err, "read audit events")
	}
	defer rows.Close()
	var due []string
	flush := func() error {
		d, err := db.deleteIDs(ctx, "audit_logs", due)
		deleted += d
		due = due[:0]
		return err
	}
	for rows.Next() {
		var id string
		var project sql.NullString
		var at int64
		if err := rows.Scan(&id, &project, &at); err != nil {
			return deleted, read, dbErr(err, "scan audit event")
		}
		read++
		if f, ok := from[project.String]; ok && project.Valid && at > f {
			if due = append(due, id); len(due) == purgeBatch {
				if err := flush(); err != nil {
					return deleted, read, err
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return deleted, read, dbErr(err, "read audit events")
	}
	if len(due) > 0 {
		err = flush()
	}
	return deleted, read, err
}

// purge deletes, a batch of purgeBatch at a time, the rows of table whose
// ids sel returns, until it returns none; it reports how many it deleted.
// sel ends with "LIMIT ?" (purgeBatch is appended to args). Without cursor
// it is read again from the start each time: it must be served by an index
// whose deleted entries are skipped cheaply (the audit log's). With cursor,
// for a read no index serves, sel starts with "id > ?" and orders by id, and
// each batch reads on from the last id of the one before: a purge reads the
// table once.
func (db *DB) purge(ctx context.Context, table, sel string, cursor bool, args ...any) (int, error) {
	n, after := 0, ""
	for {
		a := append(slices.Clone(args), purgeBatch)
		if cursor {
			a = append([]any{after}, a...)
		}
		ids, err := db.ids(ctx, sel, a...)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		d, err := db.deleteIDs(ctx, table, ids)
		n += d
		if err != nil || len(ids) < purgeBatch {
			return n, err
		}
		after = ids[len(ids)-1]
	}
}

// deleteIDs deletes rows of table by id, in one quiet transaction.
func (db *DB) deleteIDs(ctx context.Context, table string, ids []string) (int, error) {
	var d int64
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM `+table+` WHERE id IN (`+placeholders(len(ids))+`)`, withIDs(nil, ids)...)
		if err != nil {
			return dbErr(err, "purge "+table)
		}
		d, _ = res.RowsAffected()
		return nil
	})
	return int(d), err
}

// ids runs a read that selects one text column.
func (db *DB) ids(ctx context.Context, q string, args ...any) ([]string, error) {
	out, err := scanIDs(db.readq(ctx, q, args...))
	return out, dbErr(err, "read ids")
}

// scanIDs reads the one text column of rows (a query's answer, or its
// error) and closes them.
func scanIDs(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// PurgeEvery is how often a node purges.
const PurgeEvery = time.Hour

// RunPurge purges once a minute or so after start and then every
// PurgeEvery (each node: the deletes are idempotent), logging what it
// deleted and any failure, until ctx is done.
func (db *DB) RunPurge(ctx context.Context, auditDays int, log *slog.Logger) {
	wait := time.Minute + rand.N(time.Minute)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = PurgeEvery
		p, err := db.Purge(ctx, db.Now(), auditDays)
		if err != nil && ctx.Err() == nil {
			log.Error("purge", "err", err.Error())
		}
		if p.AccessTokens+p.ClientSecrets+p.Sessions+p.AuditEvents > 0 {
			log.Info("purged", "accessTokens", p.AccessTokens, "clientSecrets", p.ClientSecrets, "sessions", p.Sessions, "auditEvents", p.AuditEvents)
		}
	}
}
