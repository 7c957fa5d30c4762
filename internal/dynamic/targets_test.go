package dynamic

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

func TestTargetPolicy(t *testing.T) {
	if _, err := ParseTargetPolicy("10.0.0.0/33", "not a host!"); err == nil || !strings.Contains(err.Error(), "not a host!") {
		t.Fatalf("bad entries: %v", err)
	}
	resolve := map[string][]netip.Addr{
		"db.internal":   {netip.MustParseAddr("127.0.0.5")},
		"meta.internal": {netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("169.254.169.254")},
	}
	lookup := func(_ context.Context, h string) ([]netip.Addr, error) { return resolve[h], nil }
	cases := []struct {
		allow, deny, host string
		ok                bool
	}{
		{"", "", "127.0.0.1", true},
		{"", "", "169.254.169.254", false},
		{"", "", "::ffff:169.254.169.254", false},
		{"", "", "100.100.100.200", false}, // Alibaba Cloud's metadata service
		{"", "", "100.100.100.201", true},
		{"", "", "fe80::1", false},
		{"", "", "meta.internal", false}, // any resolved address denied is enough
		{"", "127.0.0.0/8", "db.internal", false},
		{"", "*.internal", "db.internal", false},
		{"", "*.internal", "internal", true},
		{"127.0.0.5/32", "", "db.internal", true},
		{"127.0.0.5/32", "", "127.0.0.6", false},
		{"db.internal", "", "db.internal", true},
		{"db.internal", "", "127.0.0.5", false},
		{"169.254.0.0/16", "", "169.254.169.254", false}, // deny wins
		{"127.0.0.1", "", "[::ffff:127.0.0.1]", true},
		{"", "::ffff:127.0.0.0/104", "127.0.0.1", false}, // an IPv4-mapped network is its IPv4 network
		// Unspecified addresses reach the server's own host: always denied,
		// as is multicast.
		{"", "", "0.0.0.0", false},
		{"", "", "::", false},
		{"", "", "::ffff:0.0.0.0", false},
		{"", "", "0.1.2.3", false},
		{"", "", "224.0.0.1", false},
		{"", "", "ff02::1", false},
		// A well-known NAT64 address is the IPv4 address it reaches.
		{"", "127.0.0.0/8", "64:ff9b::7f00:1", false},
		{"", "", "64:ff9b::a9fe:a9fe", false}, // 169.254.169.254
		{"127.0.0.0/8", "", "64:ff9b::7f00:1", true},
		{"", "", "64:ff9b::7f00:1", true},
		// A list entry written in NAT64 form matches as written too.
		{"", "64:ff9b::/96", "64:ff9b::808:808", false},
		{"", "64:ff9b::a00:0/104", "64:ff9b::a00:1", false},
		{"64:ff9b::/96", "", "64:ff9b::a00:1", true},
		{"64:ff9b::/96", "", "10.0.0.1", false},
	}
	for _, c := range cases {
		p, err := ParseTargetPolicy(c.allow, c.deny)
		if err != nil {
			t.Fatal(err)
		}
		p.lookup = lookup
		if err := p.checkHost(context.Background(), c.host); (err == nil) != c.ok {
			t.Errorf("allow %q deny %q host %q: %v, want ok=%v", c.allow, c.deny, c.host, err, c.ok)
		}
	}
}

// TestCheckAddr: the check made on the address dialled refuses what the
// host check refuses, NAT64 and unspecified addresses included.
func TestCheckAddr(t *testing.T) {
	p, err := ParseTargetPolicy("", "127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", false}, {"64:ff9b::7f00:1", false}, {"::ffff:127.0.0.1", false}, {"0.0.0.0", false},
		{"::", false}, {"64:ff9b::a9fe:a9fe", false}, {"10.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2001:db8::1", true},
	} {
		if err := p.CheckAddr(netip.MustParseAddr(c.addr)); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.addr, err, c.ok)
		}
	}
	nat, err := ParseTargetPolicy("64:ff9b::/96", "64:ff9b::a00:0/104")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		ok   bool
	}{{"64:ff9b::808:808", true}, {"64:ff9b::a00:1", false}, {"8.8.8.8", false}} {
		if err := nat.CheckAddr(netip.MustParseAddr(c.addr)); (err == nil) != c.ok {
			t.Errorf("NAT64 lists, %s: %v, want ok=%v", c.addr, err, c.ok)
		}
	}
}

// targets is a provider with the given targets: only Targets is called.
type targets []string

func (t targets) Targets() []string                                  { return t }
func (targets) Validate(context.Context) error                       { return nil }
func (targets) Revoke(context.Context, provider.RevokeRequest) error { return nil }
func (targets) Create(context.Context, provider.CreateRequest) (provider.CreateResponse, error) {
	return provider.CreateResponse{}, nil
}

// TestCheckerForMixedAllowList: with an allow list of networks and names, a
// target admitted by name may be dialled at any address not denied, but one
// admitted only by network must be dialled inside the allowed networks, so
// that a member's own name, resolving into them when checked, cannot be
// pointed elsewhere before a connection (DNS rebinding).
func TestCheckerForMixedAllowList(t *testing.T) {
	p, err := ParseTargetPolicy("10.20.0.0/16,db.corp.example", "10.99.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	p.lookup = func(_ context.Context, h string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.20.0.5")}, nil
	}
	outside, inside, denied := netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("10.20.0.7"), netip.MustParseAddr("10.99.0.1")
	for _, c := range []struct {
		targets []string
		outside bool // whether a dial outside the allowed networks passes
	}{
		{[]string{"db.corp.example"}, true},
		{[]string{"DB.corp.example."}, true},
		{[]string{"member.example"}, false},
		{[]string{"10.20.0.9"}, false},
		{[]string{"db.corp.example", "member.example"}, false},
		{nil, false}, // nothing admitted by name
	} {
		for _, h := range c.targets {
			if err := p.checkHost(context.Background(), h); err != nil {
				t.Fatalf("%s: not admitted at all: %v", h, err)
			}
		}
		chk := p.checkerFor(targets(c.targets))
		if err := chk.CheckAddr(outside); (err == nil) != c.outside {
			t.Errorf("targets %v, dial outside the networks: %v, want ok=%v", c.targets, err, c.outside)
		}
		if err := chk.CheckAddr(inside); err != nil {
			t.Errorf("targets %v, dial inside: %v", c.targets, err)
		}
		if err := chk.CheckAddr(denied); err == nil {
			t.Errorf("targets %v: a denied address passed", c.targets)
		}
	}
	// The service's connections carry the checker chosen for their provider.
	svc := &Service{targets: p}
	if got := provider.CheckerFrom(svc.dialCtx(context.Background(), targets{"member.example"})); got != provider.AddrChecker(p.byNet) {
		t.Errorf("dialCtx carries %T, want the policy's network check", got)
	}
	if got := provider.CheckerFrom(svc.dialCtx(context.Background(), targets{"db.corp.example"})); got != provider.AddrChecker(p) {
		t.Errorf("dialCtx carries %T for a target admitted by name, want the policy", got)
	}
	// Without names in the allow list, or without an allow list, the
	// policy's own check applies, as before.
	for _, allow := range []string{"10.20.0.0/16", ""} {
		q, _ := ParseTargetPolicy(allow, "")
		if got := q.checkerFor(targets{"member.example"}); got != provider.AddrChecker(q) {
			t.Errorf("allow %q: checker %T, want the policy", allow, got)
		}
	}
}
