package api_test

import (
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
	for _, bad := range []string{"http://x", "smtp://", "smtp://host:25", "smtp://host:25?from=not-an-address"} {
		if _, err := mail.Parse(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}
