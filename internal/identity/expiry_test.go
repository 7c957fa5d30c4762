package identity_test

import (
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/identity"
)

// ExpiresAt is the sooner of the TTL's end (from the last renewal) and the
// max TTL's end (from creation; none for a periodic token), the two checks
// Authenticate makes.
func TestAccessTokenExpiresAt(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	renewed := created.Add(50 * time.Minute)
	at := func(d time.Duration) *time.Time { v := created.Add(d); return &v }
	for name, c := range map[string]struct {
		tok  identity.AccessToken
		want *time.Time
	}{
		"neither":               {identity.AccessToken{CreatedAt: created}, nil},
		"ttl only":              {identity.AccessToken{CreatedAt: created, TTL: 3600}, at(time.Hour)},
		"max only":              {identity.AccessToken{CreatedAt: created, MaxTTL: 7200}, at(2 * time.Hour)},
		"ttl sooner":            {identity.AccessToken{CreatedAt: created, TTL: 3600, MaxTTL: 7200}, at(time.Hour)},
		"max sooner":            {identity.AccessToken{CreatedAt: created, TTL: 3600, MaxTTL: 1800}, at(30 * time.Minute)},
		"renewal moves the ttl": {identity.AccessToken{CreatedAt: created, LastRenewedAt: &renewed, TTL: 3600, MaxTTL: 7200}, at(110 * time.Minute)},
		"renewal, max sooner":   {identity.AccessToken{CreatedAt: created, LastRenewedAt: &renewed, TTL: 3600, MaxTTL: 5400}, at(90 * time.Minute)},
		"periodic: no max":      {identity.AccessToken{CreatedAt: created, LastRenewedAt: &renewed, TTL: 3600, MaxTTL: 5400, Period: 3600}, at(110 * time.Minute)},
	} {
		got := c.tok.ExpiresAt()
		if (got == nil) != (c.want == nil) || (got != nil && !got.Equal(*c.want)) {
			t.Errorf("%s: ExpiresAt = %v, want %v", name, got, c.want)
		}
	}
}
