package api_test

import (
	"regexp"
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
		if !l.Mailed {
			t.Fatalf("not mailed: %+v", l)
		}
		got := sink.WaitFor(t, "To: "+email, 10*time.Second)
		links := regexp.MustCompile(`http://[^\s]+/signupinvite\?[^\s]+`).FindAllString(got, -1)
		var mailed string
		for _, link := range links {
			if link == l.Link {
				mailed = link
			}
		}
		if mailed == "" {
			t.Fatalf("the %d mailed links do not include the one for %s", len(links), l.Email)
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
	for _, bad := range []string{"http://x", "smtp://", "smtp://host:25", "smtp://host:25?from=not-an-address"} {
		if _, err := mail.Parse(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}
