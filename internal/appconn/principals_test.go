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
