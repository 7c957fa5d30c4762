package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestHostileTemporaryAdminCannotMakeItLast: a member given admin for an
// hour may use it for that hour, but cannot make it, or anything it holds
// only by it, outlast the hour: not a permanent privilege or role on its own
// membership, not a group holding admin, not a role definition, not a
// lengthened window. Grants that end within the hour pass; when the hour
// is over its token is refused, and nothing it did keeps it in.
func TestHostileTemporaryAdminCannotMakeItLast(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: clock.Now})
		p := twoFolders(t, e, "break-glass")
		app := secretQ(p.ID, "dev", "/app")
		temporary := func(role, rng string) map[string]any {
			return map[string]any{"role": role, "isTemporary": true, "temporaryMode": "relative", "temporaryRange": rng}
		}
		admin := []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue", "create", "edit", "delete"}},
			{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}},
			{"subject": "member", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}}}

		// An organization group manager who is admin of the project for an hour.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-manager", "name": "Group manager",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}}}})
		id, tok := e.NewIdentity(t, "on-call", "group-manager")
		addMember(t, e, p.ID, id, map[string]any{"role": "no-access"}, temporary("admin", "1h"))
		listSecrets(t, e, tok, app)

		// A permanent privilege on its own membership, or one longer than the hour: refused.
		permanent := map[string]any{"identityId": id, "projectId": p.ID, "permissions": admin, "type": map[string]any{"isTemporary": false}}
		r := e.Do(t, "POST", privilegesV2, tok, permanent)
		assertError(t, r, 403, "PermissionBoundaryError")
		if !strings.Contains(string(r.Body), "would outlast the temporary access") {
			t.Fatalf("the refusal does not say time is what is missing: %s", r.Body)
		}
		twoHours := map[string]any{"identityId": id, "projectId": p.ID, "permissions": admin,
			"type": map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "2h"}}
		assertError(t, e.Do(t, "POST", privilegesV2, tok, twoHours), 403, "PermissionBoundaryError")
		// Within the hour it may hand out what it holds, to itself or others.
		var out struct{ Privilege privilegeOut }
		e.Must(t, 200, "POST", privilegesV2, tok, map[string]any{"identityId": id, "projectId": p.ID, "slug": "half-hour", "permissions": admin,
			"type": map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": "30m"}}).Decode(t, &out)
		// But not stretch it past the hour, nor make it permanent.
		assertError(t, e.Do(t, "PATCH", privilegesV2+"/"+out.Privilege.ID, tok, map[string]any{"type": map[string]any{"isTemporary": false}}),
			403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", privilegesV2+"/"+out.Privilege.ID, tok, map[string]any{"type": map[string]any{"isTemporary": true,
			"temporaryMode": "relative", "temporaryRange": "3h"}}), 403, "PermissionBoundaryError")

		// A permanent admin role on its own membership, or on a friend's: refused; a 30-minute one passes.
		membership := "/api/v1/projects/" + p.ID + "/identity-memberships/"
		assertError(t, e.Do(t, "PATCH", membership+id, tok, map[string]any{"roles": []map[string]any{{"role": "admin"}}}), 403, "PermissionBoundaryError")
		friend, _ := e.NewIdentity(t, "friend", "member")
		assertError(t, e.Do(t, "POST", membership+friend, tok, map[string]any{"roles": []map[string]any{{"role": "admin"}}}), 403, "PermissionBoundaryError")
		e.Must(t, 200, "POST", membership+friend, tok, map[string]any{"roles": []map[string]any{temporary("admin", "30m")}})

		// A role definition outlives the hour: one holding more than
		// no-access is refused, though it may still be read.
		assertError(t, e.Do(t, "POST", "/api/v1/projects/"+p.ID+"/roles", tok, map[string]any{"slug": "forever", "name": "Forever", "permissions": admin}),
			403, "PermissionBoundaryError")

		// A group it is in, added to the project with admin for good: refused.
		mine := createGroup(t, e, tok, map[string]any{"name": "mine"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+mine.ID+"/machine-identities/"+id, tok, nil)
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/groups/"+mine.ID, tok, map[string]any{"role": "admin"}), 403, "PermissionBoundaryError")
		// Joining a group that already holds admin for good: refused; one
		// holding admin for 20 minutes: allowed.
		held := createGroup(t, e, e.Token, map[string]any{"name": "held"})
		addProjectGroup(t, e, e.Token, p.ID, held.ID, map[string]any{"role": "admin"})
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+held.ID+"/machine-identities/"+id, tok, nil), 403, "PermissionBoundaryError")
		brief := createGroup(t, e, e.Token, map[string]any{"name": "brief"})
		addProjectGroup(t, e, e.Token, p.ID, brief.ID, temporary("admin", "20m"))
		e.Must(t, 200, "POST", "/api/v1/groups/"+brief.ID+"/machine-identities/"+id, tok, nil)
		// Taking someone out of a group needs only what it holds now.
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+brief.ID+"/machine-identities/"+id, tok, nil)

		// Roles the colleague already holds are kept, not handed out again:
		// adding admin for 30 minutes beside a permanent member role passes.
		colleague, _ := e.NewIdentity(t, "colleague", "member")
		addMember(t, e, p.ID, colleague, map[string]any{"role": "member"})
		e.Must(t, 200, "PATCH", membership+colleague, tok, map[string]any{"roles": []map[string]any{{"role": "member"}, temporary("admin", "30m")}})
		// Taking access away needs only what it holds now: it may delete a
		// colleague's permanent privilege.
		var granted struct{ Privilege privilegeOut }
		e.Must(t, 200, "POST", privilegesV2, e.Token, map[string]any{"identityId": colleague, "projectId": p.ID, "slug": "standing",
			"permissions": readFolder("/app"), "type": map[string]any{"isTemporary": false}}).Decode(t, &granted)
		e.Must(t, 200, "DELETE", privilegesV2+"/"+granted.Privilege.ID, tok, nil)

		// A service token lives on without its creator: one that never
		// expires, or expires after the hour, is refused; one within it passes.
		serviceToken := func(expiresIn any) apptest.Response {
			return e.Do(t, "POST", "/api/v2/service-token", tok, map[string]any{"name": "keep", "workspaceId": p.ID,
				"scopes": []map[string]any{{"environment": "dev", "secretPath": "/"}}, "encryptedKey": "abc", "iv": "def", "tag": "ghi",
				"expiresIn": expiresIn, "permissions": []string{"read", "write"}})
		}
		assertError(t, serviceToken(nil), 403, "PermissionBoundaryError")
		assertError(t, serviceToken(7200), 403, "PermissionBoundaryError")
		if r := serviceToken(1500); r.Status != 200 {
			t.Fatalf("a service token within the hour: %d %s", r.Status, r.Body)
		}

		// An SSH login mapping is a standing grant of certificates: none
		// from temporary access, on a new host, an existing one, or a host group.
		root := []map[string]any{{"loginUser": "root", "allowedPrincipals": map[string]any{"usernames": []string{id}}}}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/hosts", tok, map[string]any{"projectId": p.ID, "hostname": "db.example.com", "loginMappings": root}),
			403, "PermissionBoundaryError")
		var host struct{ ID string }
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", tok, map[string]any{"projectId": p.ID, "hostname": "db.example.com"}).Decode(t, &host)
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/hosts/"+host.ID, tok, map[string]any{"loginMappings": root}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups", tok, map[string]any{"projectId": p.ID, "name": "mine", "loginMappings": root}),
			403, "PermissionBoundaryError")
		e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, e.Token, map[string]any{"loginMappings": root})
		// Nor by putting a host in a group whose mappings name it.
		var fleet, web struct{ ID string }
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups", e.Token, map[string]any{"projectId": p.ID, "name": "fleet", "loginMappings": root}).Decode(t, &fleet)
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", tok, map[string]any{"projectId": p.ID, "hostname": "web.example.com"}).Decode(t, &web)
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups/"+fleet.ID+"/hosts/"+web.ID, tok, nil), 403, "PermissionBoundaryError")
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+fleet.ID+"/hosts/"+web.ID, e.Token, nil)
		// A change that keeps the mappings adds none: allowed.
		e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+host.ID, tok, map[string]any{"userCertTtl": "1h"})

		// The project's admin for good is not bound by any of this.
		e.Must(t, 200, "PATCH", privilegesV2+"/"+out.Privilege.ID, e.Token, map[string]any{"type": map[string]any{"isTemporary": false}})
		e.Must(t, 200, "DELETE", privilegesV2+"/"+out.Privilege.ID, e.Token, nil)

		// When the hour is over, nothing it did keeps it in.
		clock.Add(time.Hour + time.Second)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+app, tok, nil), 403, "PermissionDenied")
	})
}
