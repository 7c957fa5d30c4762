// Package sqldb is the "sql-database" dynamic-secret provider: database users
// created and dropped in PostgreSQL or MySQL/MariaDB from templated statements.
package sqldb

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func init() {
	provider.Register(provider.Registration{Type: "sql-database", New: New, Inputs: Inputs})
}

// Inputs are the provider's inputs, as Infisical names them.
var Inputs = []provider.Input{
	{Name: "client", Target: true, Required: true, Doc: `"postgres", or "mysql2" (also "mysql"; MariaDB counts)`},
	{Name: "host", Target: true, Required: true, Doc: "database host"},
	{Name: "port", Target: true, Required: true, Doc: "database port"},
	{Name: "database", Target: true, Required: true, Doc: "database the users are granted on"},
	{Name: "username", Target: true, Required: true, Doc: "admin user that creates and drops users"},
	{Name: "password", Required: true, Secret: true, Doc: "admin password"},
	{Name: "creationStatement", Statement: true, Doc: "statements run to create a user; {{username}}, {{password}}, {{expiration}}, {{database}}"},
	{Name: "revocationStatement", Statement: true, Doc: "statements run to drop a user"},
	{Name: "renewStatement", Statement: true, Doc: "statements run to move a user's expiry"},
	{Name: "ca", Target: true, Doc: "PEM CA certificate; when set the connection uses TLS and verifies the server"},
}

// Config is the decoded inputs.
type Config struct {
	Client              string      `json:"client"`
	Host                string      `json:"host"`
	Port                json.Number `json:"port"`
	Database            string      `json:"database"`
	Username            string      `json:"username"`
	Password            string      `json:"password"`
	CreationStatement   string      `json:"creationStatement"`
	RevocationStatement string      `json:"revocationStatement"`
	RenewStatement      string      `json:"renewStatement"`
	CA                  string      `json:"ca"`
	// Accepted for compatibility with Infisical's clients; not used.
	SSLEnabled           *bool           `json:"sslEnabled,omitempty"`
	GatewayID            *string         `json:"gatewayId,omitempty"`
	PasswordRequirements json.RawMessage `json:"passwordRequirements,omitempty"`
}

// Default statements per client.
var defaults = map[string][3]string{
	"postgres": {
		`CREATE ROLE "{{username}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT CONNECT ON DATABASE "{{database}}" TO "{{username}}";
GRANT USAGE ON SCHEMA public TO "{{username}}";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{username}}";`,
		`DROP OWNED BY "{{username}}"; DROP ROLE IF EXISTS "{{username}}";`,
		`ALTER ROLE "{{username}}" VALID UNTIL '{{expiration}}';`,
	},
	"mysql": {
		"CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';\nGRANT SELECT ON `{{database}}`.* TO '{{username}}'@'%';",
		"DROP USER IF EXISTS '{{username}}'@'%';",
		"",
	},
}

// SQL is a configured provider.
type SQL struct {
	cfg    Config
	flavor string // "postgres" or "mysql"
	// unserialised: run PostgreSQL statements without the node's lock on
	// the target, as another node would (tests of the retry).
	unserialised bool
}

var _ provider.Provider = (*SQL)(nil)
var _ provider.Renewer = (*SQL)(nil)
var _ provider.BatchRevoker = (*SQL)(nil)
var _ provider.Disabler = (*SQL)(nil)

// New decodes inputs strictly and validates them without connecting.
func New(inputs json.RawMessage) (provider.Provider, error) {
	var c Config
	if err := provider.Decode("sql-database", inputs, &c); err != nil {
		return nil, err
	}
	var problems []string
	flavor := ""
	switch strings.ToLower(c.Client) {
	case "postgres", "postgresql", "pg":
		flavor = "postgres"
	case "mysql2", "mysql", "mariadb":
		flavor = "mysql"
	default:
		problems = append(problems, fmt.Sprintf("client %q is not supported (use postgres or mysql2)", c.Client))
	}
	for name, v := range map[string]string{"host": c.Host, "database": c.Database, "username": c.Username} {
		if strings.TrimSpace(v) == "" {
			problems = append(problems, name+" is required")
		}
	}
	if _, err := provider.Port(c.Port); err != nil {
		problems = append(problems, err.Error())
	}
	if c.CA != "" {
		if _, err := provider.TLSConfig(c.CA, c.Host); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("sql-database inputs: " + strings.Join(problems, "; "))
	}
	d := defaults[flavor]
	if strings.TrimSpace(c.CreationStatement) == "" {
		c.CreationStatement = d[0]
	}
	if strings.TrimSpace(c.RevocationStatement) == "" {
		c.RevocationStatement = d[1]
	}
	if strings.TrimSpace(c.RenewStatement) == "" {
		c.RenewStatement = d[2]
	}
	return &SQL{cfg: c, flavor: flavor}, nil
}

func (s *SQL) render(stmt, username, password string, exp time.Time) (string, error) {
	vals := []string{username}
	if password != "" {
		vals = append(vals, password)
	}
	if err := provider.CheckSafe(vals...); err != nil {
		return "", err
	}
	db := s.cfg.Database
	if s.flavor == "postgres" {
		db = strings.ReplaceAll(db, `"`, `""`)
	} else {
		db = strings.ReplaceAll(db, "`", "``")
	}
	return strings.NewReplacer("{{username}}", username, "{{password}}", password,
		"{{expiration}}", exp.UTC().Format("2006-01-02 15:04:05+00"), "{{database}}", db).Replace(stmt), nil
}

// pools keeps one connection pool per distinct target and admin credentials,
// so leases do not pay a connection set-up each. Idle connections close after
// a minute; a pool unused for provider.DefaultIdle (its dynamic secret was
// deleted or its inputs changed) is closed and dropped with its credentials.
var pools = provider.NewIdlePool(func(db *sql.DB) { db.Close() })

// open returns the pool for s's inputs and the func to call when done with it.
func (s *SQL) open(ctx context.Context) (*sql.DB, func(), error) {
	checker := provider.CheckerFrom(ctx)
	key := sha256.Sum256([]byte(strings.Join([]string{s.flavor, s.cfg.Host, s.cfg.Port.String(), s.cfg.Database,
		s.cfg.Username, s.cfg.Password, s.cfg.CA, provider.PoolKey(checker)}, "\x00")))
	return pools.Acquire(ctx, key, func() (*sql.DB, error) {
		db, err := s.connect(checker)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(2)
		db.SetConnMaxIdleTime(time.Minute)
		return db, nil
	})
}

func (s *SQL) connect(checker provider.AddrChecker) (*sql.DB, error) {
	addr := net.JoinHostPort(s.cfg.Host, s.cfg.Port.String())
	var tlsConf *tls.Config
	if s.cfg.CA != "" {
		var err error
		if tlsConf, err = provider.TLSConfig(s.cfg.CA, s.cfg.Host); err != nil {
			return nil, err
		}
	}
	if s.flavor == "postgres" {
		pc, err := pgx.ParseConfig("")
		if err != nil {
			return nil, err
		}
		pc.Host, pc.User, pc.Password, pc.Database = s.cfg.Host, s.cfg.Username, s.cfg.Password, s.cfg.Database
		port, _ := strconv.Atoi(s.cfg.Port.String())
		pc.Port = uint16(port)
		pc.TLSConfig = tlsConf
		pc.Fallbacks = nil
		pc.ConnectTimeout = 10 * time.Second
		pc.DialFunc = provider.DialFunc(checker)                  // the target policy, on the address dialled
		pc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // multi-statement templates
		return sql.OpenDB(loginMarked{stdlib.GetConnector(*pc)}), nil
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr, mc.DBName = s.cfg.Username, s.cfg.Password, "tcp", addr, s.cfg.Database
	mc.MultiStatements = true
	mc.Timeout = 10 * time.Second
	mc.DialFunc = provider.DialFunc(checker)
	mc.TLS = tlsConf // not RegisterTLSConfig: that registry would outlive evicted pools
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(loginMarked{conn}), nil
}

// loginMarked marks every failure to open a connection (dial, TLS, the
// handshake, the login) provider.ErrUnreachable: only what the server says
// on an open, logged-in connection is its answer to a statement.
type loginMarked struct{ driver.Connector }

func (c loginMarked) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	return conn, provider.Unreachable(err)
}

// describe turns a driver error into text safe to store, with anything
// shaped like URL credentials removed (the admin password is never part of a
// driver's error text). Anything but the server's answer to a statement on a
// logged-in connection is marked provider.ErrUnreachable: shown to no member.
func describe(op string, err error) error {
	e := fmt.Errorf("%s: %s", op, passwordInURL().ReplaceAllString(err.Error(), "://***@"))
	if errors.Is(err, provider.ErrUnreachable) || !answered(err) {
		return provider.Unreachable(e)
	}
	return e
}

// answered reports whether err is a database server's error message (what
// it says to a statement, once loginMarked has marked the connection's
// opening).
func answered(err error) bool {
	_, pg := errors.AsType[*pgconn.PgError](err)
	_, my := errors.AsType[*mysql.MySQLError](err)
	return pg || my
}

var passwordInURL = lazyre.New(`://[^@/\s]*@`)

// Concurrent GRANT ... ON DATABASE (or any two changes to one catalog row)
// fails in PostgreSQL with "tuple concurrently updated". A node runs one
// statement run at a time per target database (targetLocks), and a run
// that collides with another node's anyway is tried again (serialised).
// This used to be a PostgreSQL advisory lock of a fixed key, which any
// role may take: a lessee holding it from its own session stopped every
// lease creation, renewal and revocation on the database, its own lease's
// included, which then outlived its TTL.
var targetLocks = provider.NewKeyedLock()

// retries bounds the tries of a statement run that collides with another
// node's.
const retries = 8

// serialised runs fn, a statement run that may be tried again as a whole
// (one transaction), under the node's lock on s's target, and again while
// it collides with a concurrent change of the same catalog rows (or, with
// rereads, names a role a concurrent drop removed: fn reads the roles
// again), as long as ctx allows.
func (s *SQL) serialised(ctx context.Context, rereads bool, fn func() error) error {
	if s.flavor != "postgres" {
		return fn()
	}
	if !s.unserialised {
		unlock, err := targetLocks.Lock(ctx, s.cfg.Host+"\x00"+s.cfg.Port.String()+"\x00"+s.cfg.Database)
		if err != nil {
			return err
		}
		defer unlock()
	}
	for try := 1; ; try++ {
		err := fn()
		if err == nil || try == retries || !collided(err, rereads) {
			return err
		}
		t := time.NewTimer(time.Duration(try*(5+rand.IntN(20))) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// collided reports whether a statement failed only because a concurrent
// transaction changed the same rows: PostgreSQL's "tuple concurrently
// updated" (or deleted), a deadlock, a serialisation failure, or, when the
// run reads its roles again (dropped), a role that a concurrent drop
// removed after the statement named it (42704, which a template's own
// mistake gives too: it is not tried again otherwise).
func collided(err error, dropped bool) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return false
	}
	switch pe.Code {
	case "40001", "40P01":
		return true
	case "42704":
		return dropped
	case "XX000":
		return strings.HasPrefix(pe.Message, "tuple concurrently")
	}
	return false
}

func (s *SQL) exec(ctx context.Context, op, stmt string) error {
	db, release, err := s.open(ctx)
	if err != nil {
		return describe(op, err)
	}
	defer release()
	err = s.serialised(ctx, false, func() error {
		_, err := db.ExecContext(ctx, stmt)
		return err
	})
	if err != nil {
		return describe(op, err)
	}
	return nil
}

// Validate connects with the admin credentials.
func (s *SQL) Validate(ctx context.Context) error {
	db, release, err := s.open(ctx)
	if err != nil {
		return describe("connect", err)
	}
	defer release()
	if err := db.PingContext(ctx); err != nil {
		return describe("connect", err)
	}
	return nil
}

func (s *SQL) exists(ctx context.Context, username string) (bool, error) {
	db, release, err := s.open(ctx)
	if err != nil {
		return false, describe("look up user", err)
	}
	defer release()
	q := `SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`
	if s.flavor == "mysql" {
		q = `SELECT COUNT(*) FROM mysql.user WHERE User = ?`
	}
	var n int
	if err := db.QueryRowContext(ctx, q, username).Scan(&n); err != nil {
		return false, describe("look up user", err)
	}
	return n > 0, nil
}

// Create runs the creation statements. A user left by an earlier attempt
// with the same name is dropped first, so a retry after a crash is safe.
func (s *SQL) Create(ctx context.Context, req provider.CreateRequest) (provider.CreateResponse, error) {
	if _, err := s.render("", req.Username, req.Password, req.Expiration); err != nil {
		return provider.CreateResponse{}, err
	}
	switch ok, err := s.exists(ctx, req.Username); {
	case err != nil:
		return provider.CreateResponse{}, err
	case ok:
		return provider.CreateResponse{}, fmt.Errorf("user %s: %w", req.Username, provider.ErrExists)
	}
	stmt, err := s.render(s.cfg.CreationStatement, req.Username, req.Password, req.Expiration)
	if err != nil {
		return provider.CreateResponse{}, err
	}
	if err := s.exec(ctx, "create user", stmt); err != nil {
		return provider.CreateResponse{}, err
	}
	return provider.CreateResponse{Data: map[string]any{"DB_USERNAME": req.Username, "DB_PASSWORD": req.Password}}, nil
}

// Revoke runs the revocation statements if the user exists.
func (s *SQL) Revoke(ctx context.Context, req provider.RevokeRequest) error {
	if _, err := s.render("", req.Username, "", time.Time{}); err != nil {
		return err
	}
	ok, err := s.exists(ctx, req.Username)
	if err != nil || !ok {
		return err
	}
	stmt, err := s.render(s.cfg.RevocationStatement, req.Username, "", time.Time{})
	if err != nil {
		return err
	}
	if s.Disables() {
		// The role can no longer log in and its sessions end before the
		// drop (DisableMany): a dropped role's sessions no longer show its
		// name and go on, and between an ending and the drop a role that
		// still logs in would open new ones.
		if err := s.DisableMany(ctx, []string{req.Username}); err != nil {
			return err
		}
		if err := s.dropOwnedElsewhere(ctx, []string{req.Username}); err != nil {
			return err
		}
	}
	if err := s.exec(ctx, "drop user", stmt); err != nil {
		if ok, xerr := s.exists(ctx, req.Username); xerr == nil && !ok {
			return nil // dropped meanwhile (another node's cleanup): done
		}
		return err
	}
	if s.flavor == "mysql" {
		s.killMySQLSessions(ctx, []string{req.Username})
	}
	return nil
}

// killMySQLSessions kills the sessions of MySQL or MariaDB users, which
// keep a dropped user's sessions and their privileges until they
// disconnect: it runs after the drop (so none can start again), as far as
// the admin may: it sees other users' sessions only with PROCESS, and
// kills them only with CONNECTION_ADMIN or SUPER. The users are gone
// either way. (PostgreSQL's roles are disabled and their sessions ended
// before the drop: DisableMany.)
func (s *SQL) killMySQLSessions(ctx context.Context, users []string) {
	db, release, err := s.open(ctx)
	if err != nil {
		return
	}
	defer release()
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	rows, err := db.QueryContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN (?`+strings.Repeat(", ?", len(users)-1)+`)`, args...)
	if err != nil {
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		db.ExecContext(ctx, `KILL CONNECTION `+strconv.FormatInt(id, 10))
	}
}

// RevokeMany runs the revocation statements of every listed user that
// exists, in one exec (one transaction on PostgreSQL).
func (s *SQL) RevokeMany(ctx context.Context, usernames []string) error {
	for _, u := range usernames {
		if _, err := s.render("", u, "", time.Time{}); err != nil {
			return err
		}
	}
	db, release, err := s.open(ctx)
	if err != nil {
		return describe("look up users", err)
	}
	defer release()
	if s.flavor == "mysql" {
		stmt, err := s.revokeManyStmt(ctx, db, usernames)
		if err != nil || stmt == "" {
			return err // described
		}
		if err := s.exec(ctx, "drop users", stmt); err != nil {
			return err
		}
		s.killMySQLSessions(ctx, usernames)
		return nil
	}
	if s.Disables() { // PostgreSQL with the default revocation, as in Revoke
		if err := s.dropOwnedElsewhere(ctx, usernames); err != nil {
			return err
		}
	}
	// On PostgreSQL the users are looked up in the transaction that drops
	// them, which is tried again whole if a concurrent drop of the same
	// users (the worker's cleanup and a deletion of the dynamic secret, on
	// another node) removed one it names.
	var described error
	err = s.serialised(ctx, true, func() error {
		described = nil
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt, err := s.revokeManyStmt(ctx, tx, usernames)
		if err != nil || stmt == "" {
			described = err
			return nil
		}
		if s.Disables() {
			// Sessions a disable may have missed (see DisableMany) end here,
			// before the drop: a dropped role's sessions no longer show its name.
			if err := terminate(ctx, tx, usernames); err != nil {
				described = describe("end sessions", err)
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return describe("drop users", err)
	}
	return described
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Disables reports whether revocation takes two phases: on PostgreSQL with
// the default revocation statement. Removing a role's privileges on an
// object reads all of that object's pg_shdepend rows, so with every lease's
// role granted CONNECT on one database, dropping n roles reads n²/2 index
// entries however they are batched (seconds at 10,000). Disabling a role
// reads none, so the credential dies at once and the drop follows in the
// background. A custom revocation statement runs as written, in one phase.
func (s *SQL) Disables() bool {
	return s.flavor == "postgres" && s.cfg.RevocationStatement == defaults["postgres"][1]
}

// DisableMany makes the listed PostgreSQL roles unusable without dropping
// them: NOLOGIN, no password, VALID UNTIL -infinity, in one transaction;
// then, once that is committed, it ends their sessions (pg_terminate_backend,
// which takes a superuser admin, a member of pg_signal_backend or one with
// the roles' privileges). A session that finished authenticating just
// before the commit but registers after the termination query is ended at
// the latest by RevokeMany, which terminates again before it drops. Roles that do not exist are skipped.
func (s *SQL) DisableMany(ctx context.Context, usernames []string) error {
	if !s.Disables() {
		return errors.New("disable: not supported with this configuration")
	}
	for _, u := range usernames {
		if _, err := s.render("", u, "", time.Time{}); err != nil {
			return err
		}
	}
	db, release, err := s.open(ctx)
	if err != nil {
		return describe("look up users", err)
	}
	defer release()
	present, err := s.presentPG(ctx, db, usernames)
	if err != nil {
		return describe("look up users", err)
	}
	if len(present) == 0 {
		return nil
	}
	slices.Sort(present)
	// A lessee may change its own password in a transaction it leaves
	// open, holding its pg_authid row: the ALTER below would wait on it for
	// the whole provider timeout, then the next retry, for as long as the
	// lessee liked, its session going on. Its sessions end first, so that
	// the lock goes with them (the ALTER, queued on it, is next), and the
	// ALTER waits at most pgLockTimeout; a lessee that logged in again and
	// took the row back in between is ended again, up to three times.
	var stmts strings.Builder
	stmts.WriteString("SET LOCAL lock_timeout = '" + pgLockTimeout + "';\n")
	for _, u := range present {
		// Not serialised: this updates the roles' own pg_authid rows only,
		// never an object's ACL, so it cannot collide with a GRANT.
		stmts.WriteString(`ALTER ROLE "` + u + `" WITH NOLOGIN PASSWORD NULL VALID UNTIL '-infinity';` + "\n")
	}
	for try := 1; ; try++ {
		if err := terminate(ctx, db, present); err != nil {
			return describe("end sessions", err)
		}
		_, err := db.ExecContext(ctx, stmts.String())
		if err == nil {
			break
		}
		if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "55P03" || try == 3 {
			return describe("disable users", err)
		}
	}
	if err := terminate(ctx, db, present); err != nil {
		return describe("end sessions", err)
	}
	return nil
}

// pgLockTimeout bounds how long a disable waits for a role's row.
const pgLockTimeout = "5s"

// pgOtherDatabases lists the databases other than the one connected to in
// which the listed roles own objects or hold privileges or default
// privileges (pg_shdepend; privileges on shared objects are dbid 0 and
// dropped from any database).
const pgOtherDatabases = `SELECT DISTINCT d.datname FROM pg_shdepend sd
	JOIN pg_database d ON d.oid = sd.dbid
	JOIN pg_roles r ON r.oid = sd.refobjid
	WHERE sd.refclassid = 'pg_authid'::regclass AND r.rolname = ANY($1) AND d.datname <> current_database()
	ORDER BY 1`

// MaxOtherDatabases bounds the other databases one drop visits; beyond it
// the drop fails (and is retried) rather than connect to a thousand.
const MaxOtherDatabases = 32

// dropOwnedElsewhere runs DROP OWNED BY for the listed roles in every other
// database of the server where they own something or hold a privilege,
// connecting there as the configured admin. DROP OWNED acts in the current
// database only: a lessee that ran ALTER DEFAULT PRIVILEGES (which needs no
// right) in another database it may connect to made its role, and every
// role dropped in the same batch, impossible to drop.
func (s *SQL) dropOwnedElsewhere(ctx context.Context, usernames []string) error {
	db, release, err := s.open(ctx)
	if err != nil {
		return describe("look up users", err)
	}
	dbs, err := column(db.QueryContext(ctx, pgOtherDatabases, usernames))
	release()
	if err != nil {
		return describe("look up users' other databases", err)
	}
	if len(dbs) > MaxOtherDatabases {
		return fmt.Errorf("drop users: they hold objects or privileges in %d other databases, more than %d", len(dbs), MaxOtherDatabases)
	}
	for _, name := range dbs {
		other := *s
		other.cfg.Database = name
		odb, release, err := other.open(ctx)
		if err != nil {
			return describe("drop users' objects in another database", err)
		}
		err = other.serialised(ctx, true, func() error {
			present, err := other.presentPG(ctx, odb, usernames)
			if err != nil || len(present) == 0 {
				return err
			}
			_, err = odb.ExecContext(ctx, "DROP OWNED BY "+pgList(present))
			return err
		})
		release()
		if err != nil {
			return describe("drop users' objects in another database", err)
		}
	}
	return nil
}

// terminate ends every session of the listed roles.
func terminate(ctx context.Context, db querier, roles []string) error {
	_, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE usename = ANY($1) AND pid <> pg_backend_pid()`, roles)
	return err
}

// revokeManyStmt is what RevokeMany runs for usernames: empty when none exists.
func (s *SQL) revokeManyStmt(ctx context.Context, db querier, usernames []string) (string, error) {
	batched := s.cfg.RevocationStatement == defaults[s.flavor][1]
	var present []string
	var grants map[string][]string // PostgreSQL, batched: object -> the users holding privileges on it
	var err error
	switch {
	case s.flavor == "mysql":
		present, err = s.presentMySQL(ctx, db, usernames)
	case batched:
		present, grants, err = pgGrants(ctx, db, usernames)
	default:
		present, err = s.presentPG(ctx, db, usernames)
	}
	if err != nil {
		return "", describe("look up users", err)
	}
	if len(present) == 0 {
		return "", nil
	}
	var stmts strings.Builder
	if !batched {
		for _, u := range present {
			st, err := s.render(s.cfg.RevocationStatement, u, "", time.Time{})
			if err != nil {
				return "", err
			}
			stmts.WriteString(st)
			stmts.WriteString("\n")
		}
		return stmts.String(), nil
	}
	// The default statements take lists: one catalog pass for the batch.
	if s.flavor == "mysql" {
		quoted := make([]string, len(present))
		for i, u := range present {
			quoted[i] = "'" + u + "'@'%'"
		}
		return "DROP USER IF EXISTS " + strings.Join(quoted, ", ") + ";", nil
	}
	// DROP OWNED BY a, b, … removes each user's privileges on an object with
	// a REVOKE of its own: for every (user, object) PostgreSQL rewrites the
	// object's whole ACL (the database's holds an entry per live lease) and
	// scans all the object's pg_shdepend rows. One REVOKE per object for the
	// whole batch rewrites each ACL once. DROP OWNED then finds only what is
	// left (objects the users own, privileges granted by another role, other
	// kinds of object), so the end state is the same: no privilege, nothing
	// owned, no role.
	for _, obj := range slices.Sorted(maps.Keys(grants)) {
		stmts.WriteString("REVOKE ALL ON " + obj + " FROM " + pgList(grants[obj]) + ";\n")
	}
	list := pgList(present)
	stmts.WriteString("DROP OWNED BY " + list + "; DROP ROLE IF EXISTS " + list + ";")
	return stmts.String(), nil
}

// pgList quotes safe role names (provider.CheckSafe) as a list.
func pgList(names []string) string {
	quoted := make([]string, len(names))
	for i, u := range names {
		quoted[i] = `"` + u + `"`
	}
	return strings.Join(quoted, ", ")
}

func (s *SQL) presentMySQL(ctx context.Context, db querier, usernames []string) ([]string, error) {
	args := make([]any, len(usernames))
	for i, u := range usernames {
		args[i] = u
	}
	return column(db.QueryContext(ctx, `SELECT DISTINCT User FROM mysql.user WHERE User IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(usernames)), ",")+`)`, args...))
}

func (s *SQL) presentPG(ctx context.Context, db querier, usernames []string) ([]string, error) {
	return column(db.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`, usernames))
}

// column reads a one-column result.
func column(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// pgUserGrants lists the listed roles that exist and, for each, the objects
// of this database (and the database itself) it holds privileges on, named
// as REVOKE takes them; obj is empty for a role without any, and other kinds
// of object are left to DROP OWNED. pg_shdepend is read by its index on the
// role: the CTEs keep a planner with stale catalog statistics (autovacuum
// off) from scanning every role's rows instead, which took 0.4 s for 100
// roles among 10,000 where this takes 1 ms.
const pgUserGrants = `WITH r AS MATERIALIZED (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY($1)),
o AS MATERIALIZED (
	SELECT DISTINCT d.refobjid, d.dbid, d.classid, d.objid FROM pg_shdepend d
	WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = ANY(ARRAY(SELECT oid FROM r)) AND d.deptype = 'a')
SELECT r.rolname, COALESCE(CASE o.classid
	WHEN 'pg_database'::regclass THEN (SELECT 'DATABASE ' || quote_ident(datname) FROM pg_database WHERE oid = o.objid)
	WHEN 'pg_namespace'::regclass THEN (SELECT 'SCHEMA ' || quote_ident(nspname) FROM pg_namespace WHERE oid = o.objid)
	WHEN 'pg_class'::regclass THEN (SELECT CASE WHEN relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || oid::regclass::text
		FROM pg_class WHERE oid = o.objid)
	END, '')
FROM r LEFT JOIN o ON o.refobjid = r.oid AND o.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`

// pgGrants runs pgUserGrants: the roles that exist, and per object the
// roles holding privileges on it.
func pgGrants(ctx context.Context, db querier, usernames []string) ([]string, map[string][]string, error) {
	rows, err := db.QueryContext(ctx, pgUserGrants, usernames)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var present []string
	seen := map[string]bool{}
	grants := map[string][]string{}
	for rows.Next() {
		var u, obj string
		if err := rows.Scan(&u, &obj); err != nil {
			return nil, nil, err
		}
		if !seen[u] {
			seen[u] = true
			present = append(present, u)
		}
		if obj != "" && !slices.Contains(grants[obj], u) {
			grants[obj] = append(grants[obj], u)
		}
	}
	// In name order, so that a batch's statement does not depend on the plan.
	slices.Sort(present)
	for _, users := range grants {
		slices.Sort(users)
	}
	return present, grants, rows.Err()
}

// Renew runs the renew statements (none by default on MySQL).
func (s *SQL) Renew(ctx context.Context, req provider.RenewRequest) error {
	if strings.TrimSpace(s.cfg.RenewStatement) == "" {
		return nil
	}
	stmt, err := s.render(s.cfg.RenewStatement, req.Username, "", req.Expiration)
	if err != nil {
		return err
	}
	return s.exec(ctx, "renew user", stmt)
}

// Targets is the database host.
func (s *SQL) Targets() []string { return []string{s.cfg.Host} }
