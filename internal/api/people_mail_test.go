package api_test

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/mail"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestInvitationMailedOverSMTP sends the invitation link through a real SMTP
// server (Debian's python3-aiosmtpd) and completes the invitation with the
// link as received.
func TestInvitationMailedOverSMTP(t *testing.T) {
	sink := testsvc.SMTP(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		m, err := mail.Parse("smtp://" + sink.Addr + "?from=lockbox@example.com")
		if err != nil {
			t.Fatal(err)
		}
		e := apptest.Bootstrapped(t, d, apptest.Options{Mailer: m})
		email := "erin-" + string(d) + "@example.com"
		l := invite(t, e, e.Token, email, "member")
		if !l.Mailed || l.Link != "" {
			t.Fatalf("mailed %v, link shown %q: a mailed link is the invitee's alone", l.Mailed, l.Link)
		}
		got := sink.WaitFor(t, "To: "+email, 10*time.Second)
		msg := got[strings.Index(got, "To: "+email):]
		mailed := regexp.MustCompile(`http://[^\s]+/signupinvite\?[^\s]+`).FindString(msg)
		if u, err := url.Parse(mailed); err != nil || u.Query().Get("to") != email {
			t.Fatalf("no link for %s in the mail: %q", email, mailed)
		}
		accept(t, e, email, mailed, "mailed link password")
		userLogin(t, e, email, "mailed link password")
	})
	// A server that is not there: the invitation stands, the link is returned.
	m, err := mail.Parse("smtp://127.0.0.1:1?from=lockbox@example.com")
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Mailer: m})
	if l := invite(t, e, e.Token, "frank@example.com", "member"); l.Mailed || l.Link == "" {
		t.Fatalf("with no server %+v", l)
	}
	// Invited again, frank's account exists and has no password: a link
	// shown now would set it, so the failed mail shows none.
	if l := invite(t, e, e.Token, "frank@example.com", "member"); l.Mailed || l.Link != "" {
		t.Fatalf("again with no server: mailed %v, a link shown: %v", l.Mailed, l.Link != "")
	}
	// A non-admin's invitation of a new account whose mail failed stands,
	// and shows no link: it would set the account's password.
	e = apptest.Bootstrapped(t, store.SQLite, apptest.Options{Mailer: m, SelfSiteURL: true})
	e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "inviter", "name": "inviter",
		"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create"}}}})
	_, tok := e.NewIdentity(t, "inviter-bot", "inviter")
	if l := invite(t, e, tok, "gina@example.com", "no-access"); l.Mailed || l.Link != "" {
		t.Fatalf("a non-admin's invitation with no server: mailed %v, a link shown: %v", l.Mailed, l.Link != "")
	}
	if l := invite(t, e, e.Token, "hal@example.com", "no-access"); l.Mailed || l.Link == "" {
		t.Fatalf("an admin's invitation with no server: %+v", l)
	}
	for _, bad := range []string{"http://x", "smtp://", "smtp://host:25", "smtp://host:25?from=not-an-address"} {
		if _, err := mail.Parse(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// TestMailedLinksStartWithTheSiteURL: without LOCKBOX_SITE_URL an
// invitation link starts with the address the request reached (its Host
// header). A mailed link is the invitee's alone, so an inviter who is not an
// organization admin could have pointed it at a host of its own and received
// the one-time token of another's account: with mail and no site URL only
// admins invite; with a site URL, anyone allowed to.
func TestMailedLinksStartWithTheSiteURL(t *testing.T) {
	sink := testsvc.SMTP(t)
	m, err := mail.Parse("smtp://" + sink.Addr + "?from=lockbox@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, site := range []bool{false, true} {
		e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{Mailer: m, SelfSiteURL: site})
		e.Must(t, 200, "POST", "/api/v1/organization/roles", e.Token, map[string]any{"slug": "inviter", "name": "Inviter",
			"permissions": []map[string]any{{"subject": "member", "action": []string{"read", "create"}}}})
		who := fmt.Sprintf("inviter-%v@example.com", site)
		if l := invite(t, e, e.Token, who, "inviter"); !l.Mailed {
			t.Fatalf("site URL %v: the admin's invitation was not mailed", site)
		}
		got := sink.WaitFor(t, "To: "+who, 10*time.Second)
		link := regexp.MustCompile(`http://[^\s]+/signupinvite\?[^\s]+`).FindString(got[strings.Index(got, "To: "+who):])
		accept(t, e, who, link, "a long enough password")
		inviter := userLogin(t, e, who, "a long enough password")
		victim := fmt.Sprintf("victim-%v@example.com", site)
		if l := invite(t, e, e.Token, victim, "no-access"); !l.Mailed {
			t.Fatalf("site URL %v: the admin's invitation was not mailed", site)
		}
		r := e.Do(t, "POST", "/api/v1/invite-org/signup", inviter, map[string]any{"inviteeEmails": []string{victim},
			"organizationId": e.OrgID, "organizationRoleSlug": "no-access"})
		if site {
			if r.Status != 200 {
				t.Fatalf("with a site URL the inviter's invitation: status %d", r.Status)
			}
			continue
		}
		if r.Status != 403 || r.JSON(t)["error"] != "PermissionBoundaryError" {
			t.Fatalf("without a site URL the inviter's mailed invitation: status %d, want 403", r.Status)
		}
	}
}
