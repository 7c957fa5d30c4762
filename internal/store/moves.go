package store

import (
	"context"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// ProjectMoves returns a project's count of committed moves (project.MoveGuard).
func (db *DB) ProjectMoves(ctx context.Context, projectID string) (int64, error) {
	var n int64
	err := db.readRow(ctx, `SELECT moves FROM projects WHERE id = ?`, projectID).Scan(&n)
	return n, dbErr(err, "ProjectMoves")
}

// guardMoves, first in the transaction of a move or a create, applies the
// project.MoveGuard ctx carries (none: it does nothing). Moves and creates
// of a project take its lock (on PostgreSQL a transaction-scoped advisory
// lock, exclusive for a move, shared for a create, queued fairly so a stream
// of creates cannot starve a move; SQLite has one writer). A move then
// counts itself if the project's count is still what its guard saw and runs
// the guard's check on what it moves, as committed now: every create that
// will land in it has committed, and none can until the move has. A create
// (Place) checks the count is still what it saw when it resolved where it
// writes. Either way, a count that moved is a 409 (project.ErrMoved).
func (tx *Tx) guardMoves(ctx context.Context) error {
	g, ok := project.MoveGuardOf(ctx)
	if !ok {
		return nil
	}
	if tx.db.dialect == Postgres {
		lock := `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`
		if g.Place {
			lock = `SELECT pg_advisory_xact_lock_shared(hashtextextended(?, 0))`
		}
		if _, err := tx.exec(ctx, lock, "moves:"+g.ProjectID); err != nil {
			return dbErr(err, "lock project for moves")
		}
	}
	if g.Place {
		var n int64
		// Held against the project's deletion as well (holdProject): a
		// create then references rows of the project (an import its folder
		// and its source environment), which DeleteProject's cascades lock
		// in an order of their own, after the project.
		if err := tx.queryRow(ctx, `SELECT moves FROM projects WHERE id = ?`+tx.db.forKeyShare(), g.ProjectID).Scan(&n); err != nil {
			return dbErr(err, "guard moves")
		}
		if n != g.Seen {
			return errMoved()
		}
		return nil
	}
	res, err := tx.exec(ctx, `UPDATE projects SET moves = moves + 1 WHERE id = ? AND moves = ?`, g.ProjectID, g.Seen)
	if err != nil {
		return dbErr(err, "guard moves")
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errMoved()
	}
	if g.Check != nil {
		return g.Check(ctx, Contents{tx})
	}
	return nil
}

func errMoved() error {
	return &errs.Error{Kind: errs.Conflict, Message: "Another change of this project's folders, environments or tags was committed at the same time; retry", Err: project.ErrMoved}
}
