package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The dashboard scenario logs in through the form and requests a whole
// grid (prepareDashboard checks every cell once); a wrong password is no
// session.
func TestDashboardScenarioLogsInAndServesTheGrid(t *testing.T) {
	_, url, stop, err := start(store.SQLite, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := client.New(url, "")
	boot, err := c.Bootstrap(t.Context(), benchEmail, benchPassword, "Bench")
	if err != nil {
		t.Fatal(err)
	}
	c.Token = boot.Identity.Credentials.Token
	op, err := prepareDashboard(t.Context(), c, url, benchEmail, benchPassword, 150)
	if err != nil {
		t.Fatal(err)
	}
	if err := op(http.DefaultClient); err != nil {
		t.Fatal(err)
	}
	if _, err := dashboardLogin(url, benchEmail, "not the password"); err == nil || !strings.Contains(err.Error(), "no session cookie") {
		t.Fatalf("a wrong password: %v", err)
	}
}
