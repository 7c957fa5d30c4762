package identity_test

import (
	"context"
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// uaFixture bootstraps an instance on a real database and gives its admin
// identity Universal Auth with n client secrets; it returns the client id and
// the last secret made.
func uaFixture(b *testing.B, d store.Dialect, n int) (*identity.UA, string, string) {
	b.Helper()
	ctx := context.Background()
	db := storetest.Open(b, d)
	kr := newKeyring(b, db)
	svc := identity.NewService(db, kr, nil)
	res, err := svc.Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "bench")
	if err != nil {
		b.Fatal(err)
	}
	ua := identity.NewUA(db, authz.NewResolver(db, nil), svc)
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: res.Identity.ID, OrgID: res.Org.ID}
	off := false
	cfg, err := ua.Attach(ctx, actor, res.Identity.ID, identity.UAConfig{LockoutEnabled: &off})
	if err != nil {
		b.Fatal(err)
	}
	var secret string
	for range n {
		secret, _, err = ua.NewClientSecret(ctx, actor, res.Identity.ID, "", 0, 0)
		if err != nil {
			b.Fatal(err)
		}
	}
	return ua, cfg.ClientID, secret
}

// BenchmarkUniversalAuthLogin measures a whole login (lookup, checks, token
// row, audit event, JWT) with 1 and 1,000 client secrets on the identity.
func BenchmarkUniversalAuthLogin(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			ua, clientID, secret := uaFixture(b, store.SQLite, n)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := ua.Login(ctx, clientID, secret, "", "127.0.0.1", "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBcryptPerCandidate is the reference point: Infisical verifies a
// client secret with one bcrypt (cost 10) comparison per stored candidate that
// shares the presented secret's 4-character prefix, until one matches. The
// cost grows linearly with the candidates; 16 shows the slope.
func BenchmarkBcryptPerCandidate(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("candidates=%d", n), func(b *testing.B) {
			hashes := make([][]byte, n)
			secret := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
			for i := range hashes {
				other := []byte(fmt.Sprintf("%064d", i))
				if i == n-1 {
					other = secret
				}
				h, err := bcrypt.GenerateFromPassword(other[:72-8], 10)
				if err != nil {
					b.Fatal(err)
				}
				hashes[i] = h
			}
			b.ResetTimer()
			for b.Loop() {
				for _, h := range hashes {
					if bcrypt.CompareHashAndPassword(h, secret[:72-8]) == nil {
						break
					}
				}
			}
		})
	}
}
