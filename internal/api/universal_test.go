package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// uaSetup attaches Universal Auth with cfg to the bootstrap identity and
// returns its client id.
func uaSetup(t *testing.T, e *apptest.Env, cfg map[string]any) string {
	t.Helper()
	var out struct {
		IdentityUniversalAuth struct{ ClientID string }
	}
	e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token, cfg).Decode(t, &out)
	return out.IdentityUniversalAuth.ClientID
}

func newSecret(t *testing.T, e *apptest.Env, body map[string]any) (secret, id string) {
	t.Helper()
	var out struct {
		ClientSecret     string
		ClientSecretData struct{ ID string }
	}
	e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/client-secrets", e.Token, body).Decode(t, &out)
	return out.ClientSecret, out.ClientSecretData.ID
}

type loginOut struct {
	AccessToken       string
	ExpiresIn         int64
	AccessTokenMaxTTL int64
	TokenType         string
}

func login(t *testing.T, e *apptest.Env, clientID, secret string) (apptest.Response, loginOut) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID, "clientSecret": secret})
	var out loginOut
	if r.Status == 200 {
		r.Decode(t, &out)
	}
	return r, out
}

func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func TestUniversalAuthShapesAndLogin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		ua := e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token, map[string]any{}).JSON(t)["identityUniversalAuth"].(map[string]any)
		want := map[string]any{"accessTokenTTL": 2592000.0, "accessTokenMaxTTL": 2592000.0, "accessTokenNumUsesLimit": 0.0,
			"accessTokenPeriod": 0.0, "lockoutEnabled": true, "lockoutThreshold": 3.0, "lockoutDurationSeconds": 300.0,
			"lockoutCounterResetSeconds": 30.0, "identityId": e.IdentityID}
		for k, v := range want {
			if ua[k] != v {
				t.Errorf("%s = %v, want %v", k, ua[k], v)
			}
		}
		ips := ua["clientSecretTrustedIps"].([]any)
		if len(ips) != 2 || ips[0].(map[string]any)["ipAddress"] != "0.0.0.0" || ips[0].(map[string]any)["prefix"] != 0.0 {
			t.Errorf("trusted IPs %v", ips)
		}
		clientID := ua["clientId"].(string)
		assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token, map[string]any{}), 400, "BadRequest")

		r := e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/client-secrets", e.Token,
			map[string]any{"description": "ci", "numUsesLimit": 0, "ttl": 0})
		var raw map[string]json.RawMessage
		r.Decode(t, &raw)
		var data map[string]any
		json.Unmarshal(raw["clientSecretData"], &data)
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		wantKeys := []string{"clientSecretNumUses", "clientSecretNumUsesLimit", "clientSecretPrefix", "clientSecretTTL", "createdAt",
			"description", "id", "identityUAId", "isClientSecretRevoked", "updatedAt"}
		if len(raw) != 2 || !slices.Equal(keys, wantKeys) {
			t.Fatalf("client secret response keys %v / %v", keys, raw)
		}
		var secret string
		json.Unmarshal(raw["clientSecret"], &secret)
		if len(secret) != 64 || data["clientSecretPrefix"] != secret[:4] {
			t.Fatalf("secret %q prefix %v", secret, data["clientSecretPrefix"])
		}

		for _, path := range []string{"/api/v1/auth/universal-auth/login", "/api/v1/auth/universal-auth/login/"} {
			r := e.Must(t, 200, "POST", path, "", map[string]string{"clientId": clientID, "clientSecret": secret})
			var out loginOut
			r.Decode(t, &out)
			if out.TokenType != "Bearer" || out.ExpiresIn != 2592000 || out.AccessTokenMaxTTL != 2592000 || out.AccessToken == "" {
				t.Fatalf("login %+v", out)
			}
			c := jwtClaims(t, out.AccessToken)
			if c["exp"] == nil || c["authTokenType"] != "identityAccessToken" || c["identityId"] != e.IdentityID {
				t.Fatalf("claims %v", c)
			}
			det := e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil).JSON(t)
			if det["identityDetails"].(map[string]any)["organization"].(map[string]any)["id"] != e.OrgID {
				t.Fatalf("details %v", det)
			}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID, "clientSecret": strings.Repeat("0", 64)}), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": "not-a-uuid", "clientSecret": secret}), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID}), 422, "ValidationFailure")

		var list struct{ ClientSecretData []map[string]any }
		e.Must(t, 200, "GET", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/client-secrets", e.Token, nil).Decode(t, &list)
		if len(list.ClientSecretData) != 1 || list.ClientSecretData[0]["clientSecretNumUses"] != 2.0 {
			t.Fatalf("list %v", list)
		}
		for _, v := range list.ClientSecretData[0] {
			if v == secret {
				t.Fatal("list returns the secret")
			}
		}
	})
}

func TestClientSecretUseLimitIsExactUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"lockoutEnabled": false})
		secret, _ := newSecret(t, e, map[string]any{"numUsesLimit": 5})
		const n = 200
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, _ := login(t, e, clientID, secret)
				statuses[i] = r.Status
			})
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		if count[200] != 5 || count[401] != n-5 {
			t.Fatalf("statuses %v, want exactly 5 x 200 and %d x 401", count, n-5)
		}
	})
}

func TestAccessTokenUseLimitIsExactUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"accessTokenNumUsesLimit": 7})
		secret, _ := newSecret(t, e, map[string]any{})
		_, out := login(t, e, clientID, secret)
		const n = 60
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil).Status })
		}
		wg.Wait()
		count := map[int]int{}
		for _, s := range statuses {
			count[s]++
		}
		if count[200] != 7 || count[401] != n-7 {
			t.Fatalf("statuses %v, want exactly 7 x 200", count)
		}
	})
}

func TestRevocationCascades(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{})
		s1, id1 := newSecret(t, e, map[string]any{})
		s2, _ := newSecret(t, e, map[string]any{})
		_, t1 := login(t, e, clientID, s1)
		_, t2 := login(t, e, clientID, s2)
		base := "/api/v1/auth/universal-auth/identities/" + e.IdentityID
		got := e.Must(t, 200, "POST", base+"/client-secrets/"+id1+"/revoke", e.Token, nil).JSON(t)
		if got["clientSecretData"].(map[string]any)["isClientSecretRevoked"] != true {
			t.Fatalf("revoke answer %v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", t1.AccessToken, nil), 401, "UnauthorizedError")
		e.Must(t, 200, "GET", "/api/v1/identities/details", t2.AccessToken, nil)
		if r, _ := login(t, e, clientID, s1); r.Status != 401 {
			t.Fatalf("revoked secret logs in: %d", r.Status)
		}
		// Removing Universal Auth revokes every token issued through it, at once.
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", t2.AccessToken, nil), 401, "UnauthorizedError")
		if r, _ := login(t, e, clientID, s2); r.Status != 401 {
			t.Fatalf("login after removal: %d", r.Status)
		}
		// The bootstrap token (token auth) is unaffected.
		e.Must(t, 200, "GET", "/api/v1/identities/details", e.Token, nil)
	})
}

func TestLockoutHoldsAndClears(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"lockoutThreshold": 3, "lockoutDurationSeconds": 300})
		secret, _ := newSecret(t, e, map[string]any{})
		for range 3 {
			if r, _ := login(t, e, clientID, strings.Repeat("f", 64)); r.Status != 401 {
				t.Fatalf("wrong secret: %d", r.Status)
			}
		}
		r, _ := login(t, e, clientID, secret)
		m := assertError(t, r, 401, "UnauthorizedError")
		if !strings.Contains(m["message"].(string), "locked") {
			t.Fatalf("message %v", m["message"])
		}
		var cleared struct{ Deleted int }
		e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/clear-lockouts", e.Token, nil).Decode(t, &cleared)
		if cleared.Deleted != 1 {
			t.Fatalf("cleared %d", cleared.Deleted)
		}
		if r, _ := login(t, e, clientID, secret); r.Status != 200 {
			t.Fatalf("after clear: %d %s", r.Status, r.Body)
		}
		// A success resets the counter: two failures then a success then two failures do not lock.
		for range 2 {
			login(t, e, clientID, strings.Repeat("f", 64))
		}
		login(t, e, clientID, secret)
		for range 2 {
			login(t, e, clientID, strings.Repeat("f", 64))
		}
		if r, _ := login(t, e, clientID, secret); r.Status != 200 {
			t.Fatalf("counter not reset by success: %d", r.Status)
		}
	})
}

// TestLockoutIsExactUnderConcurrency: with threshold 3, of many concurrent
// wrong-secret logins exactly 3 are checked against the secrets and fail as
// invalid; every other one is refused as locked.
func TestLockoutIsExactUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"lockoutThreshold": 3, "lockoutDurationSeconds": 300,
			"lockoutCounterResetSeconds": 300})
		secret, _ := newSecret(t, e, map[string]any{})
		const n = 20
		msgs := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				r, _ := login(t, e, clientID, strings.Repeat("f", 64))
				if r.Status != 401 {
					msgs[i] = fmt.Sprintf("status %d", r.Status)
					return
				}
				msgs[i], _ = r.JSON(t)["message"].(string)
			})
		}
		close(start)
		wg.Wait()
		count := map[string]int{}
		for _, m := range msgs {
			count[m]++
		}
		const locked = "This identity auth method is temporarily locked, please try again later"
		if count["Invalid credentials"] != 3 || count[locked] != n-3 {
			t.Fatalf("answers %v, want exactly 3 x invalid credentials and %d x locked", count, n-3)
		}
		if r, _ := login(t, e, clientID, secret); r.Status != 401 {
			t.Fatalf("right secret while locked: %d", r.Status)
		}
	})
}

// TestLockoutNotCountedForUsedUpSecret: a right but used-up secret is not a
// guess, so it does not count toward the lockout.
func TestLockoutNotCountedForUsedUpSecret(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"lockoutThreshold": 2, "lockoutDurationSeconds": 300})
		used, _ := newSecret(t, e, map[string]any{"numUsesLimit": 1})
		good, _ := newSecret(t, e, map[string]any{})
		if r, _ := login(t, e, clientID, used); r.Status != 200 {
			t.Fatalf("first use: %d", r.Status)
		}
		for range 3 {
			r, _ := login(t, e, clientID, used)
			if m := assertError(t, r, 401, "UnauthorizedError"); !strings.Contains(m["message"].(string), "usage limit") {
				t.Fatalf("used-up secret: %v", m["message"])
			}
		}
		login(t, e, clientID, strings.Repeat("f", 64))
		if r, _ := login(t, e, clientID, good); r.Status != 200 {
			t.Fatalf("one wrong secret below threshold 2 locked: %d %s", r.Status, r.Body)
		}
	})
}

func TestUniversalAuthValidation(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	base := "/api/v1/auth/universal-auth/identities/" + e.IdentityID
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"accessTokenTTL": 600, "accessTokenMaxTTL": 60}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"lockoutThreshold": 99}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "300.1.1.1"}}}), 400, "BadRequest")
	assertError(t, e.Do(t, "PATCH", base, e.Token, map[string]any{"accessTokenTTL": 5}), 400, "BadRequest") // not attached
	assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/identities/00000000-0000-0000-0000-000000000000", e.Token, map[string]any{}), 404, "NotFound")
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"accessTokenTTL": 100, "accessTokenMaxTTL": 200})
	// Lowering only the max TTL below the stored TTL is caught.
	assertError(t, e.Do(t, "PATCH", base, e.Token, map[string]any{"accessTokenMaxTTL": 50}), 422, "ValidationFailure")
	got := e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenMaxTTL": 150}).JSON(t)["identityUniversalAuth"].(map[string]any)
	if got["accessTokenTTL"] != 100.0 || got["accessTokenMaxTTL"] != 150.0 {
		t.Fatalf("patched %v", got)
	}
	assertError(t, e.Do(t, "POST", base+"/client-secrets", e.Token, map[string]any{"ttl": -1}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "POST", base+"/client-secrets", e.Token, map[string]any{"numUsesLimit": 1.5}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "GET", base+"/client-secrets/nope", e.Token, nil), 404, "NotFound")
}

func TestTrustedIPsRestrictLogin(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	clientID := uaSetup(t, e, map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}})
	secret, _ := newSecret(t, e, map[string]any{})
	r, _ := login(t, e, clientID, secret)
	assertError(t, r, 403, "ForbiddenError")
	e.Must(t, 200, "PATCH", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token,
		map[string]any{"clientSecretTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}},
			"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.1.2.3/32"}}})
	r, out := login(t, e, clientID, secret)
	if r.Status != 200 {
		t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
	}
	assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 403, "ForbiddenError")
}

func TestClientSecretTTLAndListing(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	clientID := uaSetup(t, e, map[string]any{"lockoutEnabled": false})
	short, _ := newSecret(t, e, map[string]any{"ttl": 1})
	newSecret(t, e, map[string]any{"numUsesLimit": 1})
	time.Sleep(1100 * time.Millisecond)
	r, _ := login(t, e, clientID, short)
	if m := assertError(t, r, 401, "UnauthorizedError"); !strings.Contains(fmt.Sprint(m["message"]), "expired") {
		t.Fatalf("message %v", m["message"])
	}
	var list struct{ ClientSecretData []map[string]any }
	e.Must(t, 200, "GET", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/client-secrets", e.Token, nil).Decode(t, &list)
	if len(list.ClientSecretData) != 1 {
		t.Fatalf("expired secret still listed: %v", list)
	}
}

func TestRenewNeverPassesMaxTTLAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"accessTokenTTL": 3600, "accessTokenMaxTTL": 7200})
		secret, _ := newSecret(t, e, map[string]any{})
		_, tok := login(t, e, clientID, secret)
		var renewed loginOut
		e.Must(t, 200, "POST", "/api/v1/auth/token/renew", "", map[string]string{"accessToken": tok.AccessToken}).Decode(t, &renewed)
		if renewed.ExpiresIn != 3600 || renewed.AccessTokenMaxTTL != 7200 {
			t.Fatalf("renewed %+v", renewed)
		}
		firstRenewal := renewed
		// Lower the max TTL of the config: existing tokens keep theirs, so use a
		// fresh configuration whose max TTL is shorter than its TTL window.
		e.Must(t, 200, "PATCH", "/api/v1/auth/universal-auth/identities/"+e.IdentityID, e.Token, map[string]any{"accessTokenTTL": 60, "accessTokenMaxTTL": 61})
		_, short := login(t, e, clientID, secret)
		time.Sleep(1100 * time.Millisecond)
		e.Must(t, 200, "POST", "/api/v1/auth/token/renew", "", map[string]string{"accessToken": short.AccessToken}).Decode(t, &renewed)
		if renewed.ExpiresIn >= 60 || renewed.ExpiresIn < 55 {
			t.Fatalf("renewal near max TTL issued %d s; want a shorter token (< 60)", renewed.ExpiresIn)
		}
		exp, iat := jwtClaims(t, renewed.AccessToken)["exp"].(float64), jwtClaims(t, renewed.AccessToken)["iat"].(float64)
		if int64(exp-iat) != renewed.ExpiresIn {
			t.Fatalf("exp-iat %v != expiresIn %d", exp-iat, renewed.ExpiresIn)
		}
		// Revoke by body: every copy of the token stops working at once.
		e.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]string{"accessToken": tok.AccessToken})
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", tok.AccessToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", firstRenewal.AccessToken, nil), 401, "UnauthorizedError")
		e.Must(t, 200, "GET", "/api/v1/identities/details", renewed.AccessToken, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/auth/token/revoke", "", map[string]string{"accessToken": tok.AccessToken}), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "POST", "/api/v1/auth/token/renew", "", map[string]string{"accessToken": "garbage"}), 403, "TokenError")
	})
}

// A periodic token's JWT lives its period, but the token stops
// authenticating at its TTL unless renewed before; renewing it after that
// is refused, as Infisical does, or a dead token would come back.
func TestPeriodicTokenPastItsTTLIsNotRenewed(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	clientID := uaSetup(t, e, map[string]any{"accessTokenTTL": 4, "accessTokenMaxTTL": 4, "accessTokenPeriod": 3600})
	secret, _ := newSecret(t, e, map[string]any{})
	_, live := login(t, e, clientID, secret)
	_, dead := login(t, e, clientID, secret)
	if live.ExpiresIn != 3600 {
		t.Fatalf("periodic token issued for %d s, want its period", live.ExpiresIn)
	}
	// Renewed within its TTL, a token lives on for another TTL. (Halfway,
	// so that a slow machine has half a TTL of margin either way.)
	time.Sleep(2000 * time.Millisecond)
	var renewed loginOut
	e.Must(t, 200, "POST", "/api/v1/auth/token/renew", "", map[string]string{"accessToken": live.AccessToken}).Decode(t, &renewed)
	time.Sleep(2200 * time.Millisecond)
	e.Must(t, 200, "GET", "/api/v1/identities/details", renewed.AccessToken, nil)
	assertError(t, e.Do(t, "GET", "/api/v1/identities/details", dead.AccessToken, nil), 401, "UnauthorizedError")
	m := assertError(t, e.Do(t, "POST", "/api/v1/auth/token/renew", "", map[string]string{"accessToken": dead.AccessToken}), 401, "UnauthorizedError")
	if m["message"] != "Failed to renew MI access token due to TTL expiration" {
		t.Fatalf("message %v", m["message"])
	}
	assertError(t, e.Do(t, "GET", "/api/v1/identities/details", dead.AccessToken, nil), 401, "UnauthorizedError")
}

func TestLockoutHoldsAcrossServerProcesses(t *testing.T) {
	a := apptest.Bootstrapped(t, store.Postgres)
	b := apptest.Start(t, store.Postgres, apptest.Options{Share: a})
	clientID := uaSetup(t, a, map[string]any{"lockoutThreshold": 2})
	secret, _ := newSecret(t, a, map[string]any{})
	login(t, a, clientID, strings.Repeat("f", 64))
	login(t, b, clientID, strings.Repeat("f", 64))
	for _, e := range []*apptest.Env{a, b} {
		r, _ := login(t, e, clientID, secret)
		if m := assertError(t, r, 401, "UnauthorizedError"); !strings.Contains(fmt.Sprint(m["message"]), "locked") {
			t.Fatalf("not locked on %s: %v", e.URL, m["message"])
		}
	}
	// A token issued by one node is honoured, and its revocation seen, by the other.
	e := a
	e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/clear-lockouts", e.Token, nil)
	_, tok := login(t, a, clientID, secret)
	b.Must(t, 200, "GET", "/api/v1/identities/details", tok.AccessToken, nil)
	a.Must(t, 200, "POST", "/api/v1/auth/token/revoke", "", map[string]string{"accessToken": tok.AccessToken})
	assertError(t, b.Do(t, "GET", "/api/v1/identities/details", tok.AccessToken, nil), 401, "UnauthorizedError")
}

// loginMethod is one login method of its own identity with a token it
// issued: its configuration's path and the token.
type loginMethod struct{ name, config, token string }

// threeLoginMethods configures the three kinds of login-method settings
// (Universal Auth on the bootstrap identity, Token Auth and JWT Auth on new
// members) and logs in with each.
func threeLoginMethods(t *testing.T, e *apptest.Env) []loginMethod {
	t.Helper()
	clientID := uaSetup(t, e, map[string]any{})
	secret, _ := newSecret(t, e, map[string]any{})
	_, ua := login(t, e, clientID, secret)
	taID, taTok := e.NewIdentity(t, "token-auth-"+randHex(3), "member")
	jwtID, _ := e.NewIdentity(t, "jwt-"+randHex(3), "member")
	signer := newTokenSigner(t, "ec", "")
	jcfg := boundedJWTConfig()
	jcfg["configurationType"], jcfg["publicKeys"] = "static", []string{signer.PublicPEM(t)}
	e.Must(t, 200, "POST", "/api/v1/auth/jwt-auth/identities/"+jwtID, e.Token, jcfg)
	r, jwtTok := methodLogin(t, e, "jwt-auth", jwtID, signer.Sign(t, workloadClaims()))
	if r.Status != 200 {
		t.Fatalf("jwt login: %d %s", r.Status, r.Body)
	}
	return []loginMethod{
		{"universal-auth", "/api/v1/auth/universal-auth/identities/" + e.IdentityID, ua.AccessToken},
		{"token-auth", "/api/v1/auth/token-auth/identities/" + taID, taTok},
		{"jwt-auth", "/api/v1/auth/jwt-auth/identities/" + jwtID, jwtTok.AccessToken},
	}
}

// Trusted IPs are checked against the login method's configuration as it is
// now, as Infisical does: narrowing them refuses the tokens already issued,
// on every node at once, for Universal Auth, Token Auth and the platform
// methods alike (three tables).
func TestNarrowedTrustedIPsReachIssuedTokens(t *testing.T) {
	a := apptest.Bootstrapped(t, store.Postgres)
	b := apptest.Start(t, store.Postgres, apptest.Options{Share: a})
	e := a
	for _, c := range threeLoginMethods(t, e) {
		for _, n := range []*apptest.Env{a, b} { // both nodes hold the token in their caches
			n.Must(t, 200, "GET", "/api/v1/identities/details", c.token, nil)
		}
		e.Must(t, 200, "PATCH", c.config, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.1.2.3/32"}}})
		for _, n := range []*apptest.Env{b, a} {
			if r := n.Do(t, "GET", "/api/v1/identities/details", c.token, nil); r.Status != 403 {
				t.Fatalf("%s: a token issued before its trusted IPs were narrowed: %d %s", c.name, r.Status, r.Body)
			}
		}
		e.Must(t, 200, "PATCH", c.config, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.0/8"}}})
		b.Must(t, 200, "GET", "/api/v1/identities/details", c.token, nil)
	}
}

// Concurrent changes of one login method's settings all stay, for the three
// kinds of configuration: a request writes only the configuration as it
// read it, else reads it again. Before, each wrote the whole row it had
// read, so a use-limit change could undo a narrowed trusted-IP list.
func TestConcurrentAuthConfigChangesLoseNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		for _, m := range threeLoginMethods(t, e) {
			config := m.config
			for round := range 4 {
				ip := fmt.Sprintf("10.9.%d.1", round)
				var wg sync.WaitGroup
				status := make(chan int, 6)
				for i := range 6 {
					body := map[string]any{"accessTokenNumUsesLimit": 10*round + i}
					if i == 0 {
						body = map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": ip + "/32"}}}
					}
					wg.Go(func() { status <- e.Do(t, "PATCH", config, e.Token, body).Status })
				}
				wg.Wait()
				close(status)
				for s := range status {
					if s != 200 {
						t.Fatalf("%s round %d: a PATCH answered %d", config, round, s)
					}
				}
				if body := string(e.Must(t, 200, "GET", config, e.Token, nil).Body); !strings.Contains(body, `"`+ip+`"`) {
					t.Fatalf("%s round %d: trusted IPs lost to a concurrent change: %s", config, round, body)
				}
			}
		}
	})
}

// TestUniversalAuthRoutesHideWhichIdentitiesExist: a caller who may not
// read identities gets 403 from the Universal Auth routes whether or not
// the identity exists (it got 403 for one that does and 404 for a random
// id), as from the identity routes themselves.
func TestUniversalAuthRoutesHideWhichIdentitiesExist(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	_, tok := e.NewIdentity(t, "outsider", "no-access")
	missing := "01a23cbe-4063-794b-bbd2-e410fd255dc8"
	for _, id := range []string{e.IdentityID, missing} {
		for _, path := range []string{"/api/v1/auth/universal-auth/identities/" + id, "/api/v1/auth/universal-auth/identities/" + id + "/client-secrets"} {
			if r := e.Do(t, "GET", path, tok, nil); r.Status != 403 {
				t.Fatalf("GET %s as a caller who may not read identities: %d", path, r.Status)
			}
		}
	}
}

// TestClientSecretsPastTheBoundAre400: over HTTP, the client secret past
// identity.MaxClientSecrets that can log in is a 400 naming the bound (not
// a 5xx, and nothing stored: the list still holds the bound), and one more
// can be made once one is revoked; a description past
// identity.MaxClientSecretDescription is a 422 (the list answers every one).
func TestClientSecretsPastTheBoundAre400(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	uaSetup(t, e, map[string]any{})
	base := "/api/v1/auth/universal-auth/identities/" + e.IdentityID + "/client-secrets"
	var list struct{ ClientSecretData []map[string]any }
	e.Must(t, 200, "GET", base, e.Token, nil).Decode(t, &list)
	var last string
	for i := len(list.ClientSecretData); i < identity.MaxClientSecrets; i++ {
		_, last = newSecret(t, e, map[string]any{"description": fmt.Sprint("s", i)})
	}
	long := map[string]any{"description": strings.Repeat("d", identity.MaxClientSecretDescription+1)}
	assertError(t, e.Do(t, "POST", base, e.Token, long), 422, "ValidationFailure")
	r := assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"description": "one more"}), 400, "BadRequest")
	if !strings.Contains(fmt.Sprint(r["message"]), fmt.Sprint("at most ", identity.MaxClientSecrets)) {
		t.Fatalf("the refusal: %v", r)
	}
	e.Must(t, 200, "GET", base, e.Token, nil).Decode(t, &list)
	if len(list.ClientSecretData) != identity.MaxClientSecrets {
		t.Fatalf("%d client secrets listed after the refusal, want %d", len(list.ClientSecretData), identity.MaxClientSecrets)
	}
	e.Must(t, 200, "POST", base+"/"+last+"/revoke", e.Token, nil)
	assertError(t, e.Do(t, "POST", base, e.Token, long), 422, "ValidationFailure") // not stored either
	newSecret(t, e, map[string]any{"description": strings.Repeat("d", identity.MaxClientSecretDescription)})
}
