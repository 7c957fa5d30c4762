package pki

import (
	"crypto/x509"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// SAN types, as Infisical names them.
const (
	SANDNS   = "dns_name"
	SANIP    = "ip_address"
	SANEmail = "email"
	SANURI   = "uri"
)

var dnsRE = lazyre.New(`^(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// DetectAltName classifies a bare value as Infisical's comma-separated
// altNames do: an IP address, an e-mail address, a URI or a host name.
func DetectAltName(v string) AltName {
	switch {
	case net.ParseIP(v) != nil:
		return AltName{SANIP, v}
	case strings.Contains(v, "://"):
		return AltName{SANURI, v}
	case strings.Contains(v, "@"):
		return AltName{SANEmail, v}
	}
	return AltName{SANDNS, v}
}

// sans is a checked set of subject alternative names.
type sans struct {
	dns, emails []string
	ips         []net.IP
	uris        []*url.URL
	all         []string   // values in order (IP addresses as the certificate carries them), for storage and template checks
	kinds       []globKind // of each of all, for the template's globs
}

func checkAltNames(in []AltName) (sans, error) {
	var s sans
	if len(in) > MaxAltNames {
		return s, errs.Fieldf("altNames", "A certificate may carry at most %d alternative names", MaxAltNames)
	}
	bad := func(a AltName, what string) error {
		return errs.Fieldf("altNames", "Alternative name %q is not a valid %s", a.Value, what)
	}
	for _, a := range in {
		a.Value = strings.TrimSpace(a.Value)
		if a.Value == "" || len(a.Value) > 253 {
			return s, errs.Fieldf("altNames", "Alternative names must be 1 to 253 characters")
		}
		switch a.Type {
		case SANDNS:
			if !dnsRE().MatchString(a.Value) {
				return s, bad(a, "host name")
			}
			s.dns = append(s.dns, a.Value)
		case SANIP:
			ip := net.ParseIP(a.Value)
			if ip == nil {
				return s, bad(a, "IP address")
			}
			s.ips = append(s.ips, ip)
			// Checked and kept as the certificate will carry it:
			// "::ffff:c0a8:101" is written as 192.168.1.1.
			a.Value = ip.String()
		case SANEmail:
			// ASCII only, as a certificate carries it (an IA5String):
			// mail.ParseAddress takes UTF-8 and x509 then refused to sign.
			m, err := mail.ParseAddress(a.Value)
			if err != nil || m.Address != a.Value || !ascii(a.Value) {
				return s, bad(a, "e-mail address")
			}
			s.emails = append(s.emails, a.Value)
		case SANURI:
			// ASCII only: x509 writes a URI escaped, and the record and the
			// template check would weigh another text than the certificate's.
			u, err := url.Parse(a.Value)
			if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") || !ascii(a.Value) {
				return s, bad(a, "URI")
			}
			s.uris = append(s.uris, u)
		default:
			return s, errs.Fieldf("altNames", "Alternative name type must be dns_name, ip_address, email or uri")
		}
		s.all = append(s.all, a.Value)
		k := nameGlob
		if a.Type == SANIP {
			k = ipGlob
		}
		s.kinds = append(s.kinds, k)
	}
	return s, nil
}

// csrAltNames reads the SANs of a CSR.
func csrAltNames(dns, emails []string, ips []net.IP, uris []*url.URL) []AltName {
	var out []AltName
	for _, v := range dns {
		out = append(out, AltName{SANDNS, v})
	}
	for _, v := range ips {
		out = append(out, AltName{SANIP, v.String()})
	}
	for _, v := range emails {
		out = append(out, AltName{SANEmail, v})
	}
	for _, v := range uris {
		out = append(out, AltName{SANURI, v.String()})
	}
	return out
}

// Key usages and extended key usages, as Infisical names them.
var keyUsages = map[string]x509.KeyUsage{
	"digital_signature": x509.KeyUsageDigitalSignature,
	"non_repudiation":   x509.KeyUsageContentCommitment,
	"key_encipherment":  x509.KeyUsageKeyEncipherment,
	"data_encipherment": x509.KeyUsageDataEncipherment,
	"key_agreement":     x509.KeyUsageKeyAgreement,
	"key_cert_sign":     x509.KeyUsageCertSign,
	"crl_sign":          x509.KeyUsageCRLSign,
	"encipher_only":     x509.KeyUsageEncipherOnly,
	"decipher_only":     x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"server_auth":      x509.ExtKeyUsageServerAuth,
	"client_auth":      x509.ExtKeyUsageClientAuth,
	"code_signing":     x509.ExtKeyUsageCodeSigning,
	"email_protection": x509.ExtKeyUsageEmailProtection,
	"timestamping":     x509.ExtKeyUsageTimeStamping,
	"ocsp_signing":     x509.ExtKeyUsageOCSPSigning,
}

// defaultKeyUsages are a leaf's key usages when neither request nor template names any.
var defaultKeyUsages = []string{"digital_signature", "key_encipherment"}

func checkUsages(field string, in []string, leaf bool) ([]string, error) {
	out := []string{}
	for _, u := range in {
		u = strings.TrimSpace(u)
		if field == "keyUsages" {
			if _, ok := keyUsages[u]; !ok {
				return nil, errs.Fieldf(field, "Unknown key usage %q", u)
			}
			if leaf && (u == "key_cert_sign" || u == "crl_sign") {
				return nil, errs.Fieldf(field, "A leaf certificate cannot have key usage %q", u)
			}
		} else if _, ok := extKeyUsages[u]; !ok {
			return nil, errs.Fieldf(field, "Unknown extended key usage %q", u)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

func x509KeyUsage(in []string) x509.KeyUsage {
	var k x509.KeyUsage
	for _, u := range in {
		k |= keyUsages[u]
	}
	return k
}

func x509ExtKeyUsage(in []string) []x509.ExtKeyUsage {
	var out []x509.ExtKeyUsage
	for _, u := range in {
		out = append(out, extKeyUsages[u])
	}
	return out
}

// ParseTTL reads a lifetime as Infisical's ms() does: a number with a unit
// s, m, h, d, w or y ("90d"), or a bare number of seconds.
func ParseTTL(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := errs.Fieldf(field, "%s must be a positive duration such as 3600, 90m, 24h, 30d or 1y", field)
	if s == "" || len(s) > 20 {
		return 0, bad
	}
	unit := time.Second
	num := s
	switch last := s[len(s)-1]; {
	case last >= '0' && last <= '9':
	default:
		num = s[:len(s)-1]
		switch last {
		case 's':
			if strings.HasSuffix(num, "m") { // "ms"
				return 0, bad
			}
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'w':
			unit = 7 * 24 * time.Hour
		case 'y':
			unit = 365*24*time.Hour + 6*time.Hour
		default:
			return 0, bad
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > int64(MaxLeafLifetime/unit)+1 {
		if err == nil && n > 0 {
			return 0, errs.Fieldf(field, "%s cannot exceed %d days", field, int(MaxLeafLifetime/(24*time.Hour)))
		}
		return 0, bad
	}
	return time.Duration(n) * unit, nil
}

// globKind says which characters a glob's wildcards may stand for.
type globKind int

const (
	// nameGlob is for DNS names, e-mail addresses and URIs: "*" stands for
	// a run without ".", "/", "@", ":", white space or control characters
	// (one DNS label), "**" for a run without "@", ":", white space or
	// control characters. The same globs apply to every type of
	// alternative name, so "*.example.com" (or "**.example.com") must not
	// take in the e-mail address "ceo@corp.example.com" or the URI
	// "spiffe://prod/sa/admin.example.com"; a template that means those
	// spells out their "@" or "://" ("*@example.com", "spiffe://prod/**").
	nameGlob globKind = iota
	// ipGlob is for IP addresses: as nameGlob, but "**" may match ":", so
	// "fd00::**" and "**" take in IPv6 addresses ("*" stays within a group
	// and does not).
	ipGlob
	// cnGlob is for the common name: "*" stands for a run without "." or
	// control characters, "**" for any run without control characters, so
	// "*" allows "John Doe".
	cnGlob
)

// globCache holds the globs one request has compiled, by pattern and kind:
// a template's list (up to 1,024 characters, hundreds of patterns) is
// checked against up to 100 alternative names and the common name, and
// compiling each pattern for each name cost 0.2-0.4 s of CPU a request.
type globCache map[globKey]*regexp.Regexp

type globKey struct {
	glob string
	kind globKind
}

// match reports whether v matches one of the comma-separated globs, with
// the wildcards of kind k.
func (c globCache) match(globs, v string, k globKind) bool {
	for g := range strings.SplitSeq(globs, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		re, ok := c[globKey{g, k}]
		if !ok {
			re = globRE(g, k)
			c[globKey{g, k}] = re
		}
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// globWildcards are the character classes of "*" and "**" of each kind.
var globWildcards = map[globKind][2]string{
	nameGlob: {`[^./@:\s[:cntrl:]]*`, `[^@:\s[:cntrl:]]*`},
	ipGlob:   {`[^./@:\s[:cntrl:]]*`, `[^@\s[:cntrl:]]*`},
	cnGlob:   {`[^.[:cntrl:]]*`, `[^[:cntrl:]]*`},
}

func globRE(g string, k globKind) *regexp.Regexp {
	w := globWildcards[k]
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		if g[i] == '*' {
			if i+1 < len(g) && g[i+1] == '*' {
				b.WriteString(w[1])
				i++
			} else {
				b.WriteString(w[0])
			}
			continue
		}
		b.WriteString(regexp.QuoteMeta(g[i : i+1]))
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func checkGlobs(field, globs string) error {
	if strings.TrimSpace(globs) == "" || len(globs) > 1024 {
		return errs.Fieldf(field, "%s must be 1 to 1024 characters of comma-separated globs", field)
	}
	return nil
}

// CRL reason codes (RFC 5280), named as Infisical names them.
var crlReasons = map[string]int{
	"UNSPECIFIED": 0, "KEY_COMPROMISE": 1, "CA_COMPROMISE": 2, "AFFILIATION_CHANGED": 3, "SUPERSEDED": 4,
	"CESSATION_OF_OPERATION": 5, "CERTIFICATE_HOLD": 6, "PRIVILEGE_WITHDRAWN": 9, "A_A_COMPROMISE": 10,
}

// ParseCRLReason reads a revocation reason; empty is UNSPECIFIED.
func ParseCRLReason(s string) (int, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return 0, nil
	}
	if n, ok := crlReasons[s]; ok {
		return n, nil
	}
	return 0, errs.Fieldf("revocationReason", "revocationReason must be one of UNSPECIFIED, KEY_COMPROMISE, CA_COMPROMISE, "+
		"AFFILIATION_CHANGED, SUPERSEDED, CESSATION_OF_OPERATION, CERTIFICATE_HOLD, PRIVILEGE_WITHDRAWN, A_A_COMPROMISE")
}

// ascii reports whether s holds only ASCII characters.
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
