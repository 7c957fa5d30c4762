package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/mail"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// groupOut is the provider's infisical.Group, plus the timestamps.
type groupOut struct {
	ID, OrgID, Name, Slug, Role, CreatedAt, UpdatedAt string
	RoleID, CustomRoleSlug                            *string
}

type projectGroupRoleOut struct {
	ID, Role, ProjectMembershipID                string
	CustomRoleID, CustomRoleSlug, TemporaryMode  *string
	TemporaryRange, TemporaryAccessStartTime     *string
	TemporaryAccessEndTime, CreatedAt, UpdatedAt *string
	IsTemporary                                  bool
}

type projectGroupOut struct {
	ID, ProjectID, GroupID, CreatedAt, UpdatedAt string
	Roles                                        []projectGroupRoleOut
	Group                                        struct{ ID, Name, Slug, OrgID string }
}

func createGroup(t testing.TB, e *apptest.Env, token string, body map[string]any) groupOut {
	t.Helper()
	var g groupOut
	e.Must(t, 200, "POST", "/api/v1/groups", token, body).Decode(t, &g)
	return g
}

// addProjectGroup adds a group to a project through the route the
// Terraform provider calls.
func addProjectGroup(t testing.TB, e *apptest.Env, token, projectID, group string, roles ...map[string]any) projectGroupOut {
	t.Helper()
	var out struct{ GroupMembership projectGroupOut }
	e.Must(t, 200, "POST", "/api/v2/workspace/"+projectID+"/groups/"+group, token, map[string]any{"roles": roles}).Decode(t, &out)
	return out.GroupMembership
}

// TestGroupRoutesAnswerWithInfisicalShapes walks every group route with the
// bodies the Terraform provider sends and checks the fields it reads.
func TestGroupRoutesAnswerWithInfisicalShapes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "grouped"})

		// Create: slug generated from the name when absent, role default no-access.
		g := createGroup(t, e, e.Token, map[string]any{"name": "Platform Team"})
		if g.ID == "" || g.OrgID != e.OrgID || g.Name != "Platform Team" || !strings.HasPrefix(g.Slug, "platform-team-") ||
			len(g.Slug) != len("platform-team-")+4 || g.Role != "no-access" || g.RoleID != nil || g.CreatedAt == "" {
			t.Fatalf("created %+v", g)
		}
		// A custom organization role: role "custom", its id and slug.
		var role struct{ Role struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-reader", "name": "Group reader",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read"}}}}).Decode(t, &role)
		c := createGroup(t, e, e.Token, map[string]any{"name": "readers", "slug": "the-readers", "role": "group-reader"})
		if c.Role != "custom" || c.RoleID == nil || *c.RoleID != role.Role.ID || c.CustomRoleSlug == nil || *c.CustomRoleSlug != "group-reader" {
			t.Fatalf("custom role group %+v", c)
		}
		var got groupOut
		e.Must(t, 200, "GET", "/api/v1/groups/"+c.ID, e.Token, nil).Decode(t, &got)
		if got.ID != c.ID || got.Name != c.Name || got.Slug != c.Slug || got.Role != "custom" || got.RoleID == nil || *got.RoleID != role.Role.ID ||
			got.CustomRoleSlug == nil || *got.CustomRoleSlug != "group-reader" || got.CreatedAt != c.CreatedAt {
			t.Fatalf("get %+v, created %+v", got, c)
		}
		// The role in use cannot be deleted; the name and slug are unique.
		assertError(t, e.Do(t, "DELETE", "/api/v1/organization/roles/"+role.Role.ID, e.Token, nil), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", e.Token, map[string]any{"name": "readers"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", e.Token, map[string]any{"name": "x", "slug": "the-readers"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", e.Token, map[string]any{"name": "x", "slug": "NO"}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", e.Token, map[string]any{"name": "x", "role": "nope"}), 400, "BadRequest")
		assertError(t, e.Do(t, "GET", "/api/v1/groups/not-a-uuid", e.Token, nil), 404, "NotFound")

		// Lists: the plain array and the organization's {groups}.
		var list []groupOut
		e.Must(t, 200, "GET", "/api/v1/groups", e.Token, nil).Decode(t, &list)
		if len(list) != 2 || list[0].ID != g.ID || list[1].ID != c.ID {
			t.Fatalf("list %+v", list)
		}
		var orgList struct {
			Groups []struct {
				ID         string
				CustomRole *struct{ ID, Slug string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/"+e.OrgID+"/groups", e.Token, nil).Decode(t, &orgList)
		if len(orgList.Groups) != 2 || orgList.Groups[0].CustomRole != nil || orgList.Groups[1].CustomRole == nil || orgList.Groups[1].CustomRole.Slug != "group-reader" {
			t.Fatalf("organization list %+v", orgList)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/organization/"+e.OrgID+"/nothing", e.Token, nil), 404, "NotFound")

		// PATCH: Terraform sends every attribute.
		var upd groupOut
		e.Must(t, 200, "PATCH", "/api/v1/groups/"+c.ID, e.Token, map[string]any{"name": "Readers", "slug": "the-readers", "role": "member"}).Decode(t, &upd)
		if upd.Name != "Readers" || upd.Role != "member" || upd.RoleID != nil || upd.CustomRoleSlug != nil {
			t.Fatalf("updated %+v", upd)
		}
		e.Must(t, 200, "DELETE", "/api/v1/organization/roles/"+role.Role.ID, e.Token, nil)

		// Users, by username.
		newUser(t, e, "alice@example.com", "member")
		var u struct{ ID, Email, Username, FirstName, LastName string }
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil).Decode(t, &u)
		if u.ID == "" || u.Email != "alice@example.com" || u.Username != "alice@example.com" || u.FirstName != "Al" {
			t.Fatalf("added user %+v", u)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+g.ID+"/users/nobody@example.com", e.Token, nil), 404, "NotFound")
		var users struct {
			Users []struct {
				ID, Username  string
				IsPartOfGroup bool
				JoinedGroupAt *string
			}
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/users", e.Token, nil).Decode(t, &users)
		if users.TotalCount != 2 || len(users.Users) != 2 || users.Users[0].ID != u.ID || !users.Users[0].IsPartOfGroup ||
			users.Users[0].JoinedGroupAt == nil || users.Users[1].IsPartOfGroup || users.Users[1].JoinedGroupAt != nil {
			t.Fatalf("users of the group (members first) %+v", users)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/users?filter=nonMembers&limit=5", e.Token, nil).Decode(t, &users)
		if users.TotalCount != 1 || users.Users[0].ID == u.ID {
			t.Fatalf("non-members %+v", users)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/users?search=alic", e.Token, nil).Decode(t, &users)
		if users.TotalCount != 1 || users.Users[0].ID != u.ID {
			t.Fatalf("search %+v", users)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/groups/"+g.ID+"/users?filter=everyone", e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "GET", "/api/v1/groups/"+g.ID+"/users?limit=101", e.Token, nil), 422, "ValidationFailure")

		// Machine identities: the provider reads machineIdentities[].id and isPartOfGroup.
		mid, _ := e.NewIdentity(t, "deployer", "no-access")
		var ref struct{ ID string }
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil).Decode(t, &ref)
		if ref.ID != mid {
			t.Fatalf("added identity %+v", ref)
		}
		var ids struct {
			MachineIdentities []struct {
				ID, Name      string
				IsPartOfGroup bool
			}
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/machine-identities", e.Token, nil).Decode(t, &ids)
		if ids.TotalCount < 2 || ids.MachineIdentities[0].ID != mid || !ids.MachineIdentities[0].IsPartOfGroup || ids.MachineIdentities[1].IsPartOfGroup {
			t.Fatalf("identities of the group %+v", ids)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/machine-identities?filter=assignedMachineIdentities", e.Token, nil).Decode(t, &ids)
		if ids.TotalCount != 1 {
			t.Fatalf("assigned %+v", ids)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+p.ID, e.Token, nil), 404, "NotFound")

		// Project groups: by id (provider: group_id) or by name (group_name), with a temporary role.
		start := time.Now().UTC().Truncate(time.Second)
		pg := addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "viewer"},
			map[string]any{"role": "member", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h",
				"temporaryAccessStartTime": start.Format(time.RFC3339)})
		if pg.ID == "" || pg.GroupID != g.ID || pg.ProjectID != p.ID || len(pg.Roles) != 2 {
			t.Fatalf("project group %+v", pg)
		}
		pg2 := addProjectGroup(t, e, e.Token, p.ID, "Readers")
		if pg2.GroupID != c.ID || len(pg2.Roles) != 1 || pg2.Roles[0].Role != "no-access" {
			t.Fatalf("by name, default role %+v", pg2)
		}
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/groups/"+g.ID, e.Token, map[string]any{"role": "viewer"}), 400, "BadRequest")
		var one struct{ GroupMembership projectGroupOut }
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.ID+"/groups/"+g.ID, e.Token, nil).Decode(t, &one)
		r := one.GroupMembership.Roles
		if one.GroupMembership.ID != pg.ID || one.GroupMembership.GroupID != g.ID || one.GroupMembership.Group.Slug != g.Slug || len(r) != 2 ||
			r[0].Role != "viewer" || r[0].IsTemporary || r[1].Role != "member" || !r[1].IsTemporary || r[1].TemporaryRange == nil ||
			*r[1].TemporaryRange != "1h" || r[1].TemporaryAccessStartTime == nil || !strings.HasPrefix(*r[1].TemporaryAccessStartTime, start.Format("2006-01-02T15:04:05")) ||
			r[1].TemporaryAccessEndTime == nil || !strings.HasPrefix(*r[1].TemporaryAccessEndTime, start.Add(time.Hour).Format("2006-01-02T15:04:05")) {
			t.Fatalf("get project group %+v", one)
		}
		// A custom project role: role "custom" with its slug, as the provider reads it back.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "reader", "name": "Reader",
			"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read"}}}})
		var roles struct{ Roles []projectGroupRoleOut }
		e.Must(t, 200, "PATCH", "/api/v2/workspace/"+p.ID+"/groups/"+g.ID, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "reader", "isTemporary": false, "temporaryAccessStartTime": "0001-01-01T00:00:00Z"}}}).Decode(t, &roles)
		if len(roles.Roles) != 1 || roles.Roles[0].Role != "custom" || roles.Roles[0].CustomRoleSlug == nil || *roles.Roles[0].CustomRoleSlug != "reader" ||
			roles.Roles[0].ProjectMembershipID != pg.ID {
			t.Fatalf("updated roles %+v", roles)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/groups/"+g.ID, e.Token, map[string]any{"roles": []map[string]any{}}), 422, "ValidationFailure")
		var all struct{ GroupMemberships []projectGroupOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/groups", e.Token, nil).Decode(t, &all)
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.ID+"/groups", e.Token, nil)
		if len(all.GroupMemberships) != 2 || all.GroupMemberships[0].Group.Name != "Platform Team" || all.GroupMemberships[1].Group.Name != "Readers" {
			t.Fatalf("project groups %+v", all)
		}
		// The custom project role in use by a group cannot be deleted.
		var pr struct{ Role struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/roles/slug/reader", e.Token, nil).Decode(t, &pr)
		assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/roles/"+pr.Role.ID, e.Token, nil), 400, "BadRequest")
		var del struct{ GroupMembership projectGroupOut }
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/groups/"+c.ID, e.Token, nil).Decode(t, &del)
		if del.GroupMembership.ID != pg2.ID || del.GroupMembership.GroupID != c.ID {
			t.Fatalf("deleted %+v", del)
		}
		assertError(t, e.Do(t, "GET", "/api/v2/workspace/"+p.ID+"/groups/"+c.ID, e.Token, nil), 404, "NotFound")

		// Members out, group deleted: its project membership goes with it.
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil).Decode(t, &u)
		assertError(t, e.Do(t, "DELETE", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil), 400, "BadRequest")
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		var gone groupOut
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID, e.Token, nil).Decode(t, &gone)
		if gone.ID != g.ID {
			t.Fatalf("deleted group %+v", gone)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/groups/"+g.ID, e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/groups", e.Token, nil).Decode(t, &all)
		if len(all.GroupMemberships) != 0 {
			t.Fatalf("groups left in the project %+v", all)
		}
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/roles/"+pr.Role.ID, e.Token, nil)

		// A project whose custom role a group holds can be deleted.
		doomed := createProject(t, e, e.Token, map[string]any{"projectName": "doomed"})
		e.Must(t, 200, "POST", "/api/v1/projects/"+doomed.ID+"/roles", e.Token, map[string]any{"slug": "reader", "name": "Reader",
			"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read"}}}})
		addProjectGroup(t, e, e.Token, doomed.ID, c.ID, map[string]any{"role": "reader"})
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+doomed.ID, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/groups/"+c.ID, e.Token, nil)

		// Every change was audited.
		var logs struct {
			AuditLogs []struct{ Event struct{ Type string } }
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=200", e.Token, nil).Decode(t, &logs)
		seen := map[string]bool{}
		for _, l := range logs.AuditLogs {
			seen[l.Event.Type] = true
		}
		for _, typ := range []string{"create-group", "update-group", "delete-group", "add-user-to-group", "remove-user-from-group",
			"add-identity-to-group", "remove-identity-from-group", "add-group-to-project", "update-group-project-membership", "remove-group-from-project"} {
			if !seen[typ] {
				t.Errorf("no %s audit event", typ)
			}
		}
	})
}

// TestGroupMembersHoldTheGroupsProjectRoles: a user and an identity in a
// group hold its project role (with their own, none here) and lose it when
// they leave the group, when the group leaves the project, and when the
// group is deleted.
func TestGroupMembersHoldTheGroupsProjectRoles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "via-group"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		q := secretQ(p.ID, "dev", "/")
		alice, _ := newUser(t, e, "alice@example.com", "member")
		mid, mtok := e.NewIdentity(t, "ci", "member")
		for _, tok := range []string{alice, mtok} {
			assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		}
		g := createGroup(t, e, e.Token, map[string]any{"name": "readers"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "viewer"})
		for _, tok := range []string{alice, mtok} {
			if got := listSecrets(t, e, tok, q); len(got) != 1 || got[0].SecretValue != "v" {
				t.Fatalf("group member reads %+v", got)
			}
			// Viewer: no writes.
			assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/W", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "x"}),
				403, "PermissionDenied")
		}
		// The project is listed for the group's members.
		var ws struct{ Workspaces []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/workspace", mtok, nil).Decode(t, &ws)
		if len(ws.Workspaces) != 1 || ws.Workspaces[0].ID != p.ID {
			t.Fatalf("projects of a group member %+v", ws)
		}
		// Union: own role member + group viewer = member.
		addMember(t, e, p.ID, mid, map[string]any{"role": "member"})
		putSecret(t, e, mtok, p.ID, "dev", "/", "W", "x")
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+mid, e.Token, nil)
		listSecrets(t, e, mtok, q) // the group's role remains

		// Leaving the group.
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil)
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		for _, tok := range []string{alice, mtok} {
			assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		}
		// Back in; then the group leaves the project.
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/alice@example.com", e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		listSecrets(t, e, alice, q)
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.ID+"/groups/"+g.ID, e.Token, nil)
		for _, tok := range []string{alice, mtok} {
			assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		}
		// Back in the project; then the group is deleted.
		addProjectGroup(t, e, e.Token, p.ID, g.Slug, map[string]any{"role": "viewer"})
		listSecrets(t, e, mtok, q)
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID, e.Token, nil)
		for _, tok := range []string{alice, mtok} {
			assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		}
		// A user removed from the organization leaves its groups too.
		g2 := createGroup(t, e, e.Token, map[string]any{"name": "second"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+g2.ID+"/users/alice@example.com", e.Token, nil)
		var members struct{ Users []struct{ Email string } }
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil)
		var orgMembers struct {
			Users []struct {
				ID   string
				User struct{ Email string }
			}
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil).Decode(t, &orgMembers)
		for _, m := range orgMembers.Users {
			if m.User.Email == "alice@example.com" {
				e.Must(t, 200, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships/"+m.ID, e.Token, nil)
			}
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g2.ID+"/users?filter=existingMembers", e.Token, nil).Decode(t, &members)
		if len(members.Users) != 0 {
			t.Fatalf("removed user still in a group %+v", members)
		}
	})
}

// TestTemporaryGroupGrantEndsOnTheClock: a group's temporary project role
// stops working for its members when its window closes on the server's
// clock, with the permission set cached just before and no job run.
func TestTemporaryGroupGrantEndsOnTheClock(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: clock.Now})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "temporary-group"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		q := secretQ(p.ID, "dev", "/")
		mid, tok := e.NewIdentity(t, "contractor", "member")
		g := createGroup(t, e, e.Token, map[string]any{"name": "contractors"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		// Starts in ten minutes, for an hour.
		addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "no-access"},
			map[string]any{"role": "viewer", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h",
				"temporaryAccessStartTime": clock.Now().Add(10 * time.Minute).Format(time.RFC3339)})
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		clock.Add(10*time.Minute + time.Second)
		listSecrets(t, e, tok, q)
		clock.Add(59 * time.Minute)
		cached(t, e, func() { listSecrets(t, e, tok, q) })
		clock.Add(time.Minute) // 1h00m01s after the start
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
	})
}

// TestGroupAuthorization: only organization members with the groups
// permission manage groups, nobody gives a group (or joins one to) more than
// they hold, adding a group to a project needs the project's group
// permissions, and one project's admin cannot touch another project.
func TestGroupAuthorization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "beta"})
		g := createGroup(t, e, e.Token, map[string]any{"name": "team"})

		// An organization member may read groups, not change them.
		_, member := e.NewIdentity(t, "plain-member", "member")
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID, member, nil)
		assertError(t, e.Do(t, "POST", "/api/v1/groups", member, map[string]any{"name": "mine"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/groups/"+g.ID, member, map[string]any{"name": "renamed"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/groups/"+g.ID, member, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+e.IdentityID, member, nil), 403, "PermissionDenied")
		_, none := e.NewIdentity(t, "no-access", "no-access")
		assertError(t, e.Do(t, "GET", "/api/v1/groups", none, nil), 403, "PermissionDenied")

		// A group manager (custom organization role) manages groups within what it holds.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-manager", "name": "Group manager",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "member", "action": []string{"read"}}}})
		mgr, _ := newUser(t, e, "manager@example.com", "group-manager")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", mgr, map[string]any{"name": "admins", "role": "admin"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", mgr, map[string]any{"name": "members", "role": "member"}), 403, "PermissionBoundaryError")
		own := createGroup(t, e, mgr, map[string]any{"name": "managed"})
		assertError(t, e.Do(t, "PATCH", "/api/v1/groups/"+own.ID, mgr, map[string]any{"role": "admin"}), 403, "PermissionBoundaryError")
		// Joining a group that is admin of project alpha would make the manager its admin: refused.
		addProjectGroup(t, e, e.Token, a.ID, own.ID, map[string]any{"role": "admin"})
		assertError(t, e.Do(t, "POST", "/api/v1/groups/"+own.ID+"/users/manager@example.com", mgr, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", "/api/v1/groups/"+own.ID, mgr, nil), 403, "PermissionBoundaryError")
		// Nor rename its slug, which an identity provider's groups claim names.
		assertError(t, e.Do(t, "PATCH", "/api/v1/groups/"+own.ID, mgr, map[string]any{"slug": "taken-over"}), 403, "PermissionBoundaryError")
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+a.ID+"/groups/"+own.ID, e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/groups/"+own.ID+"/users/manager@example.com", mgr, nil)

		// In a project: a member (groups: read) cannot add a group; an admin of
		// alpha can, but not to beta, and a custom role without grant-privileges
		// cannot hand out admin.
		_, pm := projectMember(t, e, a.ID, "project-member", "member")
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/groups", pm, nil)
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/groups/"+g.ID, pm, map[string]any{"role": "viewer"}), 403, "PermissionDenied")
		_, alphaAdmin := projectMember(t, e, a.ID, "alpha-admin", "admin")
		addProjectGroup(t, e, alphaAdmin, a.ID, g.ID, map[string]any{"role": "viewer"})
		for _, r := range []apptest.Response{
			e.Do(t, "POST", "/api/v2/workspace/"+b.ID+"/groups/"+g.ID, alphaAdmin, map[string]any{"role": "viewer"}),
			e.Do(t, "GET", "/api/v1/projects/"+b.ID+"/groups", alphaAdmin, nil),
			e.Do(t, "DELETE", "/api/v1/projects/"+b.ID+"/groups/"+g.ID, alphaAdmin, nil),
		} {
			if r.Status != 403 && r.Status != 404 {
				t.Fatalf("alpha's admin in beta: %d %s", r.Status, r.Body)
			}
		}
		e.Must(t, 200, "POST", "/api/v1/projects/"+a.ID+"/roles", e.Token, map[string]any{"slug": "group-adder", "name": "g",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "secrets", "action": []string{"read"}}}})
		_, adder := projectMember(t, e, a.ID, "adder", "group-adder")
		g2 := createGroup(t, e, e.Token, map[string]any{"name": "second"})
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/groups/"+g2.ID, adder, map[string]any{"role": "admin"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/groups/"+g2.ID, adder, map[string]any{"role": "viewer"}), 403, "PermissionBoundaryError")
		addProjectGroup(t, e, adder, a.ID, g2.ID, map[string]any{"role": "no-access"})
		// Nor can it change or remove the viewer group alpha's admin added.
		assertError(t, e.Do(t, "PATCH", "/api/v2/workspace/"+a.ID+"/groups/"+g.ID, adder, map[string]any{"roles": []map[string]any{{"role": "no-access"}}}),
			403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", "/api/v2/workspace/"+a.ID+"/groups/"+g.ID, adder, nil), 403, "PermissionBoundaryError")
		// A group of another organization's id is not found.
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/groups/"+a.ID, e.Token, map[string]any{"role": "viewer"}), 404, "NotFound")
	})
}

// TestGroupChangesReachTheOtherNodeAtOnce: with a member's permission set
// cached on node b, a group change made through node a is seen by b's very
// next request (the one invalidation mechanism of docs/architecture.md).
func TestGroupChangesReachTheOtherNodeAtOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		a, b := twoNodes(t, d)
		p := createProject(t, a, a.Token, map[string]any{"projectName": "two-nodes"})
		putSecret(t, a, a.Token, p.ID, "dev", "/", "K", "v")
		q := secretQ(p.ID, "dev", "/")
		mid, tok := a.NewIdentity(t, "grouped", "member")
		g := createGroup(t, a, a.Token, map[string]any{"name": "readers"})
		a.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, a.Token, nil)
		addProjectGroup(t, a, a.Token, p.ID, g.ID, map[string]any{"role": "viewer"})
		warm := func() {
			t.Helper()
			listSecrets(t, b, tok, q)
			cached(t, b, func() { listSecrets(t, b, tok, q) })
		}

		warm()
		a.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, a.Token, nil)
		assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")

		a.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, a.Token, nil)
		warm()
		a.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/groups/"+g.ID, a.Token, map[string]any{"roles": []map[string]any{{"role": "no-access"}}})
		assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")

		a.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/groups/"+g.ID, a.Token, map[string]any{"roles": []map[string]any{{"role": "viewer"}}})
		warm()
		a.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/groups/"+g.ID, a.Token, nil)
		assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")

		addProjectGroup(t, a, a.Token, p.ID, g.ID, map[string]any{"role": "viewer"})
		warm()
		a.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID, a.Token, nil)
		assertError(t, b.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
	})
}

// TestSyncUserGroupsMapsNames: the domain method sign-in code calls with an
// identity provider's groups claim puts the user in exactly the named groups
// (by name; unknown names ignored), and the groups' project roles follow at once.
func TestSyncUserGroupsMapsNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sso-mapped"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		q := secretQ(p.ID, "dev", "/")
		alice, msID := newUser(t, e, "alice@example.com", "member")
		var ms struct {
			Membership struct{ User struct{ ID string } }
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+msID, e.Token, nil).Decode(t, &ms)
		userID := ms.Membership.User.ID
		eng := createGroup(t, e, e.Token, map[string]any{"name": "eng", "slug": "eng-team"})
		ops := createGroup(t, e, e.Token, map[string]any{"name": "ops", "slug": "ops-team"})
		addProjectGroup(t, e, e.Token, p.ID, eng.ID, map[string]any{"role": "viewer"})
		members := func(g groupOut) int {
			var out struct{ TotalCount int }
			e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/users?filter=existingMembers", e.Token, nil).Decode(t, &out)
			return out.TotalCount
		}
		actor := authz.Actor{Kind: authz.ActorUser, ID: userID, OrgID: e.OrgID, Name: "alice@example.com"}
		sync := func(slugs ...string) {
			t.Helper()
			if err := e.App.Groups.SyncUserGroups(t.Context(), actor, e.OrgID, userID, slugs); err != nil {
				t.Fatal(err)
			}
		}
		sync("eng", "no-such-group", "eng", "ops-team") // names; a slug is not one
		if members(eng) != 1 || members(ops) != 0 {
			t.Fatalf("after mapping eng: eng %d, ops %d", members(eng), members(ops))
		}
		listSecrets(t, e, alice, q)
		sync("ops")
		if members(eng) != 0 || members(ops) != 1 {
			t.Fatalf("after mapping ops: eng %d, ops %d", members(eng), members(ops))
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, alice, nil), 403, "PermissionDenied")
		if err := e.App.Groups.SyncUserGroups(t.Context(), actor, e.OrgID, e.IdentityID, []string{"eng"}); err == nil {
			t.Fatal("an identity's id (no user of the organization) was mapped into groups")
		}
		// Concurrent sign-ins naming the same groups both succeed; a group
		// deleted after it was looked up is skipped, not an error.
		sync()
		done := make(chan error, 4)
		for range cap(done) {
			go func() {
				done <- e.App.Groups.SyncUserGroups(t.Context(), actor, e.OrgID, userID, []string{"eng", "ops"})
			}()
		}
		for range cap(done) {
			if err := <-done; err != nil {
				t.Fatalf("concurrent sign-ins: %v", err)
			}
		}
		if members(eng) != 1 || members(ops) != 1 {
			t.Fatalf("after concurrent sign-ins: eng %d, ops %d", members(eng), members(ops))
		}
		gone := createGroup(t, e, e.Token, map[string]any{"name": "gone"})
		e.Must(t, 200, "DELETE", "/api/v1/groups/"+gone.ID, e.Token, nil)
		if err := e.DB.SetUserGroups(t.Context(), e.OrgID, userID, []string{eng.ID, gone.ID}, func(added, removed []string) []audit.Event {
			if len(added) != 0 || len(removed) != 1 {
				t.Errorf("events for added %v removed %v", added, removed)
			}
			return nil
		}); err != nil {
			t.Fatalf("a group deleted meanwhile: %v", err)
		}
		sync() // an empty claim leaves every group
		if members(ops) != 0 {
			t.Fatal("empty claim left the user in ops")
		}
		var logs struct {
			AuditLogs []struct {
				Event struct {
					Type     string
					Metadata map[string]any
				}
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=200", e.Token, nil).Decode(t, &logs)
		n := 0
		for _, l := range logs.AuditLogs {
			if l.Event.Metadata["source"] == "sso" {
				n++
			}
		}
		// eng in; eng out and ops in; ops out; eng and ops in once however many
		// sign-ins raced; eng out (the direct SetUserGroups call wrote none).
		if n != 7 {
			t.Fatalf("%d audited mapping changes, want 7", n)
		}
	})
}

// grantsHook is the real store with a step run once right after a group
// service has read a group's project roles for its check: the moment
// another request can change them before the write.
type grantsHook struct {
	*store.DB
	after func()
}

func (h *grantsHook) GroupProjectGrants(ctx context.Context, groupID string) (org.GroupGrants, error) {
	g, err := h.DB.GroupProjectGrants(ctx, groupID)
	if h.after != nil {
		h.after()
		h.after = nil
	}
	return g, err
}

// TestGroupJoinRefusedIfItsProjectRolesChangedMeanwhile: a group manager
// whose check saw a group without project roles does not join it once an
// admin has, between the check and the write, made the group admin of a
// project (the manager would otherwise hold that admin role unchecked).
func TestGroupJoinRefusedIfItsProjectRolesChangedMeanwhile(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "race"})
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-manager", "name": "Group manager",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "member", "action": []string{"read"}}, {"subject": "identity", "action": []string{"read"}}}})
		mgrID, _ := e.NewIdentity(t, "manager", "group-manager")
		g := createGroup(t, e, e.Token, map[string]any{"name": "quiet"})
		mgr := authz.Actor{Kind: authz.ActorIdentity, ID: mgrID, OrgID: e.OrgID, Name: "manager"}
		hook := &grantsHook{DB: e.DB}
		groups := org.NewGroups(hook, authz.NewResolver(e.DB, time.Now), time.Now)
		ctx := context.Background()

		hook.after = func() { addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "admin"}) }
		if _, err := groups.AddIdentity(ctx, mgr, g.ID, mgrID); !errors.Is(err, org.ErrGroupRolesChanged) {
			t.Fatalf("joining a group that became admin meanwhile: %v", err)
		}
		var members struct{ MachineIdentities []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/machine-identities?filter=assignedMachineIdentities", e.Token, nil).Decode(t, &members)
		if len(members.MachineIdentities) != 0 {
			t.Fatalf("the manager joined: %+v", members)
		}
		// Checked again, the join is refused for what the group now holds.
		var boundary *errs.Error
		if _, err := groups.AddIdentity(ctx, mgr, g.ID, mgrID); !errors.As(err, &boundary) || boundary.Code != "PermissionBoundaryError" {
			t.Fatalf("joining an admin group: %v", err)
		}
		// A change the check saw is written: the group leaves the project and
		// the manager joins.
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/groups/"+g.ID, e.Token, nil)
		if _, err := groups.AddIdentity(ctx, mgr, g.ID, mgrID); err != nil {
			t.Fatalf("joining a group without project roles: %v", err)
		}
		// An organization admin's join waits for the same roles it was made on,
		// and the conflict is not taken for "already a member".
		hook.after = func() { addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "viewer"}) }
		_, err := groups.AddIdentity(ctx, authz.Actor{Kind: authz.ActorIdentity, ID: e.IdentityID, OrgID: e.OrgID}, g.ID, e.IdentityID)
		if !errors.Is(err, org.ErrGroupRolesChanged) {
			t.Fatalf("an admin adding while the group's roles change: %v", err)
		}

		// Editing the rules of a custom role the group holds counts as a change.
		p2 := createProject(t, e, e.Token, map[string]any{"projectName": "race-custom"})
		read := []map[string]any{{"subject": "secrets", "action": []string{"read", "readValue"}}}
		var role struct{ Role struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/projects/"+p2.ID+"/roles", e.Token, map[string]any{"slug": "reads", "name": "reads", "permissions": read})
		e.Must(t, 200, "POST", "/api/v1/projects/"+p2.ID+"/roles", e.Token, map[string]any{"slug": "group-reads", "name": "group reads", "permissions": read}).Decode(t, &role)
		addMember(t, e, p2.ID, mgrID, map[string]any{"role": "reads"})
		g2 := createGroup(t, e, e.Token, map[string]any{"name": "narrow"})
		addProjectGroup(t, e, e.Token, p2.ID, g2.ID, map[string]any{"role": "group-reads"})
		hook.after = func() {
			e.Must(t, 200, "PATCH", "/api/v1/projects/"+p2.ID+"/roles/"+role.Role.ID, e.Token, map[string]any{"permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"read", "readValue", "create", "edit", "delete"}}}})
		}
		if _, err := groups.AddIdentity(ctx, mgr, g2.ID, mgrID); !errors.Is(err, org.ErrGroupRolesChanged) {
			t.Fatalf("joining a group whose custom role was widened meanwhile: %v", err)
		}
		if _, err := groups.AddIdentity(ctx, mgr, g2.ID, mgrID); !errors.As(err, &boundary) || boundary.Code != "PermissionBoundaryError" {
			t.Fatalf("joining a group with a wider custom role: %v", err)
		}
		// Renaming (the name a groups claim maps) and deleting compare too.
		g3 := createGroup(t, e, e.Token, map[string]any{"name": "renamed-race"})
		name := "claimed-by-idp"
		hook.after = func() { addProjectGroup(t, e, e.Token, p.ID, g3.ID, map[string]any{"role": "admin"}) }
		if _, err := groups.Update(ctx, mgr, g3.ID, org.GroupChange{Name: &name}); !errors.Is(err, org.ErrGroupRolesChanged) {
			t.Fatalf("renaming a group that became admin meanwhile: %v", err)
		}
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/groups/"+g3.ID, e.Token, nil)
		hook.after = func() { addProjectGroup(t, e, e.Token, p.ID, g3.ID, map[string]any{"role": "viewer"}) }
		if _, err := groups.Delete(ctx, mgr, g3.ID); !errors.Is(err, org.ErrGroupRolesChanged) {
			t.Fatalf("deleting a group whose roles changed meanwhile: %v", err)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g3.ID, e.Token, nil)
	})
}

// TestGroupMembersAndProjectsListings: /members lists a group's users and
// identities by name with Infisical's shape and filters; /projects lists
// the projects the caller sees with whether the group is in each, and a
// member of the organization sees no project it is not in.
func TestGroupMembersAndProjectsListings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		g := createGroup(t, e, e.Token, map[string]any{"name": "listed"})
		newUser(t, e, "zoe@example.com", "member")
		newUser(t, e, "adam@example.com", "member")
		mid, memberTok := e.NewIdentity(t, "Machine-M", "member")
		for _, u := range []string{"zoe@example.com", "adam@example.com"} {
			e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/"+u, e.Token, nil)
		}
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+mid, e.Token, nil)
		type member struct {
			ID, JoinedGroupAt, Type string
			User                    *struct{ ID, Email, Username string }
			MachineIdentity         *struct{ ID, Name string }
		}
		var out struct {
			Members    []member
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/members?limit=100", e.Token, nil).Decode(t, &out)
		if out.TotalCount != 3 || len(out.Members) != 3 || out.Members[0].User == nil || out.Members[0].User.Email != "adam@example.com" ||
			out.Members[1].MachineIdentity == nil || out.Members[1].MachineIdentity.Name != "Machine-M" || out.Members[1].ID != mid ||
			out.Members[1].Type != "machineIdentity" || out.Members[2].User.Email != "zoe@example.com" || out.Members[2].Type != "user" ||
			out.Members[0].JoinedGroupAt == "" {
			t.Fatalf("members %+v", out)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/members?memberTypeFilter=machineIdentities", e.Token, nil).Decode(t, &out)
		if out.TotalCount != 1 || out.Members[0].ID != mid {
			t.Fatalf("identities only %+v", out)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/members?search=zo&orderDirection=desc", e.Token, nil).Decode(t, &out)
		if out.TotalCount != 1 || out.Members[0].User.Email != "zoe@example.com" {
			t.Fatalf("search %+v", out)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/members?limit=1&offset=2", e.Token, nil).Decode(t, &out)
		if out.TotalCount != 3 || len(out.Members) != 1 || out.Members[0].User.Email != "zoe@example.com" {
			t.Fatalf("page %+v", out)
		}
		for _, q := range []string{"memberTypeFilter=robots", "orderBy=age", "limit=101", "orderDirection=up"} {
			assertError(t, e.Do(t, "GET", "/api/v1/groups/"+g.ID+"/members?"+q, e.Token, nil), 422, "ValidationFailure")
		}

		in := createProject(t, e, e.Token, map[string]any{"projectName": "Alpha"})
		secret := createProject(t, e, e.Token, map[string]any{"projectName": "Beta-hidden"})
		addProjectGroup(t, e, e.Token, in.ID, g.ID, map[string]any{"role": "viewer"})
		addProjectGroup(t, e, e.Token, secret.ID, g.ID, map[string]any{"role": "viewer"})
		other := createProject(t, e, e.Token, map[string]any{"projectName": "Gamma"})
		type proj struct {
			ID, Name, Slug, Type string
			JoinedGroupAt        *string
		}
		var ps struct {
			Projects   []proj
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/projects", e.Token, nil).Decode(t, &ps)
		if ps.TotalCount != 3 || ps.Projects[0].Name != "Alpha" || ps.Projects[0].JoinedGroupAt == nil ||
			ps.Projects[2].ID != other.ID || ps.Projects[2].JoinedGroupAt != nil || ps.Projects[0].Type == "" {
			t.Fatalf("admin's listing %+v", ps)
		}
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/projects?filter=unassignedProjects", e.Token, nil).Decode(t, &ps)
		if ps.TotalCount != 1 || ps.Projects[0].ID != other.ID {
			t.Fatalf("unassigned %+v", ps)
		}
		// The group's member identity sees the two projects it is in through
		// the group; a plain member of the organization sees none.
		e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/projects", memberTok, nil).Decode(t, &ps)
		if ps.TotalCount != 2 {
			t.Fatalf("group member's listing %+v", ps)
		}
		_, outsider := e.NewIdentity(t, "outsider", "member")
		r := e.Must(t, 200, "GET", "/api/v1/groups/"+g.ID+"/projects", outsider, nil)
		r.Decode(t, &ps)
		if ps.TotalCount != 0 || strings.Contains(string(r.Body), "Beta-hidden") {
			t.Fatalf("outsider's listing %s", r.Body)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/groups/"+g.ID+"/projects?filter=mine", e.Token, nil), 422, "ValidationFailure")
	})
}

// TestGroupOrgRoleAddsToMembersOrgPermissions: a group's organization role
// adds to what its members may do in the organization (admin making them
// organization admins, with the admin role in every project), and stops
// when they leave the group.
func TestGroupOrgRoleAddsToMembersOrgPermissions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "org-wide"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		q := secretQ(p.ID, "dev", "/")
		id, tok := e.NewIdentity(t, "grouped", "no-access")
		assertError(t, e.Do(t, "GET", "/api/v1/groups", tok, nil), 403, "PermissionDenied")

		readers := createGroup(t, e, e.Token, map[string]any{"name": "org-members", "role": "member"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+readers.ID+"/machine-identities/"+id, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/groups", tok, nil)
		// A member's rights, not an admin's.
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/groups", tok, map[string]any{"name": "mine"}), 403, "PermissionDenied")

		// A custom organization role through a group adds its rules.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-maker", "name": "Group maker",
			"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create"}}}})
		makers := createGroup(t, e, e.Token, map[string]any{"name": "makers", "role": "group-maker"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+makers.ID+"/machine-identities/"+id, e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/groups", tok, map[string]any{"name": "made-by-a-group-member"})

		// Admin through a group: the admin role in every project.
		admins := createGroup(t, e, e.Token, map[string]any{"name": "org-admins", "role": "admin"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+admins.ID+"/machine-identities/"+id, e.Token, nil)
		if got := listSecrets(t, e, tok, q); len(got) != 1 || got[0].SecretValue != "v" {
			t.Fatalf("an admin through a group reads %+v", got)
		}
		// Leaving the groups takes it all away on the next request.
		for _, g := range []groupOut{admins, makers, readers} {
			e.Must(t, 200, "DELETE", "/api/v1/groups/"+g.ID+"/machine-identities/"+id, e.Token, nil)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+q, tok, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/groups", tok, nil), 403, "PermissionDenied")
	})
}

// TestGroupHeldRolesBoundChangesToTheMember: what a member holds through
// its groups' organization roles bounds who may change it, as its own role
// does: a caller who manages identities and members but is no admin cannot
// mint a token for, delete, or attach a client secret to an identity that
// holds more through a group, nor deactivate or remove such a user.
func TestGroupHeldRolesBoundChangesToTheMember(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "people-manager", "name": "People manager",
			"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "create-token"}},
				{"subject": "member", "action": []string{"read", "create", "edit", "delete"}}}})
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "wide", "name": "Wide",
			"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "create", "edit", "delete", "create-token"}},
				{"subject": "member", "action": []string{"read", "create", "edit", "delete"}},
				{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}}}})
		_, mgr := e.NewIdentity(t, "people-manager", "people-manager")
		victim, _ := e.NewIdentity(t, "victim", "no-access")
		e.Must(t, 200, "POST", "/api/v1/auth/universal-auth/identities/"+victim, e.Token, map[string]any{})
		_, victimUser := newUser(t, e, "victim@example.com", "no-access")
		tokens := "/api/v1/auth/token-auth/identities/" + victim + "/tokens"
		deactivate := "/api/v2/organizations/" + e.OrgID + "/memberships/" + victimUser
		// Holding no more than the manager, the victims may be changed.
		e.Must(t, 200, "POST", tokens, mgr, map[string]any{"name": "fine"})
		e.Must(t, 200, "PATCH", deactivate, mgr, map[string]any{"isActive": true})

		// Through a group with a role wider than the manager's: no.
		wide := createGroup(t, e, e.Token, map[string]any{"name": "wide-group", "role": "wide"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+wide.ID+"/machine-identities/"+victim, e.Token, nil)
		// Checked without assertError, whose failure would print a minted
		// client secret or token.
		refused := func(path string, body map[string]any) {
			t.Helper()
			if r := e.Do(t, "POST", path, mgr, body); r.Status != 403 || !strings.Contains(string(r.Body), "PermissionBoundaryError") {
				t.Fatalf("POST %s for a victim holding more through a group: status %d", path, r.Status)
			}
		}
		refused("/api/v1/auth/universal-auth/identities/"+victim+"/client-secrets", map[string]any{})
		refused(tokens, map[string]any{"name": "wider"})
		// Admin through a group: no token, no deletion.
		admins := createGroup(t, e, e.Token, map[string]any{"name": "admins-group", "role": "admin"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+admins.ID+"/machine-identities/"+victim, e.Token, nil)
		e.Must(t, 200, "POST", "/api/v1/groups/"+admins.ID+"/users/victim@example.com", e.Token, nil)
		refused(tokens, map[string]any{"name": "admin"})
		assertError(t, e.Do(t, "DELETE", "/api/v1/identities/"+victim, mgr, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", deactivate, mgr, map[string]any{"isActive": false}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "DELETE", deactivate, mgr, nil), 403, "PermissionBoundaryError")
		// An organization admin may.
		e.Must(t, 200, "POST", tokens, e.Token, map[string]any{"name": "by-admin"})
		e.Must(t, 200, "PATCH", deactivate, e.Token, map[string]any{"isActive": false})
	})
}

// TestAGroupReferenceNamingTwoGroupsIsRefused: adding a group to a project
// by a name that is one group's name and another's slug is refused (400),
// not resolved to the group that someone allowed to make groups could
// have given the other's name as its slug; by id, it is added.
func TestAGroupReferenceNamingTwoGroupsIsRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ambiguous-groups"})
		platform := createGroup(t, e, e.Token, map[string]any{"name": "platform", "slug": "platform-team"})
		createGroup(t, e, e.Token, map[string]any{"name": "lookalike", "slug": "platform"})
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/groups/platform", e.Token,
			map[string]any{"roles": []map[string]any{{"role": "viewer"}}}), 400, "BadRequest")
		if got := addProjectGroup(t, e, e.Token, p.ID, platform.ID, map[string]any{"role": "viewer"}); got.GroupID != platform.ID {
			t.Fatalf("added by id: %+v", got)
		}
		// A name that is one group's only is found as before.
		other := createGroup(t, e, e.Token, map[string]any{"name": "Release Managers", "slug": "release"})
		if got := addProjectGroup(t, e, e.Token, p.ID, "release", map[string]any{"role": "viewer"}); got.GroupID != other.ID {
			t.Fatalf("added by slug: %+v", got)
		}
	})
}

// TestAnOrgRoleThatDeniesHoldsBesideAGroupsRole: a member's own
// organization role that denies (groups read) is not lost under a group's
// role that allows it, in either place: the roles are joined with the
// denying ones last, as a project's are (the own role's deny was lost
// because it came first).
func TestAnOrgRoleThatDeniesHoldsBesideAGroupsRole(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	var noGroups struct{ Role struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "no-groups", "name": "no-groups",
		"permissions": []map[string]any{{"subject": "groups", "action": []string{"read"}, "inverted": true}}}).Decode(t, &noGroups)
	own, ownTok := e.NewIdentity(t, "own-deny", "no-groups")
	viaGroup, groupTok := e.NewIdentity(t, "group-deny", "member")
	members := createGroup(t, e, e.Token, map[string]any{"name": "members", "role": "member"})
	deniers := createGroup(t, e, e.Token, map[string]any{"name": "deniers", "role": "no-groups"})
	e.Must(t, 200, "POST", "/api/v1/groups/"+members.ID+"/machine-identities/"+own, e.Token, nil)
	e.Must(t, 200, "POST", "/api/v1/groups/"+deniers.ID+"/machine-identities/"+viaGroup, e.Token, nil)
	for name, tok := range map[string]string{"own role denies": ownTok, "group's role denies": groupTok} {
		if r := e.Do(t, "GET", "/api/v1/groups", tok, nil); r.Status != 403 {
			t.Fatalf("%s: groups listed (%d)", name, r.Status)
		}
	}
	// Only an admin changes a role's rules that deny: a role editor lifted
	// the denial from everyone holding it (or, adding one, took from them).
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "role-editor", "name": "role-editor",
		"permissions": []map[string]any{{"subject": "role", "action": []string{"read", "edit"}}}})
	_, edTok := e.NewIdentity(t, "org-role-editor", "role-editor")
	assertError(t, e.Do(t, "PATCH", "/api/v1/organization/roles/"+noGroups.Role.ID, edTok, map[string]any{"permissions": []any{}}), 403, "PermissionBoundaryError")
	e.Must(t, 200, "PATCH", "/api/v1/organization/roles/"+noGroups.Role.ID, edTok, map[string]any{"name": "No groups"})
	// Putting someone in a group whose organization role denies: a group
	// editor holding less than the member may not.
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-editor", "name": "group-editor",
		"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "edit"}}}})
	_, geTok := e.NewIdentity(t, "org-group-editor", "group-editor")
	reader, readerTok := e.NewIdentity(t, "member-reader", "member")
	assertError(t, e.Do(t, "POST", "/api/v1/groups/"+deniers.ID+"/machine-identities/"+reader, geTok, nil), 403, "PermissionBoundaryError")
	if r := e.Do(t, "GET", "/api/v1/groups", readerTok, nil); r.Status != 200 {
		t.Fatalf("the group editor took groups read from a member: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/api/v1/groups", ownTok, nil); r.Status != 403 {
		t.Fatalf("the role editor lifted the denial: %d", r.Status)
	}
}

// TestTakingAwayARoleThatDeniesNeedsWhatItDenies: any set covers one that
// only denies, so a member who may manage groups took off itself the group
// that kept it out of prod (removing the group from the project, replacing
// its roles, leaving it, deleting it) and read prod through its own role.
// Each of those now needs what the role denies; an admin may.
func TestTakingAwayARoleThatDeniesNeedsWhatItDenies(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "lift-deny"})
	putSecret(t, e, e.Token, p.ID, "prod", "/", "KEY", "prod-value")
	e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "no-prod", "name": "no-prod",
		"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"},
			"inverted": true, "conditions": map[string]any{"environment": "prod"}}}})
	e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "group-manager", "name": "group-manager",
		"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "identity", "action": []string{"read", "edit", "delete", "grant-privileges"}}}})
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "group-editor", "name": "group-editor",
		"permissions": []map[string]any{{"subject": "groups", "action": []string{"read", "edit", "delete"}}}})
	m, mTok := e.NewIdentity(t, "contractor", "group-editor")
	addMember(t, e, p.ID, m, map[string]any{"role": "member"}, map[string]any{"role": "group-manager"})
	g := createGroup(t, e, e.Token, map[string]any{"name": "contractors", "slug": "contractors", "role": "no-access"})
	e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/machine-identities/"+m, e.Token, nil)
	addProjectGroup(t, e, e.Token, p.ID, g.Slug, map[string]any{"role": "no-prod"})
	readProd := func() int {
		return e.Do(t, "GET", "/api/v3/secrets/raw/KEY?workspaceId="+p.ID+"&environment=prod", mTok, nil).Status
	}
	// Refused by the rule on lifting, not by another boundary.
	lifting := func(r apptest.Response) {
		t.Helper()
		m := assertError(t, r, 403, "PermissionBoundaryError")
		if msg := fmt.Sprint(m["message"]); !strings.Contains(msg, "what you may not do yourself") {
			t.Fatalf("refused for another reason: %s", msg)
		}
	}
	if s := readProd(); s != 403 {
		t.Fatalf("the group's no-prod does not hold: %d", s)
	}
	for _, c := range []struct{ method, path string }{
		{"DELETE", "/api/v2/workspace/" + p.ID + "/groups/" + g.Slug},
		{"DELETE", "/api/v1/groups/" + g.ID + "/machine-identities/" + m},
		{"DELETE", "/api/v1/groups/" + g.ID},
	} {
		lifting(e.Do(t, c.method, c.path, mTok, nil))
	}
	lifting(e.Do(t, "PATCH", "/api/v2/workspace/"+p.ID+"/groups/"+g.Slug, mTok,
		map[string]any{"roles": []map[string]any{{"role": "no-access"}}}))
	if s := readProd(); s != 403 {
		t.Fatalf("the contractor lifted no-prod: %d", s)
	}
	// A direct role that denies, beside a group that grants: the same.
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+m, e.Token,
		map[string]any{"roles": []map[string]any{{"role": "no-prod"}, {"role": "group-manager"}}})
	readers := createGroup(t, e, e.Token, map[string]any{"name": "readers", "slug": "readers", "role": "no-access"})
	e.Must(t, 200, "POST", "/api/v1/groups/"+readers.ID+"/machine-identities/"+m, e.Token, nil)
	addProjectGroup(t, e, e.Token, p.ID, readers.Slug, map[string]any{"role": "viewer"})
	if s := readProd(); s != 403 {
		t.Fatalf("the direct no-prod does not hold beside the group's viewer: %d", s)
	}
	lifting(e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+m, mTok,
		map[string]any{"roles": []map[string]any{{"role": "group-manager"}}}))
	lifting(e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/identity-memberships/"+m, mTok, nil))
	if s := readProd(); s != 403 {
		t.Fatalf("the contractor lifted its own no-prod: %d", s)
	}
	// An organization role that denies, given to a group: a group editor
	// may not change it for one that does not.
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "no-members", "name": "no-members",
		"permissions": []map[string]any{{"subject": "member", "action": []string{"read"}, "inverted": true}}})
	deniers := createGroup(t, e, e.Token, map[string]any{"name": "deniers", "slug": "deniers", "role": "no-members"})
	lifting(e.Do(t, "PATCH", "/api/v1/groups/"+deniers.ID, mTok, map[string]any{"role": "no-access"}))
	// An identity's own organization role, likewise (an identity editor
	// switched it to no-access and its groups' roles read the members).
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "identity-editor", "name": "identity-editor",
		"permissions": []map[string]any{{"subject": "identity", "action": []string{"read", "edit"}}}})
	denied, _ := e.NewIdentity(t, "denied-members", "no-members")
	_, ieTok := e.NewIdentity(t, "identity-editor-holder", "identity-editor")
	lifting(e.Do(t, "PATCH", "/api/v1/identities/"+denied, ieTok, map[string]any{"role": "no-access"}))
	e.Must(t, 200, "PATCH", "/api/v1/identities/"+denied, e.Token, map[string]any{"role": "no-access"})
	// A user's organization role, likewise: a member editor who may not
	// read identities cannot take away a role that denies reading them.
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "no-identities", "name": "no-identities",
		"permissions": []map[string]any{{"subject": "identity", "action": []string{"read"}, "inverted": true}}})
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "member-editor", "name": "member-editor",
		"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "edit"}}}})
	_, userMembership := newUser(t, e, "denied-identities@example.com", "no-identities")
	_, meTok := e.NewIdentity(t, "member-editor-holder", "member-editor")
	userPath := "/api/v2/organizations/" + e.OrgID + "/memberships/" + userMembership
	lifting(e.Do(t, "PATCH", userPath, meTok, map[string]any{"role": "no-access"}))
	var um struct{ Membership struct{ Role string } }
	e.Must(t, 200, "GET", userPath, e.Token, nil).Decode(t, &um)
	if um.Membership.Role == "no-access" {
		t.Fatalf("a refused role change changed the role: %+v", um.Membership)
	}
	e.Must(t, 200, "PATCH", userPath, e.Token, map[string]any{"role": "no-access"})
	// An admin holds what each denies.
	e.Must(t, 200, "PATCH", "/api/v1/groups/"+deniers.ID, e.Token, map[string]any{"role": "no-access"})
	e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.ID+"/groups/"+g.Slug, e.Token, nil)
	e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/identity-memberships/"+m, e.Token,
		map[string]any{"roles": []map[string]any{{"role": "group-manager"}}})
	if s := readProd(); s != 200 {
		t.Fatalf("the admin's removals did not lift no-prod: %d", s)
	}
}

// TestReactivatingAMemberNeedsWhatTheyHoldInProjects: a deactivated member
// holds nothing, and reactivating them gives back every project role they
// kept, so a member manager who is no admin may reactivate only someone
// who will hold no more in any project than the manager does there; a
// project role held through a group counts too. An organization admin may.
func TestReactivatingAMemberNeedsWhatTheyHoldInProjects(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "member-manager", "name": "Member manager",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "edit"}}}})
		_, mgr := e.NewIdentity(t, "member-manager", "member-manager")
		_, victim := newUser(t, e, "victim@example.com", "no-access")
		p := createProject(t, e, e.Token, map[string]any{"projectName": "reactivation"})
		path := "/api/v2/organizations/" + e.OrgID + "/memberships/" + victim
		// In no project: deactivated and back by the manager.
		e.Must(t, 200, "PATCH", path, mgr, map[string]any{"isActive": false})
		e.Must(t, 200, "PATCH", path, mgr, map[string]any{"isActive": true})

		// A project admin: deactivated by an admin, not brought back by the
		// manager, who is in no project (nor by the same change with a role).
		addProjectUsers(t, e, e.Token, p.ID, []string{"victim@example.com"}, "admin")
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"isActive": false})
		assertError(t, e.Do(t, "PATCH", path, mgr, map[string]any{"isActive": true}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", path, mgr, map[string]any{"isActive": true, "role": "no-access"}), 403, "PermissionBoundaryError")
		// Other changes to the deactivated member stay the manager's to make.
		e.Must(t, 200, "PATCH", path, mgr, map[string]any{"isActive": false})
		var got struct{ Membership struct{ IsActive bool } }
		e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &got)
		if got.Membership.IsActive {
			t.Fatal("a refused reactivation reactivated the member")
		}

		// Removed from the project but in it through a group: still no.
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.ID+"/memberships", e.Token, map[string]any{"emails": []string{"victim@example.com"}})
		g := createGroup(t, e, e.Token, map[string]any{"name": "project-admins", "role": "no-access"})
		e.Must(t, 200, "POST", "/api/v1/groups/"+g.ID+"/users/victim@example.com", e.Token, nil)
		if pg := addProjectGroup(t, e, e.Token, p.ID, g.ID, map[string]any{"role": "admin"}); len(pg.Roles) != 1 || pg.Roles[0].Role != "admin" {
			t.Fatalf("group in the project %+v", pg)
		}
		assertError(t, e.Do(t, "PATCH", path, mgr, map[string]any{"isActive": true}), 403, "PermissionBoundaryError")
		// An organization admin may.
		e.Must(t, 200, "PATCH", path, e.Token, map[string]any{"isActive": true})
	})
	// Inviting a deactivated invitee again does not make it active, so a
	// non-admin may. (With a mailer, so that a non-admin may invite again
	// at all; the mail fails and the invitation stands.)
	m, err := mail.Parse("smtp://127.0.0.1:1?from=lockbox@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Mailer: m, SelfSiteURL: true})
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "inviter", "name": "Inviter",
		"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create", "edit"}}}})
	_, mgr := e.NewIdentity(t, "inviter", "inviter")
	p := createProject(t, e, e.Token, map[string]any{"projectName": "invited-admin"})
	l := invite(t, e, e.Token, "ivy@example.com", "no-access")
	invite(t, e, mgr, "ivy@example.com", "no-access") // active and in no project: fine
	addProjectUsers(t, e, e.Token, p.ID, []string{"ivy@example.com"}, "admin")
	e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, map[string]any{"isActive": false})
	invite(t, e, mgr, "ivy@example.com", "no-access")
	var ivy struct{ Membership struct{ IsActive bool } }
	e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, nil).Decode(t, &ivy)
	if ivy.Membership.IsActive {
		t.Fatal("inviting a deactivated invitee again reactivated them")
	}
	assertError(t, e.Do(t, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, mgr, map[string]any{"isActive": true}), 403, "PermissionBoundaryError")
}
