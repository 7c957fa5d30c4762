package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestProjectWritesCheckWhatTheyRead: a settings write from a read that
// another change has overtaken is refused (project.ErrStale), and a
// deletion re-reads delete protection in its own transaction.
func TestProjectWritesCheckWhatTheyRead(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := t.Context()
			pid, _, _ := seedProject(t, db)
			read, err := db.ProjectByID(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			first := read
			first.HasDeleteProtection, first.UpdatedAt = true, read.UpdatedAt.Add(time.Second)
			if err := db.UpdateProject(ctx, first, read.UpdatedAt, audit.Event{Type: "protect", OrgID: pid}); err != nil {
				t.Fatal(err)
			}
			stale := read
			stale.Description, stale.UpdatedAt = "later", read.UpdatedAt.Add(2*time.Second)
			if err := db.UpdateProject(ctx, stale, read.UpdatedAt, audit.Event{Type: "describe", OrgID: pid}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("a write from an overtaken read: %v, want ErrStale", err)
			}
			if err := db.DeleteProject(ctx, pid, audit.Event{Type: "delete", OrgID: pid}); !errors.Is(err, project.ErrDeleteProtected) {
				t.Fatalf("deleting a protected project: %v", err)
			}
			if got, err := db.ProjectByID(ctx, pid); err != nil || !got.HasDeleteProtection || got.Description == "later" {
				t.Fatalf("after the refusals: %+v %v", got, err)
			}
		})
	}
}

// TestLoginMethodWritesCheckWhatTheyRead: a write of Universal Auth's,
// Token Auth's or a platform method's settings from a read that another
// change has overtaken is refused (identity.ErrStale) and changes nothing.
func TestLoginMethodWritesCheckWhatTheyRead(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := t.Context()
			org, ident := store.NewID(), store.NewID()
			for _, q := range []string{
				`INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`,
				`INSERT INTO identities (id, org_id, name, created_at, updated_at) VALUES (?, ?, 'i', 0, 0)`,
			} {
				args := []any{org, org}
				if strings.Contains(q, "identities") {
					args = []any{ident, org}
				}
				if err := db.ExecForTest(ctx, q, args...); err != nil {
					t.Fatal(err)
				}
			}
			at := time.Now().UTC().Truncate(time.Microsecond)
			ev := audit.Event{Type: "cfg", OrgID: org}
			narrow := []identity.TrustedIP{{IPAddress: "10.1.2.3", Prefix: 32, Type: "ipv4"}}

			ua := identity.UniversalAuth{ID: store.NewID(), IdentityID: ident, ClientID: store.NewID(), AccessTokenTTL: 60, AccessTokenMaxTTL: 60,
				ClientSecretTrustedIPs: identity.AnyIP, AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
			ta := identity.TokenAuth{ID: store.NewID(), IdentityID: ident, AccessTokenTTL: 60, AccessTokenMaxTTL: 60,
				AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
			ac := identity.AuthConfig{ID: store.NewID(), IdentityID: ident, Method: "jwt-auth", Config: []byte(`{}`), AccessTokenTTL: 60,
				AccessTokenMaxTTL: 60, AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
			if err := db.CreateUniversalAuth(ctx, ua, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTokenAuth(ctx, ta, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateAuthConfig(ctx, ac, ev); err != nil {
				t.Fatal(err)
			}
			// What each write read: the rows as created (their times are the
			// store's).
			var err error
			if ua, err = db.UniversalAuthByIdentity(ctx, ident); err != nil {
				t.Fatal(err)
			}
			if ta, err = db.TokenAuth(ctx, ident); err != nil {
				t.Fatal(err)
			}
			if ac, err = db.AuthConfig(ctx, ident, "jwt-auth"); err != nil {
				t.Fatal(err)
			}
			later, latest := at.Add(time.Hour), at.Add(2*time.Hour)

			// Universal Auth: the first write from the read wins; the second,
			// from the same read, is stale.
			first, stale := ua, ua
			first.AccessTokenTrustedIPs, first.UpdatedAt = narrow, later
			stale.AccessTokenNumUsesLimit, stale.UpdatedAt = 5, latest
			if err := db.UpdateUniversalAuth(ctx, first, ua.UpdatedAt, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.UpdateUniversalAuth(ctx, stale, ua.UpdatedAt, ev); !errors.Is(err, identity.ErrStale) {
				t.Fatalf("universal auth: a write from an overtaken read: %v", err)
			}
			if got, err := db.UniversalAuthByIdentity(ctx, ident); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
				t.Fatalf("universal auth after the stale write: %+v %v", got, err)
			}

			ft, st := ta, ta
			ft.AccessTokenTrustedIPs, ft.UpdatedAt = narrow, later
			st.AccessTokenNumUsesLimit, st.UpdatedAt = 5, latest
			if err := db.UpdateTokenAuth(ctx, ft, ta.UpdatedAt, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.UpdateTokenAuth(ctx, st, ta.UpdatedAt, ev); !errors.Is(err, identity.ErrStale) {
				t.Fatalf("token auth: a write from an overtaken read: %v", err)
			}
			if got, err := db.TokenAuth(ctx, ident); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
				t.Fatalf("token auth after the stale write: %+v %v", got, err)
			}

			fc, sc := ac, ac
			fc.AccessTokenTrustedIPs, fc.UpdatedAt = narrow, later
			sc.AccessTokenNumUsesLimit, sc.UpdatedAt = 5, latest
			if err := db.UpdateAuthConfig(ctx, fc, ac.UpdatedAt, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.UpdateAuthConfig(ctx, sc, ac.UpdatedAt, ev); !errors.Is(err, identity.ErrStale) {
				t.Fatalf("auth config: a write from an overtaken read: %v", err)
			}
			if got, err := db.AuthConfig(ctx, ident, "jwt-auth"); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
				t.Fatalf("auth config after the stale write: %+v %v", got, err)
			}
		})
	}
}
