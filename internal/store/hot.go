package store

import (
	"context"
	"database/sql"
)

// hotReads are the statements of a read that missed every cache (see
// docs/architecture.md): the token or session check, the permission
// lookups, the folder and its rows, imports and data keys. Each is
// prepared once and reused. SQLite compiles a statement in about the time
// it takes to run one of these, so on SQLite each is a *sql.Stmt, prepared
// on every reader connection the first time that connection runs it. pgx
// already keeps a prepared statement per connection for every query text
// it sees (its default cache_statement mode), so on PostgreSQL only the
// placeholder rewrite is done once.
//
// readq and readRow use the prepared form of any query whose text is listed
// here and run any other query as it comes. TestHotReadsUseAnIndex checks
// each one's plan on both engines.
func hotReads(d Dialect) []string {
	qs := []string{
		qAccessTokenByID, qSessionByID, qUserByID, qServiceTokenByID,
		qOrgRole[0], qOrgRole[1], qOrgGroupRoles[0], qOrgGroupRoles[1], qProjectGrants[0], qProjectGrants[1],
		qProjectByID, qEnvironments, qRootFolder, qChildFolder,
		qFolderSecrets, qSecretByKey, qPersonalSecretByKey, qSecretByID,
		qProjectHasTags, qSecretTags[d], qImports, qDataKey,
		uaLoginQuery,
	}
	if d == Postgres { // SQLite walks a folder a segment (walk)
		qs = append(qs, qWalk)
	}
	return qs
}

// byDialect is a query whose text differs between the engines.
type byDialect map[Dialect]string

// hotStmt is a hot read in the form its engine runs fastest.
type hotStmt struct {
	stmt *sql.Stmt // SQLite
	text string    // PostgreSQL: the query with $n placeholders
}

// prepareHot prepares hotReads; Close closes them.
func (db *DB) prepareHot(ctx context.Context) error {
	qs := hotReads(db.dialect)
	db.hot = make(map[string]hotStmt, len(qs))
	for _, q := range qs {
		if db.dialect == Postgres {
			db.hot[q] = hotStmt{text: db.q(q)}
			continue
		}
		st, err := db.read.PrepareContext(ctx, q)
		if err != nil {
			return dbErr(err, "prepare read statement")
		}
		db.hot[q] = hotStmt{stmt: st}
	}
	return nil
}

func (db *DB) closeHot() {
	for _, h := range db.hot {
		if h.stmt != nil {
			h.stmt.Close()
		}
	}
}

// readq reads outside a transaction, from the reader pool.
func (db *DB) readq(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if h, ok := db.hot[query]; ok {
		if h.stmt != nil {
			return h.stmt.QueryContext(ctx, args...)
		}
		return db.read.QueryContext(ctx, h.text, args...)
	}
	return db.read.QueryContext(ctx, db.q(query), args...)
}

func (db *DB) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if h, ok := db.hot[query]; ok {
		if h.stmt != nil {
			return h.stmt.QueryRowContext(ctx, args...)
		}
		return db.read.QueryRowContext(ctx, h.text, args...)
	}
	return db.read.QueryRowContext(ctx, db.q(query), args...)
}
