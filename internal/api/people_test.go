package api_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type inviteLinkOut struct {
	Email, Link, MembershipID string
	Mailed                    bool
}

// invite invites email into e's organization with role as the bootstrap admin.
func invite(t testing.TB, e *apptest.Env, token, email, role string) inviteLinkOut {
	t.Helper()
	var out struct {
		Message             string
		CompleteInviteLinks []inviteLinkOut
	}
	e.Must(t, 200, "POST", "/api/v1/invite-org/signup", token, map[string]any{"inviteeEmails": []string{email},
		"organizationId": e.OrgID, "organizationRoleSlug": role}).Decode(t, &out)
	if len(out.CompleteInviteLinks) != 1 || out.CompleteInviteLinks[0].Email != email {
		t.Fatalf("invite: %d links, want one for %s", len(out.CompleteInviteLinks), email)
	}
	return out.CompleteInviteLinks[0]
}

// linkToken returns the one-time token of an invitation link.
func linkToken(t testing.TB, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Path != "/signupinvite" || u.Query().Get("token") == "" {
		t.Fatalf("link of path %q without a one-time token", u.Path)
	}
	return u.Query().Get("token")
}

// accept sets the invitee's password through the invitation link.
func accept(t testing.TB, e *apptest.Env, email, link, password string) {
	t.Helper()
	e.Must(t, 200, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": email, "organizationId": e.OrgID,
		"code": linkToken(t, link), "password": password, "firstName": "Al"})
}

// userLogin logs a user in and selects e's organization, returning the token.
func userLogin(t testing.TB, e *apptest.Env, email, password string) string {
	t.Helper()
	var login struct{ AccessToken string }
	e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": email, "password": password}).Decode(t, &login)
	var sel struct{ Token string }
	e.Must(t, 200, "POST", "/api/v3/auth/select-organization", login.AccessToken, map[string]string{"organizationId": e.OrgID}).Decode(t, &sel)
	return sel.Token
}

// newUser invites, accepts and logs in a user with organization role orgRole.
func newUser(t testing.TB, e *apptest.Env, email, orgRole string) (token, membershipID string) {
	t.Helper()
	l := invite(t, e, e.Token, email, orgRole)
	accept(t, e, email, l.Link, "a long enough password")
	return userLogin(t, e, email, "a long enough password"), l.MembershipID
}

type projectUserOut struct {
	ID, UserID, ProjectID string
	Roles                 []struct {
		ID, Role, CustomRoleSlug, TemporaryMode, TemporaryRange string
		IsTemporary                                             bool
		TemporaryAccessEndTime                                  *string
	}
	User struct{ ID, Email, Username string }
}

func addProjectUsers(t testing.TB, e *apptest.Env, token, projectID string, emails []string, roles ...string) []projectUserOut {
	t.Helper()
	var out struct{ Memberships []projectUserOut }
	e.Must(t, 200, "POST", "/api/v2/workspace/"+projectID+"/memberships", token, map[string]any{"emails": emails, "roleSlugs": roles}).Decode(t, &out)
	return out.Memberships
}

// storedInvitationHashes reads org_invitations.token_hash straight from the database.
func storedInvitationHashes(t *testing.T, e *apptest.Env) []string {
	t.Helper()
	driver, dsn := "sqlite", "file:"+e.DB.Path()+"?mode=ro&_pragma=busy_timeout(5000)"
	if e.DB.Dialect() == store.Postgres {
		driver, dsn = "pgx", e.DBURL()
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT token_hash FROM org_invitations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

func readSecret(e *apptest.Env, t *testing.T, token, projectID, key string) apptest.Response {
	return e.Do(t, "GET", "/api/v3/secrets/raw/"+key+"?workspaceId="+projectID+"&environment=dev", token, nil)
}

// TestInviteAcceptLoginAndProjectRoles is the whole story of a person: an
// admin invites them, they set a password with the one-time link, log in,
// and read a project's secrets exactly as their project role allows.
func TestInviteAcceptLoginAndProjectRoles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "alpha"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "beta"})
		putSecret(t, e, e.Token, a.ID, "dev", "/", "A_KEY", "alpha-value")
		putSecret(t, e, e.Token, b.ID, "dev", "/", "B_KEY", "beta-value")

		l := invite(t, e, e.Token, "alice@example.com", "member")
		tok := linkToken(t, l.Link)
		if len(tok) < 43 || l.Mailed {
			t.Fatalf("link for %s: token of %d characters, mailed %v", l.Email, len(tok), l.Mailed)
		}
		// Only a keyed hash of the token is stored.
		if stored := storedInvitationHashes(t, e); len(stored) != 1 || stored[0] == tok || strings.Contains(stored[0], tok) || len(stored[0]) != 64 {
			t.Fatalf("stored %q", stored)
		}
		// Invited: listed, but cannot log in before accepting.
		var members struct {
			Users []struct {
				ID, Status, Role, InviteEmail string
				IsActive                      bool
				User                          struct{ Email string }
			}
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil).Decode(t, &members)
		found := false
		for _, m := range members.Users {
			if m.User.Email == "alice@example.com" {
				found = m.Status == "invited" && m.Role == "member" && m.IsActive && m.ID == l.MembershipID
			}
		}
		if !found {
			t.Fatalf("members %+v", members)
		}
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": "alice@example.com", "password": ""}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v3/auth/login", "", map[string]string{"email": "alice@example.com", "password": "anything at all"}), 400, "BadRequest")

		// Verify does not use the token; wrong email, org or token all fail alike.
		e.Must(t, 200, "POST", "/api/v1/invite-org/verify", "", map[string]any{"email": "alice@example.com", "organizationId": e.OrgID, "code": tok})
		for _, bad := range []map[string]any{
			{"email": "mallory@example.com", "organizationId": e.OrgID, "code": tok},
			{"email": "alice@example.com", "organizationId": "other", "code": tok},
			{"email": "alice@example.com", "organizationId": e.OrgID, "code": tok + "x"},
			{"email": "alice@example.com", "organizationId": e.OrgID},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/invite-org/verify", "", bad), 400, "BadRequest")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": "alice@example.com", "organizationId": e.OrgID,
			"code": tok, "password": "short"}), 422, "ValidationFailure")
		accept(t, e, "alice@example.com", l.Link, "alice's long password")
		// The token works once.
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": "alice@example.com", "organizationId": e.OrgID,
			"code": tok, "password": "another long password"}), 400, "BadRequest")
		alice := userLogin(t, e, "alice@example.com", "alice's long password")

		// Not yet in any project: nothing to read.
		if r := readSecret(e, t, alice, a.ID, "A_KEY"); r.Status != 403 && r.Status != 404 {
			t.Fatalf("non-member read: %d %s", r.Status, r.Body)
		}
		// Viewer of A: reads A, cannot write A, cannot read B.
		ms := addProjectUsers(t, e, e.Token, a.ID, []string{"alice@example.com"}, "viewer")
		if len(ms) != 1 || ms[0].User.Email != "alice@example.com" || len(ms[0].Roles) != 1 || ms[0].Roles[0].Role != "viewer" || ms[0].ProjectID != a.ID {
			t.Fatalf("added %+v", ms)
		}
		var sec struct{ Secret secretOut }
		readSecret(e, t, alice, a.ID, "A_KEY").Decode(t, &sec)
		if sec.Secret.SecretValue != "alpha-value" {
			t.Fatalf("viewer read %+v", sec)
		}
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/NEW", alice, map[string]any{"workspaceId": a.ID, "environment": "dev", "secretValue": "x"}), 403, "PermissionDenied")
		if r := readSecret(e, t, alice, b.ID, "B_KEY"); r.Status != 403 && r.Status != 404 {
			t.Fatalf("project B read by a member of A: %d %s", r.Status, r.Body)
		}
		// Adding again changes nothing and returns nothing new.
		if again := addProjectUsers(t, e, e.Token, a.ID, []string{"ALICE@example.com"}, "admin"); len(again) != 0 {
			t.Fatalf("re-add %+v", again)
		}
		// The membership through each route shape.
		var list struct{ Memberships []projectUserOut }
		for _, path := range []string{"/api/v1/projects/" + a.ID + "/memberships", "/api/v1/workspace/" + a.ID + "/memberships"} {
			e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &list)
			if len(list.Memberships) != 1 || list.Memberships[0].ID != ms[0].ID {
				t.Fatalf("%s: %+v", path, list)
			}
		}
		var one struct{ Membership projectUserOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/memberships/"+ms[0].ID, e.Token, nil).Decode(t, &one)
		e.Must(t, 200, "POST", "/api/v1/workspace/"+a.ID+"/memberships/details", e.Token, map[string]any{"username": "alice@example.com"}).Decode(t, &one)
		if one.Membership.ID != ms[0].ID || one.Membership.User.Username != "alice@example.com" {
			t.Fatalf("details %+v", one)
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/user/"+ms[0].UserID+"/membership", e.Token, nil).Decode(t, &one)
		if one.Membership.ID != ms[0].ID {
			t.Fatalf("by user id %+v", one)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+b.ID+"/user/"+ms[0].UserID+"/membership", e.Token, nil), 404, "NotFound")
		// Promote to member (Terraform's PATCH shape): now she writes.
		var upd struct{ Roles []struct{ Role string } }
		e.Must(t, 200, "PATCH", "/api/v1/workspace/"+a.ID+"/memberships/"+ms[0].ID, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "member", "isTemporary": false, "temporaryAccessStartTime": "0001-01-01T00:00:00Z"}}}).Decode(t, &upd)
		if len(upd.Roles) != 1 || upd.Roles[0].Role != "member" {
			t.Fatalf("update %+v", upd)
		}
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/NEW", alice, map[string]any{"workspaceId": a.ID, "environment": "dev", "secretValue": "x"})
		// A member cannot add or change people (member read only).
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+a.ID+"/memberships/"+ms[0].ID, alice, map[string]any{"roles": []map[string]any{{"role": "admin"}}}), 403, "PermissionDenied")
		// Removed (the legacy DELETE by emails): reads stop at once.
		var del struct{ Memberships []projectUserOut }
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+a.ID+"/memberships", e.Token, map[string]any{"emails": []string{"alice@example.com"}}).Decode(t, &del)
		if len(del.Memberships) != 1 {
			t.Fatalf("deleted %+v", del)
		}
		if r := readSecret(e, t, alice, a.ID, "A_KEY"); r.Status != 403 {
			t.Fatalf("read after removal: %d %s", r.Status, r.Body)
		}
		assertError(t, e.Do(t, "DELETE", "/api/v2/workspace/"+a.ID+"/memberships", e.Token, map[string]any{"emails": []string{"alice@example.com"}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/memberships", e.Token, map[string]any{"emails": []string{"stranger@example.com"}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+a.ID+"/memberships", e.Token, map[string]any{}), 422, "ValidationFailure")

		// Deactivated in the organization: the session has ended; signed in
		// again, alice cannot select the organization until reactivated.
		addProjectUsers(t, e, e.Token, a.ID, []string{"alice@example.com"}, "viewer")
		e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, map[string]any{"isActive": false})
		if r := readSecret(e, t, alice, a.ID, "A_KEY"); r.Status != 401 {
			t.Fatalf("read while deactivated: %d %s", r.Status, r.Body)
		}
		var relogin struct{ AccessToken string }
		e.Must(t, 200, "POST", "/api/v3/auth/login", "", map[string]string{"email": "alice@example.com", "password": "alice's long password"}).Decode(t, &relogin)
		assertError(t, e.Do(t, "POST", "/api/v3/auth/select-organization", relogin.AccessToken, map[string]string{"organizationId": e.OrgID}), 403, "ForbiddenError")
		e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, map[string]any{"isActive": true})
		alice = userLogin(t, e, "alice@example.com", "alice's long password")
		readSecret(e, t, alice, a.ID, "A_KEY").Decode(t, &sec)
		// Removed from the organization: gone from its projects too.
		e.Must(t, 200, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/memberships", e.Token, nil).Decode(t, &list)
		if len(list.Memberships) != 0 {
			t.Fatalf("project memberships after org removal %+v", list)
		}
		assertError(t, e.Do(t, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+l.MembershipID, e.Token, nil), 404, "NotFound")
	})
}

// TestOrgMembershipRoutesAndRoles covers the organization routes the
// Terraform provider reads: custom organization roles by id and slug, role
// assignment, identity memberships; and the privilege rule in the organization.
func TestOrgMembershipRoutesAndRoles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		type roleOut struct {
			ID, Slug, Name, Description, OrgID string
			Permissions                        []map[string]any
		}
		var role struct{ Role roleOut }
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "people-manager", "name": "People manager",
			"description": "manages members", "permissions": []map[string]any{
				{"subject": "member", "action": []string{"read", "create", "edit", "delete"}, "inverted": false},
				{"subject": "role", "action": []string{"read"}}}}).Decode(t, &role)
		if role.Role.ID == "" || role.Role.Slug != "people-manager" || role.Role.OrgID != e.OrgID || len(role.Role.Permissions) != 2 {
			t.Fatalf("created %+v", role)
		}
		id := role.Role.ID
		var got struct{ Role roleOut }
		e.Must(t, 200, "GET", "/api/v1/organization/roles/"+id, e.Token, nil).Decode(t, &got)
		e.Must(t, 200, "GET", "/api/v1/organization/roles/slug/people-manager", e.Token, nil).Decode(t, &got)
		if got.Role.ID != id || got.Role.Description != "manages members" {
			t.Fatalf("get %+v", got)
		}
		e.Must(t, 200, "GET", "/api/v1/organization/roles/slug/admin", e.Token, nil).Decode(t, &got)
		if got.Role.ID != "admin" || len(got.Role.Permissions) == 0 {
			t.Fatalf("built-in %+v", got)
		}
		var list struct{ Data struct{ Roles []roleOut } }
		e.Must(t, 200, "GET", "/api/v1/organization/roles", e.Token, nil).Decode(t, &list)
		if len(list.Data.Roles) != 4 || list.Data.Roles[3].Slug != "people-manager" {
			t.Fatalf("list %+v", list)
		}
		for _, bad := range []map[string]any{
			{"slug": "Bad Slug", "name": "x", "permissions": []any{}},
			{"slug": "x", "name": "x", "permissions": []map[string]any{{"subject": "secrets", "action": []string{"read"}}}},
			{"slug": "x", "name": "x", "permissions": []map[string]any{{"subject": "member", "action": []string{"fly"}}}},
			{"name": "x"},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/organization/roles", e.Token, bad), 422, "ValidationFailure")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "admin", "name": "x", "permissions": []any{}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "people-manager", "name": "x", "permissions": []any{}}), 400, "BadRequest")
		assertError(t, e.Do(t, "GET", "/api/v1/organization/roles/slug/nope", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/organization/roles/not-a-uuid", e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "PATCH", "/api/v1/organization/roles/"+id, e.Token, map[string]any{"name": "People mgr", "slug": ""}).Decode(t, &got)
		if got.Role.Name != "People mgr" || got.Role.Slug != "people-manager" {
			t.Fatalf("updated %+v", got)
		}

		// Bob holds the custom role; Carol is a plain member.
		bob, bobMS := newUser(t, e, "bob@example.com", "member")
		e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+bobMS, e.Token, map[string]any{"role": "people-manager"})
		var m struct {
			Membership struct {
				Role, RoleSlug string
				RoleID         *string
			}
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+bobMS, e.Token, nil).Decode(t, &m)
		if m.Membership.Role != "custom" || m.Membership.RoleSlug != "people-manager" || m.Membership.RoleID == nil || *m.Membership.RoleID != id {
			t.Fatalf("assigned %+v", m)
		}
		assertError(t, e.Do(t, "DELETE", "/api/v1/organization/roles/"+id, e.Token, nil), 400, "BadRequest") // in use
		_, carolMS := newUser(t, e, "carol@example.com", "member")
		// The custom role's rules work: Bob lists members...
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", bob, nil)
		// ...but grants nothing beyond his own: not admin, not member (which
		// reaches projects), not a change to Carol (whose role holds more),
		// not a role with rules he lacks.
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", bob, map[string]any{"inviteeEmails": []string{"d@example.com"},
			"organizationId": e.OrgID, "organizationRoleSlug": "admin"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", bob, map[string]any{"inviteeEmails": []string{"d@example.com"},
			"organizationId": e.OrgID, "organizationRoleSlug": "member"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+carolMS, bob, map[string]any{"role": "no-access"}), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+bobMS, bob, map[string]any{"role": "admin"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/organization/roles", bob, map[string]any{"slug": "x", "name": "x", "permissions": []any{}}), 403, "PermissionDenied")
		// What he holds he may hand out, a no-access invitee, but with
		// invitations not mailed the link would set a new account's
		// password: only admins get one (TestANonAdminInviterGetsNoLinkToANewAccount).
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", bob, map[string]any{"inviteeEmails": []string{"dan@example.com"},
			"organizationId": e.OrgID, "organizationRoleSlug": "no-access"}), 403, "PermissionBoundaryError")
		// Carol (member) may read members but not change them.
		carol := userLogin(t, e, "carol@example.com", "a long enough password")
		assertError(t, e.Do(t, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+bobMS, carol, map[string]any{"role": "no-access"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v2/organizations/other-org/memberships", carol, nil), 403, "PermissionDenied")

		// Identity memberships of the organization.
		var ims struct {
			IdentityMemberships []struct {
				Role     string
				Identity struct{ ID, Name string }
			}
			TotalCount int
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/identity-memberships", e.Token, nil).Decode(t, &ims)
		if ims.TotalCount != 1 || len(ims.IdentityMemberships) != 1 || ims.IdentityMemberships[0].Identity.ID != e.IdentityID || ims.IdentityMemberships[0].Role != "admin" {
			t.Fatalf("identity memberships %+v", ims)
		}
		// The last admin cannot be removed; a role no one holds can be deleted.
		e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+bobMS, e.Token, map[string]any{"role": "member"})
		e.Must(t, 200, "DELETE", "/api/v1/organization/roles/"+id, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/organization/roles/"+id, e.Token, nil), 404, "NotFound")
	})
}

// TestProjectUserPrivilegeBoundary: nobody grants a project role holding
// more than they hold, nor changes or removes a member who holds more.
func TestProjectUserPrivilegeBoundary(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "bounded"})
		// A custom project role that manages members and may grant, but holds no secret access.
		e.Must(t, 200, "POST", "/api/v1/projects/"+p.ID+"/roles", e.Token, map[string]any{"slug": "people", "name": "People",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create", "edit", "delete", "grant-privileges"}}}})
		mgr, _ := newUser(t, e, "mgr@example.com", "member")
		newUser(t, e, "u1@example.com", "member")
		newUser(t, e, "u2@example.com", "member")
		addProjectUsers(t, e, e.Token, p.ID, []string{"mgr@example.com"}, "people")
		for _, role := range []string{"admin", "viewer", "member"} {
			assertError(t, e.Do(t, "POST", "/api/v2/workspace/"+p.ID+"/memberships", mgr, map[string]any{"emails": []string{"u1@example.com"},
				"roleSlugs": []string{role}}), 403, "PermissionBoundaryError")
		}
		// What the manager holds, he may grant.
		ms := addProjectUsers(t, e, mgr, p.ID, []string{"u1@example.com"}, "no-access")
		if len(ms) != 1 {
			t.Fatalf("added %+v", ms)
		}
		// A viewer added by the admin cannot be removed or changed by him.
		vs := addProjectUsers(t, e, e.Token, p.ID, []string{"u2@example.com"}, "viewer")
		assertError(t, e.Do(t, "DELETE", "/api/v1/projects/"+p.ID+"/memberships/"+vs[0].ID, mgr, nil), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/memberships/"+vs[0].ID, mgr, map[string]any{"roles": []map[string]any{{"role": "no-access"}}}), 403, "PermissionBoundaryError")
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+p.ID+"/memberships/"+ms[0].ID, mgr, nil)
		// A user of another project is not found there.
		q := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		if r := e.Do(t, "GET", "/api/v1/projects/"+q.ID+"/memberships", mgr, nil); r.Status != 403 && r.Status != 404 {
			t.Fatalf("other project: %d %s", r.Status, r.Body)
		}
	})
}

// TestTemporaryUserRoleExpires: a temporary project role stops working at
// its end, checked when permissions are resolved, on an injected clock.
func TestTemporaryUserRoleExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: now})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "temp"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "K", "v")
		alice, _ := newUser(t, e, "alice@example.com", "member")
		ms := addProjectUsers(t, e, e.Token, p.ID, []string{"alice@example.com"}, "no-access")
		var upd struct {
			Roles []struct {
				Role, TemporaryMode, TemporaryRange string
				IsTemporary                         bool
				TemporaryAccessEndTime              *string
			}
		}
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID+"/memberships/"+ms[0].ID, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "viewer", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h"}}}).Decode(t, &upd)
		if len(upd.Roles) != 1 || !upd.Roles[0].IsTemporary || upd.Roles[0].TemporaryRange != "1h" || upd.Roles[0].TemporaryAccessEndTime == nil {
			t.Fatalf("temporary role %+v", upd)
		}
		if r := readSecret(e, t, alice, p.ID, "K"); r.Status != 200 {
			t.Fatalf("read inside the window: %d %s", r.Status, r.Body)
		}
		offset.Store(int64(59 * time.Minute))
		if r := readSecret(e, t, alice, p.ID, "K"); r.Status != 200 {
			t.Fatalf("read at 59m: %d %s", r.Status, r.Body)
		}
		offset.Store(int64(61 * time.Minute))
		if r := readSecret(e, t, alice, p.ID, "K"); r.Status != 403 {
			t.Fatalf("read after the window: %d %s", r.Status, r.Body)
		}
		// Invalid temporary fields are a 422.
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID+"/memberships/"+ms[0].ID, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "viewer", "isTemporary": true, "temporaryRange": "soon"}}}), 422, "ValidationFailure")
	})
}

// TestInvitationExpiresAndWorksOnce: a link stops working after 72 hours (on
// an injected clock), a new invitation replaces the old link, and of
// concurrent uses of one link exactly one succeeds.
func TestInvitationExpiresAndWorksOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		var offset atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: now})
		body := func(link string) map[string]any {
			return map[string]any{"email": "late@example.com", "organizationId": e.OrgID, "code": linkToken(t, link), "password": "a long enough password"}
		}
		old := invite(t, e, e.Token, "late@example.com", "member")
		offset.Store(int64(73 * time.Hour))
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", body(old.Link)), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, map[string]any{"inviteeEmails": []string{"late@example.com"},
			"organizationId": e.OrgID, "organizationRoleSlug": "no-such-role"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, map[string]any{"inviteeEmails": []string{"Late <late@example.com>"},
			"organizationId": e.OrgID}), 422, "ValidationFailure")
		// Invited again: the old link is dead even before it expires.
		offset.Store(0)
		first := invite(t, e, e.Token, "late@example.com", "member")
		second := invite(t, e, e.Token, "late@example.com", "no-access")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", body(first.Link)), 400, "BadRequest")
		// Eight concurrent uses of the live link: exactly one succeeds.
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if e.Do(t, "POST", "/api/v1/invite-org/accept", "", body(second.Link)).Status == 200 {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("%d concurrent accepts succeeded", ok.Load())
		}
		// The role of the latest invitation holds.
		var m struct{ Membership struct{ Role, Status string } }
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+second.MembershipID, e.Token, nil).Decode(t, &m)
		if m.Membership.Role != "no-access" || m.Membership.Status != "accepted" {
			t.Fatalf("membership %+v", m)
		}
		// An accepted member cannot be invited again.
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, map[string]any{"inviteeEmails": []string{"late@example.com"},
			"organizationId": e.OrgID}), 400, "BadRequest")
		// Bulk removal: all or nothing.
		other := invite(t, e, e.Token, "other@example.com", "member")
		assertError(t, e.Do(t, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, map[string]any{
			"membershipIds": []string{other.MembershipID, "not-a-membership"}}), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, map[string]any{}), 422, "ValidationFailure")
		var bulk struct{ Memberships []struct{ ID string } }
		e.Must(t, 200, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, map[string]any{
			"membershipIds": []string{other.MembershipID, second.MembershipID}}).Decode(t, &bulk)
		if len(bulk.Memberships) != 2 {
			t.Fatalf("bulk delete %+v", bulk)
		}
		assertError(t, e.Do(t, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships/"+other.MembershipID, e.Token, nil), 404, "NotFound")
	})
}

// TestPersonalOverridesArePerUser: an invited user's personal override is
// theirs alone; another member reads the shared value, and removing the
// user from the project leaves nothing of theirs readable.
func TestPersonalOverridesArePerUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "overrides"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASS", "shared-pass")
		alice, _ := newUser(t, e, "alice@example.com", "member")
		bob, _ := newUser(t, e, "bob@example.com", "member")
		addProjectUsers(t, e, e.Token, p.ID, []string{"alice@example.com", "bob@example.com"}, "member")
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/DB_PASS", alice, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "alice-pass", "type": "personal"})
		get := func(token string) string {
			var out struct{ Secrets []secretOut }
			e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&includePersonalOverrides=true", token, nil).Decode(t, &out)
			if len(out.Secrets) != 1 {
				t.Fatalf("list %+v", out)
			}
			return out.Secrets[0].SecretValue
		}
		if a, b := get(alice), get(bob); a != "alice-pass" || b != "shared-pass" {
			t.Fatalf("alice reads %q, bob reads %q", a, b)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/DB_PASS?workspaceId="+p.ID+"&environment=dev&type=personal", bob, nil), 404, "NotFound")
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.ID+"/memberships", e.Token, map[string]any{"emails": []string{"alice@example.com"}})
		if r := e.Do(t, "GET", "/api/v3/secrets/raw/DB_PASS?workspaceId="+p.ID+"&environment=dev&type=personal", alice, nil); r.Status != 403 {
			t.Fatalf("removed user reads her override: %d %s", r.Status, r.Body)
		}
	})
}

// TestInviteIntoProjects: Infisical's invite body may name projects with
// roles; each is checked (the privilege rule included) before anyone is
// invited, and the invitee joins them.
func TestInviteIntoProjects(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "with-invite"})
		q := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		req := func(email string, projects ...map[string]any) map[string]any {
			return map[string]any{"inviteeEmails": []string{email}, "organizationId": e.OrgID, "projects": projects}
		}
		e.Must(t, 200, "POST", "/api/v1/invite-org/signup", e.Token, req("pat@example.com",
			map[string]any{"id": p.ID, "projectRoleSlug": []string{"viewer"}}, map[string]any{"id": q.ID}))
		var list struct{ Memberships []projectUserOut }
		for id, want := range map[string]string{p.ID: "viewer", q.ID: "member"} {
			e.Must(t, 200, "GET", "/api/v1/projects/"+id+"/memberships", e.Token, nil).Decode(t, &list)
			if len(list.Memberships) != 1 || list.Memberships[0].User.Email != "pat@example.com" || list.Memberships[0].Roles[0].Role != want {
				t.Fatalf("project %s: %+v", id, list)
			}
		}
		// Someone who may invite into the organization but only holds the
		// project's member role cannot invite into that project: refused
		// before anyone is invited.
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "inviter", "name": "Inviter",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create"}}}})
		mem, memMS := newUser(t, e, "mem@example.com", "member")
		e.Must(t, 200, "PATCH", "/api/v2/organizations/"+e.OrgID+"/memberships/"+memMS, e.Token, map[string]any{"role": "inviter"})
		addProjectUsers(t, e, e.Token, p.ID, []string{"mem@example.com"}, "member")
		nope := req("nope@example.com", map[string]any{"id": p.ID, "projectRoleSlug": []string{"admin"}})
		nope["organizationRoleSlug"] = "no-access"
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", mem, nope), 403, "PermissionDenied")
		var members struct {
			Users []struct{ User struct{ Email string } }
		}
		e.Must(t, 200, "GET", "/api/v2/organizations/"+e.OrgID+"/memberships", e.Token, nil).Decode(t, &members)
		for _, m := range members.Users {
			if m.User.Email == "nope@example.com" {
				t.Fatal("invited although a project was refused")
			}
		}
		// Without the project the same invitation passes that check, and
		// is refused as one of a new account by a non-admin, with
		// invitations not mailed (TestANonAdminInviterGetsNoLinkToANewAccount).
		delete(nope, "projects")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", mem, nope), 403, "PermissionBoundaryError")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, req("x@example.com", map[string]any{"projectRoleSlug": []string{"viewer"}})), 422, "ValidationFailure")
		// A project named twice, or more than 100, is refused before any
		// work (12,000 entries of one project took 44 s and wrote 12,000
		// audit events before).
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, req("twice@example.com",
			map[string]any{"id": p.ID}, map[string]any{"id": p.ID})), 422, "ValidationFailure")
		many := make([]map[string]any, 101)
		for i := range many {
			many[i] = map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i)}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/signup", e.Token, req("many@example.com", many...)), 422, "ValidationFailure")
	})
}

// TestReinvitingCannotTakeOverAnAccount: a new invitation link sets the
// password of an invited account that has none, so with invitations not
// mailed the link is shown, and whoever holds it becomes that user. A member
// who may invite people cannot have one issued for an account an admin
// invited (it would carry what the admin gave it), nor change an invited
// member's role by inviting them again; an admin can. Someone new, the
// manager may invite: the link is for the account it creates.
func TestReinvitingCannotTakeOverAnAccount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "people-manager", "name": "People manager",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create", "edit", "delete"}}}})
		mgr, _ := newUser(t, e, "mgr-"+string(d)+"@example.com", "people-manager")
		// refused asserts a 403 PermissionBoundaryError and returns its
		// message; on failure it prints the status only, since a 200 holds
		// a one-time link.
		refused := func(token, email, role string) string {
			t.Helper()
			r := e.Do(t, "POST", "/api/v1/invite-org/signup", token, map[string]any{"inviteeEmails": []string{email},
				"organizationId": e.OrgID, "organizationRoleSlug": role})
			if r.Status != 403 {
				t.Fatalf("inviting %s again: status %d, want 403", email, r.Status)
			}
			m := r.JSON(t)
			if m["error"] != "PermissionBoundaryError" {
				t.Fatalf("inviting %s again: error %v", email, m["error"])
			}
			msg, _ := m["message"].(string)
			return msg
		}
		bob, dave := "bob-"+string(d)+"@example.com", "dave-"+string(d)+"@example.com"
		first := invite(t, e, e.Token, bob, "no-access")
		if msg := refused(mgr, bob, "no-access"); !strings.Contains(msg, "has not set a password") {
			t.Fatalf("refusal of a new link for an invited account: %q", msg)
		}
		davesFirst := invite(t, e, e.Token, dave, "admin")
		if msg := refused(mgr, dave, "no-access"); !strings.Contains(msg, "admin role") {
			t.Fatalf("refusal to change an invited admin's role: %q", msg)
		}
		// Someone new neither: the link would set the new account's password.
		if msg := refused(mgr, "new-"+string(d)+"@example.com", "no-access"); !strings.Contains(msg, "no account yet") {
			t.Fatalf("refusal of a link for a new account: %q", msg)
		}
		// The admin may issue a new link; it replaces the old one.
		davesSecond := invite(t, e, e.Token, dave, "admin")
		assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": dave, "organizationId": e.OrgID,
			"code": linkToken(t, davesFirst.Link), "password": "a long enough password"}), 400, "BadRequest")
		accept(t, e, dave, davesSecond.Link, "dave's own password")
		userLogin(t, e, dave, "dave's own password")
		// The refused requests left bob's link as it was.
		accept(t, e, bob, first.Link, "bob's own password")
		userLogin(t, e, bob, "bob's own password")
	})
}

// TestAcceptingWithAnExistingAccountNeedsItsPassword: whoever holds an
// invitation link is not necessarily the account's owner (without mail the
// inviter gets the link), so an account that already has a password joins
// only with that password, checked as a login is. Here a user removed from
// the organization is invited back.
func TestAcceptingWithAnExistingAccountNeedsItsPassword(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		email := "erin-" + string(d) + "@example.com"
		_, ms := newUser(t, e, email, "member")
		e.Must(t, 200, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships/"+ms, e.Token, nil)
		l := invite(t, e, e.Token, email, "member")
		acceptWith := func(password string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": email, "organizationId": e.OrgID,
				"code": linkToken(t, l.Link), "password": password})
		}
		for _, pw := range []string{"", "not the account's password"} {
			assertError(t, acceptWith(pw), 400, "BadRequest")
		}
		e.Must(t, 200, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": email, "organizationId": e.OrgID,
			"code": linkToken(t, l.Link), "password": "a long enough password"})
		userLogin(t, e, email, "a long enough password")

		// An account with a second factor: the link cannot check it, so
		// even the right password does not accept.
		gil := "gil-" + string(d) + "@example.com"
		_, gms := newUser(t, e, gil, "member")
		u, err := e.DB.UserByEmail(t.Context(), gil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.DB.PutUserTOTP(t.Context(), identity.UserTOTP{UserID: u.ID, Secret: []byte("sealed")}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := e.DB.EnableUserTOTP(t.Context(), u.ID, "", 1, nil); err != nil {
			t.Fatal(err)
		}
		e.Must(t, 200, "DELETE", "/api/v2/organizations/"+e.OrgID+"/memberships/"+gms, e.Token, nil)
		gl := invite(t, e, e.Token, gil, "member")
		m := assertError(t, e.Do(t, "POST", "/api/v1/invite-org/accept", "", map[string]any{"email": gil, "organizationId": e.OrgID,
			"code": linkToken(t, gl.Link), "password": "a long enough password"}), 403, "ForbiddenError")
		if msg, _ := m["message"].(string); !strings.Contains(msg, "second factor") {
			t.Fatalf("accepting with a second factor: %q", msg)
		}
	})
}

// TestANonAdminInviterGetsNoLinkToANewAccount: with invitations not mailed,
// the link an invitation answers sets the new account's password, so a
// non-admin who may invite (member create) became cto@ by accepting it
// and got all that was later given to cto@. Only organization admins get
// such a link; a non-admin's invitation of a new address is refused.
func TestANonAdminInviterGetsNoLinkToANewAccount(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "inviter", "name": "inviter",
		"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create"}}}})
	_, tok := e.NewIdentity(t, "inviter-bot", "inviter")
	r := e.Do(t, "POST", "/api/v1/invite-org/signup", tok, map[string]any{"inviteeEmails": []string{"cto@example.com"},
		"organizationId": e.OrgID, "organizationRoleSlug": "no-access"})
	assertError(t, r, 403, "PermissionBoundaryError")
	if strings.Contains(string(r.Body), "signupinvite") {
		t.Fatalf("the refusal carries a link: %s", r.Body)
	}
	// The admin's invitation of the same address works and shows the link.
	l := invite(t, e, e.Token, "cto@example.com", "no-access")
	linkToken(t, l.Link)
}

// TestRemovingUsersByEmailIsAllOrNothing: removing several users by email
// removes none when one of them cannot go (the project's last admin);
// before, those named first were removed and the answer was a 400.
func TestRemovingUsersByEmailIsAllOrNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		owner, _ := newUser(t, e, "owner@example.com", "admin")
		newUser(t, e, "bob@example.com", "member")
		p := createProject(t, e, owner, map[string]any{"projectName": "all-or-nothing"})
		addProjectUsers(t, e, owner, p.ID, []string{"bob@example.com"}, "member")
		assertError(t, e.Do(t, "DELETE", "/api/v2/workspace/"+p.ID+"/memberships", owner,
			map[string]any{"emails": []string{"bob@example.com", "owner@example.com"}}), 400, "BadRequest")
		var list struct{ Memberships []projectUserOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/memberships", owner, nil).Decode(t, &list)
		var emails []string
		for _, m := range list.Memberships {
			emails = append(emails, m.User.Email)
		}
		if !slices.Contains(emails, "bob@example.com") || !slices.Contains(emails, "owner@example.com") {
			t.Fatalf("members after a refused removal: %v; want bob and owner still", emails)
		}
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.ID+"/memberships", owner, map[string]any{"emails": []string{"bob@example.com"}})
	})
}
