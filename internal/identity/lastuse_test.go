package identity_test

import (
	"context"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// A request's token use is written by Flush, not by the request; a write
// that fails keeps the use for the next Flush, and an idle Flush writes
// nothing.
func TestLastUseIsWrittenByFlushAndKeptWhenAWriteFails(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d)
			kr := newKeyring(t, db)
			svc := identity.NewService(db, kr, nil)
			res, err := svc.Bootstrap(ctx, "a@b.co", "a long bootstrap password", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			actor, err := svc.Authenticate(ctx, res.Token, "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			lastUsed := func() bool {
				t.Helper()
				tok, _, err := db.AccessTokenByID(ctx, actor.TokenID)
				if err != nil {
					t.Fatal(err)
				}
				return tok.LastUsedAt != nil
			}
			if lastUsed() {
				t.Fatal("the request wrote its token's last use itself")
			}
			failed, cancel := context.WithCancel(ctx)
			cancel()
			if err := svc.LastUse.Flush(failed); err == nil {
				t.Fatal("a Flush with a cancelled context wrote")
			}
			if lastUsed() {
				t.Fatal("the failed Flush wrote")
			}
			if err := svc.LastUse.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if !lastUsed() {
				t.Fatal("the use noted before the failed write was lost")
			}
			if err := svc.LastUse.Flush(ctx); err != nil {
				t.Fatalf("an idle Flush: %v", err)
			}
		})
	}
}
