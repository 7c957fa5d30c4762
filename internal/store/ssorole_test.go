package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/sso"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestSSODefaultRoleNamesARole: the SSO configuration names its default
// role by slug, checked by the service on what it read. The store checks
// it again and holds the role: a configuration naming a role that is gone
// is refused; a role's deletion racing a configuration that names it
// leaves the role or a configuration not naming it, never a configuration
// naming nothing (every SSO sign-up refused, and a role made later under
// that slug handed to new users); a rename moves the configuration's
// updated_at, so a change of the configuration read before it is stale
// instead of writing the old slug back.
func TestSSODefaultRoleNamesARole(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		o := seedOrg(t, db)
		ev := audit.Event{OrgID: o, Type: "t"}
		at := time.Now().UTC().Truncate(time.Microsecond)
		role := func(slug string) org.Role {
			r := org.Role{ID: store.NewID(), OrgID: o, Slug: slug, Name: slug, CreatedAt: at, UpdatedAt: at}
			if err := db.CreateOrgRole(ctx, r, `[]`, ev); err != nil {
				t.Fatal(err)
			}
			return r
		}
		cfg := sso.Config{ID: store.NewID(), OrgID: o, ConfigurationType: "discovery", DiscoveryURL: "https://idp.example.com",
			ClientID: "c", ClientSecret: []byte("sealed"), DefaultRole: "ghost", IsActive: true, CreatedAt: at, UpdatedAt: at}
		if err := db.CreateOIDCConfig(ctx, cfg, ev); !errs.Is(err, errs.Validation) {
			t.Fatalf("a configuration naming no role: %v, want refused", err)
		}
		cfg.DefaultRole = "member"
		if err := db.CreateOIDCConfig(ctx, cfg, ev); err != nil {
			t.Fatal(err)
		}
		prev := cfg.UpdatedAt
		for round := range 10 {
			r := role(fmt.Sprintf("racer-%d", round))
			next := cfg
			next.DefaultRole, next.UpdatedAt = r.Slug, prev.Add(time.Duration(round+1)*time.Millisecond)
			var wg sync.WaitGroup
			var cfgErr, delErr error
			wg.Go(func() { cfgErr = db.UpdateOIDCConfig(ctx, next, prev, ev) })
			wg.Go(func() { delErr = db.DeleteOrgRole(ctx, r, ev) })
			wg.Wait()
			if cfgErr != nil && !errs.Is(cfgErr, errs.Validation) {
				t.Fatalf("round %d: configuration: %v", round, cfgErr)
			}
			if delErr != nil && !errs.Is(delErr, errs.Conflict) {
				t.Fatalf("round %d: deletion: %v", round, delErr)
			}
			got, err := db.OIDCConfig(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if got.DefaultRole == r.Slug && delErr == nil {
				t.Fatalf("round %d: the configuration names %q, deleted", round, r.Slug)
			}
			if cfgErr == nil {
				prev = next.UpdatedAt
				// Back to a built-in role, so the next round's role is free.
				back := got
				back.DefaultRole, back.UpdatedAt = "member", prev.Add(time.Microsecond)
				if err := db.UpdateOIDCConfig(ctx, back, prev, ev); err != nil {
					t.Fatal(err)
				}
				prev = back.UpdatedAt
			}
		}

		// A rename moves the configuration with it, and makes an older read stale.
		r := role("renamed-from")
		named := cfg
		named.DefaultRole, named.UpdatedAt = r.Slug, prev.Add(time.Microsecond)
		if err := db.UpdateOIDCConfig(ctx, named, prev, ev); err != nil {
			t.Fatal(err)
		}
		read := named.UpdatedAt
		renamed := r
		renamed.Slug, renamed.UpdatedAt = "renamed-to", r.UpdatedAt.Add(time.Second)
		if err := db.UpdateOrgRole(ctx, renamed, `[]`, r.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if got, err := db.OIDCConfig(ctx, o); err != nil || got.DefaultRole != "renamed-to" {
			t.Fatalf("after the rename the configuration names %q (%v)", got.DefaultRole, err)
		}
		role("renamed-from") // a new role takes the old slug: the old read would now name it
		stale := named
		stale.ClientID, stale.UpdatedAt = "other", read.Add(time.Microsecond)
		if err := db.UpdateOIDCConfig(ctx, stale, read, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a change read before the rename: %v, want stale (it would write %q back)", err, stale.DefaultRole)
		}
	})
}
