package web_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// chrome starts Debian's chromium headless with a fresh profile. Missing
// chromium skips the test, or fails it under CI=true (scripts/services
// installs it).
func chrome(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		path, err = exec.LookPath("chromium-browser")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (apt-get install chromium; scripts/services does it)")
		}
		t.Skip("chromium not found")
	}
	// Not t.TempDir: chromium's helpers may still be writing to the profile
	// when it would be removed; the cleanup below closes the browser first
	// and then retries.
	profile, err := os.MkdirTemp("", "lockbox-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	if os.Getenv("LOCKBOX_CDP_DEBUG") == "1" {
		copts = append(copts, chromedp.WithDebugf(func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }))
	}
	ctx, cancelCtx := chromedp.NewContext(actx, copts...)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		chromedp.Cancel(ctx) // closes the browser and waits for it
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// Confirm dialogs (data-confirm forms) are accepted.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*cdpage.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, cdpage.HandleJavaScriptDialog(true))
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	return ctx
}

// shot saves a screenshot of the page to docs/screenshots/<name>.png when
// LOCKBOX_SCREENSHOTS=1 (so ordinary runs leave the tree clean).
func shot(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if os.Getenv("LOCKBOX_SCREENSHOTS") != "1" {
			return nil
		}
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), buf, 0o644)
	})
}

// waitJS waits until expr is true, riding out the navigations a form
// submission causes (chromedp.Poll fails when the page changes under it).
func waitJS(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate(expr, &ok).Do(ctx); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, actions...); err != nil {
		var loc, body string
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		chromedp.Run(c, chromedp.Location(&loc), chromedp.Text("main", &body, chromedp.ByQuery))
		cancel()
		t.Fatalf("%s: %v (at %s: %.400s)", step, err, loc, body)
	}
}

func pgRoleExists(t *testing.T, name string) bool {
	t.Helper()
	db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestBrowserJourney drives the dashboard in Chromium through the issue's
// journey: log in, create a project, add secrets in dev and prod, see the
// missing cell, edit, read the history, roll back, create an identity and a
// client secret the Go SDK logs in with, create a PostgreSQL dynamic secret
// and a lease whose role exists, revoke it, and find every step in the audit
// log with the user as actor.
func TestBrowserJourney(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		ctx := chrome(t)
		var loc, text string

		run(t, ctx, "login",
			chromedp.Navigate(e.URL+"/"),
			chromedp.WaitVisible("#email", chromedp.ByID),
			shot("login"),
			chromedp.SendKeys("#email", e.UserEmail, chromedp.ByID),
			chromedp.SendKeys("#password", e.Password, chromedp.ByID),
			chromedp.Click("#login-submit", chromedp.ByID),
			chromedp.WaitVisible("#projects", chromedp.ByID),
			chromedp.Text("#current-user", &text, chromedp.ByID))
		if text != e.UserEmail {
			t.Fatalf("logged in as %q", text)
		}

		run(t, ctx, "create project",
			chromedp.SendKeys("#project-name", "Web journey", chromedp.ByID),
			chromedp.Click("#project-create", chromedp.ByID),
			chromedp.WaitVisible("#secrets-grid", chromedp.ByID),
			chromedp.Location(&loc))
		pid := strings.TrimSuffix(strings.TrimPrefix(loc, e.URL+"/projects/"), "/secrets")
		if len(pid) != 36 {
			t.Fatalf("project page %q", loc)
		}

		addSecret := func(env, key, value string) {
			run(t, ctx, "add "+key+" in "+env,
				chromedp.SetValue("#new-env", env, chromedp.ByID),
				chromedp.SendKeys("#new-key", key, chromedp.ByID),
				chromedp.SendKeys("#new-value", value, chromedp.ByID),
				chromedp.Click("#add-secret-submit", chromedp.ByID),
				chromedp.WaitVisible(`tr[data-key="`+key+`"] td.present[data-env="`+env+`"]`, chromedp.ByQuery))
		}
		addSecret("dev", "DB_PASSWORD", "first-value")
		addSecret("prod", "DB_PASSWORD", "prod-value")
		addSecret("dev", "API_URL", "https://api.example")
		var missing []string
		run(t, ctx, "grid",
			chromedp.Evaluate(`Array.from(document.querySelectorAll('tr[data-key="DB_PASSWORD"] td.missing')).map(td => td.dataset.env)`, &missing),
			shot("secrets-overview"))
		if len(missing) != 1 || missing[0] != "staging" {
			t.Fatalf("missing cells of DB_PASSWORD = %v, want [staging]", missing)
		}
		var html string
		run(t, ctx, "grid hides values", chromedp.OuterHTML("#secrets-grid", &html, chromedp.ByID))
		if strings.Contains(html, "first-value") {
			t.Fatal("the grid shows a value")
		}
		// The row editor: API_URL gets a prod value from the grid itself.
		run(t, ctx, "row editor",
			chromedp.Click(`tr[data-key="API_URL"] button.key-edit`, chromedp.ByQuery),
			chromedp.WaitVisible(`tr.row-editor textarea[name="value.prod"]`, chromedp.ByQuery),
			chromedp.SendKeys(`tr.row-editor textarea[name="value.prod"]`, "https://api.prod.example", chromedp.ByQuery),
			chromedp.Click(`tr.row-editor button.row-edit-save`, chromedp.ByQuery),
			chromedp.WaitVisible(`tr[data-key="API_URL"] td.present[data-env="prod"]`, chromedp.ByQuery))

		run(t, ctx, "reveal and edit",
			chromedp.Click(`tr[data-key="DB_PASSWORD"] td[data-env="dev"] a`, chromedp.ByQuery),
			chromedp.WaitVisible("#secret-value", chromedp.ByID),
			chromedp.Text("#secret-value", &text, chromedp.ByID))
		if text == "first-value" {
			t.Fatal("value shown before reveal")
		}
		run(t, ctx, "reveal",
			chromedp.Click("#reveal", chromedp.ByID),
			waitJS(`document.getElementById('secret-value').textContent === 'first-value'`),
			shot("secret"),
			chromedp.SendKeys("#edit-value", "second-value", chromedp.ByID),
			chromedp.Click("#edit-secret-submit", chromedp.ByID),
			waitJS(`document.getElementById('secret-version') && document.getElementById('secret-version').textContent === '2'`))

		var versions []string
		run(t, ctx, "history",
			chromedp.Click("#history-link", chromedp.ByID),
			chromedp.WaitVisible("#versions", chromedp.ByID),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('li.version')).map(li => li.dataset.version)`, &versions),
			chromedp.OuterHTML("#versions", &html, chromedp.ByID))
		if strings.Join(versions, ",") != "2,1" {
			t.Fatalf("history versions %v", versions)
		}
		if strings.Contains(html, "first-value") || strings.Contains(html, "second-value") {
			t.Fatal("the history page shows a value before Reveal")
		}
		run(t, ctx, "history reveal",
			chromedp.Click("#reveal-2", chromedp.ByID),
			waitJS(`document.getElementById('diff-2').textContent === '- first-value\n+ second-value\n'`),
			shot("history"))
		run(t, ctx, "rollback",
			chromedp.Click("#rollback-1", chromedp.ByID),
			waitJS(`document.getElementById('secret-version') && document.getElementById('secret-version').textContent === '3'`),
			chromedp.Click("#reveal", chromedp.ByID),
			waitJS(`document.getElementById('secret-value').textContent === 'first-value'`))

		var clientID, clientSecret string
		run(t, ctx, "identity",
			chromedp.Navigate(e.URL+"/identities"),
			chromedp.SendKeys("#identity-name", "ci-runner", chromedp.ByID),
			chromedp.Click("#identity-create", chromedp.ByID),
			chromedp.WaitVisible("#ua-attach", chromedp.ByID),
			chromedp.Click("#ua-attach", chromedp.ByID),
			chromedp.WaitVisible("#client-secret-create", chromedp.ByID),
			chromedp.SetValue("#membership-project", pid, chromedp.ByID),
			chromedp.SetValue("#membership-role", "viewer", chromedp.ByID),
			chromedp.Click("#membership-add", chromedp.ByID),
			chromedp.WaitVisible("#membership-added", chromedp.ByID),
			shot("identity"),
			chromedp.Click("#client-secret-create", chromedp.ByID),
			chromedp.WaitVisible("#client-secret", chromedp.ByID),
			chromedp.Text("#client-id", &clientID, chromedp.ByID),
			chromedp.Text("#client-secret", &clientSecret, chromedp.ByID))
		off := false
		sdk := infisical.NewInfisicalClient(context.Background(), infisical.Config{SiteUrl: e.URL, AutoTokenRefresh: &off, SilentMode: true})
		if _, err := sdk.Auth().UniversalAuthLogin(clientID, clientSecret); err != nil {
			t.Fatalf("SDK login with the dashboard's client secret: %v", err)
		}
		got, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "DB_PASSWORD", ProjectID: pid, Environment: "dev"})
		if err != nil || got.SecretValue != "first-value" {
			t.Fatalf("SDK read: %+v %v", got, err)
		}

		const adminPW = "trust-admin-pw-never-shown"
		var user, leaseID string
		run(t, ctx, "dynamic secret",
			chromedp.Navigate(e.URL+"/projects/"+pid+"/dynamic?env=dev&path=/&type=sql-database"),
			chromedp.WaitVisible("#dyn-create", chromedp.ByID),
			chromedp.SendKeys("#dyn-name", "pg", chromedp.ByID),
			chromedp.SendKeys("#in-client", "postgres", chromedp.ByID),
			chromedp.SendKeys("#in-host", "127.0.0.1", chromedp.ByID),
			chromedp.SendKeys("#in-port", "5432", chromedp.ByID),
			chromedp.SendKeys("#in-database", "postgres", chromedp.ByID),
			chromedp.SendKeys("#in-username", "postgres", chromedp.ByID),
			chromedp.SendKeys("#in-password", adminPW, chromedp.ByID),
			chromedp.Click("#dyn-create-submit", chromedp.ByID),
			chromedp.WaitVisible("#lease-create", chromedp.ByID),
			chromedp.OuterHTML("html", &html, chromedp.ByQuery))
		if strings.Contains(html, adminPW) {
			t.Fatal("the dynamic secret page shows the admin password")
		}
		run(t, ctx, "lease",
			chromedp.Click("#lease-create-submit", chromedp.ByID),
			chromedp.WaitVisible("#cred-db_username", chromedp.ByID),
			chromedp.Text("#cred-db_username", &user, chromedp.ByID),
			chromedp.Text("#lease-id", &leaseID, chromedp.ByID))
		if user == "" || !pgRoleExists(t, user) {
			t.Fatalf("lease user %q does not exist in PostgreSQL", user)
		}
		t.Cleanup(func() { // in case the revoke below failed
			db, _ := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
			db.Exec(`DROP ROLE IF EXISTS "` + strings.ReplaceAll(user, `"`, ``) + `"`)
			db.Close()
		})
		run(t, ctx, "leases list",
			chromedp.Click("#done", chromedp.ByID),
			chromedp.WaitVisible(`tr[data-lease="`+leaseID+`"]`, chromedp.ByQuery),
			chromedp.Text(`tr[data-lease="`+leaseID+`"] .status`, &text, chromedp.ByQuery),
			shot("dynamic-secret"))
		if text != "active" {
			t.Fatalf("lease status %q", text)
		}
		// Renew, and wait for the page the POST redirects to (a marker set on
		// this page is gone from the next).
		var marked bool
		run(t, ctx, "renew",
			chromedp.Evaluate(`window.beforeRenew = true`, &marked),
			chromedp.Click("#renew-"+leaseID, chromedp.ByID),
			waitJS(`!window.beforeRenew && document.querySelector('tr[data-lease="`+leaseID+`"] .status') !== null`))
		run(t, ctx, "revoke",
			chromedp.Click("#revoke-"+leaseID, chromedp.ByID),
			chromedp.WaitNotPresent(`tr[data-lease="`+leaseID+`"]`, chromedp.ByQuery))
		deadline := time.Now().Add(15 * time.Second)
		for pgRoleExists(t, user) {
			if time.Now().After(deadline) {
				t.Fatalf("role %q still exists after revoke", user)
			}
			time.Sleep(200 * time.Millisecond)
		}

		type row struct{ Type, Actor string }
		var rows []row
		run(t, ctx, "audit",
			chromedp.Navigate(e.URL+"/audit"),
			chromedp.WaitVisible("#audit-events", chromedp.ByID),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('tr.event')).map(tr => ({Type: tr.dataset.type, Actor: tr.cells[2].textContent}))`, &rows),
			shot("audit-log"))
		byUser := map[string]bool{}
		for _, r := range rows {
			if r.Actor == "user: "+e.UserEmail {
				byUser[r.Type] = true
			}
		}
		for _, typ := range []string{"user-login", "create-project", "create-secret", "update-secret", "secret-rollback",
			"create-identity", "add-identity-universal-auth", "create-identity-universal-auth-client-secret",
			"create-dynamic-secret", "create-dynamic-secret-lease", "renew-dynamic-secret-lease", "delete-dynamic-secret-lease"} {
			if !byUser[typ] {
				t.Errorf("audit log page lacks %s by the user (has %v)", typ, byUser)
			}
		}
		// The filter narrows the list.
		var types []string
		run(t, ctx, "audit filter",
			chromedp.Navigate(e.URL+"/audit?eventType=update-secret"),
			chromedp.WaitVisible("#audit-events", chromedp.ByID),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('tr.event')).map(tr => tr.dataset.type)`, &types))
		if len(types) != 1 || types[0] != "update-secret" {
			t.Fatalf("filtered audit log: %v", types)
		}
		// A group: created, the user put in it, given a role in the project.
		var groupURL string
		run(t, ctx, "group",
			chromedp.Navigate(e.URL+"/org/groups"),
			chromedp.SendKeys("#group-name", "Operators", chromedp.ByID),
			chromedp.Click("#create-group-submit", chromedp.ByID),
			chromedp.WaitVisible("#group-members", chromedp.ByID),
			chromedp.Location(&groupURL),
			chromedp.SendKeys("#group-user", e.UserEmail, chromedp.ByID),
			chromedp.Click("#add-group-user-submit", chromedp.ByID),
			chromedp.WaitVisible(`#group-members tr[data-user]`, chromedp.ByQuery),
			chromedp.Navigate(e.URL+"/projects/"+pid+"/members"),
			chromedp.Click("#add-group-member-submit", chromedp.ByID),
			chromedp.WaitVisible(`tr[data-group="Operators"]`, chromedp.ByQuery))
		if os.Getenv("LOCKBOX_SCREENSHOTS") == "1" {
			run(t, ctx, "screenshots",
				chromedp.Navigate(groupURL), shot("group"),
				chromedp.Navigate(e.URL+"/projects"), shot("projects"),
				chromedp.Navigate(e.URL+"/projects/"+pid+"/kms"), shot("kms"),
				chromedp.Navigate(e.URL+"/projects/"+pid+"/roles"), shot("roles"),
				chromedp.Navigate(e.URL+"/projects/"+pid+"/members"), shot("project-members"),
				chromedp.Navigate(e.URL+"/org/members"), shot("org-members"),
				chromedp.Navigate(e.URL+"/org/roles"), shot("org-roles"),
				chromedp.Navigate(e.URL+"/settings/security"),
				chromedp.Click("#totp-begin", chromedp.ByID),
				chromedp.WaitVisible("#totp-qr", chromedp.ByID), shot("totp-enrolment"))
		}
	})
}
