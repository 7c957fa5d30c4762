// Package identity authenticates machines and people: machine identities with
// their auth methods and access tokens, human users with passwords and
// sessions, and the one-time bootstrap of an instance.
package identity

import (
	"net/netip"
	"time"

	"github.com/lockbox-dev/lockbox/internal/netaddr"
)

// Identity is a machine identity of an organization.
type Identity struct {
	ID                  string
	OrgID               string
	Name                string
	HasDeleteProtection bool
	AuthMethods         []string
	Metadata            []Metadata
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Metadata is a key/value label on an identity.
type Metadata struct {
	ID    string
	Key   string
	Value string
}

// TrustedIP is an allowed source network, stored as Infisical stores it.
type TrustedIP struct {
	IPAddress string // address part, e.g. "0.0.0.0"
	Type      string // "ipv4" or "ipv6"
	Prefix    int    // CIDR prefix length
}

// Prefix returns the network as a netip.Prefix.
func (t TrustedIP) Net() (netip.Prefix, error) {
	a, err := netip.ParseAddr(t.IPAddress)
	if err != nil {
		return netip.Prefix{}, err
	}
	return a.Prefix(t.Prefix)
}

// AnyIP is the default trusted list: every IPv4 and IPv6 address.
var AnyIP = []TrustedIP{{"0.0.0.0", "ipv4", 0}, {"::", "ipv6", 0}}

// ParseTrustedIP parses "1.2.3.4", "10.0.0.0/8" or "::/0". An IPv4-mapped
// IPv6 network (::ffff:10.0.0.0/104) becomes the IPv4 network it means, as
// client addresses are compared unmapped; zoned addresses are refused.
func ParseTrustedIP(s string) (TrustedIP, bool) {
	p, err := netaddr.ParsePrefix(s)
	if err != nil {
		return TrustedIP{}, false
	}
	return TrustedIP{p.Addr().String(), ipType(p.Addr()), p.Bits()}, true
}

func ipType(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "ipv4"
	}
	return "ipv6"
}

// IPAllowed reports whether ip is inside one of list. An empty list allows nothing.
func IPAllowed(list []TrustedIP, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, t := range list {
		p, err := t.Net()
		if err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

// TokenAuth is the Token Auth configuration of an identity.
type TokenAuth struct {
	ID                      string
	IdentityID              string
	AccessTokenTTL          int64 // seconds; 0 = no TTL
	AccessTokenMaxTTL       int64
	AccessTokenNumUsesLimit int64
	AccessTokenTrustedIPs   []TrustedIP
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// AccessToken is the record behind a machine-identity bearer token.
type AccessToken struct {
	ID             string
	IdentityID     string
	AuthMethod     string
	Name           string
	ClientSecretID string
	TTL            int64
	MaxTTL         int64
	Period         int64
	NumUses        int64
	NumUsesLimit   int64
	TrustedIPs     []TrustedIP
	LastUsedAt     *time.Time
	LastRenewedAt  *time.Time
	Revoked        bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ttlEnd is when the token's TTL runs out, counted from its creation or
// its last renewal; false: it has no TTL.
func (t AccessToken) ttlEnd() (time.Time, bool) {
	if t.TTL <= 0 {
		return time.Time{}, false
	}
	from := t.CreatedAt
	if t.LastRenewedAt != nil {
		from = *t.LastRenewedAt
	}
	return from.Add(time.Duration(t.TTL) * time.Second), true
}

// maxEnd is when the token's max TTL runs out, counted from its creation
// (renewals do not move it); false: it has none (a periodic token).
func (t AccessToken) maxEnd() (time.Time, bool) {
	if t.MaxTTL <= 0 || t.Period != 0 {
		return time.Time{}, false
	}
	return t.CreatedAt.Add(time.Duration(t.MaxTTL) * time.Second), true
}

// Exhausted reports whether a token with a use limit has reached it (as
// ClientSecret.Exhausted).
func (t AccessToken) Exhausted() bool { return t.NumUsesLimit > 0 && t.NumUses >= t.NumUsesLimit }

// ExpiresAt is when the token stops authenticating unless renewed first:
// the sooner of its TTL's and its max TTL's end, the two Authenticate
// checks; nil: never.
func (t AccessToken) ExpiresAt() *time.Time {
	ttlAt, hasTTL := t.ttlEnd()
	maxAt, hasMax := t.maxEnd()
	switch {
	case hasTTL && (!hasMax || ttlAt.Before(maxAt)):
		return &ttlAt
	case hasMax:
		return &maxAt
	}
	return nil
}

// User is a human account.
type User struct {
	ID           string
	Email        string
	Username     string
	FirstName    string
	LastName     string
	SuperAdmin   bool
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Session is a human login; OrgID is empty until an organization is selected.
type Session struct {
	ID     string
	UserID string
	OrgID  string
	// FamilyID is the id of the login's first session, for sessions made
	// from it (select-organization); empty for that first one.
	FamilyID  string
	Revoked   bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Auth method names as Infisical spells them.
const (
	MethodTokenAuth     = "token-auth"
	MethodUniversalAuth = "universal-auth"
	MethodEmail         = "email"
)
