package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestClientSecretsAreBounded: an identity holds at most
// identity.MaxClientSecrets client secrets that can log in; the list
// returned them all, revoked ones included, and creates had no bound.
// Twelve creates at once one short of the bound get exactly one more;
// secrets that can no longer log in (expired, used up, revoked) count for
// nothing, so rotating never hits the bound, and are not listed, but are
// left as they are (a login with an expired one is told so); revoking one
// makes room.
func TestClientSecretsAreBounded(t *testing.T) {
	const racers, dead = 12, 4
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ua, clientID, actor := uaFixture(t, db, false)
		_, first, err := ua.NewClientSecret(ctx, actor, actor.ID, "first", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Up to the bound less one can log in; dead ones of each kind, and revoked ones, besides.
		seed := func(n int, kind, uses, limit, ttl, revoked string) {
			t.Helper()
			q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
				INSERT INTO identity_ua_client_secrets (id, identity_ua_id, description, secret_hash, prefix, num_uses, num_uses_limit, ttl,
					revoked, created_at, updated_at)
				SELECT ? || '-%s-' || i, ?, '%s', ? || '-%s-' || i, 'abcd', %s, %s, %s, %s, 1, 1 FROM n`, n, kind, kind, kind, uses, limit, ttl, revoked)
			if err := db.ExecForTest(ctx, q, first.ID, first.IdentityUAID, first.ID); err != nil {
				t.Fatal(err)
			}
		}
		race := func(t *testing.T, when string) {
			t.Helper()
			ok := landed(t, racers, func(i int) error {
				_, _, err := ua.NewClientSecret(ctx, actor, actor.ID, fmt.Sprint("racer ", i), 0, 0)
				return err
			}, func(err error) bool {
				return errs.Is(err, errs.Invalid) && strings.Contains(err.Error(), "at most 1000 client secrets")
			})
			if ok != 1 {
				t.Fatalf("%s: %d of %d creates landed, want 1", when, ok, racers)
			}
		}
		seed(identity.MaxClientSecrets-2, "live", "0", "5", "0", "FALSE")
		seed(dead, "expired", "0", "0", "60", "FALSE")
		seed(dead, "usedup", "3", "3", "0", "FALSE")
		seed(dead, "revoked", "0", "0", "0", "TRUE")

		race(t, "one short of the bound, dead secrets besides")

		list, err := ua.ClientSecrets(ctx, actor, actor.ID)
		if err != nil || len(list) != identity.MaxClientSecrets {
			t.Fatalf("the list holds %d, want %d (%v)", len(list), identity.MaxClientSecrets, err)
		}
		for _, cs := range list {
			if strings.Contains(cs.ID, "-expired-") || strings.Contains(cs.ID, "-usedup-") || strings.Contains(cs.ID, "-revoked-") {
				t.Fatalf("a secret that cannot log in is listed: %s", cs.ID)
			}
		}
		// Dead secrets are left as they are: not revoked (a login with one
		// is told why it failed, and is not counted as a guess).
		for _, kind := range []string{"expired", "usedup"} {
			cs, err := ua.ClientSecret(ctx, actor, actor.ID, first.ID+"-"+kind+"-1")
			if err != nil || cs.Revoked {
				t.Fatalf("a dead (%s) secret after a create: revoked %v, %v", kind, cs.Revoked, err)
			}
		}
		// Revoking one makes room; a secret that expires makes room too.
		if _, err := ua.RevokeClientSecret(ctx, actor, actor.ID, first.ID); err != nil {
			t.Fatal(err)
		}
		short, shortCS, err := ua.NewClientSecret(ctx, actor, actor.ID, "expires in a second", 0, 1)
		if err != nil {
			t.Fatalf("a create after a revocation made room: %v", err)
		}
		time.Sleep(time.Until(shortCS.CreatedAt.Add(1100 * time.Millisecond)))
		if _, err := ua.Login(ctx, clientID, short, "", "127.0.0.1", "test"); !errs.Is(err, errs.Unauthorized) ||
			!strings.Contains(err.Error(), "expired client secret") {
			t.Fatalf("a login with an expired secret after creates: %v", err)
		}
		race(t, "after a secret expired")
	})
}
