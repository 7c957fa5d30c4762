package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestDashboardProjectManagement: environments (add, rename and move,
// delete), folders (create, rename, delete), tags (create, rename, delete),
// a folder downloaded as .env, and KMS keys (create, disable, enable,
// rotate, delete), each through its page's form.
func TestDashboardProjectManagement(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "managed")
		base := "/projects/" + pid

		// Environments.
		mustStatus(t, admin.post(base+"/environments", url.Values{"name": {"QA"}, "slug": {"qa"}}, nil), 303, "add environment")
		ep := admin.get(base + "/environments")
		m := regexp.MustCompile(`action="/projects/` + pid + `/environments/([0-9a-f-]{36})"[^>]*>(?:[^<]|<[^t])*?<label for="env-name-[^"]+" class="sr">Name of qa<`).FindStringSubmatch(ep.body)
		if m == nil {
			t.Fatalf("no edit form for qa: %.3000s", ep.body)
		}
		mustStatus(t, admin.post(base+"/environments/"+m[1], url.Values{"name": {"Quality"}, "slug": {"quality"}, "position": {"1"}}, nil), 303, "edit environment")
		for _, pos := range []string{"x", "0", "10001"} {
			if p := admin.post(base+"/environments/"+m[1], url.Values{"position": {pos}}, nil); p.status != 400 && p.status != 422 {
				t.Errorf("position %q: %d, want 400 or 422", pos, p.status)
			}
		}
		ep = admin.get(base + "/environments")
		if row := rowOf(ep.body, `data-env="quality"`); !strings.Contains(row, "<td>Quality</td>") || !strings.Contains(row, "<td>1</td>") {
			t.Fatalf("the edited environment: %q", row)
		}
		mustStatus(t, admin.post(base+"/environments/delete", url.Values{"id": {m[1]}}, nil), 303, "delete environment")
		if strings.Contains(admin.get(base+"/environments").body, `data-env="quality"`) {
			t.Fatal("the deleted environment is listed")
		}

		// Folders, a secret in one, download as .env.
		mustStatus(t, admin.post(base+"/folders", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}}, nil), 303, "create folder")
		mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {"dev"}, "path": {"/app"}, "key": {"DB_URL"},
			"value": {"postgres://db/app"}}, nil), 303, "secret in the folder")
		if !strings.Contains(admin.get(base+"/secrets").body, `?path=/app">📁 app</a>`) {
			t.Fatal("the folder is not listed at the root")
		}
		dl := admin.get(base + "/secrets/download?env=dev&path=/app")
		mustStatus(t, dl, 200, "download")
		if dl.body != "DB_URL='postgres://db/app'\n" || !strings.Contains(dl.header.Get("Content-Disposition"), `filename="dev.env"`) {
			t.Fatalf("download: %q %q", dl.body, dl.header.Get("Content-Disposition"))
		}
		fp := admin.get(base + "/secrets?path=/app")
		if !strings.Contains(fp.body, `id="rename-folder"`) || !strings.Contains(fp.body, `id="delete-folder"`) {
			t.Fatalf("no folder controls in /app: %.3000s", fp.body)
		}
		p := admin.post(base+"/folders/rename", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}, "newName": {"service"}}, nil)
		mustStatus(t, p, 303, "rename folder")
		if p.header.Get("Location") != base+"/secrets?path=%2Fservice" {
			t.Fatalf("after renaming: %q", p.header.Get("Location"))
		}
		if sp := admin.get(base + "/secrets?path=/service"); !strings.Contains(sp.body, `data-key="DB_URL"`) {
			t.Fatal("the renamed folder lost its secret")
		}
		mustStatus(t, admin.post(base+"/folders/delete", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"service"}}, nil), 303, "delete folder")
		if strings.Contains(admin.get(base+"/secrets").body, "📁 service") {
			t.Fatal("the deleted folder is listed")
		}
		if fp := admin.get(base + "/secrets"); strings.Contains(fp.body, `id="this-folder"`) {
			t.Fatal("the root offers to rename or delete itself")
		}

		// Tags.
		mustStatus(t, admin.post(base+"/tags", url.Values{"name": {"Team A"}, "path": {"/"}}, nil), 303, "create tag")
		tp := admin.get(base + "/secrets")
		tm := regexp.MustCompile(`action="/projects/` + pid + `/tags/([0-9a-f-]{36})"`).FindStringSubmatch(tp.body)
		if tm == nil || !strings.Contains(tp.body, `data-tag="team-a"`) {
			t.Fatalf("the tag is not listed with controls: %.3000s", tp.body)
		}
		mustStatus(t, admin.post(base+"/tags/"+tm[1], url.Values{"name": {"Team B"}, "path": {"/"}}, nil), 303, "rename tag")
		// Renamed, the tag keeps its slug (what permission conditions match).
		if li := strings.SplitN(strings.SplitN(admin.get(base+"/secrets").body, `data-tag="team-a"`, 2)[1], "</li>", 2)[0]; !strings.Contains(li, "Team B") {
			t.Fatalf("the tag was not renamed, or lost its slug: %q", li)
		}
		if p := admin.post(base+"/tags/"+tm[1], url.Values{"name": {strings.Repeat("n", 256)}, "path": {"/"}}, nil); p.status != 400 && p.status != 422 {
			t.Errorf("a 256-character tag name: %d, want 400 or 422", p.status)
		}
		mustStatus(t, admin.post(base+"/tags/"+tm[1]+"/delete", url.Values{"path": {"/"}}, nil), 303, "delete tag")
		if strings.Contains(admin.get(base+"/secrets").body, `data-tag=`) {
			t.Fatal("the deleted tag is listed")
		}

		// KMS keys.
		mustStatus(t, admin.post(base+"/kms", url.Values{"name": {"orders"}, "usage": {"encrypt-decrypt"}, "algorithm": {"aes-256-gcm"}}, nil), 303, "create key")
		kp := admin.get(base + "/kms")
		km := regexp.MustCompile(`action="/projects/` + pid + `/kms/([0-9a-f-]{36})/rotate"`).FindStringSubmatch(kp.body)
		if km == nil {
			t.Fatalf("no key controls: %.3000s", kp.body)
		}
		key := func() string { return rowOf(admin.get(base+"/kms").body, `data-key="orders"`) }
		mustStatus(t, admin.post(base+"/kms/"+km[1], url.Values{"disabled": {"true"}}, nil), 303, "disable")
		if !strings.Contains(key(), `<td class="state">disabled</td>`) {
			t.Fatalf("after disabling: %q", key())
		}
		mustStatus(t, admin.post(base+"/kms/"+km[1], url.Values{"disabled": {"false"}}, nil), 303, "enable")
		mustStatus(t, admin.post(base+"/kms/"+km[1]+"/rotate", nil, nil), 303, "rotate")
		if r := key(); !strings.Contains(r, `<td class="state">enabled</td>`) || !strings.Contains(r, "<td>2</td>") {
			t.Fatalf("after enabling and rotating: %q", r)
		}
		// Through another project's page the key is not found.
		other := createProject(t, admin, "other")
		for _, action := range []string{"", "/rotate", "/delete"} {
			mustStatus(t, admin.post("/projects/"+other+"/kms/"+km[1]+action, url.Values{"disabled": {"true"}}, nil), 404, "key through another project"+action)
		}
		if r := key(); !strings.Contains(r, `<td class="state">enabled</td>`) || !strings.Contains(r, "<td>2</td>") {
			t.Fatalf("a refused POST through another project changed the key: %q", r)
		}
		mustStatus(t, admin.post(base+"/kms/"+km[1]+"/delete", nil, nil), 303, "delete key")
		// Each action is audited as itself, with no read of the key besides.
		var reads struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=get-cmek", e.Token, nil).Decode(t, &reads)
		if len(reads.AuditLogs) != 0 {
			t.Errorf("the key actions recorded %d key reads", len(reads.AuditLogs))
		}
		if key() != "" {
			t.Fatal("the deleted key is listed")
		}
	})
}

// TestDashboardIdentityManagement: an identity's organization role, its
// Universal Auth settings and client secrets with limits, removing
// Universal Auth and deleting the identity, each through its page.
func TestDashboardIdentityManagement(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		if lp := admin.get("/identities"); !strings.Contains(lp.body, `<option value="no-access" selected>`) {
			t.Fatalf("the create form's roles: %.2000s", lp.body)
		}
		iid := createIdentity(t, admin, "svc", "no-access")
		page := "/identities/" + iid
		mustStatus(t, admin.post(page+"/role", url.Values{"role": {"member"}}, nil), 303, "role")
		if !strings.Contains(admin.get(page).body, `<dd id="identity-role">member</dd>`) {
			t.Fatal("the role did not change")
		}
		mustStatus(t, admin.post(page+"/universal-auth", nil, nil), 303, "attach UA")
		mustStatus(t, admin.post(page+"/universal-auth/update", url.Values{"accessTokenTTL": {"600"}, "accessTokenMaxTTL": {"3600"},
			"accessTokenNumUsesLimit": {"3"}, "accessTokenTrustedIps": {"127.0.0.1/32, ::1/128"}, "clientSecretTrustedIps": {"0.0.0.0/0, ::/0"}}, nil), 303, "UA settings")
		ip := admin.get(page)
		if !strings.Contains(ip.body, "Access tokens live 600 s, at most 3600 s, 3 uses; tokens from 127.0.0.1/32, ::1/128") {
			t.Fatalf("UA settings: %.3000s", ip.body[strings.Index(ip.body, "Universal Auth"):])
		}
		mustStatus(t, admin.post(page+"/universal-auth/update", url.Values{"accessTokenTTL": {"x"}}, nil), 400, "a bad TTL")
		// Empty fields leave their settings as they are.
		mustStatus(t, admin.post(page+"/universal-auth/update", url.Values{"accessTokenTTL": {"900"}, "accessTokenTrustedIps": {""},
			"clientSecretTrustedIps": {" "}}, nil), 303, "empty address fields")
		if ip := admin.get(page); !strings.Contains(ip.body, "Access tokens live 900 s, at most 3600 s, 3 uses; tokens from 127.0.0.1/32, ::1/128") {
			t.Fatalf("after an edit with empty address fields: %.3000s", ip.body[strings.Index(ip.body, "Universal Auth"):])
		}
		cs := admin.post(page+"/client-secrets", url.Values{"description": {"limited"}, "ttl": {"3600"}, "numUsesLimit": {"5"}}, nil)
		mustStatus(t, cs, 200, "client secret")
		if row := rowOf(admin.get(page).body, "<td>limited</td>"); !strings.Contains(row, "<td>0/5</td>") || !strings.Contains(row, "3600 s from creation") ||
			!strings.Contains(row, `<td class="last-used">never</td>`) {
			t.Fatalf("the limited client secret: %q", row)
		}
		// A login with it shows as its last use.
		secret := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(cs.body)
		clientID := regexp.MustCompile(`id="client-id">([^<]+)<`).FindStringSubmatch(cs.body)
		if secret == nil || clientID == nil {
			t.Fatal("the client secret page lacks the client id or secret")
		}
		if r := e.Do(t, "POST", "/api/v1/auth/universal-auth/login", "", map[string]string{"clientId": clientID[1], "clientSecret": secret[1]}); r.Status != 200 {
			t.Fatalf("login with the new client secret: %d", r.Status)
		}
		if row := rowOf(admin.get(page).body, "<td>limited</td>"); !strings.Contains(row, "<td>1/5</td>") || strings.Contains(row, `<td class="last-used">never</td>`) {
			t.Fatalf("after a login: %q", row)
		}
		// Added to a project with one of its custom roles.
		pid := createProject(t, admin, "for-svc")
		mustStatus(t, admin.post("/projects/"+pid+"/roles", url.Values{"name": {"Reader of dev"}, "slug": {"dev-reader"},
			"advanced": {`[{"subject":"secrets","action":["read"],"conditions":{"environment":"dev"}}]`}}, nil), 303, "custom project role")
		mustStatus(t, admin.post(page+"/projects", url.Values{"project": {pid}, "role": {"dev-reader"}}, nil), 303, "add with a custom role")
		if row := rowOf(admin.get("/projects/"+pid+"/members").body, `data-identity="svc"`); !strings.Contains(row, "dev-reader") {
			t.Fatalf("the identity's project row: %q", row)
		}
		mustStatus(t, admin.post(page+"/universal-auth/remove", nil, nil), 303, "remove UA")
		if ip := admin.get(page); !strings.Contains(ip.body, `id="ua-attach"`) || strings.Contains(ip.body, `id="client-id"`) {
			t.Fatal("Universal Auth is still attached")
		}
		mustStatus(t, admin.post(page+"/delete", nil, nil), 303, "delete identity")
		mustStatus(t, admin.get(page), 404, "deleted identity")
		if strings.Contains(admin.get("/identities").body, ">svc<") {
			t.Fatal("the deleted identity is listed")
		}
	})
}

// TestDashboardRowEditor: the grid's row editor changes one key in several
// environments in one POST (update where it is, create where it is missing,
// delete where asked, leave the rest); a refusal names its environment; a
// viewer's is refused.
func TestDashboardRowEditor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		admin := newBrowser(t, e.URL)
		admin.mustLogin(e.UserEmail, e.Password)
		pid := createProject(t, admin, "rows")
		base := "/projects/" + pid
		for _, env := range []string{"dev", "prod"} {
			mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {env}, "path": {"/"}, "key": {"API_KEY"}, "value": {env + "-1"}}, nil), 303, "add "+env)
		}
		mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {"OTHER"}, "value": {"keep"}}, nil), 303, "other")
		grid := admin.get(base + "/secrets")
		if !strings.Contains(grid.body, `<template id="row-editor">`) || !strings.Contains(grid.body, `name="value.staging"`) {
			t.Fatalf("no row editor: %.3000s", grid.body)
		}
		value := func(env, key string) page {
			return admin.get(base + "/secret/value?env=" + env + "&path=/&key=" + key)
		}
		mustStatus(t, admin.post(base+"/secrets/row", url.Values{"path": {"/"}, "key": {"API_KEY"}, "value.dev": {"dev-2"},
			"value.staging": {"staging-1"}, "delete.prod": {"on"}}, nil), 303, "row edit")
		if v := value("dev", "API_KEY"); v.body != "dev-2" {
			t.Errorf("dev: %d %q", v.status, v.body)
		}
		if v := value("staging", "API_KEY"); v.body != "staging-1" {
			t.Errorf("staging (created): %d %q", v.status, v.body)
		}
		if v := value("prod", "API_KEY"); v.status != 404 {
			t.Errorf("prod (deleted): %d %q", v.status, v.body)
		}
		if v := value("dev", "OTHER"); v.body != "keep" {
			t.Errorf("another key changed: %q", v.body)
		}
		// Deleting where the key is not is nothing to do; the other changes apply.
		mustStatus(t, admin.post(base+"/secrets/row", url.Values{"path": {"/"}, "key": {"OTHER"}, "delete.prod": {"on"},
			"value.staging": {"other-staging"}}, nil), 303, "delete where missing")
		if v := value("staging", "OTHER"); v.body != "other-staging" {
			t.Errorf("staging after a delete where missing: %d %q", v.status, v.body)
		}
		// Nothing asked: nothing changes (dev stays at version 2).
		mustStatus(t, admin.post(base+"/secrets/row", url.Values{"path": {"/"}, "key": {"API_KEY"}}, nil), 303, "empty row edit")
		if sp := admin.get(base + "/secret?env=dev&path=/&key=API_KEY"); !strings.Contains(sp.body, `id="secret-version">2<`) {
			t.Errorf("an empty edit wrote a version: %.2000s", sp.body)
		}
		// A folder that exists only in dev: the staging change is refused by name.
		mustStatus(t, admin.post(base+"/folders", url.Values{"env": {"dev"}, "path": {"/"}, "name": {"app"}}, nil), 303, "folder")
		p := admin.post(base+"/secrets/row", url.Values{"path": {"/app"}, "key": {"K"}, "value.dev": {"v"}, "value.staging": {"v"}}, nil)
		if p.status < 400 || p.status >= 500 || !strings.Contains(p.body, "staging: ") {
			t.Fatalf("a change into a missing folder: %d %.2000s", p.status, p.body)
		}
		if v := admin.get(base + "/secret/value?env=dev&path=/app&key=K"); v.body != "v" {
			t.Errorf("the change before the refused one: %d %q (want it applied)", v.status, v.body)
		}

		addUser(t, e, "rowviewer@example.com", "row viewer pass 1", "member", pid, "viewer")
		v := newBrowser(t, e.URL)
		v.mustLogin("rowviewer@example.com", "row viewer pass 1")
		if g := v.get(base + "/secrets"); strings.Contains(g.body, `id="row-editor"`) {
			t.Error("a viewer is offered the row editor")
		}
		mustStatus(t, v.post(base+"/secrets/row", url.Values{"path": {"/"}, "key": {"OTHER"}, "value.dev": {"hacked"}}, nil), 403, "viewer row edit")
		if v := value("dev", "OTHER"); v.body != "keep" {
			t.Errorf("a viewer's row edit changed the value: %q", v.body)
		}
	})
}

// TestDashboardRowEditorSharesOneExpansionBudget: the row editor's writes,
// one per environment, are one request's: they share one expansion budget,
// as a batch's do. Each value is accepted alone.
func TestDashboardRowEditorSharesOneExpansionBudget(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	admin := newBrowser(t, e.URL)
	admin.mustLogin(e.UserEmail, e.Password)
	pid := createProject(t, admin, "row-budget")
	base := "/projects/" + pid
	envs := []string{"dev", "staging", "prod"}
	for _, env := range envs {
		mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {env}, "path": {"/"}, "key": {"BIG"}, "value": {strings.Repeat("x", 400<<10)}}, nil), 303, "BIG in "+env)
	}
	heavy := strings.Repeat("${BIG}", 30) // 12 MiB: within the 16 MiB budget alone
	all := url.Values{"path": {"/"}, "key": {"HEAVY"}}
	for _, env := range envs {
		all.Set("value."+env, heavy)
	}
	if p := admin.post(base+"/secrets/row", all, nil); p.status != 422 || !strings.Contains(p.body, "one request") {
		t.Fatalf("three heavy values in one row edit: %d %.500s", p.status, p.body)
	}
	for _, env := range envs {
		mustStatus(t, admin.post(base+"/secrets/row", url.Values{"path": {"/"}, "key": {"HEAVY"}, "value." + env: {heavy}}, nil), 303, "heavy in "+env+" alone")
	}
}

// TestADownloadedDotenvRunsNothingWhenSourced: a writer of one folder plants
// values and keys that a shell runs when the dashboard's .env download is
// sourced (set -a; . ./dev.env, as the CLI's docs have it); sourced by
// bash, the file runs none of them, gives back each kept value exactly and
// names what it left out.
func TestADownloadedDotenvRunsNothingWhenSourced(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	e := apptest.Bootstrapped(t, store.SQLite)
	admin := newBrowser(t, e.URL)
	admin.mustLogin(e.UserEmail, e.Password)
	pid := createProject(t, admin, "sourced")
	base := "/projects/" + pid
	values := map[string]string{
		"SUBST":     "$(touch pwned-subst)",
		"BACKQUOTE": "`touch pwned-backquote`",
		"BRACES":    "x;{touch,pwned-braces}",
		"DOUBLE":    `"quoted" and $HOME # not a comment`,
		"PEM":       "-----BEGIN KEY-----\nAPI_URL=https://evil.example\n-----END KEY-----",
		"PLAIN":     "postgres://db/app",
	}
	// Single quotes cannot hold a quote or a backslash for every reader
	// (bash's $'...' does not exist in dash, where a quote in it left the
	// rest of the file to run): such values are left out, named.
	left := map[string]string{"BASH_ENV": "./pwned.sh", "$(touch${IFS}pwned-key)": "x", "LD_PRELOAD": "evil.so",
		"QUOTE": "it's", "BACKSLASH": `a\`, "CONTROL": "x\r\x1b[31m", "my-key": "hunter2", "1ABC": "s3cr3t"}
	for k, v := range values {
		mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {k}, "value": {v}}, nil), 303, "secret "+k)
	}
	for k, v := range left {
		mustStatus(t, admin.post(base+"/secrets", url.Values{"env": {"dev"}, "path": {"/"}, "key": {k}, "value": {v}}, nil), 303, "secret "+k)
	}
	dl := admin.get(base + "/secrets/download?env=dev&path=/")
	mustStatus(t, dl, 200, "download")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dev.env"), []byte(dl.body), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	var script strings.Builder
	script.WriteString("set -a; . ./dev.env; set +a\n")
	for _, k := range keys {
		fmt.Fprintf(&script, "printf '%%s\\0' \"$%s\"\n", k)
	}
	shells := [][]string{{bash, "--norc", "--noprofile", "-c"}}
	if dash, err := exec.LookPath("dash"); err == nil {
		shells = append(shells, []string{dash, "-c"})
	}
	for _, sh := range shells {
		cmd := exec.Command(sh[0], append(sh[1:], script.String())...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s sourcing the download: %v\n%s\n%s", sh[0], err, out, dl.body)
		}
		got := strings.Split(string(out), "\x00")
		for i, k := range keys {
			if i >= len(got) || got[i] != values[k] {
				t.Errorf("%s: %s sourced as %q, want %q", sh[0], k, got[min(i, len(got)-1)], values[k])
			}
		}
	}
	// Pasted back into another environment, the download gives the same
	// values (line by line, the PEM's middle line became API_URL).
	mustStatus(t, admin.post(base+"/secrets/import", url.Values{"env": {"staging"}, "path": {"/"}, "dotenv": {dl.body}}, nil), 303, "paste the download")
	for k, v := range values {
		var got struct{ Secret struct{ SecretValue string } }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/"+k+"?workspaceId="+pid+"&environment=staging", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != v {
			t.Errorf("%s pasted back as %q, want %q", k, got.Secret.SecretValue, v)
		}
	}
	if r := e.Do(t, "GET", "/api/v3/secrets/raw/API_URL?workspaceId="+pid+"&environment=staging", e.Token, nil); r.Status != 404 {
		t.Errorf("a line of a value was pasted as a secret of its own: %d", r.Status)
	}
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), "pwned") {
			t.Errorf("sourcing the download ran a command: %s exists\n%s", en.Name(), dl.body)
		}
	}
	for k := range left {
		if !strings.Contains(dl.body, "# left out "+strconv.QuoteToASCII(k)+": ") {
			t.Errorf("%s is not named as left out:\n%s", k, dl.body)
		}
	}
	// Another site's link carries the session cookie (SameSite=Lax): it
	// reads nothing.
	for _, path := range []string{base + "/secrets/download?env=dev&path=/", base + "/secret/value?env=dev&path=/&key=PLAIN",
		base + "/secret/version?env=dev&path=/&key=PLAIN&version=1"} {
		for site, want := range map[string]int{"cross-site": 403, "same-site": 403, "same-origin": 200, "none": 200} {
			req, _ := http.NewRequest("GET", e.URL+path, nil)
			req.Header.Set("Sec-Fetch-Site", site)
			if p := admin.do(req); p.status != want {
				t.Errorf("%s from %s: %d, want %d", path, site, p.status, want)
			}
		}
	}
}
