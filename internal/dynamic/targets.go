package dynamic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/netaddr"
)

// DefaultDeny is always denied as a dynamic-secret target: link-local
// addresses, where cloud metadata services live (169.254.169.254,
// fd00:ec2::254), and Alibaba Cloud's metadata service (100.100.100.200);
// unspecified addresses (0.0.0.0, ::), which Linux connects to the server's
// own host whatever a deny list says of 127.0.0.0/8 and ::1; and multicast.
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32", "0.0.0.0/8", "::/128", "224.0.0.0/4", "ff00::/8"}

// TargetPolicy decides which hosts dynamic secrets may connect to. Deny wins
// over allow; with an allow list, a target must match it (by host name, or
// with every address it resolves to inside an allowed network). A nil
// policy denies DefaultDeny only; build one with ParseTargetPolicy (the zero
// value denies nothing).
type TargetPolicy struct {
	allowNets, denyNets   []netip.Prefix
	allowHosts, denyHosts []string
	lookup                func(ctx context.Context, host string) ([]netip.Addr, error)
	// byNet is the dial-time check for a target the allow list admits by
	// network, not by name: allowNets enforced (see checkerFor).
	byNet *netChecker
}

// netChecker is a policy's dial-time check that enforces its allowed
// networks whatever its allowed names.
type netChecker struct{ p *TargetPolicy }

func (c *netChecker) CheckAddr(a netip.Addr) error {
	a = a.Unmap().WithZone("")
	if err := c.p.CheckAddr(a); err != nil {
		return err
	}
	if !inAny(c.p.allowNets, a) {
		return addrDenied(a)
	}
	return nil
}

// checkerFor is the dial-time check for prov's connections. An allow list
// that names networks and host names both admits a target by either: one
// admitted by name may resolve anywhere not denied, but one admitted by
// network must stay in the allowed networks when dialled, or a name of a
// member's that resolved into them when checked could be pointed anywhere
// else (DNS rebinding).
func (p *TargetPolicy) checkerFor(prov provider.Provider) provider.AddrChecker {
	if p == nil || len(p.allowNets) == 0 || len(p.allowHosts) == 0 {
		return p // CheckAddr enforces allowNets when they are the whole allow list
	}
	t, ok := prov.(provider.Targeter)
	if !ok || len(t.Targets()) == 0 {
		return p.byNet // nothing admitted by name
	}
	for _, host := range t.Targets() {
		if !hostMatches(p.allowHosts, normHost(host)) {
			return p.byNet
		}
	}
	return p
}

// policyRefusal ends every refusal of the policy; shown (lease.go) finds it
// in a provider's error once a driver has flattened the policyError.
const policyRefusal = "is not allowed by this server's dynamic-secret target policy"

// addrDenied is the refusal of an address about to be dialled.
func addrDenied(a netip.Addr) error {
	return &policyError{fmt.Errorf("address %s %s", a, policyRefusal)}
}

// normHost is a host name as the policy compares it: lower case, without
// IPv6 brackets or a final dot.
func normHost(host string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
}

// defaultPolicy is the nil policy's: DefaultDeny only.
var defaultPolicy, _ = ParseTargetPolicy("", "")

// ParseTargetPolicy parses comma-separated lists of CIDRs, IP addresses and
// host names ("db.internal", or "*.internal" for every name below it).
func ParseTargetPolicy(allow, deny string) (*TargetPolicy, error) {
	p := &TargetPolicy{}
	var errList []error
	add := func(list string, nets *[]netip.Prefix, hosts *[]string) {
		for _, e := range strings.Split(list, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			if e == "" {
				continue
			}
			if pf, err := netaddr.ParsePrefix(e); err == nil {
				*nets = append(*nets, pf)
			} else if validHostPattern(e) {
				*hosts = append(*hosts, strings.TrimSuffix(e, "."))
			} else {
				errList = append(errList, fmt.Errorf("%q is not a CIDR, an IP address or a host name", e))
			}
		}
	}
	add(allow, &p.allowNets, &p.allowHosts)
	add(strings.Join(DefaultDeny, ",")+","+deny, &p.denyNets, &p.denyHosts)
	p.byNet = &netChecker{p}
	return p, errors.Join(errList...)
}

func validHostPattern(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 || strings.ContainsAny(s, "/:*") {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func hostMatches(patterns []string, host string) bool {
	for _, p := range patterns {
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+rest) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// inAny reports whether a is in one of nets as given (unmapped, without
// zone) or as the IPv4 address it reaches (a well-known NAT64 address): a
// deny entry in either form denies it, an allow entry in either form admits
// it.
func inAny(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	v4 := netaddr.Dialled(a)
	for _, n := range nets {
		if n.Contains(a) || n.Contains(v4) {
			return true
		}
	}
	return false
}

// Check refuses a provider whose targets the policy denies. Host names are
// resolved here; a provider without targets (totp) passes.
func (p *TargetPolicy) Check(ctx context.Context, prov provider.Provider) error {
	t, ok := prov.(provider.Targeter)
	if !ok {
		return nil
	}
	if p == nil {
		p = defaultPolicy
	}
	for _, host := range t.Targets() {
		if err := p.checkHost(ctx, host); err != nil {
			return err
		}
	}
	return nil
}

// CheckHost refuses a host name or address the policy denies, resolving
// names; it is also the limit on what login methods fetch (JWKS, OIDC
// discovery), so an administrator of an identity cannot make the server reach
// what its dynamic secrets may not.
func (p *TargetPolicy) CheckHost(ctx context.Context, host string) error {
	if p == nil {
		p = defaultPolicy
	}
	return p.checkHost(ctx, host)
}

func (p *TargetPolicy) checkHost(ctx context.Context, host string) error {
	host = normHost(host)
	denied := &policyError{fmt.Errorf("target %q %s", host, policyRefusal)}
	if hostMatches(p.denyHosts, host) {
		return denied
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		lookup := p.lookup
		if lookup == nil {
			lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return fmt.Errorf("resolve %q: %w", host, err) // not a policy error: its detail stays in the log
		}
	}
	allowed := len(p.allowNets) == 0 && len(p.allowHosts) == 0 || hostMatches(p.allowHosts, host)
	inAllowed := len(addrs) > 0
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if inAny(p.denyNets, a) {
			return denied
		}
		inAllowed = inAllowed && inAny(p.allowNets, a)
	}
	if !allowed && !inAllowed {
		return denied
	}
	return nil
}

// CheckAddr is the check made on every address a provider is about to
// connect to, after name resolution, so that a name that resolves
// differently at connection time (DNS rebinding) still cannot reach a denied
// address. With an allow list of host names only, names were checked before
// connecting and any address passes here.
func (p *TargetPolicy) CheckAddr(a netip.Addr) error {
	if p == nil {
		p = defaultPolicy
	}
	a = a.Unmap().WithZone("")
	denied := addrDenied(a)
	if inAny(p.denyNets, a) {
		return denied
	}
	if len(p.allowNets) > 0 && len(p.allowHosts) == 0 && !inAny(p.allowNets, a) {
		return denied
	}
	return nil
}

// policyError marks a target refused by policy: its message is safe to show.
type policyError struct{ err error }

func (e *policyError) Error() string { return e.err.Error() }
func (e *policyError) Unwrap() error { return e.err }
