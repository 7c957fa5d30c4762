package sshca

import (
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// Principals are user names or host names. They may hold letters, digits and
// . _ - @ (and a final $ for some user names); patterns in templates also * and ?.
var (
	principalRE = lazyre.New(`^[A-Za-z0-9._@-]+\$?$`)
	patternRE   = lazyre.New(`^[A-Za-z0-9._@*?-]+\$?$`)
	hostnameRE  = lazyre.New(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// Bounds on what one request or template may hold.
const (
	MaxPrincipals     = 64
	MaxPrincipalLen   = 255
	MaxPatterns       = 256
	MaxKeyIDLen       = 50 // as Infisical's keyId
	MaxOptionValueLen = 1024
)

// checkPrincipals validates requested principals for a certificate of type t.
func checkPrincipals(t CertType, ps []string) ([]string, error) {
	if len(ps) == 0 {
		return nil, errs.Fieldf("principals", "Principals array must not be empty")
	}
	if len(ps) > MaxPrincipals {
		return nil, errs.Fieldf("principals", "At most %d principals may be requested", MaxPrincipals)
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		p = strings.TrimSpace(p)
		ok := len(p) <= MaxPrincipalLen && principalRE().MatchString(p)
		if t == HostCert {
			ok = len(p) <= 253 && hostnameRE().MatchString(p)
		}
		if !ok {
			return nil, errs.Fieldf("principals", "Principal %q is not a valid %s name", clip(p), t)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// checkPatterns validates a template's allowed users or hosts.
func checkPatterns(field string, ps []string) ([]string, error) {
	if len(ps) > MaxPatterns {
		return nil, errs.Fieldf(field, "%s may hold at most %d patterns", field, MaxPatterns)
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if len(p) == 0 || len(p) > MaxPrincipalLen || !patternRE().MatchString(p) {
			return nil, errs.Fieldf(field, "%q in %s is not a valid pattern (letters, digits, . _ - @ and the wildcards * and ?)", clip(p), field)
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, errs.Fieldf(field, "%q in %s is not a valid pattern", clip(p), field)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// allowed reports whether principal p matches one of patterns: * matches any
// run of characters (dots included: "*.example.com" covers every name below
// example.com), ? any one.
func allowed(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}

// checkAllowed refuses any principal a template does not allow for type t.
func checkAllowed(tpl Template, t CertType, ps []string) error {
	pats := tpl.AllowedUsers
	if t == HostCert {
		pats = tpl.AllowedHosts
	}
	for _, p := range ps {
		if !allowed(pats, p) {
			return errs.BadRequest("Principal %q is not allowed by certificate template %q", clip(p), tpl.Name)
		}
	}
	return nil
}

// StandardExtensions are the user-certificate extensions OpenSSH knows; a
// template without its own list grants the five permit-* ones, as ssh-keygen does.
var StandardExtensions = []string{"permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"}

var otherExtensions = []string{"no-touch-required"}

// DefaultExtensions returns the extensions a user certificate carries when
// its template names none.
func DefaultExtensions() map[string]string {
	m := make(map[string]string, len(StandardExtensions))
	for _, e := range StandardExtensions {
		m[e] = ""
	}
	return m
}

// checkExtensions validates a template's extensions: OpenSSH's own (with
// empty values) or vendor ones named name@domain.
func checkExtensions(m map[string]string) (map[string]string, error) {
	if m == nil {
		return DefaultExtensions(), nil
	}
	if len(m) > 32 {
		return nil, errs.Fieldf("extensions", "At most 32 extensions")
	}
	for k, v := range m {
		known := slices.Contains(StandardExtensions, k) || slices.Contains(otherExtensions, k)
		switch {
		case known && v != "":
			return nil, errs.Fieldf("extensions", "Extension %q takes no value", clip(k))
		case !known && !vendorName(k):
			return nil, errs.Fieldf("extensions", "Unknown extension %q (OpenSSH's are %s; others must be name@domain)", clip(k), strings.Join(StandardExtensions, ", "))
		case len(v) > MaxOptionValueLen || strings.ContainsRune(v, 0):
			return nil, errs.Fieldf("extensions", "Extension %q has an invalid value", clip(k))
		}
	}
	return maps.Clone(m), nil
}

// checkCriticalOptions validates a template's critical options:
// force-command, source-address (addresses and CIDR blocks, comma
// separated) and verify-required.
func checkCriticalOptions(m map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range m {
		switch k {
		case "force-command":
			if strings.TrimSpace(v) == "" || len(v) > MaxOptionValueLen || strings.ContainsAny(v, "\x00\n\r") {
				return nil, errs.Fieldf("criticalOptions", "force-command must be a command of at most %d characters on one line", MaxOptionValueLen)
			}
		case "source-address":
			parts := strings.Split(v, ",")
			if len(parts) > 64 {
				return nil, errs.Fieldf("criticalOptions", "source-address may list at most 64 addresses")
			}
			for i, p := range parts {
				p = strings.TrimSpace(p)
				if _, err := netip.ParsePrefix(p); err != nil {
					if _, err := netip.ParseAddr(p); err != nil {
						return nil, errs.Fieldf("criticalOptions", "source-address %q is not an address or CIDR block", clip(p))
					}
				}
				parts[i] = p
			}
			v = strings.Join(parts, ",")
		case "verify-required":
			if v != "" {
				return nil, errs.Fieldf("criticalOptions", "verify-required takes no value")
			}
		default:
			return nil, errs.Fieldf("criticalOptions", "Unknown critical option %q (force-command, source-address, verify-required)", clip(k))
		}
		out[k] = v
	}
	return out, nil
}

func vendorName(k string) bool {
	name, domain, ok := strings.Cut(k, "@")
	return ok && name != "" && len(k) <= 128 && principalRE().MatchString(name) && hostnameRE().MatchString(domain)
}

// checkKeyID validates a requested key id.
func checkKeyID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxKeyIDLen {
		return "", errs.Fieldf("keyId", "keyId must be at most %d characters", MaxKeyIDLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errs.Fieldf("keyId", "keyId must not hold control characters")
		}
	}
	return s, nil
}

// clip shortens user input quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
