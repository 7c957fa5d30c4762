package store

import (
	"context"
	"strings"
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
	rows, err := tx.QueryContext(ctx, prefix+db.q(query), args...)
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
		line, _ := vals[len(vals)-1].(string) // SQLite: id, parent, notused, detail
		plan = append(plan, strings.TrimSpace(line))
	}
	return plan, rows.Err()
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
func (db *DB) AuditWriters() int { return auditWriters(db.dialect) }

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

// NewID is the store's id generator.
func NewID() string { return newID() }

// LoginGroupState reports whether a group of logins is committing and how
// many logins wait for the next one.
func (db *DB) LoginGroupState() (running bool, queued int) {
	queued, writing, _ := db.logins.state()
	return writing > 0, queued
}
