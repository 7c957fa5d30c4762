// Package sqldb is the "sql-database" dynamic-secret provider: database users
// created and dropped in PostgreSQL or MySQL/MariaDB from templated statements.
package sqldb

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
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
	{Name: "username", Required: true, Doc: "admin user that creates and drops users"},
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
}

var _ provider.Provider = (*SQL)(nil)
var _ provider.Renewer = (*SQL)(nil)
var _ provider.BatchRevoker = (*SQL)(nil)

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
	return pools.Acquire(key, func() (*sql.DB, error) {
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
		return stdlib.OpenDB(*pc), nil
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
	return sql.OpenDB(conn), nil
}

// describe turns a driver error into text safe to store and show: the
// server's message, with anything shaped like URL credentials removed. The
// admin password is never part of a driver's error text.
func describe(op string, err error) error {
	return fmt.Errorf("%s: %s", op, passwordInURL.ReplaceAllString(err.Error(), "://***@"))
}

var passwordInURL = regexp.MustCompile(`://[^@/\s]*@`)

// pgLock serialises statement runs on one PostgreSQL cluster: concurrent
// GRANT ... ON DATABASE fails with "tuple concurrently updated". The lock is
// transaction-scoped, so it ends with the template's implicit transaction.
const pgLock = "SELECT pg_advisory_xact_lock(7435108);\n"

func (s *SQL) exec(ctx context.Context, op, stmt string) error {
	if s.flavor == "postgres" {
		stmt = pgLock + stmt
	}
	db, release, err := s.open(ctx)
	if err != nil {
		return describe(op, err)
	}
	defer release()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
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
	return s.exec(ctx, "drop user", stmt)
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
	q := `SELECT rolname FROM pg_roles WHERE rolname = ANY($1)`
	args := []any{usernames}
	if s.flavor == "mysql" {
		q = `SELECT DISTINCT User FROM mysql.user WHERE User IN (` + strings.TrimSuffix(strings.Repeat("?,", len(usernames)), ",") + `)`
		args = make([]any, len(usernames))
		for i, u := range usernames {
			args[i] = u
		}
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return describe("look up users", err)
	}
	var present []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return describe("look up users", err)
		}
		present = append(present, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return describe("look up users", err)
	}
	if len(present) == 0 {
		return nil
	}
	var stmts strings.Builder
	if s.cfg.RevocationStatement == defaults[s.flavor][1] {
		// The default statements take lists: one catalog pass for the batch.
		quoted := make([]string, len(present))
		for i, u := range present {
			if s.flavor == "postgres" {
				quoted[i] = `"` + u + `"`
			} else {
				quoted[i] = "'" + u + "'@'%'"
			}
		}
		list := strings.Join(quoted, ", ")
		if s.flavor == "postgres" {
			stmts.WriteString("DROP OWNED BY " + list + "; DROP ROLE IF EXISTS " + list + ";")
		} else {
			stmts.WriteString("DROP USER IF EXISTS " + list + ";")
		}
		return s.exec(ctx, "drop users", stmts.String())
	}
	for _, u := range present {
		st, err := s.render(s.cfg.RevocationStatement, u, "", time.Time{})
		if err != nil {
			return err
		}
		stmts.WriteString(st)
		stmts.WriteString("\n")
	}
	return s.exec(ctx, "drop users", stmts.String())
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
