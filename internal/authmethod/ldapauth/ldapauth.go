// Package ldapauth is the LDAP Auth login method: a workload presents a
// username and password of a directory entry; lockbox binds as a service
// account, finds the one entry the search filter names for the username,
// binds as that entry with the password and checks the entry's attributes.
// Repeated wrong passwords lock the username for a while.
package ldapauth

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "ldap-auth", DisplayName: "LDAP Auth", WireKey: "identityLdapAuth",
		NoToken: true, Secret: []string{"bindPass"}, Configure: Configure, New: New, Lockout: true})
}

// Placeholder is where the escaped username goes in the search filter.
const Placeholder = "{{username}}"

// DefaultFilter is Infisical's default search filter.
const DefaultFilter = "(uid={{username}})"

// AllowedField requires the user's entry to have attribute Key with one of
// the comma-separated values of Value.
type AllowedField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Config is a stored configuration, in Infisical's field names. BindPass is
// sealed by the server and never shown.
type Config struct {
	URL                        string         `json:"url"`
	BindDN                     string         `json:"bindDN"`
	BindPass                   string         `json:"bindPass"`
	SearchBase                 string         `json:"searchBase"`
	SearchFilter               string         `json:"searchFilter"`
	LDAPCACertificate          string         `json:"ldapCaCertificate"`
	AllowedFields              []AllowedField `json:"allowedFields"`
	LockoutEnabled             bool           `json:"lockoutEnabled"`
	LockoutThreshold           int            `json:"lockoutThreshold"`
	LockoutDurationSeconds     int            `json:"lockoutDurationSeconds"`
	LockoutCounterResetSeconds int            `json:"lockoutCounterResetSeconds"`
}

type patch struct {
	URL                        *string         `json:"url"`
	BindDN                     *string         `json:"bindDN"`
	BindPass                   *string         `json:"bindPass"`
	SearchBase                 *string         `json:"searchBase"`
	SearchFilter               *string         `json:"searchFilter"`
	LDAPCACertificate          *string         `json:"ldapCaCertificate"`
	LDAPCACert                 *string         `json:"ldapCaCert"` // accepted as another name of ldapCaCertificate
	AllowedFields              *[]AllowedField `json:"allowedFields"`
	LockoutEnabled             *bool           `json:"lockoutEnabled"`
	LockoutThreshold           *int            `json:"lockoutThreshold"`
	LockoutDurationSeconds     *int            `json:"lockoutDurationSeconds"`
	LockoutCounterResetSeconds *int            `json:"lockoutCounterResetSeconds"`
}

// Limits of a configuration and of a login.
const (
	maxText       = 16 << 10
	maxFields     = 50
	maxUsername   = 256
	maxPassword   = 1024
	opTimeout     = 10 * time.Second
	configTimeout = 5 * time.Second
)

// Configure validates an attach (old nil) or an update over old, and checks
// that lockbox can bind to the directory with the configuration, as Infisical
// does.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	c := Config{SearchFilter: DefaultFilter, AllowedFields: []AllowedField{}, LockoutEnabled: true, LockoutThreshold: 3,
		LockoutDurationSeconds: 300, LockoutCounterResetSeconds: 30}
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored ldap-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errs.BadRequest("Invalid LDAP Auth configuration: %s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid LDAP Auth configuration: malformed JSON")
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&c.URL, p.URL)
	set(&c.BindDN, p.BindDN)
	set(&c.SearchBase, p.SearchBase)
	set(&c.SearchFilter, p.SearchFilter)
	set(&c.LDAPCACertificate, p.LDAPCACert)
	set(&c.LDAPCACertificate, p.LDAPCACertificate)
	if p.BindPass != nil && *p.BindPass != "" { // an empty bindPass on update keeps the sealed one
		c.BindPass = *p.BindPass
	} else if old != nil && c.BindPass != "" {
		// The sealed bind password goes only to the directory it was given
		// for, the way it was given for: an update that points the bind at
		// another URL, or changes the CA (clearing it turns StartTLS off on
		// an ldap:// URL, so the password would cross the network in the
		// clear), must give it again, or an editor who cannot read it could
		// have it sent to a directory of theirs, or to anyone listening.
		var was Config
		json.Unmarshal(old, &was)
		if was.URL != c.URL || was.LDAPCACertificate != c.LDAPCACertificate {
			return nil, errs.Fieldf("bindPass", "bindPass must be given again when url or ldapCaCertificate changes")
		}
	}
	if p.AllowedFields != nil {
		c.AllowedFields = *p.AllowedFields
		for i := range c.AllowedFields {
			c.AllowedFields[i].Key = strings.TrimSpace(c.AllowedFields[i].Key)
			c.AllowedFields[i].Value = strings.TrimSpace(c.AllowedFields[i].Value)
		}
	}
	if p.LockoutEnabled != nil {
		c.LockoutEnabled = *p.LockoutEnabled
	}
	for _, n := range []struct {
		name     string
		v        *int
		min, max int
		dst      *int
	}{
		{"lockoutThreshold", p.LockoutThreshold, 1, 30, &c.LockoutThreshold},
		{"lockoutDurationSeconds", p.LockoutDurationSeconds, 30, 86400, &c.LockoutDurationSeconds},
		{"lockoutCounterResetSeconds", p.LockoutCounterResetSeconds, 5, 3600, &c.LockoutCounterResetSeconds},
	} {
		if n.v == nil {
			continue
		}
		if *n.v < n.min || *n.v > n.max {
			return nil, errs.Fieldf(n.name, "%s must be between %d and %d", n.name, n.min, n.max)
		}
		*n.dst = *n.v
	}
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	d, err := dialer(env, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, configTimeout)
	defer cancel()
	conn, err := d.connect(ctx)
	if err == nil {
		conn.Close()
	} else {
		// The detail (refused, timed out, what answered) would make the
		// server a port scanner: it goes to the server log only.
		return nil, errs.BadRequest("Failed to connect to LDAP server. Please ensure that the LDAP server is running and your credentials are correct").WithLoggedCause(err)
	}
	return json.Marshal(c)
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"url", c.URL}, {"bindDN", c.BindDN}, {"bindPass", c.BindPass},
		{"searchBase", c.SearchBase}, {"searchFilter", c.SearchFilter}, {"ldapCaCertificate", c.LDAPCACertificate}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	u, err := parseURL(c.URL)
	if err != nil {
		return errs.Fieldf("url", "url must be ldap://host[:port] or ldaps://host[:port]")
	}
	if err := fetch.CheckHost(ctx, env, "url", u.Hostname()); err != nil {
		return err
	}
	if _, err := fetch.ParseCA("ldapCaCertificate", c.LDAPCACertificate); err != nil {
		return err
	}
	if dn, err := ldap.ParseDN(c.BindDN); err != nil || len(dn.RDNs) == 0 {
		return errs.Fieldf("bindDN", "bindDN must be a DN")
	}
	if strings.TrimSpace(c.BindPass) == "" {
		return errs.Fieldf("bindPass", "bindPass is required")
	}
	if dn, err := ldap.ParseDN(c.SearchBase); err != nil || len(dn.RDNs) == 0 {
		return errs.Fieldf("searchBase", "searchBase must be a DN")
	}
	if !strings.Contains(c.SearchFilter, Placeholder) {
		return errs.Fieldf("searchFilter", "searchFilter must contain %s", Placeholder)
	}
	if _, err := ldap.CompileFilter(filter(c.SearchFilter, "sample*)(user")); err != nil {
		return errs.Fieldf("searchFilter", "Invalid LDAP search filter: %v", err)
	}
	if len(c.AllowedFields) > maxFields {
		return errs.Fieldf("allowedFields", "allowedFields may hold at most %d fields", maxFields)
	}
	for _, f := range c.AllowedFields {
		if f.Key == "" || f.Value == "" || len(f.Key) > 256 || len(f.Value) > maxText {
			return errs.Fieldf("allowedFields", "allowedFields needs a non-empty key and value in each field")
		}
	}
	return nil
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Opaque != "" {
		return nil, errors.New("bad url")
	}
	return u, nil
}

// filter is the search filter with the username escaped (RFC 4515), so a
// username can never add to or widen the filter.
func filter(tmpl, username string) string {
	return strings.ReplaceAll(tmpl, Placeholder, ldap.EscapeFilter(username))
}

// directory dials one configuration's server.
type directory struct {
	env   authmethod.Env
	addr  string // host:port (the scheme's default port when the URL names none)
	ldaps bool
	tls   *tls.Config // ldaps, or StartTLS on ldap:// when a CA is configured
	cfg   Config
}

func dialer(env authmethod.Env, c Config) (*directory, error) {
	u, err := parseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap-auth url: %w", err)
	}
	pool, err := fetch.ParseCA("ldapCaCertificate", c.LDAPCACertificate)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ldap": "389", "ldaps": "636"}[u.Scheme]
	}
	d := &directory{env: env, addr: net.JoinHostPort(u.Hostname(), port), ldaps: u.Scheme == "ldaps", cfg: c}
	if d.ldaps || pool != nil {
		d.tls = &tls.Config{ServerName: u.Hostname(), RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return d, nil
}

// connect dials the server through the target policy, upgrades with
// StartTLS when configured and binds as the service account. The whole
// connection lives within ctx and opTimeout: the socket's deadline bounds
// every read and write (go-ldap's StartTLS handshake has none of its own, so
// a directory that accepted StartTLS and went silent held a login, and its
// socket, for ever), and ctx ending closes it.
func (d *directory) connect(ctx context.Context) (*ldap.Conn, error) {
	deadline := time.Now().Add(opTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc, err := fetch.Dialer(d.env).DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	raw := nc // nc becomes the TLS connection below; the socket is closed
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	if d.ldaps {
		tc := tls.Client(nc, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			raw.Close()
			return nil, fmt.Errorf("connect: %w", err)
		}
		nc = tc
	}
	conn := ldap.NewConn(nc, d.ldaps)
	conn.Start()
	conn.SetTimeout(time.Until(deadline))
	if !d.ldaps && d.tls != nil {
		if err := conn.StartTLS(d.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	if err := conn.Bind(d.cfg.BindDN, d.cfg.BindPass); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bind as bindDN: %w", err)
	}
	return conn, nil
}

// Method logs in against one configuration.
type Method struct {
	dir *directory
	cfg Config
}

var (
	_ authmethod.RequestVerifier = (*Method)(nil)
	_ authmethod.Locker          = (*Method)(nil)
)

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode ldap-auth configuration: %w", err)
	}
	d, err := dialer(env, c)
	if err != nil {
		return nil, err
	}
	return &Method{dir: d, cfg: c}, nil
}

// Verify is not used: LDAP Auth's credential is the request's username and
// password (VerifyRequest).
func (m *Method) Verify(ctx context.Context, _ string) (authmethod.Verified, error) {
	return authmethod.Verified{}, authmethod.Refuse("request", "Invalid request. Missing username or password.")
}

type login struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func decodeLogin(body json.RawMessage) login {
	var l login
	json.Unmarshal(body, &l) // a body that does not decode has no username: refused below
	l.Username = strings.TrimSpace(l.Username)
	return l
}

// LockoutOf counts guesses per username (trimmed, case-folded: directories
// match uid without case), as Infisical does.
func (m *Method) LockoutOf(c authmethod.Credential) (string, authmethod.Lockout, bool) {
	u := decodeLogin(c.Body).Username
	if !m.cfg.LockoutEnabled || u == "" {
		return "", authmethod.Lockout{}, false
	}
	return strings.ToLower(u), authmethod.Lockout{Threshold: m.cfg.LockoutThreshold,
		Duration:     time.Duration(m.cfg.LockoutDurationSeconds) * time.Second,
		CounterReset: time.Duration(m.cfg.LockoutCounterResetSeconds) * time.Second}, true
}

// invalid is the answer to an unknown user, an ambiguous one and a wrong
// password alike, so a caller cannot learn which usernames exist; the check
// (user-not-found, multiple-users, password) goes to the server's log only,
// the audit log (which every member reads) says "credentials".
func invalid(check string) *authmethod.Refusal {
	r := authmethod.Refuse(check, "Invalid credentials")
	r.Guess = true
	return r
}

// VerifyRequest binds as the entry the username names, with the password.
func (m *Method) VerifyRequest(ctx context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	l := decodeLogin(c.Body)
	// An empty password is refused before any bind: a simple bind with a
	// DN and no password is an unauthenticated bind (RFC 4513 5.1.2), which
	// many servers answer with success.
	if l.Username == "" || strings.TrimSpace(l.Password) == "" {
		return authmethod.Verified{}, authmethod.Refuse("request", "Invalid request. Missing username or password.")
	}
	if len(l.Username) > maxUsername || len(l.Password) > maxPassword {
		return authmethod.Verified{}, authmethod.Refuse("request", "Invalid request. Username or password too long.")
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, err := m.dir.connect(ctx)
	if err != nil {
		return authmethod.Verified{}, fmt.Errorf("ldap-auth: %w", err)
	}
	defer conn.Close()
	attrs := []string{"1.1"} // no attributes
	if len(m.cfg.AllowedFields) > 0 {
		attrs = attrs[:0]
		for _, f := range m.cfg.AllowedFields {
			attrs = append(attrs, f.Key)
		}
	}
	res, err := conn.Search(ldap.NewSearchRequest(m.cfg.SearchBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(opTimeout/time.Second), false, filter(m.cfg.SearchFilter, l.Username), attrs, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return authmethod.Verified{}, invalid("multiple-users")
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return authmethod.Verified{}, fmt.Errorf("ldap-auth: searchBase does not exist: %w", err)
	case err != nil:
		return authmethod.Verified{}, fmt.Errorf("ldap-auth: search: %w", err)
	case len(res.Entries) == 0:
		return authmethod.Verified{}, invalid("user-not-found")
	case len(res.Entries) > 1:
		return authmethod.Verified{}, invalid("multiple-users")
	}
	entry := res.Entries[0]
	if err := conn.Bind(entry.DN, l.Password); err != nil {
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode != ldap.ErrorNetwork {
			// Invalid credentials, or the directory refusing the account
			// (locked, expired): a failed guess either way.
			return authmethod.Verified{}, invalid("password")
		}
		return authmethod.Verified{}, fmt.Errorf("ldap-auth: bind as user: %w", err)
	}
	for _, f := range m.cfg.AllowedFields {
		if !allowed(entry.GetEqualFoldAttributeValues(f.Key), f.Value) {
			return authmethod.Verified{}, authmethod.Refuse("allowed-field",
				"Invalid request. User field '%s' does not match required fields.", f.Key)
		}
	}
	return authmethod.Verified{Metadata: map[string]string{"ldapUsername": l.Username, "ldapDN": entry.DN}}, nil
}

// allowed reports whether one of have is one of the comma-separated values of want.
func allowed(have []string, want string) bool {
	for w := range strings.SplitSeq(want, ",") {
		w = strings.TrimSpace(w)
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}
