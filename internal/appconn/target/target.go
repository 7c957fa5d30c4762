// Package target connects to the systems app connections name (PostgreSQL,
// MySQL/MariaDB, LDAP, Redis) and changes passwords in them for secret
// rotations. Every dial is held to the server's target policy, on the
// address dialled. It is the adapter behind appconn.Dialer and
// rotation.Target.
package target

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// DialTimeout bounds one connection attempt.
const DialTimeout = appconn.DialTimeout

// checkHost applies the policy to the host before any connection.
func checkHost(ctx context.Context, p appconn.Policy, app string, c appconn.Credentials) error {
	return p.CheckHost(ctx, appconn.Host(app, c))
}

// OpenSQL opens a database handle for app (postgres or mysql) as user with
// password (empty: the connection's own), every dial held to p. The caller
// closes it.
func OpenSQL(ctx context.Context, p appconn.Policy, app string, c appconn.Credentials, user, password string) (*sql.DB, error) {
	if err := checkHost(ctx, p, app, c); err != nil {
		return nil, err
	}
	if user == "" {
		user, password = c.Username, c.Password
	}
	var tlsConf *tls.Config
	if c.SSLEnabled {
		var err error
		if tlsConf, err = appconn.TLSConfig(c, c.Host); err != nil {
			return nil, err
		}
	}
	switch app {
	case appconn.Postgres:
		pc, err := pgx.ParseConfig("")
		if err != nil {
			return nil, err
		}
		pc.Host, pc.Port, pc.User, pc.Password, pc.Database = c.Host, uint16(c.Port), user, password, c.Database
		pc.TLSConfig, pc.Fallbacks = tlsConf, nil
		pc.ConnectTimeout = DialTimeout
		pc.DialFunc = provider.DialFunc(p)
		pc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		db := stdlib.OpenDB(*pc)
		db.SetMaxOpenConns(1)
		return db, nil
	case appconn.MySQL:
		mc := mysql.NewConfig()
		mc.User, mc.Passwd, mc.Net, mc.Addr, mc.DBName = user, password, "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), c.Database
		mc.Timeout = DialTimeout
		mc.DialFunc = provider.DialFunc(p)
		mc.TLS = tlsConf
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, err
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(1)
		return db, nil
	}
	return nil, fmt.Errorf("%s is not a SQL app", app)
}

// RedisClient returns a client of the Redis server as user with password
// (empty user: the connection's own). The caller closes it.
func RedisClient(ctx context.Context, p appconn.Policy, c appconn.Credentials, user, password string) (*goredis.Client, error) {
	if err := checkHost(ctx, p, appconn.Redis, c); err != nil {
		return nil, err
	}
	if user == "" {
		user, password = c.Username, c.Password
	}
	var tlsConf *tls.Config
	if c.SSLEnabled {
		var err error
		if tlsConf, err = appconn.TLSConfig(c, c.Host); err != nil {
			return nil, err
		}
	}
	d := provider.NetDialer(p)
	return goredis.NewClient(&goredis.Options{
		Addr:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Username: user, Password: password,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if tlsConf == nil {
				return d.DialContext(ctx, network, addr)
			}
			return (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, network, addr)
		},
		DialTimeout: DialTimeout, ReadTimeout: DialTimeout, WriteTimeout: DialTimeout,
		PoolSize: 1, MaxRetries: 0, DisableIdentity: true,
	}), nil
}

// LDAPBind connects to the LDAP server and binds as dn with password (empty
// dn: the connection's own). The caller closes the connection.
func LDAPBind(ctx context.Context, p appconn.Policy, c appconn.Credentials, dn, password string) (*ldap.Conn, error) {
	if err := checkHost(ctx, p, appconn.LDAP, c); err != nil {
		return nil, err
	}
	if dn == "" {
		dn, password = c.DN, c.Password
	}
	u, err := appconn.LDAPURL(c.URL)
	if err != nil {
		return nil, err
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(provider.NetDialer(p))}
	tlsConf, err := appconn.TLSConfig(c, u.Hostname())
	if err != nil {
		return nil, err
	}
	if u.Scheme == "ldaps" {
		opts = append(opts, ldap.DialWithTLSConfig(tlsConf))
	}
	conn, err := ldap.DialURL(u.Scheme+"://"+u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect: %v", err)
	}
	conn.SetTimeout(DialTimeout)
	if u.Scheme == "ldap" && c.SSLEnabled {
		if err := conn.StartTLS(tlsConf); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS: %v", err)
		}
	}
	if err := conn.Bind(dn, password); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind as %s: %v", dn, err)
	}
	return conn, nil
}

// Ping connects to app with creds and proves them.
func Ping(ctx context.Context, p appconn.Policy, app string, c appconn.Credentials) error {
	switch app {
	case appconn.Postgres, appconn.MySQL:
		db, err := OpenSQL(ctx, p, app, c, "", "")
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	case appconn.Redis:
		cl, err := RedisClient(ctx, p, c, "", "")
		if err != nil {
			return err
		}
		defer cl.Close()
		return cl.Ping(ctx).Err()
	case appconn.LDAP:
		conn, err := LDAPBind(ctx, p, c, "", "")
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return fmt.Errorf("unsupported app %s", app)
}

// SetPassword makes password user's in the target; running it twice with
// the same password is harmless.
func SetPassword(ctx context.Context, p appconn.Policy, app string, admin appconn.Credentials, scope, user, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	switch app {
	case appconn.Postgres, appconn.MySQL:
		db, err := OpenSQL(ctx, p, app, admin, "", "")
		if err != nil {
			return err
		}
		defer db.Close()
		if err := notSQLSelf(ctx, db, app, user); err != nil {
			return err
		}
		stmt := `ALTER ROLE "` + strings.ReplaceAll(user, `"`, `""`) + `" WITH PASSWORD '` + password + `'`
		if app == appconn.MySQL {
			stmt = "ALTER USER '" + user + "'@'%' IDENTIFIED BY '" + password + "'"
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("set the password of %s: %v", user, err)
		}
		return nil
	case appconn.Redis:
		c, err := RedisClient(ctx, p, admin, "", "")
		if err != nil {
			return err
		}
		defer c.Close()
		if err := notRedisSelf(ctx, c, user); err != nil {
			return err
		}
		args := []any{"ACL", "SETUSER", user, "on", "resetpass", ">" + password}
		for _, tok := range strings.Fields(scope) {
			args = append(args, tok)
		}
		if err := c.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("set the password of %s: %v", user, err)
		}
		return nil
	case appconn.LDAP:
		c, err := LDAPBind(ctx, p, admin, "", "")
		if err != nil {
			return err
		}
		defer c.Close()
		if err := notLDAPSelf(c, admin, user); err != nil {
			return err
		}
		m := ldap.NewModifyRequest(user, nil)
		if admin.Provider == "active-directory" {
			m.Replace("unicodePwd", []string{encodeADPassword(password)})
		} else {
			m.Replace("userPassword", []string{password})
		}
		if err := c.Modify(m); err != nil {
			return fmt.Errorf("set the password of %s: %v", user, err)
		}
		return nil
	}
	return fmt.Errorf("unsupported app %s", app)
}

// ErrOwnPrincipal refuses to change the principal the connection itself
// logs in as, however its name is spelled: its new password would land in
// secrets the rotation's readers see, and the connection would stop working.
// Each system is asked who the connection is, at every change.
var ErrOwnPrincipal = errors.New("the connection's own user cannot be rotated by it")

// notSQLSelf refuses user when it is the role or account the connection is
// logged in as (PostgreSQL's current and session user; MySQL's account name,
// at any host).
func notSQLSelf(ctx context.Context, db *sql.DB, app, user string) error {
	q := `SELECT current_user, session_user`
	if app == appconn.MySQL {
		q = `SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1), SUBSTRING_INDEX(USER(), '@', 1)`
	}
	var cur, sess string
	if err := db.QueryRowContext(ctx, q).Scan(&cur, &sess); err != nil {
		return fmt.Errorf("who the connection is: %v", err)
	}
	if user == cur || user == sess {
		return ErrOwnPrincipal
	}
	return nil
}

// notRedisSelf refuses the connection's own ACL user, and default: the user
// of every client that names none.
func notRedisSelf(ctx context.Context, c *goredis.Client, user string) error {
	if user == "default" {
		return fmt.Errorf("the default user cannot be rotated: every client that names no user is it")
	}
	who, err := c.Do(ctx, "ACL", "WHOAMI").Text()
	if err != nil {
		return fmt.Errorf("who the connection is: %v", err)
	}
	if who == user {
		return ErrOwnPrincipal
	}
	return nil
}

// notLDAPSelf refuses user when it names the entry the connection is bound
// as. The directory says who that is (the Who am I? operation, RFC 4532): a
// DN, compared with user as the directory names its entry (so escapes,
// spacing and case do not matter), or on Active Directory a
// DOMAIN\sAMAccountName, compared with the entry's account name. A directory
// that cannot say is compared with the connection's bind DN.
func notLDAPSelf(c *ldap.Conn, admin appconn.Credentials, user string) error {
	target, err := ldap.ParseDN(user)
	if err != nil {
		return fmt.Errorf("the DN %q does not parse: %v", user, err)
	}
	var entryDN *ldap.DN
	var account string
	res, err := c.Search(ldap.NewSearchRequest(user, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(DialTimeout.Seconds()), false,
		"(objectClass=*)", []string{"sAMAccountName"}, nil))
	if err == nil && len(res.Entries) == 1 {
		entryDN, _ = ldap.ParseDN(res.Entries[0].DN)
		account = res.Entries[0].GetAttributeValue("sAMAccountName")
	}
	same := func(d *ldap.DN) bool {
		return d != nil && (sameDN(d, target) || (entryDN != nil && sameDN(d, entryDN)))
	}
	who, err := c.WhoAmI(nil)
	switch {
	case err == nil && strings.HasPrefix(who.AuthzID, "dn:"):
		d, perr := ldap.ParseDN(strings.TrimPrefix(who.AuthzID, "dn:"))
		if same(d) {
			return ErrOwnPrincipal
		}
		if perr == nil {
			return nil
		}
		// Not a DN this parser reads: compare with the bind DN below.
	case err == nil && strings.HasPrefix(who.AuthzID, "u:"):
		name := strings.TrimPrefix(who.AuthzID, "u:")
		if i := strings.LastIndexByte(name, '\\'); i >= 0 {
			name = name[i+1:]
		}
		if account != "" && strings.EqualFold(account, name) {
			return ErrOwnPrincipal
		}
	}
	if d, err := ldap.ParseDN(admin.DN); err == nil && same(d) {
		return ErrOwnPrincipal
	}
	if strings.EqualFold(strings.TrimSpace(admin.DN), strings.TrimSpace(user)) {
		return ErrOwnPrincipal
	}
	return nil
}

// checkPassword refuses a password that could end or escape the quoted
// literal it is sent in (SQL, AD's unicodePwd) or split a Redis argument.
func checkPassword(pw string) error {
	if pw == "" {
		return errors.New("empty password")
	}
	for _, r := range pw {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`'"\`+"`", r) {
			return errors.New("the password holds a character lockbox does not send to a target")
		}
	}
	return nil
}

// Revoke makes the credentials a rotation issued to user stop working, as
// Infisical's revokeCredentials does: databases and LDAP get a random
// password nobody records; a Redis ACL user is reset (off, no password, no
// keys or commands) and its connections killed (Infisical deletes it; the user may be one lockbox did not create, listed
// by the connection's rotationPrincipals, and a revocation takes its
// credential, not the account). Revoking a user that no longer exists is
// success.
func Revoke(ctx context.Context, p appconn.Policy, app string, admin appconn.Credentials, user string) error {
	if app == appconn.Redis {
		c, err := RedisClient(ctx, p, admin, "", "")
		if err != nil {
			return err
		}
		defer c.Close()
		if err := notRedisSelf(ctx, c, user); err != nil {
			return err
		}
		n, err := c.Do(ctx, "ACL", "GETUSER", user).Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("look up the ACL user %s: %v", user, err)
		}
		if err != nil || n == nil {
			return nil // gone
		}
		// reset: off, no password, no keys, channels or commands, so that a
		// later rotation of the name gives only its own scope.
		if err := c.Do(ctx, "ACL", "SETUSER", user, "reset").Err(); err != nil {
			return fmt.Errorf("turn off the ACL user %s: %v", user, err)
		}
		// Its open connections go on until they end: kill them.
		if err := c.Do(ctx, "CLIENT", "KILL", "USER", user).Err(); err != nil {
			return fmt.Errorf("end the connections of the ACL user %s: %v", user, err)
		}
		return nil
	}
	err := SetPassword(ctx, p, app, admin, "", user, rand.Text()+rand.Text())
	if err != nil && gone(app, err) {
		return nil
	}
	return err
}

// gone reports whether err says the user does not exist.
func gone(app string, err error) bool {
	msg := err.Error()
	switch app {
	case appconn.Postgres:
		return strings.Contains(msg, "SQLSTATE 42704") // undefined_object
	case appconn.MySQL:
		return strings.Contains(msg, "Error 1396") // ER_CANNOT_USER
	case appconn.LDAP:
		return strings.Contains(msg, "No Such Object")
	}
	return false
}

// encodeADPassword is unicodePwd's value: the quoted password in UTF-16LE.
func encodeADPassword(p string) string {
	q := `"` + p + `"`
	b := make([]byte, 0, 2*len(q))
	for _, c := range q { // the password alphabet is ASCII
		b = append(b, byte(c), 0)
	}
	return string(b)
}

// SameDN reports whether a and b, parsed, name the same entry as a
// directory matches names (sameDN); false if either does not parse or is
// empty.
func SameDN(a, b string) bool {
	da, err := ldap.ParseDN(a)
	if err != nil || len(da.RDNs) == 0 {
		return false
	}
	db, err := ldap.ParseDN(b)
	return err == nil && sameDN(da, db)
}

// sameDN compares two DNs as LDAP's matching rules do (RFC 4518): escapes
// aside (the parser undoes them), each value without leading or trailing
// space, every run of white space inside it one space, case aside; each
// attribute type by its name, whichever of its names or its OID it is
// written with; a multi-valued RDN's values in any order. A directory takes
// cn=build  bot for the entry cn=build bot, and commonName= or 2.5.4.3= for
// cn=: comparing as written let a second rotation claim an entry another
// project's rotation rotates.
func sameDN(a, b *ldap.DN) bool {
	if len(a.RDNs) != len(b.RDNs) {
		return false
	}
	for i, ra := range a.RDNs {
		rb := b.RDNs[i]
		if len(ra.Attributes) != len(rb.Attributes) {
			return false
		}
		if !sameValues(ra.Attributes, rb.Attributes) || !sameValues(rb.Attributes, ra.Attributes) {
			return false
		}
	}
	return true
}

// sameValues reports whether each of a's type-and-value pairs is one of b's.
func sameValues(a, b []*ldap.AttributeTypeAndValue) bool {
	for _, x := range a {
		if !slices.ContainsFunc(b, func(y *ldap.AttributeTypeAndValue) bool {
			return attrType(x.Type) == attrType(y.Type) && strings.EqualFold(dnValue(x.Value), dnValue(y.Value))
		}) {
			return false
		}
	}
	return true
}

// dnValue is v with white space as LDAP's string matching sees it.
func dnValue(v string) string { return strings.Join(strings.Fields(v), " ") }

// attrTypes maps the other names and OIDs of the attribute types DNs are
// made of (RFC 4519) to their short name.
var attrTypes = map[string]string{
	"commonname": "cn", "2.5.4.3": "cn",
	"surname": "sn", "2.5.4.4": "sn",
	"serialnumber": "serialnumber", "2.5.4.5": "serialnumber",
	"countryname": "c", "2.5.4.6": "c",
	"localityname": "l", "2.5.4.7": "l",
	"stateorprovincename": "st", "2.5.4.8": "st",
	"streetaddress": "street", "2.5.4.9": "street",
	"organizationname": "o", "2.5.4.10": "o",
	"organizationalunitname": "ou", "2.5.4.11": "ou",
	"title": "title", "2.5.4.12": "title",
	"givenname": "givenname", "2.5.4.42": "givenname",
	"userid": "uid", "0.9.2342.19200300.100.1.1": "uid",
	"domaincomponent": "dc", "0.9.2342.19200300.100.1.25": "dc",
	"emailaddress": "email", "1.2.840.113549.1.9.1": "email",
}

// attrType is an attribute type's short name, lower case.
func attrType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	t = strings.TrimPrefix(t, "oid.")
	if n, ok := attrTypes[t]; ok {
		return n
	}
	return t
}

// CheckLogin proves user logs in with password.
func CheckLogin(ctx context.Context, p appconn.Policy, app string, admin appconn.Credentials, user, password string) error {
	switch app {
	case appconn.Postgres, appconn.MySQL:
		db, err := OpenSQL(ctx, p, app, admin, user, password)
		if err != nil {
			return err
		}
		defer db.Close()
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return nil
	case appconn.Redis:
		c, err := RedisClient(ctx, p, admin, user, password)
		if err != nil {
			return err
		}
		defer c.Close()
		// Logged in: a user whose rules do not allow PING is refused it, not the login.
		if err := c.Ping(ctx).Err(); err != nil && !strings.HasPrefix(err.Error(), "NOPERM") {
			return err
		}
		return nil
	case appconn.LDAP:
		c, err := LDAPBind(ctx, p, admin, user, password)
		if err != nil {
			return err
		}
		return c.Close()
	}
	return fmt.Errorf("unsupported app %s", app)
}

// Systems is the adapter: appconn.Dialer and rotation's Target, under one policy.
type Systems struct{ Policy appconn.Policy }

// Ping implements appconn.Dialer.
func (s Systems) Ping(ctx context.Context, app string, c appconn.Credentials) error {
	return Ping(ctx, s.Policy, app, c)
}

// SetPassword implements rotation.Target.
func (s Systems) SetPassword(ctx context.Context, app string, admin appconn.Credentials, scope, user, password string) error {
	return SetPassword(provider.WithChecker(ctx, s.Policy), s.Policy, app, admin, scope, user, password)
}

// Revoke implements rotation.Target.
func (s Systems) Revoke(ctx context.Context, app string, admin appconn.Credentials, user string) error {
	return Revoke(provider.WithChecker(ctx, s.Policy), s.Policy, app, admin, user)
}

// CheckLogin implements rotation.Target.
func (s Systems) CheckLogin(ctx context.Context, app string, admin appconn.Credentials, user, password string) error {
	return CheckLogin(ctx, s.Policy, app, admin, user, password)
}

// SameDN is the package's SameDN.
func (Systems) SameDN(a, b string) bool { return SameDN(a, b) }
