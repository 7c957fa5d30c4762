package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestDeactivatingAUserEndsItsSessions: a user deactivated or removed in an
// organization loses every session it holds, dashboard and API alike, so a
// stolen session does not come back to life when the user is reactivated
// (before, deactivation only refused the sessions while it lasted). The
// API login's own session can no longer mint organization sessions either.
// The user signs in again.
func TestDeactivatingAUserEndsItsSessions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		const email, pw = "bob@example.com", "bob's long password"
		uid := addUser(t, e, email, pw, "member", "", "")
		var ms struct {
			Users []struct {
				ID   string
				User struct{ ID string }
			}
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil).Decode(t, &ms)
		membership := ""
		for _, m := range ms.Users {
			if m.User.ID == uid {
				membership = m.ID
			}
		}
		if membership == "" {
			t.Fatalf("no membership of %s in %+v", uid, ms)
		}
		path := "/api/v2/organizations/" + e.OrgID + "/memberships/" + membership

		signIn := func() (b *browser, login, org string) {
			b = newBrowser(t, e.URL)
			b.mustLogin(email, pw)
			var l struct{ AccessToken string }
			e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": email, "password": pw}).Decode(t, &l)
			var s struct{ Token string }
			e.Must(t, 200, "POST", "/api/v3/auth/select-organization", l.AccessToken, map[string]string{"organizationId": e.OrgID}).Decode(t, &s)
			return b, l.AccessToken, s.Token
		}
		ended := func(what string, b *browser, login, org string, selectStatus int) {
			t.Helper()
			replay := newBrowser(t, e.URL)
			u, _ := url.Parse(e.URL)
			replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "lockbox_session", Value: b.cookie("lockbox_session").Value, Path: "/"}})
			if p := replay.get("/projects"); p.status != 303 {
				t.Errorf("%s: the dashboard session still works (%d)", what, p.status)
			}
			if r := e.Do(t, "GET", "/api/v1/organization/audit-logs?limit=1", org, nil); r.Status != 401 {
				t.Errorf("%s: the organization session answers %d, want 401", what, r.Status)
			}
			if r := e.Do(t, "POST", "/api/v3/auth/select-organization", login, map[string]string{"organizationId": e.OrgID}); r.Status != selectStatus {
				t.Errorf("%s: the login's session selects the organization with %d, want %d", what, r.Status, selectStatus)
			}
		}

		b, login, org := signIn()
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1", org, nil)
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"isActive": false})
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"isActive": true})
		ended("deactivated, then reactivated", b, login, org, 401)

		// Signed in again, removed: the same.
		b, login, org = signIn()
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1", org, nil)
		e.Must(t, 200, "DELETE", path, e.Token, nil)
		ended("removed", b, login, org, 401)
	})
}
