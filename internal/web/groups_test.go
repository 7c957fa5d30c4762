package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

var groupLinkRE = regexp.MustCompile(`^/org/groups/([0-9a-f-]{36})$`)

// TestDashboardGroups: an admin creates a group, puts a user and a machine
// identity in it, and gives it a role in a project; the user then reads the
// project through the group, loses it when taken out, and the group's
// deletion removes it from the project. A member of the organization sees
// no group control and each forged POST is refused.
func TestDashboardGroups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "grouped")
		addUser(t, e, "grouped@example.com", "grouped pass 1", "member", "", "")
		u := newBrowser(t, e.URL)
		u.mustLogin("grouped@example.com", "grouped pass 1")
		if p := u.get("/projects/" + pid + "/secrets"); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
			t.Fatalf("a user outside the project and the group: %d, want 403 or 404", p.status)
		}

		gp := admin.get("/org/groups")
		mustStatus(t, gp, 200, "groups page")
		if !strings.Contains(gp.body, `id="create-group"`) {
			t.Fatalf("no create form for the admin: %.2000s", gp.body)
		}
		p := admin.post("/org/groups", url.Values{"name": {"Platform team"}, "role": {"no-access"}}, nil)
		mustStatus(t, p, 303, "create group")
		m := groupLinkRE.FindStringSubmatch(p.header.Get("Location"))
		if m == nil {
			t.Fatalf("created group at %q", p.header.Get("Location"))
		}
		gid, gurl := m[1], m[0]
		if !strings.Contains(admin.get("/org/groups").body, `data-group="Platform team"`) {
			t.Fatal("the group is not listed")
		}
		mustStatus(t, admin.post(gurl+"/users", url.Values{"username": {"grouped@example.com"}}, nil), 303, "add user")
		iid := createIdentity(t, admin, "grouped-machine", "member")
		mustStatus(t, admin.post(gurl+"/identities", url.Values{"identity": {iid}}, nil), 303, "add identity")
		page := admin.get(gurl)
		mustStatus(t, page, 200, "group page")
		if !strings.Contains(page.body, `data-user="grouped@example.com"`) || !strings.Contains(page.body, `data-identity="grouped-machine"`) {
			t.Fatalf("the group page does not list its members: %.3000s", page.body)
		}

		// The group joins the project as viewer: its user reads the project.
		mp := admin.get("/projects/" + pid + "/members")
		if !strings.Contains(mp.body, `id="add-group-member"`) || !strings.Contains(mp.body, `<option value="`+gid+`">Platform team</option>`) {
			t.Fatalf("no Add group form offering the group: %.3000s", mp.body)
		}
		mustStatus(t, admin.post("/projects/"+pid+"/members/groups", url.Values{"group": {gid}, "role": {"viewer"}}, nil), 303, "add group to project")
		mp = admin.get("/projects/" + pid + "/members")
		if row := rowOf(mp.body, `data-group="Platform team"`); !strings.Contains(row, "viewer") || !strings.Contains(row, `href="/org/groups/`+gid+`"`) {
			t.Fatalf("the project's group row: %q", row)
		}
		if strings.Contains(mp.body, `<option value="`+gid+`">Platform team</option>`) {
			t.Fatal("the Add group form still offers a group already in the project")
		}
		mustStatus(t, u.get("/projects/"+pid+"/secrets"), 200, "the group's user reads the project")
		if !strings.Contains(admin.get(gurl).body, `href="/projects/`+pid+`/members">grouped</a>`) {
			t.Fatal("the group page does not list its project")
		}
		mustStatus(t, admin.post("/projects/"+pid+"/members/groups/"+gid+"/roles", url.Values{"role": {"member"}}, nil), 303, "group role")
		if row := rowOf(admin.get("/projects/"+pid+"/members").body, `data-group="Platform team"`); !strings.Contains(row, "member") {
			t.Fatalf("after the role change: %q", row)
		}

		// A member of the organization: no control, every POST refused.
		up := u.get(gurl)
		mustStatus(t, up, 200, "member's group page")
		if !strings.Contains(up.body, `data-user="grouped@example.com"`) || !strings.Contains(up.body, `id="group-members"`) {
			t.Fatalf("the member's group page does not list the group: %.3000s", up.body)
		}
		for _, ctl := range []string{`id="edit-group"`, `id="add-group-user"`, `id="delete-group"`, `/remove"`} {
			if strings.Contains(up.body, ctl) {
				t.Errorf("a member sees group control %s", ctl)
			}
		}
		if strings.Contains(u.get("/org/groups").body, `id="create-group"`) {
			t.Error("a member sees the create form")
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{"/org/groups", url.Values{"name": {"forged"}, "role": {"admin"}}},
			{gurl, url.Values{"role": {"admin"}}},
			{gurl + "/users", url.Values{"username": {e.UserEmail}}},
			{gurl + "/users/remove", url.Values{"username": {"grouped@example.com"}}},
			{gurl + "/identities/" + iid + "/remove", nil},
			{gurl + "/delete", nil},
			{"/projects/" + pid + "/members/groups/" + gid + "/roles", url.Values{"role": {"admin"}}},
			{"/projects/" + pid + "/members/groups/" + gid + "/remove", nil},
		} {
			if p := u.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("member POST %s: %d, want 403", f.path, p.status)
			}
		}
		if page := admin.get(gurl); !strings.Contains(page.body, `<dd id="group-role">no-access</dd>`) ||
			!strings.Contains(page.body, `data-user="grouped@example.com"`) || strings.Contains(admin.get("/org/groups").body, "forged") {
			t.Fatalf("a refused POST changed the group: %.3000s", page.body)
		}

		// Taken out of the group, the user loses the project.
		mustStatus(t, admin.post(gurl+"/users/remove", url.Values{"username": {"grouped@example.com"}}, nil), 303, "remove user")
		if p := u.get("/projects/" + pid + "/secrets"); p.status != http.StatusForbidden && p.status != http.StatusNotFound {
			t.Fatalf("the user after leaving the group: %d, want 403 or 404", p.status)
		}
		mustStatus(t, admin.post(gurl+"/identities/"+iid+"/remove", nil, nil), 303, "remove identity")
		if page := admin.get(gurl); strings.Contains(page.body, `data-identity=`) || strings.Contains(page.body, `data-user=`) {
			t.Fatalf("members left: %.3000s", page.body)
		}
		mustStatus(t, admin.post(gurl, url.Values{"name": {"Platform crew"}, "role": {"member"}}, nil), 303, "rename")
		if page := admin.get(gurl); !strings.Contains(page.body, "Group Platform crew") || !strings.Contains(page.body, `<dd id="group-role">member</dd>`) {
			t.Fatalf("after the edit: %.2000s", page.body)
		}
		mustStatus(t, admin.post(gurl+"/delete", nil, nil), 303, "delete group")
		if strings.Contains(admin.get("/org/groups").body, "Platform crew") || strings.Contains(admin.get("/projects/"+pid+"/members").body, `data-group=`) {
			t.Fatal("the deleted group is still listed")
		}
		mustStatus(t, admin.get(gurl), 404, "deleted group page")
	})
}

// TestDashboardGroupBeyondTheUser: a user whose organization role may edit
// groups, but who does not hold a group's organization role (admin), is
// offered no change to that group, and each POST is refused; a group they
// do hold all of shows them the controls.
func TestDashboardGroupBeyondTheUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		mustStatus(t, admin.post("/org/roles", url.Values{"name": {"Group keeper"}, "slug": {"group-keeper"},
			"advanced": {`[{"subject":"groups","action":["read","create","edit","delete"]},{"subject":"member","action":["read"]},{"subject":"role","action":["read"]}]`}}, nil),
			303, "custom org role")
		addUser(t, e, "keeper@example.com", "keeper pass 1", "member", "", "")
		mp := admin.get("/org/members")
		keeper := memberControl(mp.body, "keeper@example.com")
		if keeper == nil {
			t.Fatal("no controls for the keeper's membership")
		}
		mustStatus(t, admin.post("/org/members/"+keeper[1]+"/role", url.Values{"role": {"group-keeper"}}, nil), 303, "keeper role")
		k := newBrowser(t, e.URL)
		k.mustLogin("keeper@example.com", "keeper pass 1")

		// The create form offers only roles the keeper may give.
		kg := k.get("/org/groups")
		if !strings.Contains(kg.body, `<option value="no-access" selected>`) || !strings.Contains(kg.body, `<option value="group-keeper"`) ||
			strings.Contains(kg.body, `<option value="admin"`) || strings.Contains(kg.body, `<option value="member"`) {
			t.Fatalf("the keeper's role choices: %.3000s", kg.body)
		}
		if ag := admin.get("/org/groups"); !strings.Contains(ag.body, `<option value="admin"`) {
			t.Fatal("the admin is not offered the admin role")
		}
		p := admin.post("/org/groups", url.Values{"name": {"Admins"}, "role": {"admin"}}, nil)
		mustStatus(t, p, 303, "admin group")
		admins := p.header.Get("Location")
		mustStatus(t, admin.post(admins+"/users", url.Values{"username": {e.UserEmail}}, nil), 303, "admin in the group")
		p = k.post("/org/groups", url.Values{"name": {"Helpers"}}, nil) // no role: no-access
		mustStatus(t, p, 303, "the keeper creates a group")
		helpers := p.header.Get("Location")

		page := k.get(admins)
		mustStatus(t, page, 200, "the keeper reads the admin group")
		if !strings.Contains(page.body, `data-user="`+e.UserEmail+`"`) {
			t.Fatalf("the admin group's members are not listed: %.3000s", page.body)
		}
		for _, ctl := range []string{`id="edit-group"`, `id="add-group-user"`, `id="delete-group"`, `/remove"`} {
			if strings.Contains(page.body, ctl) {
				t.Errorf("the keeper is offered %s on a group holding admin", ctl)
			}
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{admins + "/users", url.Values{"username": {"keeper@example.com"}}},
			{admins + "/users/remove", url.Values{"username": {e.UserEmail}}},
			{admins, url.Values{"name": {"Renamed"}}},
			{admins + "/delete", nil},
		} {
			if p := k.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("keeper POST %s: %d, want 403", f.path, p.status)
			}
		}
		if page := admin.get(admins); !strings.Contains(page.body, "Group Admins") || strings.Contains(page.body, `data-user="keeper@example.com"`) {
			t.Fatalf("a refused POST changed the admin group: %.2000s", page.body)
		}

		page = k.get(helpers)
		for _, ctl := range []string{`id="edit-group"`, `id="add-group-user"`, `id="delete-group"`} {
			if !strings.Contains(page.body, ctl) {
				t.Errorf("the keeper is not offered %s on their own group", ctl)
			}
		}
		if !strings.Contains(page.body, `<dd id="group-role">no-access</dd>`) {
			t.Errorf("a group created with no role is not no-access: %.2000s", page.body)
		}
		mustStatus(t, k.post(helpers+"/users", url.Values{"username": {"keeper@example.com"}}, nil), 303, "the keeper joins their group")

		// A group whose role denies what the keeper may not do: members may
		// be added, but taking one out or deleting the group would take the
		// denial away, so neither is offered (and both are refused).
		mustStatus(t, admin.post("/org/roles", url.Values{"name": {"No identities"}, "slug": {"no-identities"},
			"advanced": {`[{"subject":"identity","action":["read"],"inverted":true}]`}}, nil), 303, "denying org role")
		p = admin.post("/org/groups", url.Values{"name": {"Deniers"}, "role": {"no-identities"}}, nil)
		mustStatus(t, p, 303, "denying group")
		deniers := p.header.Get("Location")
		mustStatus(t, admin.post(deniers+"/users", url.Values{"username": {e.UserEmail}}, nil), 303, "a member of the denying group")
		page = k.get(deniers)
		if !strings.Contains(page.body, `id="add-group-user"`) {
			t.Errorf("the keeper is not offered adding to a group whose role only denies: %.2000s", page.body)
		}
		if !strings.Contains(page.body, `id="edit-group-name"`) {
			t.Errorf("the keeper is not offered renaming a group SSO does not fill: %.2000s", page.body)
		}
		for _, ctl := range []string{`id="delete-group"`, `/remove"`, `id="edit-group-role"`} {
			if strings.Contains(page.body, ctl) {
				t.Errorf("the keeper is offered %s on a group that denies what they may not do", ctl)
			}
		}
		mustStatus(t, k.post(deniers, url.Values{"name": {"Deniers renamed"}}, nil), 303, "the keeper renames the denying group")
		for _, f := range []struct {
			path string
			form url.Values
		}{{deniers + "/users/remove", url.Values{"username": {e.UserEmail}}}, {deniers + "/delete", nil}, {deniers, url.Values{"role": {"no-access"}}}} {
			if p := k.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("keeper POST %s: %d, want 403", f.path, p.status)
			}
		}
		if page := admin.get(deniers); !strings.Contains(page.body, `id="delete-group"`) || !strings.Contains(page.body, `/remove"`) ||
			!strings.Contains(page.body, `id="edit-group-role"`) {
			t.Errorf("the admin is not offered removal on the denying group: %.2000s", page.body)
		}
	})
}

// rowOf is the table row of body holding marker ("" if none).
func rowOf(body, marker string) string {
	for _, row := range strings.Split(body, "<tr") {
		if strings.Contains(row, marker) {
			return row
		}
	}
	return ""
}

// TestDashboardGroupUsersManagedBySSO: while the organization's SSO maps
// group memberships from the identity provider, a group's page offers no
// user change (a note says why) and the domain refuses one; machine
// identities are still managed by hand.
func TestDashboardGroupUsersManagedBySSO(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		p := admin.post("/org/groups", url.Values{"name": {"Mapped"}}, nil)
		mustStatus(t, p, 303, "group")
		gurl := p.header.Get("Location")
		mustStatus(t, admin.post(gurl+"/users", url.Values{"username": {e.UserEmail}}, nil), 303, "add before SSO")

		db, q := rawDB(t, e)
		now := time.Now().UnixMicro()
		if _, err := db.ExecContext(context.Background(), q(`INSERT INTO oidc_configs (id, org_id, configuration_type, client_id, client_secret,
			is_active, manage_group_memberships, created_at, updated_at) VALUES (?, ?, 'discovery', 'client', ?, TRUE, TRUE, ?, ?)`),
			uuid.NewString(), e.OrgID, []byte("sealed"), now, now); err != nil {
			t.Fatal(err)
		}
		page := admin.get(gurl)
		mustStatus(t, page, 200, "group page")
		if !strings.Contains(page.body, `id="sso-managed"`) || strings.Contains(page.body, `id="add-group-user"`) ||
			strings.Contains(page.body, `/users/remove"`) {
			t.Fatalf("user controls while SSO maps the group: %.3000s", page.body)
		}
		if !strings.Contains(page.body, `id="edit-group"`) {
			t.Fatal("the group's other controls are gone too")
		}
		mustStatus(t, admin.post(gurl+"/users/remove", url.Values{"username": {e.UserEmail}}, nil), 400, "remove while SSO maps")
		if !strings.Contains(admin.get(gurl).body, `data-user="`+e.UserEmail+`"`) {
			t.Fatal("a refused removal removed the user")
		}
	})
}
