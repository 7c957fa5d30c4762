package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func TestIdentityCRUDAndTerraformShapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		var created struct {
			Identity struct {
				ID, Name, OrgID     string
				HasDeleteProtection bool
				AuthMethods         []string
				Metadata            []struct{ ID, Key, Value string }
			}
		}
		e.Must(t, 200, "POST", "/api/v1/identities", e.Token, map[string]any{"name": " ci-runner ", "organizationId": e.OrgID,
			"role": "member", "hasDeleteProtection": true, "metadata": []map[string]string{{"key": "team", "value": "infra"}}}).Decode(t, &created)
		id := created.Identity.ID
		if created.Identity.Name != "ci-runner" || created.Identity.OrgID != e.OrgID || !created.Identity.HasDeleteProtection ||
			len(created.Identity.AuthMethods) != 0 || len(created.Identity.Metadata) != 1 || created.Identity.Metadata[0].Key != "team" {
			t.Fatalf("created %+v", created)
		}
		// The nested shape Terraform reads.
		var got struct {
			Identity struct {
				Role     string
				OrgID    string
				Metadata []struct{ Key, Value string }
				Identity struct {
					ID, Name            string
					HasDeleteProtection bool
					AuthMethods         []string
				}
			}
		}
		e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+id, e.Token, map[string]any{})
		e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+id, e.Token, map[string]any{})
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &got)
		gi := got.Identity
		if gi.Role != "member" || gi.Identity.ID != id || gi.Identity.Name != "ci-runner" || !gi.Identity.HasDeleteProtection ||
			!slices.Equal(gi.Identity.AuthMethods, []string{"token-auth", "universal-auth"}) || gi.Metadata[0].Value != "infra" {
			t.Fatalf("nested get %+v", got)
		}
		var list struct {
			Identities []struct{ Identity struct{ ID string } }
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/identities?orgId="+e.OrgID, e.Token, nil).Decode(t, &list)
		if list.TotalCount != 2 || len(list.Identities) != 2 {
			t.Fatalf("list %+v", list)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/identities?orgId=someone-else", e.Token, nil), 403, "ForbiddenError")

		// Terraform's PATCH sends the id and every field.
		var upd struct{ Identity struct{ Name string } }
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+id, e.Token, map[string]any{"identityId": id, "name": "runner",
			"hasDeleteProtection": true, "role": "no-access", "metadata": []map[string]string{}}).Decode(t, &upd)
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &got)
		if upd.Identity.Name != "runner" || got.Identity.Role != "no-access" || len(got.Identity.Metadata) != 0 {
			t.Fatalf("after patch %+v / %+v", upd, got)
		}
		assertError(t, e.Do(t, "DELETE", "/api/v1/identities/"+id, e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "PATCH", "/api/v1/identities/"+id, e.Token, map[string]any{"hasDeleteProtection": false})
		e.Must(t, 200, "DELETE", "/api/v1/identities/"+id, e.Token, nil)
		for _, path := range []string{"/api/v1/identities/" + id, "/api/v1/identities/00000000-0000-0000-0000-000000000000", "/api/v1/identities/nope"} {
			assertError(t, e.Do(t, "GET", path, e.Token, nil), 404, "NotFound")
		}
		// An identity cannot delete itself.
		assertError(t, e.Do(t, "DELETE", "/api/v1/identities/"+e.IdentityID, e.Token, nil), 400, "BadRequest")
		var evs struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-identity,update-identity,delete-identity", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 4 {
			t.Fatalf("identity audit events %d, want 4", len(evs.AuditLogs))
		}
	})
}

func TestIdentityValidationAndBoundary(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	assertError(t, e.Do(t, "POST", "/api/v1/identities", e.Token, map[string]any{"organizationId": e.OrgID}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "POST", "/api/v1/identities", e.Token, map[string]any{"name": "x", "role": "root"}), 400, "BadRequest")
	assertError(t, e.Do(t, "POST", "/api/v1/identities", e.Token, map[string]any{"name": "x", "organizationId": "other"}), 403, "ForbiddenError")
	// A member can read identities but not create them; a no-access identity cannot read them.
	_, member := e.NewIdentity(t, "member", "member")
	e.Must(t, 200, "GET", "/api/v1/identities", member, nil)
	assertError(t, e.Do(t, "POST", "/api/v1/identities", member, map[string]any{"name": "x", "role": "admin"}), 403, "PermissionDenied")
	_, none := e.NewIdentity(t, "none", "no-access")
	assertError(t, e.Do(t, "GET", "/api/v1/identities", none, nil), 403, "PermissionDenied")
	assertError(t, e.Do(t, "GET", "/api/v1/identities/"+e.IdentityID, none, nil), 403, "PermissionDenied")
}

func TestTokenAuthTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, tok := e.NewIdentity(t, "deployer", "member")
		base := "/api/v1/auth/token-auth/identities/" + id
		ta := e.Must(t, 200, "GET", base, e.Token, nil).JSON(t)["identityTokenAuth"].(map[string]any)
		if ta["accessTokenTTL"] != 2592000.0 || ta["identityId"] != id {
			t.Fatalf("token auth %v", ta)
		}
		assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{}), 400, "BadRequest")
		assertError(t, e.Do(t, "PATCH", base, e.Token, map[string]any{"accessTokenMaxTTL": 10}), 422, "ValidationFailure")
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTTL": 60, "accessTokenMaxTTL": 120})
		var made struct {
			AccessToken       string
			ExpiresIn         int64
			AccessTokenMaxTTL int64
			TokenType         string
			TokenData         struct {
				ID, Name, AuthMethod string
				AccessTokenTTL       int64
			}
		}
		e.Must(t, 200, "POST", base+"/tokens", e.Token, map[string]any{"name": "second"}).Decode(t, &made)
		if made.ExpiresIn != 60 || made.AccessTokenMaxTTL != 120 || made.TokenData.Name != "second" || made.TokenData.AuthMethod != "token-auth" {
			t.Fatalf("token %+v", made)
		}
		c := jwtClaims(t, made.AccessToken)
		if c["exp"].(float64)-c["iat"].(float64) != 60 {
			t.Fatalf("exp-iat = %v, want 60", c["exp"].(float64)-c["iat"].(float64))
		}
		e.Must(t, 200, "GET", "/api/v1/identities", made.AccessToken, nil)
		var list struct{ Tokens []struct{ ID, Name string } }
		e.Must(t, 200, "GET", base+"/tokens", e.Token, nil).Decode(t, &list)
		if len(list.Tokens) != 2 {
			t.Fatalf("tokens %+v", list)
		}
		tokURL := "/api/v1/auth/token-auth/tokens/" + made.TokenData.ID
		if e.Must(t, 200, "PATCH", tokURL, e.Token, map[string]any{"name": "renamed"}).JSON(t)["token"].(map[string]any)["name"] != "renamed" {
			t.Fatal("rename")
		}
		// A name is at most 255 characters, on rename as on creation.
		assertError(t, e.Do(t, "PATCH", tokURL, e.Token, map[string]any{"name": strings.Repeat("n", 256)}), 422, "ValidationFailure")
		e.Must(t, 200, "POST", tokURL+"/revoke", e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities", made.AccessToken, nil), 401, "UnauthorizedError")
		assertError(t, e.Do(t, "POST", tokURL+"/revoke", e.Token, nil), 404, "NotFound")
		if e.Must(t, 200, "GET", tokURL, e.Token, nil).JSON(t)["token"].(map[string]any)["isAccessTokenRevoked"] != true {
			t.Fatal("revoked token not marked")
		}
		// Removing token auth revokes the remaining tokens at once.
		e.Must(t, 200, "GET", "/api/v1/identities", tok, nil)
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities", tok, nil), 401, "UnauthorizedError")
		// Deleting an identity kills its tokens too.
		id2, tok2 := e.NewIdentity(t, "doomed", "member")
		e.Must(t, 200, "DELETE", "/api/v1/identities/"+id2, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities", tok2, nil), 401, "UnauthorizedError")
	})
}

// TestTokenActionsAreTheirOwn: minting a token or a client secret, listing
// or reading them, revoking one and removing a login method each need their
// own action on identities (create-token, get-token, delete-token,
// revoke-auth), besides the one the route goes through: a role that may
// read, create, edit and delete identities does none of them, a role given
// them does, and a denial of one holds against a wider grant. Attaching or
// changing a platform login method (its keys decide who logs in) needs
// create-token as well.
func TestTokenActionsAreTheirOwn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		crud := []string{"read", "create", "edit", "delete"}
		role := func(slug string, rules ...map[string]any) {
			e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": slug, "name": slug, "permissions": rules})
		}
		role("editor", map[string]any{"subject": "identity", "action": crud})
		role("minter", map[string]any{"subject": "identity", "action": append(crud, "create-token", "get-token", "delete-token", "revoke-auth")})
		role("denied", map[string]any{"subject": "identity", "action": append(crud, "create-token", "get-token", "delete-token", "revoke-auth")},
			map[string]any{"subject": "identity", "action": []string{"create-token"}, "inverted": true})
		_, editor := e.NewIdentity(t, "editor", "editor")
		_, minter := e.NewIdentity(t, "minter", "minter")
		_, denied := e.NewIdentity(t, "denied", "denied")
		target, _ := e.NewIdentity(t, "target", "no-access")
		ua := "/api/v1/auth/universal-auth/identities/" + target
		ta := "/api/v1/auth/token-auth/identities/" + target
		e.Must(t, 200, "POST", ua, e.Token, map[string]any{})
		var secret struct{ ClientSecretData struct{ ID string } }
		e.Must(t, 200, "POST", ua+"/client-secrets", e.Token, map[string]any{}).Decode(t, &secret)
		var tok struct{ TokenData struct{ ID string } }
		e.Must(t, 200, "POST", ta+"/tokens", e.Token, map[string]any{"name": "t"}).Decode(t, &tok)
		// Checked by status only: a failure must not print a minted secret.
		status := func(token, method, path string, want int) {
			t.Helper()
			if r := e.Do(t, method, path, token, map[string]any{}); r.Status != want {
				t.Fatalf("%s %s: status %d, want %d", method, path, r.Status, want)
			}
		}
		// Every token route; the last four revoke or remove.
		routes := []struct{ method, path string }{
			{"POST", ua + "/client-secrets"}, {"POST", ta + "/tokens"}, {"GET", ua + "/client-secrets"},
			{"GET", ua + "/client-secrets/" + secret.ClientSecretData.ID}, {"GET", ta + "/tokens"},
			{"GET", "/api/v1/auth/token-auth/tokens/" + tok.TokenData.ID},
			{"POST", ua + "/client-secrets/" + secret.ClientSecretData.ID + "/revoke"},
			{"POST", "/api/v1/auth/token-auth/tokens/" + tok.TokenData.ID + "/revoke"},
			{"DELETE", ua}, {"DELETE", ta},
		}
		for _, c := range routes {
			status(editor, c.method, c.path, 403)
		}
		status(denied, "POST", ua+"/client-secrets", 403)
		status(denied, "POST", ta+"/tokens", 403)
		status(denied, "GET", ua+"/client-secrets", 200)

		// Setting a login method's keys is a way to log in as the
		// identity: attaching or changing one needs create-token too.
		jwt := "/api/v1/auth/jwt-auth/identities/" + target
		own := newTokenSigner(t, "ec", "")
		ownKey := map[string]any{"configurationType": "static", "publicKeys": []string{own.PublicPEM(t)}}
		for _, tok := range []string{editor, denied} {
			assertError(t, e.Do(t, "POST", jwt, tok, ownKey), 403, "PermissionDenied")
		}
		e.Must(t, 200, "POST", jwt, e.Token, map[string]any{"configurationType": "static", "publicKeys": []string{newTokenSigner(t, "ec", "").PublicPEM(t)}})
		for _, tok := range []string{editor, denied} {
			assertError(t, e.Do(t, "PATCH", jwt, tok, ownKey), 403, "PermissionDenied")
		}
		if r, _ := methodLogin(t, e, "jwt-auth", target, own.Sign(t, workloadClaims())); r.Status == 200 {
			t.Fatal("a key set without create-token logs in")
		}
		e.Must(t, 200, "PATCH", jwt, minter, ownKey)
		routes = append(routes, struct{ method, path string }{"DELETE", jwt})

		for _, c := range routes {
			status(minter, c.method, c.path, 200)
		}
	})
}

// TestACredentialCoversRolesScheduledToStart: giving an identity a
// credential needs everything it holds in its projects, including a role
// scheduled to start later: an identity manager in no project minted a token
// for an identity whose project admin role started an hour later, and the
// token read the project's secrets once it did.
func TestACredentialCoversRolesScheduledToStart(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-manager", "name": "Identity manager",
		"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "create-token", "get-token"}}}})
	_, mgr := e.NewIdentity(t, "manager", "identity-manager")
	p := createProject(t, e, e.Token, map[string]any{"projectName": "on-call"})
	victim, _ := e.NewIdentity(t, "payments-bot", "no-access")
	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	addMember(t, e, p.ID, victim, map[string]any{"role": "admin", "isTemporary": true, "temporaryMode": "relative",
		"temporaryRange": "1h", "temporaryAccessStartTime": start.Format(time.RFC3339)})
	assertError(t, e.Do(t, "POST", "/api/v1/auth/token-auth/identities/"+victim+"/tokens", mgr, map[string]any{"name": "mine"}), 403, "PermissionBoundaryError")
	e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+victim, e.Token, map[string]any{})
	assertError(t, e.Do(t, "POST", "/api/v1/auth/universal-auth/identities/"+victim+"/client-secrets", mgr, map[string]any{}), 403, "PermissionBoundaryError")
	// One that holds nothing there, now or later, gets its credential.
	bystander, _ := e.NewIdentity(t, "bystander", "no-access")
	e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+bystander+"/tokens", mgr, map[string]any{"name": "fine"})
}

// TestLooseningALoginMethodNeedsWhatMintingDoes: Universal Auth's and
// Token Auth's settings bound every login of the identity (trusted IPs,
// TTLs, period, lockout): a manager with only edit on identities opened a
// project admin identity's client secrets to 0.0.0.0/0 and made its tokens
// periodic. Changing them now needs create-token and covering the
// identity's projects, as the other login methods' settings do.
func TestLooseningALoginMethodNeedsWhatMintingDoes(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-editor", "name": "Identity editor",
		"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit"}}}})
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-minter", "name": "Identity minter",
		"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "create-token"}}}})
	_, editor := e.NewIdentity(t, "editor", "identity-editor")
	_, minter := e.NewIdentity(t, "minter", "identity-minter")
	p := createProject(t, e, e.Token, map[string]any{"projectName": "loosen"})
	bot, _ := e.NewIdentity(t, "deploy-bot", "no-access")
	addMember(t, e, p.ID, bot, map[string]any{"role": "admin"})
	ua := "/api/v1/auth/universal-auth/identities/" + bot
	e.Must(t, 200, "POST", ua, e.Token, map[string]any{"clientSecretTrustedIps": []map[string]any{{"ipAddress": "10.1.2.3"}}})
	open := map[string]any{"clientSecretTrustedIps": []map[string]any{{"ipAddress": "0.0.0.0/0"}}, "accessTokenPeriod": 315360000}
	assertError(t, e.Do(t, "PATCH", ua, editor, open), 403, "PermissionDenied")
	assertError(t, e.Do(t, "PATCH", ua, minter, open), 403, "PermissionBoundaryError")
	ta := "/api/v1/auth/token-auth/identities/" + bot
	assertError(t, e.Do(t, "PATCH", ta, editor, map[string]any{"accessTokenTTL": 2592000}), 403, "PermissionDenied")
	assertError(t, e.Do(t, "PATCH", ta, minter, map[string]any{"accessTokenTTL": 2592000}), 403, "PermissionBoundaryError")
	e.Must(t, 200, "PATCH", ua, e.Token, open)
	// An identity holding nothing beyond the minter's: the minter may.
	idle, _ := e.NewIdentity(t, "idle-bot", "no-access")
	e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+idle, e.Token, map[string]any{})
	e.Must(t, 200, "PATCH", "/api/v1/auth/universal-auth/identities/"+idle, minter, map[string]any{"accessTokenTTL": 3600})
}

// TestIdentityMetadataIsBounded: an identity holds at most
// identity.MaxMetadata entries (422 above, on create and update): every
// listing of identities returns them all, and 780 entries of 1 KiB each made
// one identity a megabyte of every member's list.
func TestIdentityMetadataIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	md := func(n int) []map[string]string {
		out := make([]map[string]string, n)
		for i := range out {
			out[i] = map[string]string{"key": fmt.Sprintf("k%d", i), "value": "v"}
		}
		return out
	}
	body := func(n int) map[string]any {
		return map[string]any{"name": fmt.Sprintf("md-%d", n), "organizationId": e.OrgID, "role": "no-access", "metadata": md(n)}
	}
	assertError(t, e.Do(t, "POST", "/api/v1/identities", e.Token, body(identity.MaxMetadata+1)), 422, "ValidationFailure")
	var created struct{ Identity struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/identities", e.Token, body(identity.MaxMetadata)).Decode(t, &created)
	assertError(t, e.Do(t, "PATCH", "/api/v1/identities/"+created.Identity.ID, e.Token, map[string]any{"metadata": md(identity.MaxMetadata + 1)}), 422, "ValidationFailure")
}

// TestAnIdentityListsMetadataIsBounded: one list answers with at most
// store.MaxListMetadataBytes of identity metadata (here made small); a page
// holding more is a 400 asking for fewer, and a smaller page is answered. A
// member's one GET built 2.7 GB for 20,000 identities filled with metadata.
func TestAnIdentityListsMetadataIsBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	old := store.MaxListMetadataBytes
	store.MaxListMetadataBytes = 5000
	t.Cleanup(func() { store.MaxListMetadataBytes = old })
	for i := range 3 {
		e.Must(t, 200, "POST", "/api/v1/identities", e.Token, map[string]any{"name": fmt.Sprintf("heavy-%d", i), "organizationId": e.OrgID,
			"role": "no-access", "metadata": []map[string]string{{"key": "a", "value": strings.Repeat("x", 1000)}, {"key": "b", "value": strings.Repeat("y", 1000)}}})
	}
	assertError(t, e.Do(t, "GET", "/api/v1/identities?limit=100", e.Token, nil), 400, "BadRequest")
	var page struct{ Identities []json.RawMessage }
	e.Must(t, 200, "GET", "/api/v1/identities?limit=2", e.Token, nil).Decode(t, &page)
	if len(page.Identities) != 2 {
		t.Fatalf("a page of two: %d", len(page.Identities))
	}
}
