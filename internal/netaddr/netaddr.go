// Package netaddr parses the networks lockbox's settings name (trusted IPs,
// trusted proxies, dynamic-secret targets): a CIDR or an address, an
// IPv4-mapped network meaning its IPv4 network, zones refused.
package netaddr

import (
	"fmt"
	"net/netip"
)

// ParsePrefix parses a CIDR, or an address as the prefix of that one host.
// "::ffff:10.0.0.0/104" is 10.0.0.0/8 (clients are compared unmapped); an
// IPv4-mapped prefix shorter than /96 and a zoned address are errors.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR or an IP address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// nat64 is the well-known NAT64 prefix (RFC 6052): an address in it reaches
// the IPv4 address in its last 32 bits, on a network that translates.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Dialled returns the address a connection to a really reaches, for policy
// checks: IPv4-mapped and well-known NAT64 addresses as their IPv4 address,
// without zone.
func Dialled(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return a
}
