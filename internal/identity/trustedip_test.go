package identity

import (
	"net/netip"
	"strconv"
	"testing"
)

func TestParseTrustedIP(t *testing.T) {
	for in, want := range map[string]TrustedIP{
		"1.2.3.4":             {"1.2.3.4", "ipv4", 32},
		"10.1.2.3/8":          {"10.0.0.0", "ipv4", 8},
		"::/0":                {"::", "ipv6", 0},
		"::ffff:1.2.3.4":      {"1.2.3.4", "ipv4", 32},
		"2001:db8::1/64":      {"2001:db8::", "ipv6", 64},
		"::ffff:10.9.8.7/104": {"10.0.0.0", "ipv4", 8},
	} {
		got, ok := ParseTrustedIP(in)
		if !ok || got != want {
			t.Errorf("ParseTrustedIP(%q) = %+v, %v; want %+v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "1.2.3", "1.2.3.4/33", "10.0.0.0/-1", "::/129", "example.com", "1.2.3.4/8/8", " 1.2.3.4", "fe80::1%eth0", "::ffff:0.0.0.0/80"} {
		if got, ok := ParseTrustedIP(in); ok {
			t.Errorf("ParseTrustedIP(%q) = %+v, want refusal", in, got)
		}
	}
	list := []TrustedIP{{"10.0.0.0", "ipv4", 8}}
	if !IPAllowed(list, "10.200.0.1") || IPAllowed(list, "11.0.0.1") || IPAllowed(list, "not an ip") || IPAllowed(nil, "10.0.0.1") {
		t.Fatal("IPAllowed")
	}
}

func FuzzParseTrustedIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "10.0.0.0/8", "::/0", "::ffff:10.0.0.1/104", "fe80::1%eth0", "2001:db8::/32"} {
		f.Add(s, "10.1.2.3")
	}
	f.Fuzz(func(t *testing.T, s, probe string) {
		ip, ok := ParseTrustedIP(s)
		if !ok {
			return
		}
		p, err := ip.Net()
		if err != nil {
			t.Fatalf("ParseTrustedIP(%q) = %+v, which does not make a network: %v", s, ip, err)
		}
		// The stored form parses back to itself.
		again, ok := ParseTrustedIP(ip.IPAddress + "/" + strconv.Itoa(ip.Prefix))
		if !ok || again != ip {
			t.Fatalf("%q -> %+v -> %+v, %v", s, ip, again, ok)
		}
		// Its own network address is allowed; a probe is allowed exactly when inside.
		if !IPAllowed([]TrustedIP{ip}, ip.IPAddress) {
			t.Fatalf("%+v does not allow its own address", ip)
		}
		if a, err := netip.ParseAddr(probe); err == nil {
			if IPAllowed([]TrustedIP{ip}, probe) != p.Contains(a.Unmap()) {
				t.Fatalf("%+v and %q disagree with netip", ip, probe)
			}
		}
	})
}
