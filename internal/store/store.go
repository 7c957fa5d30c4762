// Package store keeps lockbox's state in SQLite (embedded default) or PostgreSQL,
// with one set of queries and migrations per dialect. It implements the storage
// interfaces the domain packages declare.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

//go:embed migrations
var migrations embed.FS

// Dialect names a SQL engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// SQLiteFile is the database file's name in the data dir; SQLite keeps its
// write-ahead log and shared-memory index beside it with -wal and -shm appended.
const SQLiteFile = "lockbox.db"

// Options selects and tunes the database.
type Options struct {
	// URL is a postgres:// URL; empty selects SQLite in Dir.
	URL string
	// Dir holds the SQLite file.
	Dir string
	// MaxConns bounds the PostgreSQL pool and the SQLite reader pool.
	MaxConns int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DB is an open, migrated database.
type DB struct {
	// schema is the newest applied migration as last read (SchemaVersion).
	schema struct {
		sync.Mutex
		v  int64
		at time.Time
	}
	dialect Dialect
	write   *sql.DB // SQLite: the single writer connection; PostgreSQL: the pool
	read    *sql.DB // SQLite: read-only pool; PostgreSQL: same as write
	now     func() time.Time
	path    string
	url     string                 // PostgreSQL: for connections outside the pool (LISTEN)
	audit   committer[auditWaiter] // audit events waiting to commit together (auditgroup.go)

	epochStmt *sql.Stmt          // reads the cache epoch (cache.Source)
	hot       map[string]hotStmt // hotReads by query text; read-only after Open
	onChange  atomic.Value       // func(): called after a change commits (SetOnChange)

	logins committer[loginReq] // Universal Auth logins waiting to commit together (login.go)
	// methodLogins are platform-method logins waiting to commit together (authconfig.go).
	methodLogins committer[methodLogin]
	loginStmts   map[string]*sql.Stmt // SQLite: the login's writes, prepared once (prepared.go)

	auditMarks auditMarks // how far this node's purges have gone (purge.go)
}

// Open connects, checks the connection and applies pending migrations.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.MaxConns < 2 {
		o.MaxConns = 10
	}
	db := &DB{now: o.Now}
	if db.now == nil {
		db.now = time.Now
	}
	if o.URL != "" {
		db.dialect = Postgres
		db.url = o.URL
		p, err := sql.Open("pgx", o.URL)
		if err != nil {
			return nil, errors.New("open postgres: bad database url")
		}
		p.SetMaxOpenConns(o.MaxConns)
		p.SetMaxIdleConns(o.MaxConns)
		p.SetConnMaxIdleTime(5 * time.Minute)
		db.write, db.read = p, p
	} else {
		db.dialect = SQLite
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir %s: %w", o.Dir, err)
		}
		db.path = filepath.Join(o.Dir, SQLiteFile)
		if err := createPrivate(db.path); err != nil {
			return nil, err
		}
		// synchronous(FULL): each commit syncs the write-ahead log, so an
		// acknowledged write survives a power loss, as on PostgreSQL.
		// The file's name is escaped (sqliteURI): a data dir named with ?
		// or # put the database elsewhere, under default permissions.
		uri, err := sqliteURI(db.path, "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_time_format=sqlite"+
			"&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			return nil, err
		}
		w, err := sql.Open("sqlite", uri)
		if err != nil {
			return nil, err
		}
		w.SetMaxOpenConns(1) // SQLite has one writer; queue here, not in busy retries
		db.write = w
		// Readers are opened after the writer has switched the file to WAL.
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.write.PingContext(pctx); err != nil {
		db.Close()
		return nil, connectError(db.dialect, err)
	}
	if db.dialect == SQLite {
		uri, err := sqliteURI(db.path, "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=query_only(1)&_time_format=sqlite")
		if err != nil {
			db.Close()
			return nil, err
		}
		r, err := sql.Open("sqlite", uri)
		if err != nil {
			db.Close()
			return nil, err
		}
		r.SetMaxOpenConns(o.MaxConns)
		r.SetMaxIdleConns(o.MaxConns)
		db.read = r
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	var err error
	if db.epochStmt, err = db.read.PrepareContext(ctx, `SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM cache_epoch`); err != nil {
		db.Close()
		return nil, dbErr(err, "prepare epoch read")
	}
	if err := db.prepareHot(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.dialect == SQLite {
		if err := db.prepareLogin(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	// Audit events, Universal Auth logins and platform-method logins each
	// commit one group at a time (auditWriters); Universal Auth logins must
	// (arrival order decides use limits).
	db.audit.start(auditWriters, maxAuditBatch(db.dialect), db.writeAuditBatch, failAudit)
	db.logins.start(1, maxLoginGroup, db.commitLogins, failLogin)
	db.methodLogins.start(auditWriters, maxLoginGroup, db.writeMethodLogins, failMethodLogin)
	if db.dialect == SQLite {
		// SQLite creates -wal and -shm with the main file's mode, so they are
		// 0600 when it is. Narrow any left wider (say, by an older version);
		// the main file itself is the operator's, and start-up warns about it.
		for _, suffix := range []string{"-wal", "-shm"} {
			if fi, err := os.Stat(db.path + suffix); err == nil && fi.Mode().Perm()&^0o600 != 0 {
				os.Chmod(db.path+suffix, 0o600)
			}
		}
	}
	return db, nil
}

// createPrivate creates an empty path with mode 0600 unless it exists. SQLite
// would create it 0644 (its default, whatever the umask allows) and give that
// mode to the -wal and -shm files it makes beside it; an empty file is a new
// database to it.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return f.Close()
}

// connectError describes a failed connection without echoing a DSN or password.
func connectError(d Dialect, err error) error {
	if d == SQLite {
		return fmt.Errorf("open sqlite: %v", err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("connect to postgres: %s (%s)", pgErr.Message, pgErr.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("connect to postgres: server unreachable or refused the connection")
	}
	return errors.New("connect to postgres: failed")
}

func (db *DB) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.dialect))
	if err != nil {
		return nil, err
	}
	d := goose.DialectSQLite3
	if db.dialect == Postgres {
		d = goose.DialectPostgres
	}
	return goose.NewProvider(d, db.write, sub)
}

func (db *DB) migrate(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// SchemaVersion reports the newest applied migration, read again at most
// every schemaEvery: /api/status, which anyone may call, asks on every
// request, and the read takes SQLite's one writer connection.
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	db.schema.Lock()
	defer db.schema.Unlock()
	if !db.schema.at.IsZero() && time.Since(db.schema.at) < schemaEvery {
		return db.schema.v, nil
	}
	p, err := db.provider()
	if err != nil {
		return 0, err
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, err
	}
	db.schema.v, db.schema.at = v, time.Now()
	return v, nil
}

// schemaEvery is how long SchemaVersion's answer is kept.
const schemaEvery = 10 * time.Second

// Dialect reports the engine in use.
func (db *DB) Dialect() Dialect { return db.dialect }

// Path is the SQLite file, or "" on PostgreSQL.
func (db *DB) Path() string { return db.path }

// Now is the store's clock, truncated to microseconds as stored.
func (db *DB) Now() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// Ping checks the database is reachable.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// Close writes the audit events still queued, then closes every connection.
func (db *DB) Close() error {
	db.audit.close()
	db.logins.close()
	db.methodLogins.close()
	if db.epochStmt != nil {
		db.epochStmt.Close()
	}
	db.closeHot()
	var e1, e2 error
	if db.read != nil && db.read != db.write {
		e1 = db.read.Close()
	}
	if db.write != nil {
		e2 = db.write.Close()
	}
	return errors.Join(e1, e2)
}

// q rewrites ?-placeholders for the dialect. Queries are written with ? and
// never contain a literal question mark.
func (db *DB) q(query string) string {
	if db.dialect != Postgres {
		return query
	}
	b := make([]byte, 0, len(query)+16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b = strconv.AppendInt(append(b, '$'), int64(n), 10)
			continue
		}
		b = append(b, query[i])
	}
	return string(b)
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is one transaction; Now is fixed for its duration.
type Tx struct {
	db  *DB
	tx  *sql.Tx
	Now time.Time
}

func (t *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.q(query), args...)
}

func (t *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.q(query), args...)
}

func (t *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.q(query), args...)
}

// Epoch reads the change counter that caches are checked against (package
// cache): the sum of cache_epoch's rows, which every changing transaction
// adds to before it commits.
func (db *DB) Epoch(ctx context.Context) (uint64, error) {
	var n int64
	if err := db.epochStmt.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, dbErr(err, "read cache epoch")
	}
	return uint64(n), nil
}

// SetOnChange sets fn to be called after each transaction that changed what
// caches may hold has committed (the node's cache.Gen.Changed).
func (db *DB) SetOnChange(fn func()) { db.onChange.Store(fn) }

// BumpEpoch marks every node's caches out of date, as a changing
// transaction does: for changes made to the database by other means.
func (db *DB) BumpEpoch(ctx context.Context) error {
	return db.Transact(ctx, func(*Tx) error { return nil })
}

// epochShards is the number of cache_epoch rows (migration 00010).
const epochShards = 16

// Transact runs fn in a read-write transaction, committing when fn returns nil.
// PostgreSQL serialization failures and deadlocks are retried. The
// transaction advances the cache epoch: every node's caches miss from its
// commit on. Writes to rows no cache holds (audit events, new tokens, lease
// bookkeeping, counters) use transactQuiet instead.
func (db *DB) Transact(ctx context.Context, fn func(*Tx) error) error {
	return db.transact(ctx, false, fn)
}

// transactQuiet is Transact for a transaction that changes nothing a cache
// holds: it leaves the cache epoch alone, so readers keep their caches.
func (db *DB) transactQuiet(ctx context.Context, fn func(*Tx) error) error {
	return db.transact(ctx, true, fn)
}

func (db *DB) transact(ctx context.Context, quiet bool, fn func(*Tx) error) error {
	return withRetries(ctx, func() error { return db.transactOnce(ctx, quiet, fn) })
}

// withRetries runs once until it succeeds or fails other than by a
// PostgreSQL serialization failure or deadlock, five times at most.
func withRetries(ctx context.Context, once func() error) error {
	for attempt := 0; ; attempt++ {
		err := once()
		if err == nil || attempt >= 4 || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

func (db *DB) transactOnce(ctx context.Context, quiet bool, fn func(*Tx) error) (err error) {
	var opts *sql.TxOptions
	if db.dialect == Postgres {
		// Whatever the server's default: the claims (SKIP LOCKED), the
		// guards that re-check a row under its lock, the data-key insert
		// that waits for a root-key rotation's lock and then sees it, all
		// rely on each statement seeing what committed before it.
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	sqlTx, err := db.write.BeginTx(ctx, opts)
	if err != nil {
		return errs.Internalf(err, "begin transaction")
	}
	t := &Tx{db: db, tx: sqlTx, Now: db.Now()}
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
		if err != nil {
			sqlTx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if !quiet {
		// Last, so that on PostgreSQL the shard's row lock is held only
		// for the commit itself.
		if _, err := t.exec(ctx, `UPDATE cache_epoch SET n = n + 1 WHERE shard = ?`, mathrand.IntN(epochShards)); err != nil {
			return dbErr(err, "advance cache epoch")
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return dbErr(err, "commit")
	}
	if !quiet {
		if fn, _ := db.onChange.Load().(func()); fn != nil {
			fn()
		}
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return false
}

// exec runs one statement in its own transaction on the writer, advancing
// the cache epoch as Transact does.
func (db *DB) exec(ctx context.Context, query string, args ...any) (res sql.Result, err error) {
	err = db.Transact(ctx, func(tx *Tx) error {
		res, err = tx.exec(ctx, query, args...)
		return err
	})
	return res, err
}

// execQuiet runs one statement that changes nothing a cache holds in its own
// transaction on the writer.
func (db *DB) execQuiet(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.write.ExecContext(ctx, db.q(query), args...)
}

// IsUniqueViolation reports whether err is a unique-constraint failure on either engine.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		c := sqErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isBadText reports PostgreSQL refusing a text value: NUL bytes and invalid
// UTF-8 (SQLite stores or compares them as they are).
func isBadText(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05")
}

// IsForeignKeyViolation reports whether err is a foreign-key failure on either engine.
func IsForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// dbErr maps driver errors to kinds: no rows → NotFound, unique → Conflict,
// foreign key → Invalid, anything else → Internal with context for the log.
//
// A foreign-key failure is a race the services' reads did not see: the
// request refers to something deleted since it was read (a folder, a custom
// role), or deletes something another request has just started to use. It
// is a 400, not a Conflict, because services turn a Conflict into "already
// exists".
func dbErr(err error, op string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return &errs.Error{Kind: errs.NotFound, Message: "not found", Err: err}
	case IsUniqueViolation(err):
		return &errs.Error{Kind: errs.Conflict, Message: "already exists", Err: err}
	case IsForeignKeyViolation(err):
		return &errs.Error{Kind: errs.Invalid, Message: errReferenceGone, Err: err}
	case isBadText(err):
		return &errs.Error{Kind: errs.Invalid, Message: "The request holds text PostgreSQL cannot store (a NUL character or invalid UTF-8)", Err: err}
	}
	if _, ok := errors.AsType[*errs.Error](err); ok {
		return err
	}
	return errs.Internalf(err, "%s", op)
}

// errReferenceGone is the message of a foreign-key failure; it names
// nothing, since either side may be something the caller cannot read.
const errReferenceGone = "The request refers to something deleted meanwhile, or deletes something still in use; read again and retry"

// errNoRows reports a missing row through dbErr as NotFound.
var errNoRows = sql.ErrNoRows

// forUpdate locks selected rows on PostgreSQL; SQLite's single writer
// already serialises write transactions.
// forShare locks the rows a PostgreSQL statement reads against updates
// and deletions until the transaction ends; SQLite's one writer needs none.
func (db *DB) forShare() string {
	if db.dialect == Postgres {
		return " FOR SHARE"
	}
	return ""
}

// forKeyShare holds the rows a PostgreSQL statement reads against deletion
// and key changes only, as a foreign key check does.
func (db *DB) forKeyShare() string {
	if db.dialect == Postgres {
		return " FOR KEY SHARE"
	}
	return ""
}

func (db *DB) forUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// forNoKeyUpdate locks the rows a PostgreSQL statement reads against other
// writers of them (and FOR UPDATE, FOR SHARE) until the transaction ends,
// but not against inserts that only reference them (a foreign key's KEY
// SHARE): changes that must see each other wait, a login's token or a new
// project's row does not. SQLite's one writer needs none.
func (db *DB) forNoKeyUpdate() string {
	if db.dialect == Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

// lockRow locks the row id of table (forNoKeyUpdate); errs.NotFound when it
// is gone.
func (tx *Tx) lockRow(ctx context.Context, table, id string) error {
	return tx.lockRowWith(ctx, table, id, tx.db.forNoKeyUpdate())
}

// lockForDelete locks the row id of table FOR UPDATE on PostgreSQL before
// a delete removes what hangs from it; errs.NotFound when it is gone.
func (tx *Tx) lockForDelete(ctx context.Context, table, id string) error {
	return tx.lockRowWith(ctx, table, id, tx.db.forUpdate())
}

func (tx *Tx) lockRowWith(ctx context.Context, table, id, clause string) error {
	var got string
	err := tx.queryRow(ctx, `SELECT id FROM `+table+` WHERE id = ?`+clause, id).Scan(&got)
	return dbErr(err, "lock "+table)
}

// holdProject holds project id against its deletion (FOR KEY SHARE, what
// an insert's foreign key check takes) before a write locks rows of the
// project: DeleteProject locks the project, then the rows its cascades
// delete, so a write that locked such a row (a CA, a host, its SSH
// settings) and then referenced the project deadlocked with it.
// errs.NotFound when the project is gone.
func (tx *Tx) holdProject(ctx context.Context, id string) error {
	return tx.lockRowWith(ctx, "projects", id, tx.db.forKeyShare())
}

// holdProjectOf holds the project of row id of table (its project_id
// column): holdProject, for a transaction that knows the row, not the
// project. errs.NotFound when the row is gone.
func (tx *Tx) holdProjectOf(ctx context.Context, table, id string) error {
	var projectID string
	if err := tx.queryRow(ctx, `SELECT project_id FROM `+table+` WHERE id = ?`, id).Scan(&projectID); err != nil {
		return dbErr(err, table)
	}
	return tx.holdProject(ctx, projectID)
}

// referenceGone answers errs.NotFound, from a row a write was about to
// reference (and so held first), as the reference's foreign key would have:
// a 400 saying it was deleted meanwhile. Other errors pass through.
func referenceGone(err error) error {
	if errs.Is(err, errs.NotFound) {
		return &errs.Error{Kind: errs.Invalid, Message: errReferenceGone, Err: err}
	}
	return err
}

// countUnder locks the row id of owner (lockRow) and counts the rows of
// table whose col is id, so that concurrent creates at a bound see each
// other (unlocked, twelve at once all counted the same rows and all
// inserted). errs.NotFound when the owner is gone.
func (tx *Tx) countUnder(ctx context.Context, owner, table, col, id string) (int, error) {
	if err := tx.lockRow(ctx, owner, id); err != nil {
		return 0, err
	}
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+col+` = ?`, id).Scan(&n)
	return n, dbErr(err, "count "+table)
}

// bounded returns refuse(n) when owner's row id has n >= max rows in table
// (counted under its lock, countUnder).
func (tx *Tx) bounded(ctx context.Context, owner, table, col, id string, max int, refuse func(n int) error) error {
	n, err := tx.countUnder(ctx, owner, table, col, id)
	if err != nil {
		return err
	}
	if n >= max {
		return refuse(n)
	}
	return nil
}
