package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
)

var _ audit.Store = (*DB)(nil)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// auditInsert is the INSERT of audit events; auditRow is one row of its
// VALUES, taking the auditCols values auditArgs makes. An empty org is the
// project's.
const (
	auditCols   = 14
	auditInsert = `INSERT INTO audit_logs (id, org_id, project_id, project_name, actor_type, actor_id, actor_metadata,
		event_type, event_metadata, ip_address, user_agent, user_agent_type, created_at) VALUES `
	auditRow = `(?, COALESCE(NULLIF(?, ''), (SELECT org_id FROM projects WHERE id = ?), ''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// auditArgs appends the values of ev's row, stamping its id, to args. The
// last value is its time, now; insertAuditRows sets it to the transaction's.
func auditArgs(args []any, ev audit.Event, now time.Time) []any {
	if ev.ID == "" {
		ev.ID = newID()
	}
	// Events not made by audit.New are clipped here too (a no-op for those).
	ev.UserAgent, ev.IP = audit.Clip(ev.UserAgent, audit.MaxUserAgentBytes), audit.Clip(ev.IP, audit.MaxIPBytes)
	if ev.UserAgentType == "" {
		ev.UserAgentType = audit.UserAgentType(ev.UserAgent)
	}
	return append(args, ev.ID, ev.OrgID, nullStr(ev.ProjectID), nullStr(ev.ProjectID), nullStr(ev.ProjectName), ev.ActorType, ev.ActorID,
		auditMetadataJSON(ev.ActorMetadata), ev.Type, auditMetadataJSON(ev.Metadata), ev.IP, ev.UserAgent, ev.UserAgentType, ts(now))
}

// insertAudit appends ev in tx, stamping its id and time.
func (tx *Tx) insertAudit(ctx context.Context, ev audit.Event) error {
	return tx.insertAudits(ctx, ev)
}

// insertAudits appends each event, stamping its id and time.
func (tx *Tx) insertAudits(ctx context.Context, evs ...audit.Event) error {
	rows := make([][]any, len(evs))
	for i, ev := range evs {
		rows[i] = auditArgs(make([]any, 0, auditCols), ev, tx.Now)
	}
	return tx.insertAuditRows(ctx, rows)
}

// maxPGAuditBatch bounds the rows of one PostgreSQL audit INSERT.
const maxPGAuditBatch = 200

// auditInsertSQL is the INSERT of n rows of auditRow: SQLite's, prepared at
// Open (sqliteInsertAudits).
func auditInsertSQL(n int) string {
	return auditInsert + strings.TrimSuffix(strings.Repeat(auditRow+", ", n), ", ")
}

// pgAuditRow is one row of PostgreSQL's audit INSERT: auditRow's values
// without the organization subquery (pgAuditArgs resolves the organization
// first). PostgreSQL plans a subquery per row on each execution: for a
// revocation batch's 200 rows that was half the batch's record.
const pgAuditRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// pgAuditInsertSQL is PostgreSQL's INSERT of n rows of pgAuditArgs values
// (1 <= n <= maxPGAuditBatch), each text built the first time it is used.
func pgAuditInsertSQL(n int) string { return pgAuditInsertTexts[n]() }

var pgAuditInsertTexts = func() (q [maxPGAuditBatch + 1]func() string) {
	for n := 1; n <= maxPGAuditBatch; n++ {
		q[n] = sync.OnceValue(func() string { return auditInsert + strings.TrimSuffix(strings.Repeat(pgAuditRow+", ", n), ", ") })
	}
	return q
}()

// pgAuditArgs flattens rows of auditArgs values for pgAuditInsertSQL: each
// row without the project id auditRow's subquery reads, an empty
// organization replaced by the project's (read with query, one statement
// for all such rows; an empty string when there is no project, as auditRow
// gives). The rows themselves are left as they are (a failed group is tried
// again).
func pgAuditArgs(ctx context.Context, query func(ctx context.Context, q string, args ...any) (*sql.Rows, error), rows [][]any) ([]any, error) {
	var projects []string
	for _, r := range rows {
		if p, ok := r[2].(string); ok && r[1] == "" && !slices.Contains(projects, p) {
			projects = append(projects, p)
		}
	}
	var orgs map[string]string // read only when an event names no organization
	if len(projects) > 0 {
		orgs = make(map[string]string, len(projects))
		rs, err := query(ctx, `SELECT id, org_id FROM projects WHERE id = ANY(?::text[])`, projects)
		if err != nil {
			return nil, dbErr(err, "audit event's organization")
		}
		defer rs.Close()
		for rs.Next() {
			var id, org string
			if err := rs.Scan(&id, &org); err != nil {
				return nil, dbErr(err, "audit event's organization")
			}
			orgs[id] = org
		}
		if err := rs.Err(); err != nil {
			return nil, dbErr(err, "audit event's organization")
		}
	}
	out := make([]any, 0, len(rows)*(auditCols-1))
	for _, r := range rows {
		org := r[1]
		if p, ok := r[2].(string); ok && org == "" {
			org = orgs[p]
		}
		out = append(out, r[0], org)
		out = append(out, r[3:]...)
	}
	return out, nil
}

// stampAuditRows sets the time of each row of auditArgs values.
func stampAuditRows(rows [][]any, now time.Time) {
	t := ts(now)
	for _, r := range rows {
		r[auditCols-1] = t
	}
}

// sqliteAuditChunks are the row counts of SQLite's multi-row audit INSERTs,
// largest first, each prepared once at Open (prepared.go).
var sqliteAuditChunks = []int{16, 8, 4, 2}

var sqliteInsertAudits = func() map[int]string {
	m := map[int]string{1: sqliteInsertAudit}
	for _, n := range sqliteAuditChunks {
		m[n] = auditInsertSQL(n)
	}
	return m
}()

// insertAuditRows inserts rows of auditArgs values, each stamped with the
// transaction's time. PostgreSQL gets multi-row INSERTs of up to
// maxPGAuditBatch rows (pgAuditInsertSQL: one round trip for most batches,
// two when an event names no organization; pgx prepares each size once per
// connection). SQLite runs statements prepared at Open, the largest of
// sqliteAuditChunks that fits the rows left each time (7 rows: 4, 2, 1):
// compiling a multi-row statement for each size would cost more than it
// saves, and one statement of 4 rows costs less than 4 of one.
func (tx *Tx) insertAuditRows(ctx context.Context, rows [][]any) error {
	stampAuditRows(rows, tx.Now)
	if tx.db.dialect == SQLite {
		for len(rows) > 0 {
			n := 1
			for _, c := range sqliteAuditChunks {
				if len(rows) >= c {
					n = c
					break
				}
			}
			st, err := tx.prepared(ctx, sqliteInsertAudits[n])
			if err != nil {
				return dbErr(err, "prepare audit insert")
			}
			_, err = st.ExecContext(ctx, slices.Concat(rows[:n]...)...)
			st.Close()
			if err != nil {
				return dbErr(err, "insert audit event")
			}
			rows = rows[n:]
		}
		return nil
	}
	for chunk := range slices.Chunk(rows, maxPGAuditBatch) {
		args, err := pgAuditArgs(ctx, tx.query, chunk)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, pgAuditInsertSQL(len(chunk)), args...); err != nil {
			return dbErr(err, "insert audit event")
		}
	}
	return nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AuditEvents lists events matching f, newest first.
func (db *DB) AuditEvents(ctx context.Context, f audit.Filter) ([]audit.Event, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	add("org_id = ?", f.OrgID)
	if f.ProjectID != "" {
		add("project_id = ?", f.ProjectID)
	}
	if len(f.EventTypes) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(f.EventTypes)), ", ")
		a := make([]any, len(f.EventTypes))
		for i, t := range f.EventTypes {
			a[i] = t
		}
		add("event_type IN ("+ph+")", a...)
	}
	if f.ActorType != "" {
		add("actor_type = ?", f.ActorType)
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if !f.Start.IsZero() {
		add("created_at >= ?", ts(f.Start))
	}
	if !f.End.IsZero() {
		add("created_at <= ?", ts(f.End))
	}
	args = append(args, f.Limit, f.Offset)
	rows, err := db.readq(ctx, `SELECT id, org_id, COALESCE(project_id, ''), COALESCE(project_name, ''), actor_type, actor_id,
		actor_metadata, event_type, event_metadata, ip_address, user_agent, user_agent_type, created_at
		FROM audit_logs WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, dbErr(err, "AuditEvents")
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var ev audit.Event
		var am, em string
		if err := rows.Scan(&ev.ID, &ev.OrgID, &ev.ProjectID, &ev.ProjectName, &ev.ActorType, &ev.ActorID, &am,
			&ev.Type, &em, &ev.IP, &ev.UserAgent, &ev.UserAgentType, timeCol{&ev.CreatedAt}); err != nil {
			return nil, dbErr(err, "scan audit event")
		}
		json.Unmarshal([]byte(am), &ev.ActorMetadata)
		json.Unmarshal([]byte(em), &ev.Metadata)
		out = append(out, ev)
	}
	return out, dbErr(rows.Err(), "AuditEvents")
}
