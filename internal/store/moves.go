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

// guardMoves, first in a move's transaction, counts the move if the
// project's count is still what the move's guard saw (in ctx), otherwise
// the move is a 409 (project.ErrMoved). Without a guard (not a move) it
// does nothing.
func (tx *Tx) guardMoves(ctx context.Context) error {
	g, ok := project.MoveGuardOf(ctx)
	if !ok {
		return nil
	}
	res, err := tx.exec(ctx, `UPDATE projects SET moves = moves + 1 WHERE id = ? AND moves = ?`, g.ProjectID, g.Seen)
	if err != nil {
		return dbErr(err, "guard moves")
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return &errs.Error{Kind: errs.Conflict, Message: "Another rename in this project was committed at the same time; retry", Err: project.ErrMoved}
	}
	return nil
}
