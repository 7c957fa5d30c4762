package dynamic

import (
	"context"
	"net/netip"
	"strings"
	"testing"
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
