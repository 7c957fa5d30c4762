package appconn_test

import (
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/appconn"
)

// TestRedact: whole secrets are replaced, a message holding a piece of one
// (a statement echoed cut short) is withheld, URL credentials are masked.
func TestRedact(t *testing.T) {
	pw := "Xk9!mQ2#vL7pR4*tW8zN3@bF6hJ1cY5d"
	cases := []struct{ in, want string }{
		{"ALTER USER failed near 'IDENTIFIED BY '" + pw + "''", "ALTER USER failed near 'IDENTIFIED BY '***''"},
		{"You have an error in your SQL syntax near 'IDENTIFIED BY '" + pw[:20], "withheld"},
		{"bad modifier '" + pw[10:19] + "'", "withheld"},
		{"dial postgres://admin:hunter2@127.0.0.1:5432/x: refused", "postgres://***@127.0.0.1"},
		{"role \"rot_b\" does not exist", "role \"rot_b\" does not exist"},
	}
	for _, c := range cases {
		got := appconn.Redact(c.in, pw, "admin-secret")
		if !strings.Contains(got, c.want) || strings.Contains(got, pw[:8]) || strings.Contains(got, pw[10:18]) {
			t.Errorf("Redact(%q) = %q, want it to hold %q and no piece of the password", c.in, got, c.want)
		}
	}
}
