package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
)

// SQLite's writer prepares the login's statements once at Open: database/sql
// has the SQLite driver compile a statement on every call that is not
// prepared, which cost a third of a login's CPU. They are prepared up front
// because the writer's pool has one connection: preparing one inside a
// transaction would wait for itself. (The login's read is one of hotReads;
// on PostgreSQL pgx keeps each connection's statements prepared.)
var loginWrites = append([]string{sqliteConsumeUse, sqliteInsertToken, sqliteClearLockout, sqliteNoteLogin},
	slices.Collect(maps.Values(sqliteInsertAudits))...)

func (db *DB) prepareLogin(ctx context.Context) error {
	db.loginStmts = make(map[string]*sql.Stmt, len(loginWrites))
	for _, q := range loginWrites {
		s, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		db.loginStmts[q] = s
	}
	return nil
}

// prepared returns query as a statement of t: the one its connection has
// prepared if query is a hot statement, else one prepared for t alone.
func (t *Tx) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.db.loginStmts[query]; ok {
		return t.tx.StmtContext(ctx, s), nil
	}
	return t.tx.PrepareContext(ctx, t.db.q(query))
}
