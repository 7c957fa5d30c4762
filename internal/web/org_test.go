package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/totp"
	"github.com/lockbox-dev/lockbox/internal/mail"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

var (
	inviteLinkRE = regexp.MustCompile(`id="invite-link-0">([^<]+)<`)
	memberIDRE   = regexp.MustCompile(`/org/members/([0-9a-f-]{36})/`)
	roleLinkRE   = regexp.MustCompile(`/roles/([0-9a-f-]{36})$`)
)

// memberControl returns the membership id in the controls of email's row,
// or nil when the row has none.
func memberControl(body, email string) []string {
	for _, row := range strings.Split(body, "<tr") {
		if strings.Contains(row, `data-member="`+email+`"`) || strings.Contains(row, `data-invited="`+email+`"`) {
			return memberIDRE.FindStringSubmatch(row)
		}
	}
	return nil
}

// TestDashboardOrgMembers: an admin invites (the one-time link shown),
// the invitee sets a password through the link and logs in, the admin
// changes their role and removes them; a pending invitation is revoked and
// its link stops working; a member sees no control and is refused each POST.
func TestDashboardOrgMembers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		mp := admin.get("/org/members")
		mustStatus(t, admin.get("/org/members"), 200, "members page")
		if !strings.Contains(mp.body, e.UserEmail) || !strings.Contains(mp.body, `id="invite"`) {
			t.Fatalf("members page: %.2000s", mp.body)
		}
		p := admin.post("/org/members/invite", url.Values{"emails": {"newbie@example.com"}, "role": {"member"}}, nil)
		mustStatus(t, p, 200, "invite")
		m := inviteLinkRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no link shown: %.2000s", p.body)
		}
		link, err := url.Parse(html.UnescapeString(m[1]))
		if err != nil || link.Path != "/signupinvite" || link.Query().Get("token") == "" {
			t.Fatalf("link %q", m[1])
		}
		mp = admin.get("/org/members")
		if !strings.Contains(mp.body, `data-invited="newbie@example.com"`) {
			t.Fatal("the invitation is not listed as pending")
		}

		// The invitee joins through the link.
		n := newBrowser(t, e.URL)
		jp := n.get(link.RequestURI())
		mustStatus(t, jp, 200, "invitation page")
		form := url.Values{"token": {link.Query().Get("token")}, "to": {"newbie@example.com"},
			"organization_id": {link.Query().Get("organization_id")}, "password": {"newbie password 1"}, "password2": {"newbie password 1"}}
		mustStatus(t, n.post("/signupinvite", form, nil), 303, "accept")
		jp = n.get(link.RequestURI())
		if jp.status != 400 || !strings.Contains(jp.body, "invalid or has expired") {
			t.Fatalf("a used link still works: %d", jp.status)
		}
		n.mustLogin("newbie@example.com", "newbie password 1")

		// The new member sees the list, no control, and is refused each POST.
		np := n.get("/org/members")
		mustStatus(t, np, 200, "member's members page")
		for _, ctl := range []string{`id="invite"`, `/remove"`, `/role"`} {
			if strings.Contains(np.body, ctl) {
				t.Errorf("a member sees control %s", ctl)
			}
		}
		mm := memberControl(admin.get("/org/members").body, e.UserEmail)
		if mm != nil {
			t.Fatal("the admin's own row has controls")
		}
		newbie := memberControl(admin.get("/org/members").body, "newbie@example.com")
		if newbie == nil {
			t.Fatal("no controls on the new member's row")
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{"/org/members/invite", url.Values{"emails": {"evil@example.com"}, "role": {"admin"}}},
			{"/org/members/" + newbie[1] + "/role", url.Values{"role": {"admin"}}},
			{"/org/members/" + newbie[1] + "/remove", nil},
			{"/org/roles", url.Values{"name": {"x"}, "slug": {"x"}}},
		} {
			if p := n.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("member POST %s: %d, want 403", f.path, p.status)
			}
		}

		// The admin changes the role, then removes the member.
		mustStatus(t, admin.post("/org/members/"+newbie[1]+"/role", url.Values{"role": {"no-access"}}, nil), 303, "change role")
		if !regexp.MustCompile(`data-member="newbie@example.com">(?s:.*?)value="no-access" selected`).MatchString(admin.get("/org/members").body) {
			t.Fatal("the role change is not shown")
		}
		mustStatus(t, admin.post("/org/members/"+newbie[1]+"/remove", nil, nil), 303, "remove")
		if strings.Contains(admin.get("/org/members").body, "newbie@example.com") {
			t.Fatal("the removed member is still listed")
		}

		// A pending invitation is revoked; its link stops working.
		p = admin.post("/org/members/invite", url.Values{"emails": {"later@example.com"}, "role": {"member"}}, nil)
		later, _ := url.Parse(html.UnescapeString(inviteLinkRE.FindStringSubmatch(p.body)[1]))
		inv := memberControl(admin.get("/org/members").body, "later@example.com")
		mustStatus(t, admin.post("/org/members/"+inv[1]+"/remove", nil, nil), 303, "revoke")
		if strings.Contains(admin.get("/org/members").body, "later@example.com") {
			t.Fatal("the revoked invitation is still listed")
		}
		if p := newBrowser(t, e.URL).get(later.RequestURI()); p.status != 400 {
			t.Fatalf("a revoked link: %d", p.status)
		}
	})
}

// TestDashboardRoleEditor: custom organization and project roles made with
// the grid, their readable summary, the grid filled back on edit.
func TestDashboardRoleEditor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		admin.get("/org/roles")
		p := admin.post("/org/roles", url.Values{"name": {"Auditor"}, "slug": {"auditor"},
			"perm": {"audit-logs:read", "member:read"}}, nil)
		mustStatus(t, p, 303, "create org role")
		rp := admin.get(p.header.Get("Location"))
		mustStatus(t, rp, 200, "org role page")
		for _, want := range []string{"can read audit-logs", "can read member", `value="member:read" checked`} {
			if !strings.Contains(rp.body, want) {
				t.Errorf("org role page lacks %q", want)
			}
		}
		if strings.Contains(rp.body, `value="member:edit" checked`) {
			t.Error("an unchecked action shows checked")
		}
		id := roleLinkRE.FindStringSubmatch(p.header.Get("Location"))[1]
		mustStatus(t, admin.post("/org/roles/"+id, url.Values{"name": {"Auditor"}, "slug": {"auditor"},
			"perm": {"audit-logs:read"}}, nil), 303, "edit org role")
		if rp := admin.get("/org/roles/" + id); strings.Contains(rp.body, "can read member") {
			t.Error("the edit did not drop member:read")
		}
		// Invalid rules are a 4xx with a message, not a 500.
		if p := admin.post("/org/roles", url.Values{"name": {"bad"}, "slug": {"bad"}, "advanced": {`[{"subject":"nope","action":"read"}]`}}, nil); p.status < 400 || p.status >= 500 {
			t.Errorf("an unknown subject: %d", p.status)
		}

		pid := createProject(t, admin, "roles")
		admin.get("/projects/" + pid + "/roles")
		p = admin.post("/projects/"+pid+"/roles", url.Values{"name": {"App reader"}, "slug": {"app-reader"},
			"perm": {"secrets:read", "secrets:describeSecret"}, "cond.secrets.environment": {"dev"},
			"cond.secrets.secretPath": {"/app/**"}}, nil)
		mustStatus(t, p, 303, "create project role")
		rp = admin.get(p.header.Get("Location"))
		mustStatus(t, rp, 200, "project role page")
		want := "can read, describeSecret secrets where environment is dev and secretPath matches /app/**"
		if !strings.Contains(rp.body, want) || !strings.Contains(rp.body, `name="cond.secrets.secretPath" value="/app/**"`) {
			t.Fatalf("project role page lacks the summary or the condition: %.3000s", rp.body)
		}
		addUser(t, e, "viewer@example.com", "viewer password 1", "member", pid, "viewer")
		u := newBrowser(t, e.URL)
		u.mustLogin("viewer@example.com", "viewer password 1")
		if p := u.get("/projects/" + pid + "/roles"); strings.Contains(p.body, `id="role-create"`) {
			t.Error("a viewer sees the role editor")
		}
		// A viewer may not change roles.
		if p := u.post("/projects/"+pid+"/roles", url.Values{"name": {"x"}, "slug": {"x"}}, nil); p.status != 403 {
			t.Errorf("forged project role: %d", p.status)
		}
	})
}

// TestDashboardProjectMembers: an admin adds a user and an identity to a
// project, changes their roles and removes them; a viewer sees no control
// and is refused each POST.
func TestDashboardProjectMembers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "team")
		addUser(t, e, "dev@example.com", "developer pass 1", "member", "", "")
		iid := createIdentity(t, admin, "ci-bot", "member")
		base := "/projects/" + pid + "/members"
		admin.get(base)
		mustStatus(t, admin.post(base+"/users", url.Values{"login": {"dev@example.com"}, "role": {"viewer"}}, nil), 303, "add user")
		mustStatus(t, admin.post(base+"/identities", url.Values{"identity": {iid}, "role": {"viewer"}}, nil), 303, "add identity")
		row := func(body, attr string) string {
			for _, r := range strings.Split(body, "<tr") {
				if strings.Contains(r, attr) {
					return r
				}
			}
			return ""
		}
		mp := admin.get(base)
		mustStatus(t, mp, 200, "members page")
		urow, irow := row(mp.body, `data-user="dev@example.com"`), row(mp.body, `data-identity="ci-bot"`)
		if !strings.Contains(urow, `<span class="small">viewer</span>`) || !strings.Contains(irow, `<span class="small">viewer</span>`) {
			t.Fatalf("roles not shown: %.3000s", mp.body)
		}
		mid := regexp.MustCompile(`/members/users/([0-9a-f-]{36})/roles`).FindStringSubmatch(urow)[1]

		// The user, a viewer now, sees no control and may not change anything.
		v := newBrowser(t, e.URL)
		v.mustLogin("dev@example.com", "developer pass 1")
		vp := v.get(base)
		mustStatus(t, vp, 200, "viewer's members page")
		for _, ctl := range []string{`id="add-user"`, `id="add-identity-member"`, `action="` + base} {
			if strings.Contains(vp.body, ctl) {
				t.Errorf("a viewer sees control %s", ctl)
			}
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{base + "/users/" + mid + "/roles", url.Values{"role": {"admin"}}},
			{base + "/users", url.Values{"login": {e.UserEmail}, "role": {"viewer"}}},
			{base + "/identities/" + iid + "/roles", url.Values{"role": {"admin"}}},
			{base + "/identities/" + iid + "/remove", nil},
		} {
			if p := v.post(f.path, f.form, nil); p.status != http.StatusForbidden {
				t.Errorf("viewer POST %s: %d, want 403", f.path, p.status)
			}
		}

		mustStatus(t, admin.post(base+"/users/"+mid+"/roles", url.Values{"role": {"member"}}, nil), 303, "user role")
		mustStatus(t, admin.post(base+"/identities/"+iid+"/roles", url.Values{"role": {"member"}}, nil), 303, "identity role")
		mp = admin.get(base)
		if !strings.Contains(row(mp.body, `data-user="dev@example.com"`), `<span class="small">member</span>`) ||
			!strings.Contains(row(mp.body, `data-identity="ci-bot"`), `<span class="small">member</span>`) {
			t.Fatal("role changes not shown")
		}
		// A temporary role shows its end.
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+pid+"/identity-memberships/"+iid, e.Token, map[string]any{"roles": []map[string]any{
			{"role": "member"}, {"role": "viewer", "isTemporary": true, "temporaryMode": "relative", "temporaryRange": "1h",
				"temporaryAccessStartTime": time.Now().UTC().Format(time.RFC3339)}}})
		if r := row(admin.get(base).body, `data-identity="ci-bot"`); !regexp.MustCompile(`viewer \(temporary, until \d{4}-\d\d-\d\d \d\d:\d\d UTC\)`).MatchString(r) {
			t.Fatalf("a temporary role without its end: %s", r)
		}
		// The user, a member now, may add secrets.
		mustStatus(t, v.post("/projects/"+pid+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"K"}, "value": {"v"}}, nil), 303, "member writes")
		mustStatus(t, admin.post(base+"/users/"+mid+"/remove", nil, nil), 303, "remove user")
		mustStatus(t, admin.post(base+"/identities/"+iid+"/remove", nil, nil), 303, "remove identity")
		mp = admin.get(base)
		if strings.Contains(mp.body, `data-user="dev@example.com"`) || strings.Contains(mp.body, `data-identity="ci-bot"`) {
			t.Fatal("removed members still listed")
		}
		if p := v.get("/projects/" + pid + "/secrets"); p.status != 403 && p.status != 404 {
			t.Fatalf("a removed user still reads the project: %d", p.status)
		}
	})
}

// TestDashboardDynamicSecretEdit: the edit form is built from the
// provider's inputs, never shows a secret input back, and an empty secret
// input keeps the stored value.
func TestDashboardDynamicSecretEdit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "otp")
		const seed = "JBSWY3DPEHPK3PXP"
		mustStatus(t, admin.post("/projects/"+pid+"/dynamic", url.Values{"env": {"dev"}, "path": {"/"}, "type": {"totp"},
			"name": {"otp"}, "defaultTTL": {"1h"}, "in.configType": {"manual"}, "in.secret": {seed}, "in.digits": {"6"}}, nil), 303, "create")
		page := "/projects/" + pid + "/dynamic/otp?env=dev&path=/"
		p := admin.get(page)
		mustStatus(t, p, 200, "dynamic secret page")
		if strings.Contains(p.body, seed) {
			t.Fatal("the page shows the secret input")
		}
		if !strings.Contains(p.body, `id="dyn-edit"`) || !strings.Contains(p.body, `name="in.digits" value="6"`) ||
			!strings.Contains(p.body, `name="in.configType" value="manual"`) {
			t.Fatalf("edit form: %.3000s", p.body)
		}
		mustStatus(t, admin.post("/projects/"+pid+"/dynamic/otp/edit?env=dev&path=/", url.Values{"defaultTTL": {"2h"},
			"in.configType": {"manual"}, "in.digits": {"8"}, "in.secret": {""}}, nil), 303, "edit")
		p = admin.get(page)
		if !strings.Contains(p.body, `name="in.digits" value="8"`) || !strings.Contains(p.body, `name="defaultTTL" value="2h"`) {
			t.Fatalf("edit not applied: %.3000s", p.body)
		}
		// The stored secret stayed: the lease's code is the seed's 8-digit code.
		key, _ := base32Decode(seed)
		before := time.Now()
		lp := admin.post("/projects/"+pid+"/dynamic/otp/leases?env=dev&path=/", url.Values{"ttl": {"1h"}}, nil)
		mustStatus(t, lp, 200, "lease")
		m := regexp.MustCompile(`id="cred-totp">(\d+)<`).FindStringSubmatch(lp.body)
		if m == nil || len(m[1]) != 8 {
			t.Fatalf("lease code: %v", m)
		}
		c1, _ := totp.Code(key, "sha1", 8, 30, before)
		c2, _ := totp.Code(key, "sha1", 8, 30, time.Now())
		if m[1] != c1 && m[1] != c2 {
			t.Fatalf("code %s is not the stored seed's (%s/%s)", m[1], c1, c2)
		}
		// A viewer gets no edit form and is refused.
		addUser(t, e, "viewer@example.com", "viewer password 1", "member", pid, "viewer")
		v := newBrowser(t, e.URL)
		v.mustLogin("viewer@example.com", "viewer password 1")
		if p := v.get(page); strings.Contains(p.body, `id="dyn-edit"`) {
			t.Error("a viewer sees the edit form")
		}
		if p := v.post("/projects/"+pid+"/dynamic/otp/edit?env=dev&path=/", url.Values{"defaultTTL": {"9h"}}, nil); p.status != 403 {
			t.Errorf("viewer edit: %d", p.status)
		}
	})
}

// TestDashboardImportsAndReferences: imports are listed, added and removed
// on the overview; a reference shows raw on Reveal and resolved on demand.
func TestDashboardImportsAndReferences(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "imports")
		add := func(env, key, value string) {
			mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {env}, "path": {"/"}, "key": {key}, "value": {value}}, nil), 303, "add "+key)
		}
		add("prod", "SHARED", "from-prod")
		add("dev", "REF", "url=${prod.SHARED}")
		grid := "/projects/" + pid + "/secrets"
		admin.get(grid)
		mustStatus(t, admin.post("/projects/"+pid+"/imports", url.Values{"env": {"dev"}, "path": {"/"}, "fromEnv": {"prod"}, "fromPath": {"/"}}, nil), 303, "add import")
		g := admin.get(grid)
		if !strings.Contains(g.body, `data-env="dev">`) || !strings.Contains(g.body, "dev imports <code>prod:/</code>") {
			t.Fatalf("import not listed: %.3000s", g.body)
		}
		v := "/projects/" + pid + "/secret/value?env=dev&path=/&key=REF"
		if p := admin.get(v); p.body != "url=${prod.SHARED}" {
			t.Fatalf("raw value %q", p.body)
		}
		if p := admin.get(v + "&resolve=1"); p.body != "url=from-prod" {
			t.Fatalf("resolved value %q", p.body)
		}
		if p := admin.get("/projects/" + pid + "/secret?env=dev&path=/&key=REF"); !strings.Contains(p.body, `id="resolve"`) {
			t.Fatal("no resolve button")
		}
		addUser(t, e, "viewer@example.com", "viewer password 1", "member", pid, "viewer")
		vb := newBrowser(t, e.URL)
		vb.mustLogin("viewer@example.com", "viewer password 1")
		vg := vb.get(grid)
		if strings.Contains(vg.body, `id="add-import"`) || strings.Contains(vg.body, "/imports/delete") || !strings.Contains(vg.body, "prod:/") {
			t.Fatal("viewer's import controls or list wrong")
		}
		id := regexp.MustCompile(`name="id" value="([0-9a-f-]{36})"`).FindStringSubmatch(g.body)[1]
		if p := vb.post("/projects/"+pid+"/imports/delete", url.Values{"env": {"dev"}, "path": {"/"}, "id": {id}}, nil); p.status != 403 {
			t.Errorf("viewer removes an import: %d", p.status)
		}
		mustStatus(t, admin.post("/projects/"+pid+"/imports/delete", url.Values{"env": {"dev"}, "path": {"/"}, "id": {id}}, nil), 303, "remove import")
		if strings.Contains(admin.get(grid).body, "prod:/") {
			t.Fatal("the removed import is still listed")
		}
	})
}

// TestDashboardOrgSwitcher: a user of two organizations gets the switcher,
// each organization shows its own projects, and a switch to an
// organization the user is not in is refused.
func TestDashboardOrgSwitcher(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		if strings.Contains(admin.get("/projects").body, `id="org-switch"`) {
			t.Fatal("a user of one organization gets the switcher")
		}
		createProject(t, admin, "in-first-org")
		db, q := rawDB(t, e)
		now := time.Now().UnixMicro()
		second, other := uuid.NewString(), uuid.NewString()
		var uid string
		if err := db.QueryRow(q(`SELECT id FROM users WHERE email = ?`), e.UserEmail).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		for _, o := range []struct{ id, name string }{{second, "Second org"}, {other, "Not mine"}} {
			if _, err := db.Exec(q(`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`), o.id, o.name, o.id[:8], now, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(q(`INSERT INTO org_memberships (id, org_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, 'admin', ?, ?)`),
			uuid.NewString(), second, uid, now, now); err != nil {
			t.Fatal(err)
		}
		if err := e.DB.BumpEpoch(t.Context()); err != nil {
			t.Fatal(err)
		}
		p := admin.get("/projects")
		if !strings.Contains(p.body, `id="org-switch"`) || !strings.Contains(p.body, "Second org") || strings.Contains(p.body, "Not mine") {
			t.Fatalf("switcher: %.2000s", p.body)
		}
		mustStatus(t, admin.post("/org/switch", url.Values{"org": {other}}, nil), 404, "switch to a foreign org")
		mustStatus(t, admin.post("/org/switch", url.Values{"org": {second}}, nil), 303, "switch")
		p = admin.get("/projects")
		if strings.Contains(p.body, "in-first-org") || !strings.Contains(p.body, `value="`+second+`" selected`) {
			t.Fatalf("after the switch: %.2000s", p.body)
		}
		createProject(t, admin, "in-second-org")
		mustStatus(t, admin.post("/org/switch", url.Values{"org": {e.OrgID}}, nil), 303, "switch back")
		p = admin.get("/projects")
		if !strings.Contains(p.body, "in-first-org") || strings.Contains(p.body, "in-second-org") {
			t.Fatal("the first organization's projects after switching back")
		}
	})
}

// TestDashboardInvitationMailed: with SMTP configured, the dashboard's
// invitation is mailed through a real SMTP server (Debian's
// python3-aiosmtpd), the page says so, and the link as received lets the
// invitee set a password and log in.
func TestDashboardInvitationMailed(t *testing.T) {
	sink := testsvc.SMTP(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		m, err := mail.Parse("smtp://" + sink.Addr + "?from=lockbox@example.com")
		if err != nil {
			t.Fatal(err)
		}
		e := apptest.Bootstrapped(t, d, apptest.Options{Mailer: m})
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		email := "mailed-" + string(d) + "@example.com"
		p := admin.post("/org/members/invite", url.Values{"emails": {email}, "role": {"member"}}, nil)
		mustStatus(t, p, 200, "invite")
		if !strings.Contains(p.body, "Mailed to "+email) {
			t.Fatalf("the page does not say the invitation was mailed: %.3000s", p.body)
		}
		if shown := inviteLinkRE.FindStringSubmatch(p.body); shown != nil {
			t.Fatalf("a mailed link is shown to the inviter: %q", shown[1])
		}
		got := sink.WaitFor(t, "To: "+email, 10*time.Second)
		msg := got[strings.Index(got, "To: "+email):]
		raw := regexp.MustCompile(`http://[^\s]+/signupinvite\?[^\s]+`).FindString(msg)
		if raw == "" {
			t.Fatalf("no link in the mail: %q", msg)
		}
		link, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		n := newBrowser(t, e.URL)
		mustStatus(t, n.get(link.RequestURI()), 200, "invitation page")
		form := url.Values{"token": {link.Query().Get("token")}, "to": {email},
			"organization_id": {link.Query().Get("organization_id")}, "password": {"mailed password 1"}, "password2": {"mailed password 1"}}
		mustStatus(t, n.post("/signupinvite", form, nil), 303, "accept")
		n.mustLogin(email, "mailed password 1")
	})
}

// TestDashboardInvitationMailServerDown: with the mail server down the
// invitation stands and the page says to send the link by hand.
func TestDashboardInvitationMailServerDown(t *testing.T) {
	down, err := mail.Parse("smtp://127.0.0.1:1?from=lockbox@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Mailer: down})
	admin := newBrowser(t, e.URL)
	admin.mustLogin(e.UserEmail, e.Password)
	p := admin.post("/org/members/invite", url.Values{"emails": {"unmailed@example.com"}, "role": {"member"}}, nil)
	mustStatus(t, p, 200, "invite with the mail server down")
	if !strings.Contains(p.body, "Send each person below their link") || strings.Contains(p.body, "Mailed to") ||
		inviteLinkRE.FindStringSubmatch(p.body) == nil {
		t.Fatalf("with the mail server down: %.3000s", p.body)
	}
}

// TestRevealFetchesTheSecretOnItsPage: the Reveal, Resolve and Reveal
// changes buttons fetch the secret whose page they are on, whatever its
// key holds (# & % + =): the values in their URLs are encoded, not only
// HTML-escaped. A key DB_PASSWORD#copy revealed DB_PASSWORD's value.
func TestRevealFetchesTheSecretOnItsPage(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	admin := newBrowser(t, e.URL)
	admin.mustLogin(e.UserEmail, e.Password)
	pid := createProject(t, admin, "reveal")
	keys := map[string]string{"DB_PASSWORD": "the-real-password", "DB_PASSWORD#copy": "decoy", "%44B_PASSWORD": "decoy2", "A&key=DB_PASSWORD": "decoy3", "A+B=C": "decoy4"}
	for k, v := range keys {
		mustStatus(t, admin.post("/projects/"+pid+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {k}, "value": {v}}, nil), 303, "add "+k)
	}
	mustStatus(t, admin.post("/projects/"+pid+"/secrets/update", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"DB_PASSWORD#copy"}, "value": {"decoy-2"}}, nil), 303, "update")
	keys["DB_PASSWORD#copy"] = "decoy-2"
	reveal := regexp.MustCompile(`id="(reveal|resolve|reveal-\d+)" data-reveal="([^"]+)"`)
	for k, want := range keys {
		sp := admin.get("/projects/" + pid + "/secret?" + url.Values{"env": {"dev"}, "path": {"/"}, "key": {k}}.Encode())
		mustStatus(t, sp, 200, "page of "+k)
		found := 0
		for _, m := range reveal.FindAllStringSubmatch(sp.body, -1) {
			u := html.UnescapeString(m[2])
			u, _, _ = strings.Cut(u, "#") // as a browser sends it
			if got := admin.get(u); got.body != want {
				t.Errorf("%s on the page of %q fetched %q, want %q", m[1], k, got.body, want)
			}
			found++
		}
		if found < 1 {
			t.Errorf("page of %q: no reveal button", k)
		}
	}
	// History pages' buttons too.
	hp := admin.get("/projects/" + pid + "/secret/history?" + url.Values{"env": {"dev"}, "path": {"/"}, "key": {"DB_PASSWORD#copy"}}.Encode())
	mustStatus(t, hp, 200, "history")
	ms := reveal.FindAllStringSubmatch(hp.body, -1)
	if len(ms) != 2 {
		t.Fatalf("history lists %d Reveal changes buttons, want 2", len(ms))
	}
	for _, m := range ms {
		u, _, _ := strings.Cut(html.UnescapeString(m[2]), "#")
		if got := admin.get(u); strings.Contains(got.body, "the-real-password") || !strings.Contains(got.body, "decoy") {
			t.Errorf("history's %s fetched %q", m[1], got.body)
		}
	}
}
