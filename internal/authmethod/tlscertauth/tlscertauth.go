// Package tlscertauth is the TLS Certificate Auth login method: a workload
// proves itself with a client certificate that chains to the CA the
// administrator configured (caCertificate) and, optionally, carries one of
// the allowed common names. The certificate comes from lockbox's own TLS
// listener or, behind a TLS-terminating proxy, from the client-certificate
// header a trusted proxy sets (authmethod.Credential).
package tlscertauth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "tls-cert-auth", DisplayName: "TLS Certificate Auth",
		WireKey: "identityTlsCertAuth", NoToken: true, Configure: Configure, New: New})
}

// Config is a stored configuration, in Infisical's field names. The CA
// certificate is public and, as in Infisical, returned to administrators.
type Config struct {
	CACertificate      string  `json:"caCertificate"`
	AllowedCommonNames *string `json:"allowedCommonNames"` // comma-separated; null: any
}

type patch struct {
	CACertificate *string `json:"caCertificate"`
	// Raw to tell absent (keep) from null (clear the list).
	AllowedCommonNames json.RawMessage `json:"allowedCommonNames"`
}

// Limits of a configuration and of a presented certificate.
const (
	maxCA       = 10240 // Infisical's limit on caCertificate
	maxNames    = 4096
	maxChain    = 8
	maxProxyPEM = 32 << 10
)

// Configure validates an attach (old nil) or an update over old.
func Configure(_ context.Context, _ authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	var c Config
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored tls-cert-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, errs.BadRequest("Invalid TLS Certificate Auth configuration: %v", jsonProblem(err))
	}
	if p.CACertificate != nil {
		c.CACertificate = strings.TrimSpace(*p.CACertificate)
	}
	if len(p.AllowedCommonNames) > 0 {
		var names *string
		if err := json.Unmarshal(p.AllowedCommonNames, &names); err != nil {
			return nil, errs.Fieldf("allowedCommonNames", "allowedCommonNames must be a string")
		}
		c.AllowedCommonNames = nil
		if names != nil {
			if j := joinNames(*names); j != "" {
				c.AllowedCommonNames = &j
			}
		}
	}
	if c.CACertificate == "" {
		return nil, errs.Fieldf("caCertificate", "caCertificate is required")
	}
	if len(c.CACertificate) > maxCA {
		return nil, errs.Fieldf("caCertificate", "caCertificate must be at most %d characters", maxCA)
	}
	if _, err := parseCA(c.CACertificate); err != nil {
		return nil, errs.Fieldf("caCertificate", "Invalid CA Certificate: %v", err)
	}
	if c.AllowedCommonNames != nil && len(*c.AllowedCommonNames) > maxNames {
		return nil, errs.Fieldf("allowedCommonNames", "allowedCommonNames must be at most %d characters", maxNames)
	}
	return json.Marshal(c)
}

func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	}
	return "malformed JSON"
}

// joinNames trims each comma-separated name and drops empty ones.
func joinNames(s string) string {
	var out []string
	for n := range strings.SplitSeq(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// parseCA reads every certificate of a PEM bundle.
func parseCA(s string) (*x509.CertPool, error) {
	certs, err := parsePEM([]byte(s), maxChain)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parsePEM reads up to max CERTIFICATE blocks; anything else is an error.
func parsePEM(b []byte, max int) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q is not a certificate", blk.Type)
		}
		if len(out) == max {
			return nil, fmt.Errorf("more than %d certificates", max)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, errors.New("a certificate does not parse")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil, errors.New("text after the last certificate")
	}
	return out, nil
}

// Method verifies client certificates for one configuration.
type Method struct {
	now   func() time.Time
	roots *x509.CertPool
	names []string // empty: any
}

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode tls-cert-auth configuration: %w", err)
	}
	roots, err := parseCA(c.CACertificate)
	if err != nil {
		return nil, fmt.Errorf("tls-cert-auth CA certificate: %w", err)
	}
	m := &Method{now: env.Clock(), roots: roots}
	if c.AllowedCommonNames != nil && *c.AllowedCommonNames != "" {
		m.names = strings.Split(*c.AllowedCommonNames, ",")
	}
	return m, nil
}

// Verify refuses: the credential of this method is a certificate, not a token.
func (m *Method) Verify(context.Context, string) (authmethod.Verified, error) {
	return authmethod.Verified{}, authmethod.Refuse("certificate", "Access denied: no client certificate was presented.")
}

// VerifyRequest checks the client certificate: the one a trusted proxy
// forwarded if there is one (the TLS peer is then the proxy), else the one
// lockbox's TLS listener verified. The certificate must chain to the
// configured CA for client authentication, be within its validity, and carry
// an allowed common name.
func (m *Method) VerifyRequest(_ context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	var chain []*x509.Certificate
	switch {
	case c.ProxyCertificate != "":
		var err error
		if chain, err = proxyChain(c.ProxyCertificate); err != nil {
			return authmethod.Verified{}, &authmethod.Refusal{Check: "certificate",
				Message: "Access denied: the forwarded client certificate is not a URL-encoded PEM certificate.", Err: err}
		}
	case len(c.PeerCertificates) > 0:
		chain = c.PeerCertificates
	default:
		return authmethod.Verified{}, authmethod.Refuse("certificate", "Access denied: no client certificate was presented.")
	}
	leaf := chain[0]
	now := m.now()
	// The chain is checked first, at a time within the leaf's validity, so
	// a certificate from another CA is refused as such even when expired.
	at := now
	if at.After(leaf.NotAfter) {
		at = leaf.NotAfter
	}
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: m.roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return authmethod.Verified{}, chainRefusal(err)
	}
	if now.After(leaf.NotAfter) {
		return authmethod.Verified{}, authmethod.Refuse("expiry", "Access denied: Certificate has expired.")
	}
	if now.Before(leaf.NotBefore) {
		return authmethod.Verified{}, authmethod.Refuse("expiry", "Access denied: Certificate not yet valid.")
	}
	if len(m.names) > 0 && !slices.Contains(m.names, leaf.Subject.CommonName) {
		return authmethod.Verified{}, authmethod.Refuse("common name", "Access denied: TLS Certificate Auth common name not allowed.")
	}
	return authmethod.Verified{}, nil
}

// chainRefusal names why x509 verification failed, without the certificate.
func chainRefusal(err error) *authmethod.Refusal {
	r := &authmethod.Refusal{Check: "chain", Message: "Access denied: Certificate not issued by the provided CA.", Err: err}
	if ce, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch ce.Reason {
		case x509.Expired:
			r.Check, r.Message = "expiry", "Access denied: a CA certificate in the chain has expired or is not yet valid."
		case x509.IncompatibleUsage:
			r.Check, r.Message = "usage", "Access denied: Certificate is not valid for client authentication."
		}
	}
	return r
}

// proxyChain reads a forwarded certificate: URL-encoded PEM (decoded as
// JavaScript's decodeURIComponent does: '+' stays '+'), leaf first, maybe
// followed by its intermediates.
func proxyChain(v string) ([]*x509.Certificate, error) {
	if len(v) > maxProxyPEM {
		return nil, fmt.Errorf("forwarded certificate of %d bytes", len(v))
	}
	s, err := url.PathUnescape(v)
	if err != nil {
		return nil, errors.New("bad URL encoding")
	}
	return parsePEM([]byte(s), maxChain)
}
