// Package ldap is the "ldap" dynamic-secret provider: directory entries
// created from an LDIF template and removed with another (credentialType
// "dynamic"), or the password of one existing entry rotated on every lease
// and again on its revocation (credentialType "static").
//
// LDIF is parsed by a small parser of our own (ldif.go): the Go LDIF packages
// are unmaintained, and the provider needs only add, delete and modify
// records, with URL values refused.
package ldap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func init() {
	provider.Register(provider.Registration{Type: "ldap", New: New, Inputs: Inputs})
}

// Inputs are the provider's inputs, as Infisical names them.
var Inputs = []provider.Input{
	{Name: "url", Target: true, Required: true, Doc: "ldap://host:389 or ldaps://host:636"},
	{Name: "binddn", Target: true, Required: true, Doc: "DN of the admin entry that adds and deletes users"},
	{Name: "bindpass", Required: true, Secret: true, Doc: "its password"},
	{Name: "ca", Target: true, Doc: "PEM CA certificate: ldaps:// verifies against it; with ldap:// the connection is upgraded with StartTLS"},
	{Name: "credentialType", Doc: `"dynamic" (default) or "static"`},
	{Name: "creationLdif", Statement: true, Doc: "dynamic: LDIF run to create a user; {{Username}}, {{Password}}, {{EncodedPassword}}"},
	{Name: "revocationLdif", Statement: true, Doc: "dynamic: LDIF run to remove it; {{Username}}"},
	{Name: "rollbackLdif", Statement: true, Doc: "dynamic: LDIF run when creation fails part-way; {{Username}}"},
	{Name: "rotationLdif", Statement: true, Doc: "static: LDIF that sets the password of the entry named by its dn:; {{Password}}, {{EncodedPassword}}"},
}

// Config is the decoded inputs.
type Config struct {
	URL            string `json:"url"`
	BindDN         string `json:"binddn"`
	BindPass       string `json:"bindpass"`
	CA             string `json:"ca"`
	CredentialType string `json:"credentialType"`
	CreationLDIF   string `json:"creationLdif"`
	RevocationLDIF string `json:"revocationLdif"`
	RollbackLDIF   string `json:"rollbackLdif"`
	RotationLDIF   string `json:"rotationLdif"`
}

// LDAP is a configured provider.
type LDAP struct {
	cfg      Config
	u        *url.URL
	tls      *tls.Config
	staticDN string
}

var _ provider.Provider = (*LDAP)(nil)

var placeholder = lazyre.New(`\{\{\s*([^{}]*?)\s*\}\}`)

// check renders tmpl with sample values and parses it, so a template that
// can never work is refused when the dynamic secret is saved.
func check(what, tmpl string, allowed ...string) ([]record, error) {
	for _, m := range placeholder().FindAllStringSubmatch(tmpl, -1) {
		ok := false
		for _, a := range allowed {
			ok = ok || m[1] == a
		}
		if !ok {
			return nil, fmt.Errorf("%s: {{%s}} is not available (use {{%s}})", what, m[1], strings.Join(allowed, "}}, {{"))
		}
	}
	recs, err := parseLDIF(render(tmpl, "sampleuser", "SamplePassw0rd"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	return recs, nil
}

// New decodes and validates the inputs without connecting.
func New(inputs json.RawMessage) (provider.Provider, error) {
	var c Config
	if err := provider.Decode("ldap", inputs, &c); err != nil {
		return nil, err
	}
	var problems []string
	l := &LDAP{cfg: c}
	u, err := url.Parse(strings.TrimSpace(c.URL))
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
		problems = append(problems, "url must be ldap://host[:port] or ldaps://host[:port]")
	} else {
		l.u = u
		if c.CA != "" {
			if l.tls, err = provider.TLSConfig(c.CA, u.Hostname()); err != nil {
				problems = append(problems, err.Error())
			}
		} else if u.Scheme == "ldaps" {
			l.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		}
	}
	if _, err := ldap.ParseDN(c.BindDN); err != nil || strings.TrimSpace(c.BindDN) == "" {
		problems = append(problems, "binddn must be a DN")
	}
	if c.BindPass == "" {
		problems = append(problems, "bindpass is required")
	}
	switch c.CredentialType {
	case "", "dynamic":
		l.cfg.CredentialType = "dynamic"
		if c.RotationLDIF != "" {
			problems = append(problems, "rotationLdif is for credentialType static")
		}
		if _, err := check("creationLdif", c.CreationLDIF, "Username", "Password", "EncodedPassword"); err != nil {
			problems = append(problems, err.Error())
		}
		if _, err := check("revocationLdif", c.RevocationLDIF, "Username"); err != nil {
			problems = append(problems, err.Error())
		}
		if c.RollbackLDIF != "" {
			if _, err := check("rollbackLdif", c.RollbackLDIF, "Username"); err != nil {
				problems = append(problems, err.Error())
			}
		}
	case "static":
		if c.CreationLDIF != "" || c.RevocationLDIF != "" || c.RollbackLDIF != "" {
			problems = append(problems, "creationLdif, revocationLdif and rollbackLdif are for credentialType dynamic")
		}
		recs, err := check("rotationLdif", c.RotationLDIF, "Password", "EncodedPassword")
		if err != nil {
			problems = append(problems, err.Error())
		} else if len(recs) != 1 || recs[0].Type != "modify" {
			problems = append(problems, "rotationLdif must be one modify record (the entry whose password rotates)")
		} else {
			l.staticDN = recs[0].DN
		}
	default:
		problems = append(problems, fmt.Sprintf("credentialType %q is not dynamic or static", c.CredentialType))
	}
	if len(problems) > 0 {
		return nil, errors.New("ldap inputs: " + strings.Join(problems, "; "))
	}
	return l, nil
}

// EncodePassword is Active Directory's unicodePwd form: the password in double
// quotes, UTF-16LE, base64 (for an LDIF "unicodePwd::" line).
func EncodePassword(p string) string {
	units := utf16.Encode([]rune(`"` + p + `"`))
	b := make([]byte, 2*len(units))
	for i, u := range units {
		binary.LittleEndian.PutUint16(b[2*i:], u)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func render(tmpl, username, password string) string {
	return placeholder().ReplaceAllStringFunc(tmpl, func(m string) string {
		switch placeholder().FindStringSubmatch(m)[1] {
		case "Username":
			return username
		case "Password":
			return password
		case "EncodedPassword":
			return EncodePassword(password)
		}
		return m
	})
}

func (l *LDAP) connect(ctx context.Context) (*ldap.Conn, error) {
	opts := []ldap.DialOpt{ldap.DialWithDialer(provider.NetDialer(provider.CheckerFrom(ctx)))} // the target policy
	if l.u.Scheme == "ldaps" {
		opts = append(opts, ldap.DialWithTLSConfig(l.tls))
	}
	c, err := ldap.DialURL(l.u.Scheme+"://"+l.u.Host, opts...)
	if err != nil {
		return nil, provider.Unreachable(fmt.Errorf("connect: %v", err))
	}
	if deadline, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(deadline))
	} else {
		c.SetTimeout(10 * time.Second)
	}
	if l.u.Scheme == "ldap" && l.tls != nil {
		if err := c.StartTLS(l.tls); err != nil {
			c.Close()
			return nil, provider.Unreachable(fmt.Errorf("StartTLS: %v", err))
		}
	}
	if err := c.Bind(l.cfg.BindDN, l.cfg.BindPass); err != nil {
		c.Close()
		return nil, provider.Unreachable(fmt.Errorf("bind as %s: %v", l.cfg.BindDN, err))
	}
	return c, nil
}

// Validate binds with the admin credentials.
func (l *LDAP) Validate(ctx context.Context) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	return c.Close()
}

// apply runs the records in order and returns the DNs it touched. With
// tolerant set, an entry or value already gone is not an error (revocation).
func apply(c *ldap.Conn, recs []record, tolerant bool) ([]string, error) {
	var dns []string
	for i, r := range recs {
		var err error
		switch r.Type {
		case "add":
			req := ldap.NewAddRequest(r.DN, nil)
			req.Attributes = r.Attrs
			err = c.Add(req)
		case "delete":
			err = c.Del(ldap.NewDelRequest(r.DN, nil))
		case "modify":
			req := ldap.NewModifyRequest(r.DN, nil)
			req.Changes = r.Change
			err = c.Modify(req)
		}
		if err != nil && !(tolerant && (ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) ||
			ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute))) {
			e := fmt.Errorf("record %d (%s %s): %v", i+1, r.Type, r.DN, ldapMessage(err))
			if le, ok := errors.AsType[*ldap.Error](err); !ok || le.ResultCode >= ldap.ErrorNetwork {
				e = provider.Unreachable(e) // not the directory's answer: the connection failed
			}
			return dns, e
		}
		dns = append(dns, r.DN)
	}
	return dns, nil
}

// ldapMessage is the server's result text without the request it answered.
func ldapMessage(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		return fmt.Sprintf("%s (%d) %s", ldap.LDAPResultCodeMap[le.ResultCode], le.ResultCode, le.Err)
	}
	return err.Error()
}

func (l *LDAP) run(ctx context.Context, tmpl, username, password string, tolerant bool) ([]string, error) {
	recs, err := parseLDIF(render(tmpl, username, password))
	if err != nil {
		return nil, err
	}
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return apply(c, recs, tolerant)
}

func randomPassword() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create adds the user (dynamic) or sets a new password (static).
func (l *LDAP) Create(ctx context.Context, req provider.CreateRequest) (provider.CreateResponse, error) {
	if err := provider.CheckSafe(req.Username, req.Password); err != nil {
		return provider.CreateResponse{}, err
	}
	if l.cfg.CredentialType == "static" {
		dns, err := l.run(ctx, l.cfg.RotationLDIF, "", req.Password, false)
		if err != nil {
			return provider.CreateResponse{}, fmt.Errorf("rotate password: %w", err)
		}
		return provider.CreateResponse{Data: map[string]any{"DN_ARRAY": dns, "USERNAME": l.staticDN, "PASSWORD": req.Password}}, nil
	}
	dns, err := l.run(ctx, l.cfg.CreationLDIF, req.Username, req.Password, false)
	if err != nil {
		if l.cfg.RollbackLDIF != "" {
			if _, rerr := l.run(ctx, l.cfg.RollbackLDIF, req.Username, "", true); rerr != nil {
				err = fmt.Errorf("%w; rollback: %w", err, rerr)
			}
		}
		return provider.CreateResponse{}, fmt.Errorf("create user: %w", err)
	}
	return provider.CreateResponse{Data: map[string]any{"DN_ARRAY": dns, "USERNAME": req.Username, "PASSWORD": req.Password}}, nil
}

// Revoke removes the user (dynamic; entries already gone are fine) or sets
// another password nobody knows (static).
func (l *LDAP) Revoke(ctx context.Context, req provider.RevokeRequest) error {
	if l.cfg.CredentialType == "static" {
		_, err := l.run(ctx, l.cfg.RotationLDIF, "", randomPassword(), false)
		return err
	}
	if err := provider.CheckSafe(req.Username); err != nil {
		return err
	}
	_, err := l.run(ctx, l.cfg.RevocationLDIF, req.Username, "", true)
	return err
}

// Targets is the directory's host.
func (l *LDAP) Targets() []string { return []string{l.u.Hostname()} }
