package appconn_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/appconn/target"
)

// TestListsMatchesWholeNamesAndNeverCrossesADNSeparator: a literal entry is
// one principal (exactly for databases, where APP_X and app_x are two
// roles; for LDAP the same entry however spelled), a
// * matches letters, digits and _ . @ - and space only, so a pattern for
// the entries under one branch cannot name an entry outside it through an
// escaped comma, and a pattern matches the whole name, not a part.
func TestListsMatchesWholeNamesAndNeverCrossesADNSeparator(t *testing.T) {
	db := appconn.Connection{App: appconn.Postgres, RotationPrincipals: []string{"app_*", "reporting"}}
	dir := appconn.Connection{App: appconn.LDAP, RotationPrincipals: []string{"uid=*,ou=apps,dc=example,dc=com", "cn=Build Bot,ou=people,dc=example,dc=com"}}
	none := appconn.Connection{App: appconn.Postgres}
	cases := []struct {
		c    appconn.Connection
		name string
		want bool
	}{
		{db, "app_orders", true},
		{db, "APP_orders", false}, // another role
		{db, "app_", true},
		{db, "reporting", true},
		{db, "Reporting", false},
		{db, "reporting2", false},
		{db, "postgres", false},
		{db, "my_app_orders", false},
		{db, "app_orders;drop", false},
		{none, "app_orders", false},
		{none, "", false},
		{dir, "uid=svc-1,ou=apps,dc=example,dc=com", true},
		{dir, "UID=svc.1,OU=apps,DC=example,DC=com", true},
		{dir, `uid=x\,ou=apps,dc=example,dc=com`, false},
		{dir, "uid=admin,ou=people,dc=example,dc=com,ou=apps,dc=example,dc=com", false},
		{dir, "uid=a+cn=b,ou=apps,dc=example,dc=com", false},
		{dir, "uid=svc,ou=apps,dc=example,dc=org", false},
		{dir, "cn=Build Bot, ou=people, dc=example, dc=com", true},
		{dir, "cn=Build Bot2,ou=people,dc=example,dc=com", false},
	}
	for _, tc := range cases {
		if got := tc.c.Lists(tc.name, target.SameDN); got != tc.want {
			t.Errorf("%v lists %q: %v, want %v", tc.c.RotationPrincipals, tc.name, got, tc.want)
		}
	}
}

// TestSameTarget: connections reach the same server when app, host (any
// case, a trailing dot) and port are the same, whichever database they
// name; an LDAP URL's port is its scheme's when left out.
func TestSameTarget(t *testing.T) {
	pg := func(host string, port int, db string) appconn.Connection {
		return appconn.Connection{App: appconn.Postgres, Credentials: appconn.Credentials{Host: host, Port: port, Database: db}}
	}
	ldap := func(u string) appconn.Connection {
		return appconn.Connection{App: appconn.LDAP, Credentials: appconn.Credentials{URL: u}}
	}
	for _, c := range []struct {
		a, b appconn.Connection
		want bool
	}{
		{pg("db.example.com", 5432, "orders"), pg("DB.example.com.", 5432, "billing"), true},
		{pg("db.example.com", 5432, "orders"), pg("db.example.com", 5433, "orders"), false},
		{pg("db.example.com", 5432, "orders"), pg("db2.example.com", 5432, "orders"), false},
		{pg("::ffff:127.0.0.1", 5432, "a"), pg("127.0.0.1", 5432, "b"), true},
		{pg("0:0::1", 5432, "a"), pg("[::1]", 5432, "b"), true},
		{pg("db.example.com", 3306, "x"), appconn.Connection{App: appconn.MySQL, Credentials: appconn.Credentials{Host: "db.example.com", Port: 3306}}, false},
		{ldap("ldap://dir.example.com"), ldap("ldap://DIR.example.com:389/"), true},
		{ldap("ldaps://dir.example.com"), ldap("ldap://dir.example.com"), false},
		{ldap("ldaps://dir.example.com"), ldap("ldaps://dir.example.com:636"), true},
	} {
		if got := appconn.SameTarget(c.a, c.b); got != c.want {
			t.Errorf("SameTarget(%+v, %+v) = %v, want %v", c.a.Credentials, c.b.Credentials, got, c.want)
		}
	}
}
