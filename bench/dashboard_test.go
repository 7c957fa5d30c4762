package main

import (
	"net/http"
	"strings"
	"testing"
)

// The dashboard scenario logs in through the form and requests a whole
// grid (prepareDashboard checks every cell once); a wrong password is no
// session.
func TestDashboardScenarioLogsInAndServesTheGrid(t *testing.T) {
	url, c := testServer(t)
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
