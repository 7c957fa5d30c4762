package store

import (
	"context"
	"database/sql"
	"fmt"
)

// preparedStmts are statements of hot paths, prepared when a SQLite database
// opens. database/sql has the SQLite driver compile a statement on every call
// that is not prepared, which cost a third of a login's CPU; a *sql.Stmt is
// compiled once per connection and reused. On PostgreSQL pgx already keeps
// each connection's statements prepared, so the helpers below pass through.
//
// The writer's statements are prepared up front because its pool has one
// connection: preparing one inside a transaction would wait for itself.
type preparedStmts struct {
	read, write map[string]*sql.Stmt // by query text; fixed after Open
}

// loginReads and loginWrites are the statements prepareLogin prepares.
var (
	loginReads  = []string{uaLoginQuery}
	loginWrites = []string{sqliteConsumeUse, sqliteInsertToken, sqliteClearLockout, sqliteNoteLogin, sqliteInsertAudit}
)

func (db *DB) prepareLogin(ctx context.Context) error {
	prepare := func(pool *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
		m := make(map[string]*sql.Stmt, len(queries))
		for _, q := range queries {
			s, err := pool.PrepareContext(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("prepare statement: %w", err)
			}
			m[q] = s
		}
		return m, nil
	}
	var err error
	if db.stmts.read, err = prepare(db.read, loginReads); err != nil {
		return err
	}
	db.stmts.write, err = prepare(db.write, loginWrites)
	return err
}

// readRowPrepared is readRow, with query's prepared statement if it has one.
func (db *DB) readRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	if s, ok := db.stmts.read[query]; ok {
		return s.QueryRowContext(ctx, args...)
	}
	return db.readRow(ctx, query, args...)
}

// prepared returns query as a statement of t: the one its connection has
// prepared if query is a hot statement, else one prepared for t alone.
func (t *Tx) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.db.stmts.write[query]; ok {
		return t.tx.StmtContext(ctx, s), nil
	}
	return t.tx.PrepareContext(ctx, t.db.q(query))
}
