package api_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestSecretDeleteType: the CLI's `secrets delete NAME` sends type personal
// unless told otherwise; an identity gets Infisical's 400, an unknown type a 422.
func TestSecretDeleteType(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "del-type"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		body := func(typ string) map[string]any {
			m := map[string]any{"workspaceId": p.ID, "environment": "dev", "secretPath": "/"}
			if typ != "" {
				m["type"] = typ
			}
			return m
		}
		m := assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("personal")), 400, "BadRequest")
		if m["message"] != "Must be user to delete personal secret" {
			t.Fatalf("message %v", m["message"])
		}
		assertError(t, e.Do(t, "DELETE", "/api/v4/secrets/K", e.Token, body("personal")), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("bogus")), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PATCH", "/api/v3/secrets/raw/K", e.Token, map[string]any{"workspaceId": p.ID,
			"environment": "dev", "secretValue": "x", "type": "bogus"}), 422, "ValidationFailure")
		batch := func(typ string) map[string]any {
			return map[string]any{"workspaceId": p.ID, "environment": "dev",
				"secrets": []map[string]any{{"secretKey": "K", "type": typ}}}
		}
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/batch/raw", e.Token, batch("personal")), 400, "BadRequest")
		assertError(t, e.Do(t, "DELETE", "/api/v4/secrets/batch", e.Token, batch("bogus")), 422, "ValidationFailure")
		// Nothing was deleted; shared (explicit or default) still works.
		if got := listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev"); len(got) != 1 {
			t.Fatalf("after refused deletes %+v", got)
		}
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("shared"))
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/K", e.Token, body("")), 404, "NotFound")

		// A user deletes its personal override; the shared secret stays.
		user := userToken(t, e)
		putSecret(t, e, user, p.ID, "dev", "/", "P", "shared")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/P", user, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "mine", "type": "personal"})
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/P", user, body("personal"))
		assertError(t, e.Do(t, "DELETE", "/api/v3/secrets/raw/P", user, body("personal")), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v3/secrets/raw/P", user, body(""))
	})
}

// TestMissingFolderListsEmpty: Infisical lists a path that has no folder yet as
// empty, and `infisical run --path /new -- cmd` depends on it. The permission
// check still applies, and a missing project or environment is still a 404.
func TestMissingFolderListsEmpty(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "missing-folder"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "ROOT", "r")
		base := "workspaceId=" + p.ID + "&environment=dev"
		for _, u := range []string{
			"/api/v4/secrets?" + base + "&secretPath=/new",
			"/api/v4/secrets?projectId=" + p.ID + "&environment=dev&secretPath=/new/deeper&recursive=true&include_imports=true&expandSecretReferences=true",
			"/api/v3/secrets/raw?" + base + "&secretPath=/new",
			"/api/v3/secrets/raw?" + base + "&secretPath=/new&include_imports=true",
		} {
			r := e.Must(t, 200, "GET", u, e.Token, nil)
			var got struct{ Secrets []secretOut }
			r.Decode(t, &got)
			if got.Secrets == nil || len(got.Secrets) != 0 {
				t.Fatalf("%s: %s", u, r.Body)
			}
		}
		var fl struct{ Folders []any }
		r := e.Must(t, 200, "GET", "/api/v1/folders?"+base+"&path=/new/deeper", e.Token, nil)
		r.Decode(t, &fl)
		if fl.Folders == nil || len(fl.Folders) != 0 {
			t.Fatalf("folders %s", r.Body)
		}
		// Reading one secret in, or writing to, a missing folder is still a 404.
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/ROOT?"+base+"&secretPath=/new", e.Token, nil), 404, "NotFound")

		// Missing environment or project: 404 as before.
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?workspaceId="+p.ID+"&environment=nope&secretPath=/new", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=nope&path=/new", e.Token, nil), 404, "NotFound")
		ghost := "00000000-0000-7000-8000-000000000000"
		r = e.Do(t, "GET", "/api/v4/secrets?workspaceId="+ghost+"&environment=dev&secretPath=/new", e.Token, nil)
		if r.Status != 404 {
			t.Fatalf("missing project: %d %s", r.Status, r.Body)
		}

		// A caller scoped to /app/** may list /app/new but not /other/new.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "app-only", "name": "App only",
			"permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
				{"subject": "secret-folders", "action": []string{"read"}, "conditions": map[string]any{"environment": "dev", "secretPath": map[string]any{"$glob": "/app/**"}}},
			}})
		_, tok := projectMember(t, e, p.ID, "app-reader", "app-only")
		e.Must(t, 200, "GET", "/api/v4/secrets?"+base+"&secretPath=/app/new", tok, nil)
		e.Must(t, 200, "GET", "/api/v1/folders?"+base+"&path=/app/new", tok, nil)
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?"+base+"&secretPath=/other/new", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+base+"&secretPath=/other/new&recursive=true", tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/folders?"+base+"&path=/other/new", tok, nil), 403, "PermissionDenied")
		// An outsider learns nothing about which paths exist.
		_, out := e.NewIdentity(t, "outsider", "member")
		assertError(t, e.Do(t, "GET", "/api/v4/secrets?"+base+"&secretPath=/new", out, nil), 403, "PermissionDenied")
	})
}

// TestLeaseRenewExtendsFromExpiry: Infisical's renew adds the TTL to the
// current expiry and refuses to pass creation + max TTL; deleting a lease that
// is already revoked is a 404.
func TestLeaseRenewExtendsFromExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "renew"})
		scope := map[string]any{"projectSlug": p.Slug, "environmentSlug": "dev", "path": "/"}
		with := func(extra map[string]any) map[string]any {
			m := map[string]any{}
			for k, v := range scope {
				m[k] = v
			}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", e.Token, with(map[string]any{"name": "otp", "defaultTTL": "1h", "maxTTL": "3h",
			"provider": map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "GEZDGNBVGY3TQOJQ"}}}))
		var l struct {
			Lease struct{ ID, ExpireAt, CreatedAt string }
		}
		e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", e.Token, with(map[string]any{"dynamicSecretName": "otp"})).Decode(t, &l)
		created, _ := time.Parse(time.RFC3339, l.Lease.CreatedAt)
		exp0, _ := time.Parse(time.RFC3339, l.Lease.ExpireAt)
		if d := exp0.Sub(created); d < 59*time.Minute || d > 61*time.Minute {
			t.Fatalf("lease of 1h expires after %v", d)
		}
		renew := func(ttl string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", e.Token, with(map[string]any{"ttl": ttl}))
		}
		expiry := func(r apptest.Response) time.Time {
			t.Helper()
			var got struct{ Lease struct{ ExpireAt string } }
			r.Decode(t, &got)
			at, err := time.Parse(time.RFC3339, got.Lease.ExpireAt)
			if err != nil {
				t.Fatalf("expireAt %q", got.Lease.ExpireAt)
			}
			return at
		}
		// 60 minutes left, renewed by 30: 90 minutes left, not 30.
		r := renew("30m")
		if r.Status != 200 {
			t.Fatalf("renew: %d %s", r.Status, r.Body)
		}
		if got, want := expiry(r), exp0.Add(30*time.Minute); got.Sub(want).Abs() > time.Second {
			t.Fatalf("renew 30m: expires %v, want %v", got, want)
		}
		// Again: the TTLs add up (1h + 30m + 1h = 2h30 from creation).
		if got, want := expiry(e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", e.Token,
			with(map[string]any{"ttl": "1h"}))), exp0.Add(90*time.Minute); got.Sub(want).Abs() > time.Second {
			t.Fatalf("second renew: expires %v, want %v", got, want)
		}
		// One more hour would end at 3h30, past creation + max TTL (3h): refused, nothing changes.
		m := assertError(t, renew("1h"), 400, "BadRequest")
		if m["message"] != "The requested renewal would exceed the maximum allowed lease duration. Please choose a shorter TTL" {
			t.Fatalf("message %v", m["message"])
		}
		var got struct{ Lease struct{ ExpireAt string } }
		e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"?projectSlug="+p.Slug+"&environmentSlug=dev&path=/", e.Token, nil).Decode(t, &got)
		if at, _ := time.Parse(time.RFC3339, got.Lease.ExpireAt); at.Sub(exp0.Add(90*time.Minute)).Abs() > time.Second {
			t.Fatalf("refused renewal moved the expiry to %v", at)
		}
		// Up to exactly the max TTL is allowed; the default TTL applies when ttl is empty.
		if got, want := expiry(e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+"/renew", e.Token,
			with(map[string]any{"ttl": "30m"}))), exp0.Add(2*time.Hour); got.Sub(want).Abs() > time.Second {
			t.Fatalf("renew to max: expires %v, want %v", got, want)
		}
		assertError(t, renew(""), 400, "BadRequest")

		// Revoke once; the second delete finds nothing, as in Infisical.
		e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, scope)
		assertError(t, e.Do(t, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, scope), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, e.Token, with(map[string]any{"isForced": true})), 404, "NotFound")
		assertError(t, renew("1m"), 400, "BadRequest")
	})
}

// TestRecursiveListDeeperWinsAndFolderPaths: GET /api/v1/folders gives each
// folder's full path; a recursive list is ordered by key and, for a key at
// several depths, shallowest first, so that a client keeping the last of each
// key (the Infisical CLI's run and export) takes the deepest, as against Infisical.
func TestRecursiveListDeeperWinsAndFolderPaths(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "recursive"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/a", "b"))
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "c"))
		// Created deepest first, so insertion order cannot be what orders them.
		putSecret(t, e, e.Token, p.ID, "dev", "/a/b", "X", "ab")
		putSecret(t, e, e.Token, p.ID, "dev", "/a", "X", "a")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "X", "root")
		putSecret(t, e, e.Token, p.ID, "dev", "/c", "A", "c")
		putSecret(t, e, e.Token, p.ID, "dev", "/a/b", "Z", "z")

		var fl struct{ Folders []struct{ Name, Path string } }
		e.Must(t, 200, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=dev&path=/", e.Token, nil).Decode(t, &fl)
		if len(fl.Folders) != 2 || fl.Folders[0].Path != "/a" || fl.Folders[1].Path != "/c" {
			t.Fatalf("root folders %+v", fl.Folders)
		}
		e.Must(t, 200, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=dev&path=/a/", e.Token, nil).Decode(t, &fl)
		if len(fl.Folders) != 1 || fl.Folders[0].Name != "b" || fl.Folders[0].Path != "/a/b" {
			t.Fatalf("folders of /a %+v", fl.Folders)
		}

		for _, u := range []string{"/api/v4/secrets?projectId=", "/api/v3/secrets/raw?workspaceId="} {
			var list struct{ Secrets []secretOut }
			e.Must(t, 200, "GET", u+p.ID+"&environment=dev&secretPath=/&recursive=true", e.Token, nil).Decode(t, &list)
			got := list.Secrets
			var order []string
			last := map[string]string{}
			for _, s := range got {
				order = append(order, s.SecretKey+"@"+s.SecretPath)
				last[s.SecretKey] = s.SecretValue
			}
			want := []string{"A@/c", "X@/", "X@/a", "X@/a/b", "Z@/a/b"}
			if !slices.Equal(order, want) {
				t.Fatalf("recursive order %v, want %v", order, want)
			}
			if last["X"] != "ab" {
				t.Fatalf("last X is %q, want the deepest", last["X"])
			}
			// From /a down: the same rule.
			got = listSecrets(t, e, e.Token, "workspaceId="+p.ID+"&environment=dev&secretPath=/a&recursive=true")
			if len(got) != 3 || got[0].SecretPath != "/a" || got[1].SecretPath != "/a/b" || got[1].SecretKey != "X" {
				t.Fatalf("recursive from /a %+v", got)
			}
		}
	})
}

// TestLoginOrganizationSlug: `infisical login --organization-slug` (the Go
// SDK's organizationSlug; newer Infisical's subOrganizationName) that is not
// the identity's organization is refused, not ignored. The check runs after
// the credentials, costs no use of the client secret and counts no lockout.
func TestLoginOrganizationSlug(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		clientID := uaSetup(t, e, map[string]any{"lockoutEnabled": true, "lockoutThreshold": 2})
		secret, secretID := newSecret(t, e, map[string]any{"numUsesLimit": 2})
		var det struct {
			IdentityDetails struct{ Organization struct{ Slug string } }
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", e.Token, nil).Decode(t, &det)
		slug := det.IdentityDetails.Organization.Slug
		if slug == "" {
			t.Fatal("no organization slug")
		}
		login := func(extra map[string]any) apptest.Response {
			b := map[string]any{"clientId": clientID, "clientSecret": secret}
			for k, v := range extra {
				b[k] = v
			}
			return e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", b)
		}
		for _, bad := range []map[string]any{{"organizationSlug": "someone-else"}, {"subOrganizationName": "child-org"}} {
			for range 3 { // more than the lockout threshold: not counted as failures
				m := assertError(t, login(bad), 400, "BadRequest")
				if msg, _ := m["message"].(string); !strings.Contains(msg, "is not this identity's organization") {
					t.Fatalf("message %q", msg)
				}
			}
		}
		// Wrong credentials still answer as before, whatever the slug.
		r := e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]any{"clientId": clientID,
			"clientSecret": "wrong", "organizationSlug": "someone-else"})
		assertError(t, r, 401, "UnauthorizedError")
		// Empty and the identity's own slug are fine; both uses of the secret are still there.
		e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/login", "", map[string]any{"clientId": clientID, "clientSecret": secret, "organizationSlug": ""})
		e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/login", "", map[string]any{"clientId": clientID, "clientSecret": secret, "organizationSlug": slug})
		var cs struct {
			ClientSecretData struct{ ClientSecretNumUses int }
		}
		e.Must(t, 200, "GET", "/api/v1/auth/universal-auth/identities/"+e.IdentityID+"/client-secrets/"+secretID, e.Token, nil).Decode(t, &cs)
		if cs.ClientSecretData.ClientSecretNumUses != 2 {
			t.Fatalf("uses %d, want 2 (refused logins cost none)", cs.ClientSecretData.ClientSecretNumUses)
		}
	})
}
