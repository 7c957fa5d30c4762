package store

import "context"

// AuditCommits counts the audit batches written so far.
func (db *DB) AuditCommits() int64 { return db.audit.commits.Load() }

// AuditQueue reports the audit events waiting for a batch, whether a batch is
// being written and whether Close has begun.
func (db *DB) AuditQueue() (queued int, leading, closed bool) {
	g := &db.audit
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue), g.leading, g.closed
}

// WriterPragma reads a PRAGMA on SQLite's writer connection.
func (db *DB) WriterPragma(ctx context.Context, name string) (string, error) {
	var v string
	err := db.write.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}
