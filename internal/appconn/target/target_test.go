package target_test

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/appconn/target"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// loopback lets the tests reach the machine's services.
type loopback struct{}

func (loopback) CheckHost(context.Context, string) error { return nil }
func (loopback) CheckAddr(a netip.Addr) error {
	if !a.IsLoopback() {
		return errors.New("not loopback")
	}
	return nil
}

// admin opens a database/sql handle on one of the machine's servers.
func admin(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	testsvc.Need(t, db.Ping(), driver+" at "+dsn)
	return db
}

// mustBeRefused asserts that changing or revoking the connection's own
// principal, spelled as given, is refused before the target is touched.
func mustBeRefused(t *testing.T, app string, c appconn.Credentials, users ...string) {
	t.Helper()
	ctx := t.Context()
	for _, u := range users {
		if err := target.SetPassword(ctx, loopback{}, app, c, "", u, "Changed-Password-1"); !errors.Is(err, target.ErrOwnPrincipal) {
			t.Fatalf("%s: setting the password of the connection's own %q: %v", app, u, err)
		}
		if err := target.Revoke(ctx, loopback{}, app, c, u); !errors.Is(err, target.ErrOwnPrincipal) {
			t.Fatalf("%s: revoking the connection's own %q: %v", app, u, err)
		}
	}
	if err := target.Ping(ctx, loopback{}, app, c); err != nil {
		t.Fatalf("%s: the connection no longer logs in: %v", app, err)
	}
}

// TestTheConnectionsOwnPrincipalIsNeverChanged: each system is asked who
// the connection is, so no spelling of its own user gets a new password or
// is revoked, while another user is changed as asked.
func TestTheConnectionsOwnPrincipalIsNeverChanged(t *testing.T) {
	ctx := t.Context()
	sfx := testsvc.Suffix()
	t.Run("postgres", func(t *testing.T) {
		db := admin(t, "pgx", "postgres://postgres@127.0.0.1:5432/postgres")
		role, other := "tgt_"+sfx, "tgt_other_"+sfx
		for _, r := range []string{role, other} {
			if _, err := db.ExecContext(ctx, `CREATE ROLE "`+r+`" LOGIN CREATEROLE PASSWORD 'Initial-1'`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec(`DROP ROLE IF EXISTS "` + r + `"`) })
		}
		c := appconn.Credentials{Host: "127.0.0.1", Port: 5432, Database: "postgres", Username: role, Password: "Initial-1"}
		mustBeRefused(t, appconn.Postgres, c, role)
		if err := target.SetPassword(ctx, loopback{}, appconn.Postgres, c, "", other, "Changed-Password-1"); err != nil {
			t.Fatalf("another role: %v", err)
		}
	})
	t.Run("mysql", func(t *testing.T) {
		db := admin(t, "mysql", "root:@tcp(127.0.0.1:3306)/")
		user, other := "tgt_"+sfx, "tgt_o_"+sfx
		for _, u := range []string{user, other} {
			if _, err := db.ExecContext(ctx, "CREATE USER '"+u+"'@'%' IDENTIFIED BY 'Initial-1'"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec("DROP USER IF EXISTS '" + u + "'@'%'") })
		}
		if _, err := db.ExecContext(ctx, "GRANT CREATE USER ON *.* TO '"+user+"'@'%'"); err != nil {
			t.Fatal(err)
		}
		c := appconn.Credentials{Host: "127.0.0.1", Port: 3306, Database: "information_schema", Username: user, Password: "Initial-1"}
		mustBeRefused(t, appconn.MySQL, c, user)
		if err := target.SetPassword(ctx, loopback{}, appconn.MySQL, c, "", other, "Changed-Password-1"); err != nil {
			t.Fatalf("another user: %v", err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		host, port := testsvc.Redis(t)
		rd := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { rd.Close() })
		user, other := "tgt-"+sfx, "tgt-other-"+sfx
		if err := rd.Do(ctx, "ACL", "SETUSER", user, "on", ">Initial-1", "~*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rd.Do(context.Background(), "ACL", "DELUSER", user, other) })
		c := appconn.Credentials{Host: host, Port: port, Username: user, Password: "Initial-1"}
		mustBeRefused(t, appconn.Redis, c, user)
		// default is every client's that names no user: never changed,
		// whoever the connection is. (The scope holds a rule Redis refuses,
		// so that were the check gone, ACL SETUSER would fail as a whole and
		// leave the machine's default user alone.)
		for _, conn := range []appconn.Credentials{c, {Host: host, Port: port}} {
			if err := target.SetPassword(ctx, loopback{}, appconn.Redis, conn, "+no-such-command", "default", "Changed-Password-1"); err == nil ||
				!strings.Contains(err.Error(), "default user") {
				t.Fatalf("setting the default user's password as %q: %v", conn.Username, err)
			}
		}
		if err := target.SetPassword(ctx, loopback{}, appconn.Redis, c, "+ping", other, "Changed-Password-1"); err != nil {
			t.Fatalf("another user: %v", err)
		}
	})
	t.Run("ldap", func(t *testing.T) {
		l := testsvc.StartLDAP(t)
		root, err := l.Bind(l.BindDN, l.BindPass)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		self := "uid=rotadm," + l.People
		add := ldap.NewAddRequest(self, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		for _, a := range []string{"uid:rotadm", "cn:rotadm", "sn:rotadm", "userPassword:Initial-1"} {
			k, v, _ := strings.Cut(a, ":")
			add.Attribute(k, []string{v})
		}
		if err := root.Add(add); err != nil {
			t.Fatal(err)
		}
		// Bound as the directory's root: the directory says who that is.
		c := appconn.Credentials{Provider: "openldap", URL: l.URL, DN: l.BindDN, Password: l.BindPass}
		mustBeRefused(t, appconn.LDAP, c, "CN=admin, DC=lockbox, DC=test", `cn=\61dmin,dc=lockbox,dc=test`)
		// Bound as an entry: its DN as the directory names it.
		c = appconn.Credentials{Provider: "openldap", URL: l.URL, DN: self, Password: "Initial-1"}
		mustBeRefused(t, appconn.LDAP, c, "UID=RotAdm, OU=People, DC=lockbox, DC=test", `uid=rot\61dm,ou=people,dc=lockbox,dc=test`)
	})
}

// TestSameDNMatchesAsADirectoryDoes: two spellings a directory takes for
// one entry are the same DN (a second rotation of another project must
// not claim it by spelling it otherwise); two entries are not.
func TestSameDNMatchesAsADirectoryDoes(t *testing.T) {
	base := "cn=build bot,ou=people,dc=lockbox,dc=test"
	for _, same := range []string{
		base,
		"CN=Build Bot,OU=People,DC=lockbox,DC=test",
		"cn=build  bot,ou=people,dc=lockbox,dc=test",
		"cn=build\tbot,ou=people,dc=lockbox,dc=test",
		`cn=\ build bot\ ,ou=people,dc=lockbox,dc=test`,
		"cn = build bot , ou=people, dc=lockbox, dc=test",
		"commonName=build bot,organizationalUnitName=people,domainComponent=lockbox,dc=test",
		"2.5.4.3=build bot,2.5.4.11=people,0.9.2342.19200300.100.1.25=lockbox,dc=test",
		"OID.2.5.4.3=build bot,ou=people,dc=lockbox,dc=test",
		`cn=build\20bot,ou=people,dc=lockbox,dc=test`,
	} {
		if !target.SameDN(base, same) || !target.SameDN(same, base) {
			t.Errorf("%q is not taken for %q", same, base)
		}
	}
	for _, other := range []string{
		"cn=buildbot,ou=people,dc=lockbox,dc=test",
		"cn=build bot2,ou=people,dc=lockbox,dc=test",
		"uid=build bot,ou=people,dc=lockbox,dc=test",
		"cn=build bot,ou=people,dc=lockbox",
		"cn=build bot+uid=x,ou=people,dc=lockbox,dc=test",
		"cn=build bot,ou=other,dc=lockbox,dc=test",
		"",
		"not a dn",
	} {
		if target.SameDN(base, other) || target.SameDN(other, base) {
			t.Errorf("%q is taken for %q", other, base)
		}
	}
	if !target.SameDN("cn=a+uid=b,dc=test", "UID=B + CN=A,dc=test") {
		t.Error("a multi-valued RDN's values in another order")
	}
	if target.SameDN("cn=a+cn=a,dc=x", "cn=a+uid=b,dc=x") || target.SameDN("cn=a+uid=b,dc=x", "cn=a+cn=a,dc=x") {
		t.Error("multi-valued RDNs of other values taken for one another")
	}
}
