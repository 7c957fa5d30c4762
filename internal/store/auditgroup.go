package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// maxAuditBatch bounds the events of one group commit: one statement's
// worth on PostgreSQL (insertAuditRows' chunk), more on SQLite.
func maxAuditBatch(d Dialect) int {
	if d == Postgres {
		return maxPGAuditBatch
	}
	return 256
}

// auditWaiter is one AppendAudit call waiting for its group commit.
type auditWaiter struct {
	args []any // the event's row (auditArgs), made by the caller: the writer only runs statements
	err  error
}

// AppendAudit records ev outside any other change (reads, refusals, failed
// logins). It returns once a committed transaction holds the event, so an
// answered request's event survives a crash; concurrent calls share that
// transaction (db.audit, a committer: events that arrive while a group
// commits are written together in the next one). The write does not end
// with ctx: a caller whose request is cancelled still waits for its event
// to be written.
func (db *DB) AppendAudit(ctx context.Context, ev audit.Event) error {
	w := &auditWaiter{args: auditArgs(make([]any, 0, auditCols), ev, time.Time{})}
	db.audit.do(w)
	return w.err
}

func failAudit(w *auditWaiter, err error) { w.err = errs.Internalf(err, "append audit event") }

// writeAuditBatch writes batch and sets each waiter's outcome. When that
// fails, each event is tried again on its own, so that one event the
// database refuses (PostgreSQL takes no NUL byte or invalid UTF-8 in a
// User-Agent) fails only its own request.
func (db *DB) writeAuditBatch(ctx context.Context, batch []*auditWaiter) {
	err := db.insertAuditGroup(ctx, batch)
	if err != nil && len(batch) > 1 {
		for i, w := range batch {
			w.err = db.insertAuditGroup(ctx, batch[i:i+1])
		}
		return
	}
	for _, w := range batch {
		w.err = err
	}
}

// insertAuditGroup commits the events of batch, each with the values its
// caller made (auditWaiter.args) and one time. On PostgreSQL that is one
// multi-row INSERT committed on its own: one round trip (a batch is at most
// maxPGAuditBatch rows), after one read of the organizations of any events
// that name none (pgAuditArgs; reads name theirs). On SQLite it is a
// transaction of statements prepared at Open (insertAuditRows).
func (db *DB) insertAuditGroup(ctx context.Context, batch []*auditWaiter) error {
	rows := make([][]any, len(batch))
	for i, w := range batch {
		rows[i] = w.args
	}
	if db.dialect == Postgres {
		stampAuditRows(rows, db.Now())
		args, err := pgAuditArgs(ctx, db.readq, rows)
		if err != nil {
			return err
		}
		_, err = db.execQuiet(ctx, pgAuditInsertSQL(len(rows)), args...)
		return dbErr(err, "insert audit event")
	}
	return db.transactQuiet(ctx, func(tx *Tx) error { return tx.insertAuditRows(ctx, rows) })
}

// auditWriters is how many groups of audit events (and of platform-method
// logins) commit at once: one, on both engines. On PostgreSQL, four side by
// side made more and smaller commits, each a WAL flush: on two cores with
// the database beside the server, one writer served 20-50 % more audited
// reads and 40-60 % more JWT logins (BENCHMARKS.md, "Read path, fourth
// session"). Under load a group grows to what queued while the last one
// committed, so one writer keeps up by committing bigger groups.
const auditWriters = 1
