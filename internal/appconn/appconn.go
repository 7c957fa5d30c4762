// Package appconn keeps app connections: an organization's admin credentials
// for a system (PostgreSQL, MySQL/MariaDB, LDAP, Redis) that secret rotations
// act with, as Infisical's /api/v1/app-connections. Credentials are sealed
// with the organization's data key, validated by connecting on every create
// and update (under the server's target policy), and never returned.
package appconn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Apps lockbox connects to, as Infisical names them.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
	LDAP     = "ldap"
	Redis    = "redis"
)

// Methods is each app's one supported method.
var Methods = map[string]string{
	Postgres: "username-and-password",
	MySQL:    "username-and-password",
	Redis:    "username-and-password",
	LDAP:     "simple-bind",
}

// Apps lists the supported apps, sorted.
func Apps() []string { return []string{LDAP, MySQL, Postgres, Redis} }

// Credentials are what a connection connects with. The stored form is JSON
// (hence the tags): all of it sealed, and all but Password in the clear.
type Credentials struct {
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Database string `json:"database,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// LDAP.
	Provider string `json:"provider,omitempty"` // "openldap" or "active-directory"
	URL      string `json:"url,omitempty"`
	DN       string `json:"dn,omitempty"`
	// TLS: with SSLEnabled (or an ldaps URL) the server's certificate is
	// verified against SSLCertificate (PEM CA), or the system roots.
	SSLEnabled     bool   `json:"sslEnabled,omitempty"`
	SSLCertificate string `json:"sslCertificate,omitempty"`
}

// sameTransport is c as compared for keeping a stored password: a CA
// certificate re-sent with other white space around it is the same.
func sameTransport(c Credentials) Credentials {
	c.SSLCertificate = strings.TrimSpace(c.SSLCertificate)
	return c
}

// Public is c without its password, as shown to clients.
func (c Credentials) Public() Credentials {
	c.Password = ""
	return c
}

// Connection describes a connection; its credentials hold no password.
type Connection struct {
	ID          string
	OrgID       string
	App         string
	Method      string
	Name        string
	Description string
	Credentials Credentials // without Password
	// CredentialsHash changes whenever the credentials do (a digest of
	// their ciphertext, which reveals nothing of them): Terraform's drift check.
	CredentialsHash string
	// RotationPrincipals are the principals (names, or patterns with *)
	// that a member holding only app-connections connect may rotate
	// through the connection; empty, only those who may edit it may
	// (lockbox's own field: Infisical lets every connect holder rotate any
	// account the connection's can alter).
	RotationPrincipals []string
	Version            int
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// SameTarget reports whether a and b reach the same server: the same app
// at the same host and port (an LDAP URL's), told apart by name only, so
// "localhost" and "127.0.0.1" are two. A database server's accounts are the
// server's, whichever database a connection names.
func SameTarget(a, b Connection) bool {
	if a.App != b.App {
		return false
	}
	if a.App == LDAP {
		ua, erra := url.Parse(strings.TrimSpace(a.Credentials.URL))
		ub, errb := url.Parse(strings.TrimSpace(b.Credentials.URL))
		return erra == nil && errb == nil && canonicalHost(ua.Hostname()) == canonicalHost(ub.Hostname()) && ldapPort(ua) == ldapPort(ub)
	}
	host := func(c Connection) string { return canonicalHost(c.Credentials.Host) }
	return host(a) == host(b) && a.Credentials.Port == b.Credentials.Port
}

// canonicalHost is a host as SameTarget compares it: lower case without a
// trailing dot, an IP address in one spelling ("::ffff:127.0.0.1" is
// 127.0.0.1, "0:0::1" is ::1).
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.Unmap().WithZone("").String()
	}
	return h
}

// ldapPort is an LDAP URL's port, its scheme's when it names none.
func ldapPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "ldaps") {
		return "636"
	}
	return "389"
}

// HashSealed is the CredentialsHash of sealed credentials.
func HashSealed(sealed []byte) string {
	h := sha256.Sum256(sealed)
	return hex.EncodeToString(h[:])
}

// CredentialsAD binds a connection's sealed credentials to its row.
func CredentialsAD(id string) string { return keyring.AD("app_connections", "credentials", id) }

// Store is the storage connections need.
type Store interface {
	// CreateAppConnection stores c; errs.Conflict when the org has one of that name.
	CreateAppConnection(ctx context.Context, c Connection, sealed []byte, ev audit.Event) error
	// AppConnection finds a connection by id with its sealed credentials.
	AppConnection(ctx context.Context, id string) (Connection, []byte, error)
	AppConnectionByName(ctx context.Context, orgID, name string) (Connection, []byte, error)
	// AppConnections lists an org's connections of app (empty: every app) by name.
	AppConnections(ctx context.Context, orgID, app string) ([]Connection, error)
	// UpdateAppConnection writes name, description, credentials, rotation
	// principals and version if the row is still stamped prev
	// (project.ErrStale if not).
	UpdateAppConnection(ctx context.Context, c Connection, prev time.Time, sealed []byte, ev audit.Event) error
	// DeleteAppConnection deletes a connection; errs.Conflict while a rotation uses it.
	DeleteAppConnection(ctx context.Context, id string, ev audit.Event) error
}

// Authorizer resolves an actor's organization permissions.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
}

// Policy is the server's target policy (dynamic.TargetPolicy): hosts are
// checked before connecting, and every dialled address as it is dialled
// (by package target).
type Policy interface {
	CheckHost(ctx context.Context, host string) error
	CheckAddr(netip.Addr) error
}

// Dialer connects to a system with credentials and proves them
// (target.Systems, which holds the dials to the target policy).
type Dialer interface {
	Ping(ctx context.Context, app string, c Credentials) error
}

// Service manages app connections.
type Service struct {
	store  Store
	authz  Authorizer
	keys   *keyring.Keyring
	dialer Dialer
	now    func() time.Time
}

// NewService returns the service; now nil means time.Now.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, d Dialer, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, dialer: d, now: now}
}

// New is what Create needs.
type New struct {
	App         string
	Method      string
	Name        string
	Description string
	Credentials json.RawMessage
	// RotationPrincipals: see Connection.
	RotationPrincipals []string
}

// Update changes a connection; nil fields stay as they are. Credentials, when
// given, replace the stored ones whole, except that an empty password keeps
// the stored password.
type Update struct {
	Name               *string
	Description        *string
	Credentials        json.RawMessage
	RotationPrincipals *[]string
}

var nameRE = lazyre.New(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func checkName(name string) error {
	if len(name) < 1 || len(name) > 64 || !nameRE().MatchString(name) {
		return errs.Fieldf("name", "Name must be 1 to 64 lowercase letters, digits and hyphens (a slug)")
	}
	return nil
}

// MaxRotationPrincipals bounds a connection's RotationPrincipals.
const MaxRotationPrincipals = 100

// checkPrincipals returns ps trimmed, or a 422: at most
// MaxRotationPrincipals entries of 1 to 256 printable characters.
func checkPrincipals(ps []string) ([]string, error) {
	if len(ps) > MaxRotationPrincipals {
		return nil, errs.Fieldf("rotationPrincipals", "rotationPrincipals may list at most %d principals", MaxRotationPrincipals)
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 256 || strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return nil, errs.Fieldf("rotationPrincipals", "each of rotationPrincipals must be 1 to 256 printable characters")
		}
		out = append(out, p)
	}
	return out, nil
}

// patternRun is what a * of a RotationPrincipals entry matches: letters,
// digits and _ . @ - and space, never a DN's separators or escapes (, + =
// \ " ; < >), so uid=*,ou=apps,dc=example,dc=com cannot match
// uid=x\,ou=apps,dc=example,dc=com (an entry outside ou=apps).
const patternRun = `[A-Za-z0-9_.@ -]*`

// Lists reports whether the connection's RotationPrincipals name
// principal: an entry without * equal to it, or an entry with * matching
// it whole. Database and Redis user names are compared exactly (app_x and
// APP_X are two roles); LDAP DNs case aside, or as the same entry by
// sameDN.
func (c Connection) Lists(principal string, sameDN func(a, b string) bool) bool {
	ldap := c.App == LDAP
	for _, p := range c.RotationPrincipals {
		if !strings.Contains(p, "*") {
			if p == principal || ldap && (strings.EqualFold(p, principal) || sameDN(p, principal)) {
				return true
			}
			continue
		}
		parts := strings.Split(p, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		flags := ""
		if ldap {
			flags = "(?i)"
		}
		if regexp.MustCompile(flags + `^` + strings.Join(parts, patternRun) + `$`).MatchString(principal) {
			return true
		}
	}
	return false
}

func checkApp(app string) error {
	if _, ok := Methods[app]; !ok {
		return errs.Fieldf("app", "App connection %q is not supported (use %s)", app, strings.Join(Apps(), ", "))
	}
	return nil
}

func notFound(app, id string) error {
	return errs.NotFoundf("Could not find %s Connection with ID %s", app, id)
}

func (s *Service) check(ctx context.Context, actor authz.Actor, action string) error {
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return err
	}
	return perms.Check(action, authz.SubAppConnections, nil)
}

func event(actor authz.Actor, typ string, c Connection) audit.Event {
	return audit.New(actor, typ, map[string]any{"connectionId": c.ID, "app": c.App, "name": c.Name, "rotationPrincipals": c.RotationPrincipals})
}

// decode parses credentials for app strictly and checks them without connecting.
func decode(app string, raw json.RawMessage) (Credentials, error) {
	var c Credentials
	if len(raw) == 0 || string(raw) == "null" {
		return c, errs.Fieldf("credentials", "credentials are required")
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	var in struct {
		Credentials
		// Accepted for compatibility with Infisical's clients.
		SSLRejectUnauthorized *bool  `json:"sslRejectUnauthorized"`
		Port                  any    `json:"port"`
		TLSEnabled            *bool  `json:"tlsEnabled"`
		GatewayID             string `json:"gatewayId"`
	}
	if err := d.Decode(&in); err != nil {
		return c, errs.Fieldf("credentials", "credentials are not valid for %s: %s", app, jsonProblem(err))
	}
	c = in.Credentials
	if in.SSLRejectUnauthorized != nil && !*in.SSLRejectUnauthorized {
		return c, errs.Fieldf("credentials.sslRejectUnauthorized", "lockbox always verifies the server's certificate: sslRejectUnauthorized cannot be false")
	}
	switch p := in.Port.(type) {
	case nil:
	case float64:
		if p != float64(int(p)) || p < 1 || p > 65535 {
			return c, errs.Fieldf("credentials.port", "port must be a number from 1 to 65535")
		}
		c.Port = int(p)
	case string:
		n := 0
		for _, r := range p {
			if r < '0' || r > '9' || n > 65535 {
				n = -1
				break
			}
			n = n*10 + int(r-'0')
		}
		if n < 1 || n > 65535 {
			return c, errs.Fieldf("credentials.port", "port must be a number from 1 to 65535")
		}
		c.Port = n
	default:
		return c, errs.Fieldf("credentials.port", "port must be a number from 1 to 65535")
	}
	c.Host = strings.TrimSpace(c.Host)
	need := func(field, v string) error {
		if strings.TrimSpace(v) == "" {
			return errs.Fieldf("credentials."+field, "credentials.%s is required", field)
		}
		return nil
	}
	var problems []error
	switch app {
	case Postgres, MySQL:
		problems = append(problems, need("host", c.Host), need("database", c.Database), need("username", c.Username), need("password", c.Password))
		if c.Port == 0 {
			c.Port = map[string]int{Postgres: 5432, MySQL: 3306}[app]
		}
	case Redis:
		problems = append(problems, need("host", c.Host))
		if c.Port == 0 {
			c.Port = 6379
		}
	case LDAP:
		problems = append(problems, need("url", c.URL), need("dn", c.DN), need("password", c.Password))
		if c.Provider == "" {
			c.Provider = "openldap"
		}
		if c.Provider != "openldap" && c.Provider != "active-directory" {
			problems = append(problems, errs.Fieldf("credentials.provider", "provider must be openldap or active-directory"))
		}
		if c.URL != "" {
			if _, err := LDAPURL(c.URL); err != nil {
				problems = append(problems, errs.Fieldf("credentials.url", "%s", err.Error()))
			}
		}
	}
	for _, p := range problems {
		if p != nil {
			return c, p
		}
	}
	if c.SSLCertificate != "" {
		if _, err := TLSConfig(c, ""); err != nil {
			return c, errs.Fieldf("credentials.sslCertificate", "sslCertificate is not a PEM certificate")
		}
	}
	if len(c.Host) > 253 || len(c.Database) > 128 || len(c.Username) > 128 || len(c.Password) > 1024 || len(c.DN) > 1024 || len(c.URL) > 1024 || len(c.SSLCertificate) > 65536 {
		return c, errs.Fieldf("credentials", "a credentials field is too long")
	}
	return c, nil
}

func jsonProblem(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "unknown field"); i >= 0 {
		return msg[i:]
	}
	return "malformed JSON object"
}

// Create validates credentials by connecting, then stores the connection sealed.
func (s *Service) Create(ctx context.Context, actor authz.Actor, n New) (Connection, error) {
	if err := s.check(ctx, actor, authz.ActCreate); err != nil {
		return Connection{}, err
	}
	if err := checkApp(n.App); err != nil {
		return Connection{}, err
	}
	if n.Method == "" {
		n.Method = Methods[n.App]
	}
	if n.Method != Methods[n.App] {
		return Connection{}, errs.Fieldf("method", "method must be %q for %s", Methods[n.App], n.App)
	}
	n.Name, n.Description = strings.TrimSpace(n.Name), strings.TrimSpace(n.Description)
	if err := checkName(n.Name); err != nil {
		return Connection{}, err
	}
	if len(n.Description) > 256 {
		return Connection{}, errs.Fieldf("description", "description must be at most 256 characters")
	}
	principals, err := checkPrincipals(n.RotationPrincipals)
	if err != nil {
		return Connection{}, err
	}
	creds, err := decode(n.App, n.Credentials)
	if err != nil {
		return Connection{}, err
	}
	if err := s.validate(ctx, n.App, creds); err != nil {
		return Connection{}, err
	}
	now := s.now().UTC()
	c := Connection{ID: uuid.NewString(), OrgID: actor.OrgID, App: n.App, Method: n.Method, Name: n.Name,
		Description: n.Description, Credentials: creds.Public(), RotationPrincipals: principals, Version: 1, CreatedAt: now, UpdatedAt: now}
	sealed, err := s.seal(ctx, c, creds)
	if err != nil {
		return Connection{}, err
	}
	c.CredentialsHash = HashSealed(sealed)
	err = s.store.CreateAppConnection(ctx, c, sealed, event(actor, "create-app-connection", c))
	if errs.Is(err, errs.Conflict) {
		return Connection{}, errs.BadRequest("An App Connection with the name %q already exists", n.Name)
	}
	return c, err
}

func (s *Service) seal(ctx context.Context, c Connection, creds Credentials) ([]byte, error) {
	b, err := json.Marshal(creds)
	if err != nil {
		return nil, errs.Internalf(err, "encode credentials")
	}
	return s.keys.Seal(ctx, keyring.Org(c.OrgID), b, CredentialsAD(c.ID))
}

// validate connects with creds; a failure is a 400 whose message names the
// target's complaint, never the password.
func (s *Service) validate(ctx context.Context, app string, creds Credentials) error {
	ctx, cancel := context.WithTimeout(ctx, DialTimeout)
	defer cancel()
	if err := s.dialer.Ping(ctx, app, creds); err != nil {
		return errs.BadRequest("Unable to validate connection: %s", Redact(err.Error(), creds.Password))
	}
	return nil
}

// get loads a connection of the actor's org; another org's is not found.
func (s *Service) get(ctx context.Context, actor authz.Actor, app, id string) (Connection, []byte, error) {
	c, sealed, err := s.store.AppConnection(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && (c.OrgID != actor.OrgID || (app != "" && c.App != app))) {
		return Connection{}, nil, notFound(app, id)
	}
	return c, sealed, err
}

// Get returns a connection of app by id.
func (s *Service) Get(ctx context.Context, actor authz.Actor, app, id string) (Connection, error) {
	if err := s.check(ctx, actor, authz.ActRead); err != nil {
		return Connection{}, err
	}
	c, _, err := s.get(ctx, actor, app, id)
	return c, err
}

// GetByName returns a connection of app by name.
func (s *Service) GetByName(ctx context.Context, actor authz.Actor, app, name string) (Connection, error) {
	if err := s.check(ctx, actor, authz.ActRead); err != nil {
		return Connection{}, err
	}
	c, _, err := s.store.AppConnectionByName(ctx, actor.OrgID, name)
	if errs.Is(err, errs.NotFound) || (err == nil && c.App != app) {
		return Connection{}, errs.NotFoundf("Could not find %s Connection with name %s", app, name)
	}
	return c, err
}

// List returns the org's connections of app (empty: all apps).
func (s *Service) List(ctx context.Context, actor authz.Actor, app string) ([]Connection, error) {
	if err := s.check(ctx, actor, authz.ActRead); err != nil {
		return nil, err
	}
	if app != "" {
		if err := checkApp(app); err != nil {
			return nil, err
		}
	}
	return s.store.AppConnections(ctx, actor.OrgID, app)
}

// Update changes a connection, validating new credentials by connecting.
// A change that commits first is read again, not undone (a narrowed
// RotationPrincipals must not come back from an older read).
func (s *Service) Update(ctx context.Context, actor authz.Actor, app, id string, u Update) (Connection, error) {
	return project.RetryStale(ctx, "connection", func() (Connection, error) { return s.update(ctx, actor, app, id, u) })
}

func (s *Service) update(ctx context.Context, actor authz.Actor, app, id string, u Update) (Connection, error) {
	if err := s.check(ctx, actor, authz.ActEdit); err != nil {
		return Connection{}, err
	}
	c, sealed, err := s.get(ctx, actor, app, id)
	if err != nil {
		return Connection{}, err
	}
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if err := checkName(name); err != nil {
			return Connection{}, err
		}
		c.Name = name
	}
	if u.Description != nil {
		d := strings.TrimSpace(*u.Description)
		if len(d) > 256 {
			return Connection{}, errs.Fieldf("description", "description must be at most 256 characters")
		}
		c.Description = d
	}
	if u.RotationPrincipals != nil {
		if c.RotationPrincipals, err = checkPrincipals(*u.RotationPrincipals); err != nil {
			return Connection{}, err
		}
	}
	if len(u.Credentials) > 0 && string(u.Credentials) != "null" {
		old, err := s.open(ctx, c, sealed)
		if err != nil {
			return Connection{}, err
		}
		var probe struct {
			Password *string `json:"password"`
		}
		_ = json.Unmarshal(u.Credentials, &probe)
		raw := u.Credentials
		kept := probe.Password == nil || *probe.Password == ""
		if kept {
			// Keep the stored password: merge it in before decoding.
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil && m != nil && old.Password != "" {
				m["password"] = old.Password
				raw, _ = json.Marshal(m)
			}
		}
		creds, err := decode(c.App, raw)
		if err != nil {
			return Connection{}, err
		}
		// The stored password goes only to the server, the account and the
		// transport it was given for: an editor, who can never read it, must
		// not be able to send it to a server of theirs by changing the
		// address, or across the network in the clear (or to a CA of
		// theirs) by turning TLS off or changing its certificate.
		if kept && sameTransport(creds.Public()) != sameTransport(old.Public()) {
			return Connection{}, errs.Fieldf("credentials.password", "credentials.password is required when any other credential changes")
		}
		if err := s.validate(ctx, c.App, creds); err != nil {
			return Connection{}, err
		}
		c.Credentials = creds.Public()
		if sealed, err = s.seal(ctx, c, creds); err != nil {
			return Connection{}, err
		}
		c.CredentialsHash = HashSealed(sealed)
		c.Version++
	}
	prev := c.UpdatedAt
	c.UpdatedAt = project.NextStamp(s.now(), prev)
	err = s.store.UpdateAppConnection(ctx, c, prev, sealed, event(actor, "update-app-connection", c))
	if errs.Is(err, errs.Conflict) {
		return Connection{}, errs.BadRequest("An App Connection with the name %q already exists", c.Name)
	}
	return c, err
}

// Delete deletes a connection no rotation uses.
func (s *Service) Delete(ctx context.Context, actor authz.Actor, app, id string) (Connection, error) {
	if err := s.check(ctx, actor, authz.ActDelete); err != nil {
		return Connection{}, err
	}
	c, _, err := s.get(ctx, actor, app, id)
	if err != nil {
		return Connection{}, err
	}
	err = s.store.DeleteAppConnection(ctx, id, event(actor, "delete-app-connection", c))
	if errs.Is(err, errs.Conflict) {
		return Connection{}, errs.BadRequest("Cannot delete %s Connection %s: secret rotations use it; delete them first", c.App, c.Name)
	}
	return c, err
}

// Use checks that actor may use connection id (of app) in a rotation and
// returns it: it must be in the actor's org and the actor must hold
// app-connections connect. anyPrincipal says whether the actor may rotate
// any principal through it (app-connections edit: who may change the
// connection's account may use it whole); otherwise only those the
// connection lists (Connection.Lists).
func (s *Service) Use(ctx context.Context, actor authz.Actor, app, id string) (c Connection, anyPrincipal bool, err error) {
	c, _, err = s.get(ctx, actor, "", id)
	if err != nil {
		return Connection{}, false, err
	}
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return Connection{}, false, err
	}
	if err := perms.Check(authz.ActConnect, authz.SubAppConnections, nil); err != nil {
		return Connection{}, false, err
	}
	if c.App != app {
		return Connection{}, false, errs.BadRequest("Connection %s is a %s connection; this rotation needs %s", id, c.App, app)
	}
	return c, perms.Can(authz.ActEdit, authz.SubAppConnections, nil), nil
}

// Open returns a connection with its full credentials, for a rotation acting
// with it (no permission check: the rotation was authorized when made).
func (s *Service) Open(ctx context.Context, id string) (Connection, Credentials, error) {
	c, sealed, err := s.store.AppConnection(ctx, id)
	if err != nil {
		return Connection{}, Credentials{}, err
	}
	creds, err := s.open(ctx, c, sealed)
	return c, creds, err
}

func (s *Service) open(ctx context.Context, c Connection, sealed []byte) (Credentials, error) {
	b, err := s.keys.Open(ctx, keyring.Org(c.OrgID), sealed, CredentialsAD(c.ID))
	if err != nil {
		return Credentials{}, errs.Internalf(err, "open app connection %s", c.ID)
	}
	var creds Credentials
	if err := json.Unmarshal(b, &creds); err != nil {
		return Credentials{}, errs.Internalf(err, "decode app connection %s", c.ID)
	}
	return creds, nil
}

// Available lists the org's connections of app the actor may use in a
// rotation (app-connections connect), as Infisical's /{app}/available; a
// caller without that right gets none. Connections are the org's, so a
// project does not narrow the list.
func (s *Service) Available(ctx context.Context, actor authz.Actor, app string) ([]Connection, error) {
	if err := checkApp(app); err != nil {
		return nil, err
	}
	perms, err := s.authz.OrgPermissions(ctx, actor)
	if err != nil {
		return nil, err
	}
	if !perms.Can(authz.ActConnect, authz.SubAppConnections, nil) {
		return []Connection{}, nil
	}
	return s.store.AppConnections(ctx, actor.OrgID, app)
}

// Option describes a supported app (Infisical's app-connections/options).
type Option struct {
	Name    string
	App     string
	Methods []string
}

// Options lists the supported apps.
func Options() []Option {
	names := map[string]string{LDAP: "LDAP", MySQL: "MySQL", Postgres: "PostgreSQL", Redis: "Redis"}
	var out []Option
	for _, a := range Apps() {
		out = append(out, Option{Name: names[a], App: a, Methods: []string{Methods[a]}})
	}
	return out
}
