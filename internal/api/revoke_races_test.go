package api_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The tests here force, on PostgreSQL with two nodes, the interleaving of a
// credential being issued with the removal of what issues it: a third
// connection holds a row the issuing transaction needs after it has
// checked its source, the removal starts on the other node, and the hold
// is let go. Whatever order the two then commit in, no credential issued
// by the one outlives the other.

// heldRow is a transaction of a third connection holding a row lock.
type heldRow struct {
	db *sql.DB
	tx *sql.Tx
}

func holdRow(t *testing.T, e *apptest.Env, query string, args ...any) *heldRow {
	t.Helper()
	db, err := sql.Open("pgx", e.DBURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
	return &heldRow{db: db, tx: tx}
}

// waiters waits until n backends of the database wait on a lock.
func (h *heldRow) waiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var c int
		if err := h.db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends wait on a lock, want %d", c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// race runs issue, which waits on the held row after it has checked what
// issues its credential, then remove on another node, which must wait too,
// then lets go of the row; it checks the removal and returns the issuing
// answer.
func (h *heldRow) race(t *testing.T, issue, remove func() apptest.Response) apptest.Response {
	t.Helper()
	issued := make(chan apptest.Response, 1)
	go func() { issued <- issue() }()
	h.waiters(t, 1)
	removed := make(chan apptest.Response, 1)
	go func() { removed <- remove() }()
	h.waiters(t, 2)
	h.tx.Rollback()
	ir, rr := <-issued, <-removed
	if rr.Status != 200 {
		t.Fatalf("removal: %d %s", rr.Status, rr.Body)
	}
	return ir
}

// TestRemovingUniversalAuthRevokesARacingLogin: a login holding its client
// secret when Universal Auth is removed on another node gets a token, but
// the removal revokes it (it revoked first and deleted second, so the token
// the login inserted meanwhile stayed valid for its TTL).
func TestRemovingUniversalAuthRevokesARacingLogin(t *testing.T) {
	a, b := twoNodes(t, store.Postgres)
	p := createProject(t, a, a.Token, map[string]any{"projectName": "race"})
	putSecret(t, a, a.Token, p.ID, "dev", "/", "KEY", "v1")
	id, _ := projectMember(t, a, p.ID, "machine", "viewer")
	ua := "/api/v1/auth/universal-auth/identities/" + id
	var conf struct{ IdentityUniversalAuth struct{ ClientID string } }
	a.Must(t, 200, "POST", ua, a.Token, map[string]any{}).Decode(t, &conf)
	var cs struct{ ClientSecret string }
	a.Must(t, 200, "POST", ua+"/client-secrets", a.Token, map[string]any{}).Decode(t, &cs)

	// The login statement locks the client secret, then notes the login on
	// the membership: held there, it waits holding the secret.
	h := holdRow(t, a, `SELECT 1 FROM org_memberships WHERE identity_id = $1 FOR UPDATE`, id)
	lr := h.race(t, func() apptest.Response {
		return a.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{
			"clientId": conf.IdentityUniversalAuth.ClientID, "clientSecret": cs.ClientSecret})
	}, func() apptest.Response { return b.Do(t, "DELETE", ua, b.Token, nil) })
	if lr.Status != 200 {
		return // refused: nothing issued
	}
	var tok struct{ AccessToken string }
	lr.Decode(t, &tok)
	for _, e := range []*apptest.Env{a, b} {
		if r := e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/"), tok.AccessToken, nil); r.Status != 401 {
			t.Fatalf("a token of a login racing the removal of Universal Auth answers %d, want 401", r.Status)
		}
	}
}

// TestRemovingTokenAuthRevokesARacingToken: a Token Auth token being made
// when Token Auth is removed on another node is either refused or revoked
// by the removal (the token was stored without looking at the
// configuration again).
func TestRemovingTokenAuthRevokesARacingToken(t *testing.T) {
	a, b := twoNodes(t, store.Postgres)
	p := createProject(t, a, a.Token, map[string]any{"projectName": "race"})
	putSecret(t, a, a.Token, p.ID, "dev", "/", "KEY", "v1")
	id, _ := projectMember(t, a, p.ID, "machine", "viewer")
	ta := "/api/v1/auth/token-auth/identities/" + id // attached by projectMember
	// The token's insert checks its identity (a foreign key): held there,
	// it waits after its look at the configuration.
	h := holdRow(t, a, `SELECT 1 FROM identities WHERE id = $1 FOR UPDATE`, id)
	cr := h.race(t, func() apptest.Response {
		return a.Do(t, "POST", ta+"/tokens", a.Token, map[string]any{"name": "racing"})
	},
		func() apptest.Response { return b.Do(t, "DELETE", ta, b.Token, nil) })
	if cr.Status != 200 {
		return
	}
	var tok struct{ AccessToken string }
	cr.Decode(t, &tok)
	if r := b.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/"), tok.AccessToken, nil); r.Status != 401 {
		t.Fatalf("a token made while Token Auth was removed answers %d, want 401", r.Status)
	}
}

// TestLogoutEndsASessionMadeMeanwhile: a session being made from a login's
// session (select-organization) when the user logs out on another node is
// either refused or ended by the logout (it was stored after the logout's
// one statement had read the family, and lived on).
func TestLogoutEndsASessionMadeMeanwhile(t *testing.T) {
	a, b := twoNodes(t, store.Postgres)
	var login struct{ AccessToken string }
	a.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": a.UserEmail, "password": a.Password}).Decode(t, &login)
	var sel struct{ Token string }
	a.Must(t, 200, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": a.OrgID}).Decode(t, &sel)

	// A session's insert checks its user (a foreign key): held there, it
	// waits after its look at the family's first session.
	h := holdRow(t, a, `SELECT 1 FROM users WHERE email = $1 FOR UPDATE`, a.UserEmail)
	mr := h.race(t, func() apptest.Response {
		return a.Do(t, "POST", "/api/v3/auth/select-organization", sel.Token, map[string]string{"organizationId": a.OrgID})
	}, func() apptest.Response {
		return b.Do(t, "POST", "/api/v1/auth/token/revoke", "", map[string]string{"accessToken": login.AccessToken})
	})
	if mr.Status != 200 {
		return
	}
	var s struct{ Token string }
	mr.Decode(t, &s)
	if r := b.Do(t, "GET", "/api/v1/organization/audit-logs?limit=1", s.Token, nil); r.Status != 401 {
		t.Fatalf("a session made while its family was logged out answers %d, want 401", r.Status)
	}
}

// TestDeactivationEndsASessionMadeMeanwhile: a session being made from a
// user's session when the user is deactivated on another node is either
// refused or ended by the deactivation, so it does not work again once the
// user is reactivated.
func TestDeactivationEndsASessionMadeMeanwhile(t *testing.T) {
	a, b := twoNodes(t, store.Postgres)
	const email, pw = "racer@example.com", "a long enough password"
	_, membership := newUser(t, a, email, "member")
	var login struct{ AccessToken string }
	a.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": email, "password": pw}).Decode(t, &login)

	h := holdRow(t, a, `SELECT 1 FROM users WHERE email = $1 FOR UPDATE`, email)
	path := "/api/v2/organizations/" + a.OrgID + "/memberships/" + membership
	mr := h.race(t, func() apptest.Response {
		return a.Do(t, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": a.OrgID})
	}, func() apptest.Response { return b.Do(t, "PATCH", path, b.Token, map[string]any{"isActive": false}) })
	b.Must(t, 200, "PATCH", path, b.Token, map[string]any{"isActive": true})
	if mr.Status != 200 {
		return
	}
	var s struct{ Token string }
	mr.Decode(t, &s)
	if r := b.Do(t, "GET", "/api/v1/organization/audit-logs?limit=1", s.Token, nil); r.Status != 401 {
		t.Fatalf("a session made while its user was deactivated answers %d after reactivation, want 401", r.Status)
	}
}
