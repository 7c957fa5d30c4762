package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/rotation"
)

// Explain returns the engine's plan of query, one line per step. On
// PostgreSQL sequential and bitmap scans are switched off for it, so the plan
// shows what the best index can do whatever the table's size; a Sort in it
// means no index hands the rows over in order.
func (db *DB) Explain(ctx context.Context, query string, args ...any) ([]string, error) {
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := "EXPLAIN QUERY PLAN "
	if db.dialect == Postgres {
		prefix = "EXPLAIN "
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL enable_bitmapscan = off`); err != nil {
			return nil, err
		}
	}
	return planLines(ctx, tx, prefix+db.q(query), args...)
}

// planLines runs an EXPLAIN in tx and returns its steps, one line each: the
// last column of each row (SQLite's are id, parent, notused, detail;
// PostgreSQL's only one).
func planLines(ctx context.Context, tx *sql.Tx, explain string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, explain, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		line, _ := vals[len(vals)-1].(string)
		plan = append(plan, strings.TrimSpace(line))
	}
	return plan, rows.Err()
}

// PGLeaseClaimPlan returns PostgreSQL's plan (EXPLAIN, costs off) of
// ClaimDueLeases' statement claiming up to limit leases of one dynamic
// secret, on a table holding, for it and for another, the given number of
// revoked leases and 1,000 due ones, analyzed. The rows are inserted in a
// transaction it rolls back, but ANALYZE's statistics stay: use it on a
// test's own database only. The rows name dynamic secrets that do not
// exist: foreign keys are not checked in it (session_replication_role,
// which takes a superuser, as the tests connect).
func (db *DB) PGLeaseClaimPlan(ctx context.Context, revoked, limit int) ([]string, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	qs := []string{`SET LOCAL session_replication_role = replica`}
	for _, ds := range []string{"plan-ds", "plan-other"} {
		qs = append(qs,
			`INSERT INTO dynamic_leases (`+leaseCols+`) SELECT '`+ds+`-r' || i, '`+ds+`', 'plan-p', 'u' || i, NULL, '{}', 'revoked', '', 1, 1, 0, 1, 1
			FROM generate_series(1, `+strconv.Itoa(revoked)+`) AS i`,
			`INSERT INTO dynamic_leases (`+leaseCols+`) SELECT '`+ds+`-a' || i, '`+ds+`', 'plan-p', 'u' || i, NULL, '{}', 'active', '', 2, 2, 0, 1, 1
			FROM generate_series(1, 1000) AS i`)
	}
	for _, q := range append(qs, `ANALYZE dynamic_leases`) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	return planLines(ctx, tx, `EXPLAIN (COSTS OFF) `+db.q(db.claimLeasesSQL()), 5, 3, "plan-ds", 3, limit)
}

// HotReads are the read path's prepared statements, for the plan tests.
func (db *DB) HotReads() []string { return hotReads(db.dialect) }

var HotReads = hotReads

// AuditCommits counts the audit batches written so far.
func (db *DB) AuditCommits() int64 { return db.audit.commits.Load() }

// AuditQueue reports the audit events waiting for a batch, how many batches are
// being written and whether Close has begun.
func (db *DB) AuditQueue() (queued, writing int, closed bool) { return db.audit.state() }

// AuditWriters is how many audit groups commit at once.
func (db *DB) AuditWriters() int { return auditWriters }

// WriterPragma reads a PRAGMA on SQLite's writer connection.
func (db *DB) WriterPragma(ctx context.Context, name string) (string, error) {
	var v string
	err := db.write.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}

// ExecForTest runs a write statement (? placeholders) outside any
// transaction, for tests that seed rows the API has no method for.
func (db *DB) ExecForTest(ctx context.Context, query string, args ...any) error {
	_, err := db.exec(ctx, query, args...)
	return err
}

// InsertAuditForTest appends ev in tx as a change's own event is.
func (tx *Tx) InsertAuditForTest(ctx context.Context, ev audit.Event) error {
	return tx.insertAudit(ctx, ev)
}

// IDsForTest runs a read of one text column.
func (db *DB) IDsForTest(t testing.TB, query string, args ...any) []string {
	t.Helper()
	ids, err := db.ids(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// NewID is the store's id generator.
func NewID() string { return newID() }

// LoginGroupState reports whether a group of logins is committing and how
// many logins wait for the next one.
func (db *DB) LoginGroupState() (running bool, queued int) {
	queued, writing, _ := db.logins.state()
	return writing > 0, queued
}

// ClaimDueRotationsNPlus1 is ClaimDueRotations as it was (a select, then an
// update and a select per rotation), kept for the A/B benchmark.
func (db *DB) ClaimDueRotationsNPlus1(ctx context.Context, now, until time.Time, limit int) ([]rotation.State, error) {
	var out []rotation.State
	err := db.transactQuiet(ctx, func(tx *Tx) error {
		out = nil
		rows, err := tx.query(ctx, `SELECT id FROM secret_rotations WHERE due_at <= ? AND claim_until <= ?
			ORDER BY due_at, id LIMIT ?`+db.skipLocked(), ts(now), ts(now), limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			res, err := tx.exec(ctx, `UPDATE secret_rotations SET claimed_by = ?, claim_until = ?, due_at = ? WHERE id = ? AND claim_until <= ? AND due_at <= ?`,
				uuid.NewString(), ts(until), ts(until), id, ts(now), ts(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			st, err := scanRotation(tx.queryRow(ctx, `SELECT `+rotCols+rotFrom+` WHERE r.id = ?`, id))
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// RotationByNameByList is the rotation-name lookup as it was: every
// rotation of the project and type, filtered (A/B benchmark).
func (db *DB) RotationByNameByList(ctx context.Context, projectID, typ, env, path, name string) (rotation.State, error) {
	sts, err := db.Rotations(ctx, projectID, typ)
	if err != nil {
		return rotation.State{}, err
	}
	for _, st := range sts {
		if st.Name == name && st.Environment == env && st.SecretPath == path {
			return st, nil
		}
	}
	return rotation.State{}, errNoRows
}

// WriteAuditGroup commits evs as one audit group, as the audit writer does
// with the events queued together, and returns the first event's outcome.
func (db *DB) WriteAuditGroup(ctx context.Context, evs []audit.Event) error {
	ws := make([]*auditWaiter, len(evs))
	for i, ev := range evs {
		ws[i] = &auditWaiter{args: auditArgs(make([]any, 0, auditCols), ev, time.Time{})}
	}
	db.writeAuditBatch(ctx, ws)
	for _, w := range ws {
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

// ExecRaw runs a statement on the writer, for experiments in benchmarks.
func (db *DB) ExecRaw(ctx context.Context, q string) error {
	_, err := db.execQuiet(ctx, q)
	return err
}

// InsertAuditsInTx appends evs inside a write transaction, as changes do.
func (db *DB) InsertAuditsInTx(ctx context.Context, evs ...audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error { return tx.insertAudits(ctx, evs...) })
}

// TxIsolationForTest returns the isolation level a write transaction runs
// at (PostgreSQL).
func (db *DB) TxIsolationForTest(ctx context.Context) (string, error) {
	var level string
	err := db.Transact(ctx, func(tx *Tx) error {
		return tx.queryRow(ctx, `SHOW transaction_isolation`).Scan(&level)
	})
	return level, err
}

// RedoMigrationForTest applies one migration down and up again, so that a
// test can seed the rows an older schema allowed and watch the migration
// handle them.
func (db *DB) RedoMigrationForTest(ctx context.Context, version int64) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	if _, err := p.ApplyVersion(ctx, version, false); err != nil {
		return err
	}
	_, err = p.ApplyVersion(ctx, version, true)
	return err
}

// QCountLeases is the statement CountLeases runs.
const QCountLeases = qCountLeases
