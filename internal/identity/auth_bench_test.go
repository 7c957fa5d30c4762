package identity_test

import (
	"context"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkAuthenticate is the token check of every request: JWT signature
// and claims, then the token row, from the database (cold) or from the
// node's cache (warm), followed by the project permission set resolution.
func BenchmarkAuthenticate(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			kr := newKeyring(b, db)
			gen := cache.New(db)
			svc := identity.NewService(db, kr, nil)
			svc.SetCache(gen)
			res, err := svc.Bootstrap(context.Background(), "a@b.co", "pw", "Acme", "127.0.0.1", "bench")
			if err != nil {
				b.Fatal(err)
			}
			az := authz.NewResolver(db, nil)
			az.SetCache(gen)
			for _, warm := range []bool{false, true} {
				name := "cold"
				if warm {
					name = "warm"
				}
				b.Run("token/"+name, func(b *testing.B) {
					ctx := context.Background()
					if warm {
						ctx, _ = gen.Begin(ctx)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := svc.Authenticate(ctx, res.Token, "127.0.0.1", "bench"); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("org-permissions/"+name, func(b *testing.B) {
					ctx := context.Background()
					if warm {
						ctx, _ = gen.Begin(ctx)
					}
					actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := az.OrgPermissions(ctx, actor); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("epoch-read", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := gen.Begin(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

var _ = store.SQLite
