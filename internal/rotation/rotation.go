// Package rotation keeps secret rotations (Infisical's secret rotations v2):
// static credentials in a target system, changed on a schedule through an app
// connection and written into ordinary secrets.
//
// Databases and Redis rotate dual phase: two principals alternate, and a
// rotation changes the password of the one the secrets do not name, writes
// the secrets, then makes it the active one, so what an application read
// before keeps working until the rotation after. The order is crash-safe: the
// new password is recorded (sealed) before the target is changed, the secrets
// are written only after the target accepts it, and a run that dies is
// finished by the next with the same password.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
)

// Rotation types and the app each acts on.
var Types = map[string]string{
	"postgres-credentials": appconn.Postgres,
	"mysql-credentials":    appconn.MySQL,
	"redis-credentials":    appconn.Redis,
	"ldap-password":        appconn.LDAP,
}

// Statuses.
const (
	Pending = "pending"
	Success = "success"
	Failed  = "failed"
)

// Parameters are a rotation's type-specific settings.
type Parameters struct {
	Username1       string // databases, redis: the two principals
	Username2       string
	DN              string // ldap-password: the entry whose password rotates
	PermissionScope string // redis-credentials: ACL rules of both users
	// PasswordRequirements shape generated passwords; nil: the default.
	PasswordRequirements *PasswordRequirements
}

// Requirements are the password requirements in force.
func (p Parameters) Requirements() PasswordRequirements {
	if p.PasswordRequirements != nil {
		return *p.PasswordRequirements
	}
	return DefaultPasswordRequirements
}

// Mapping names the secrets a rotation writes.
type Mapping struct {
	Username string // databases, redis
	Password string
	DN       string // ldap-password
}

// Rotation is a rotation's settings and status.
type Rotation struct {
	ID              string
	OrgID           string
	ProjectID       string
	ConnectionID    string
	Type            string
	Name            string
	Description     string
	Environment     string
	SecretPath      string
	Parameters      Parameters
	Mapping         Mapping
	AutoRotate      bool
	IntervalDays    int
	RotateAtHours   int
	RotateAtMinutes int

	ActiveIndex     int
	Status          string
	LastMessage     string
	LastRotatedAt   *time.Time
	LastAttemptedAt *time.Time
	LastManual      bool
	NextRotationAt  *time.Time
	Attempts        int
	Rotations       int
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// Filled on reads: the connection's app and name.
	ConnectionApp  string
	ConnectionName string
}

// State is a rotation with its sealed working state.
type State struct {
	Rotation
	// Credentials is the sealed JSON of the two generated credentials
	// ([]Credential, index = principal); nil before the first rotation.
	Credentials []byte
	// Pending is the sealed password a run is setting on principal
	// PendingIndex; nil when no run is under way or unfinished.
	Pending      []byte
	PendingIndex int
	DueAt        *time.Time
	// Claim is the token of the run holding the row (ClaimRotation).
	Claim string
}

// Credential is one generated principal and its password.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Outcome is what a run records.
type Outcome struct {
	OK             bool
	ActiveIndex    int
	Credentials    []byte
	Message        string
	At             time.Time
	NextRotationAt *time.Time
	DueAt          *time.Time
	Manual         bool
}

// AD binds a rotation's sealed columns to its row.
func AD(id, column string) string { return keyring.AD("secret_rotations", column, id) }

// Store is the storage rotations need.
type Store interface {
	// CreateRotation stores st; errs.Conflict on a taken name at its path.
	// free, when set, is given the rotations on the connection's server
	// (through it or another connection to the same app, host and port) as
	// they are in the transaction that inserts st, serialised with other
	// creates of rotations and changes of connections of the organization's
	// app; its error refuses st.
	CreateRotation(ctx context.Context, st State, ev audit.Event, free func(others []State) error) error
	Rotation(ctx context.Context, id string) (State, error)
	// Rotations lists a project's rotations (typ empty: every type) by name.
	Rotations(ctx context.Context, projectID, typ string) ([]State, error)
	// UpdateRotation writes the settings of r and dueAt.
	UpdateRotation(ctx context.Context, r Rotation, dueAt *time.Time, ev audit.Event) error
	DeleteRotation(ctx context.Context, id string, ev audit.Event) error
	// ClaimRotation claims rotation id for a run with token claim until
	// until, unless another run holds an unexpired claim (ok false). A
	// claimed rotation is due when the claim ends.
	ClaimRotation(ctx context.Context, id, claim string, now, until time.Time) (st State, ok bool, err error)
	// ClaimDueRotations claims up to limit rotations whose due time has
	// passed and that no run holds, each with its own token.
	ClaimDueRotations(ctx context.Context, now, until time.Time, limit int) ([]State, error)
	// NextRotationDue is the earliest due time (zero: none).
	NextRotationDue(ctx context.Context) (time.Time, error)
	// SetRotationPending records the password a run is about to set and
	// makes the rotation due when the claim ends (a run that dies is then
	// finished by another), provided claim still holds the row
	// (errs.Conflict otherwise).
	SetRotationPending(ctx context.Context, id, claim string, sealed []byte, index int) error
	// ReleaseRotation ends claim without a run, making the rotation due at
	// dueAt again.
	ReleaseRotation(ctx context.Context, id, claim string, dueAt *time.Time) error
	// RotationsOfConnection lists the rotations using a connection, in
	// every project.
	RotationsOfConnection(ctx context.Context, connectionID string) ([]State, error)
	// AppConnections lists an organization's connections of an app.
	AppConnections(ctx context.Context, orgID, app string) ([]appconn.Connection, error)
	// RotatedSecrets maps the secret names the rotations at
	// projectID/env/path write to their rotation's id.
	RotatedSecrets(ctx context.Context, projectID, env, path string) (map[string]string, error)
	// RotationByName finds the rotation called name at projectID/env/path.
	RotationByName(ctx context.Context, projectID, env, path, name string) (State, error)
	// FinishRotation records a run's outcome and releases the claim,
	// provided claim still holds the row (errs.Conflict otherwise).
	FinishRotation(ctx context.Context, id, claim string, o Outcome, ev audit.Event) error
}

// Authorizer resolves an actor's project permissions.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Secrets writes and deletes the mapped secrets (secret.Service).
type Secrets interface {
	UpdateMany(ctx context.Context, actor authz.Actor, sc secret.Scope, mode string, items []secret.BatchItem) ([]secret.Secret, error)
	DeleteMany(ctx context.Context, actor authz.Actor, sc secret.Scope, keys []secret.BatchItem) ([]secret.Secret, error)
	// MayWrite refuses keys at sc actor could not create and edit as they
	// are now (their tags weighed).
	MayWrite(ctx context.Context, actor authz.Actor, sc secret.Scope, keys []string) error
}

// Connections is the app connections service.
type Connections interface {
	// Use returns the connection if actor may use it, and whether actor
	// may rotate any principal through it (else only those it lists).
	Use(ctx context.Context, actor authz.Actor, app, id string) (c appconn.Connection, anyPrincipal bool, err error)
	Open(ctx context.Context, id string) (appconn.Connection, appconn.Credentials, error)
}

// Target changes and proves passwords in the systems connections reach
// (target.Systems).
type Target interface {
	// SetPassword makes password user's; running it twice is harmless.
	// scope is a Redis user's ACL rules.
	SetPassword(ctx context.Context, app string, admin appconn.Credentials, scope, user, password string) error
	// CheckLogin proves user logs in with password.
	CheckLogin(ctx context.Context, app string, admin appconn.Credentials, user, password string) error
	// Revoke makes user's issued credentials stop working (a database or
	// LDAP entry gets a password nobody knows; a Redis ACL user is
	// deleted). Revoking a user that no longer exists is success.
	Revoke(ctx context.Context, app string, admin appconn.Credentials, user string) error
	// SameDN reports whether two LDAP DNs name the same entry as a
	// directory matches names (target.SameDN); false if either does not
	// parse.
	SameDN(a, b string) bool
}

// Service manages rotations and runs them.
type Service struct {
	store   Store
	authz   Authorizer
	keys    *keyring.Keyring
	conns   Connections
	target  Target
	secrets Secrets
	now     func() time.Time
	log     *slog.Logger

	// ClaimTTL is how long a run holds a rotation; a node that dies
	// mid-run leaves a claim that expires after it.
	ClaimTTL time.Duration
	// Hook, when set (tests), is called after each step of a run ("pending",
	// "target", "secrets"); an error stops the run there as if the process
	// died: nothing more is recorded and the claim stays until it expires.
	Hook func(step string) error
}

// NewService returns the service; now nil means time.Now.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, conns Connections, tg Target, secrets Secrets, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: st, authz: az, keys: kr, conns: conns, target: tg, secrets: secrets, now: now, log: log, ClaimTTL: 2 * time.Minute}
}

// SetClock replaces the service's clock (tests).
func (s *Service) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// New is what Create needs.
type New struct {
	Type            string
	ProjectID       string
	Name            string
	Description     string
	ConnectionID    string
	Environment     string
	SecretPath      string
	Parameters      json.RawMessage
	SecretsMapping  json.RawMessage
	AutoRotate      *bool // nil: true
	IntervalDays    int
	RotateAtHours   int
	RotateAtMinutes int
}

// Update changes a rotation; nil fields stay as they are.
type Update struct {
	Name            *string
	Description     *string
	AutoRotate      *bool
	IntervalDays    *int
	RotateAtHours   *int
	RotateAtMinutes *int
	SecretsMapping  json.RawMessage
}

var (
	slugRE     = lazyre.New(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)
	userRE     = lazyre.New(`^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}$`)
	secretKeyR = lazyre.New(`^[A-Za-z0-9_.\-]{1,256}$`)
)

func checkType(typ string) error {
	if _, ok := Types[typ]; !ok {
		return errs.Fieldf("type", "Secret rotation type %q is not supported (use postgres-credentials, mysql-credentials, redis-credentials or ldap-password)", typ)
	}
	return nil
}

func checkSchedule(days, h, m int) error {
	if days < 1 || days > 365 {
		return errs.Fieldf("rotationInterval", "rotationInterval must be a whole number of days from 1 to 365")
	}
	if h < 0 || h > 23 {
		return errs.Fieldf("rotateAtUtc.hours", "rotateAtUtc.hours must be from 0 to 23")
	}
	if m < 0 || m > 59 {
		return errs.Fieldf("rotateAtUtc.minutes", "rotateAtUtc.minutes must be from 0 to 59")
	}
	return nil
}

func decodeStrict(raw json.RawMessage, field string, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return errs.Fieldf(field, "%s is required", field)
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "unknown field"); i >= 0 {
			return errs.Fieldf(field, "%s: %s", field, msg[i:])
		}
		return errs.Fieldf(field, "%s must be an object of strings", field)
	}
	return nil
}

func parseParameters(typ, name string, raw json.RawMessage) (Parameters, error) {
	var in struct {
		Username1            string          `json:"username1"`
		Username2            string          `json:"username2"`
		DN                   string          `json:"dn"`
		PermissionScope      string          `json:"permissionScope"`
		PasswordRequirements json.RawMessage `json:"passwordRequirements"`
		RotationMethod       string          `json:"rotationMethod"`
	}
	if err := decodeStrict(raw, "parameters", &in); err != nil {
		return Parameters{}, err
	}
	p := Parameters{Username1: strings.TrimSpace(in.Username1), Username2: strings.TrimSpace(in.Username2),
		DN: strings.TrimSpace(in.DN), PermissionScope: strings.TrimSpace(in.PermissionScope)}
	req, err := parsePasswordRequirements(in.PasswordRequirements)
	if err != nil {
		return p, err
	}
	p.PasswordRequirements = req
	switch typ {
	case "ldap-password":
		if p.DN == "" || len(p.DN) > 1024 {
			return p, errs.Fieldf("parameters.dn", "parameters.dn is required (the entry whose password rotates)")
		}
		if in.RotationMethod != "" && in.RotationMethod != "connection-principal" {
			return p, errs.Fieldf("parameters.rotationMethod", "only connection-principal is supported")
		}
	case "redis-credentials":
		if p.PermissionScope == "" {
			return p, errs.Fieldf("parameters.permissionScope", "parameters.permissionScope is required (ACL rules such as \"~* +@read\")")
		}
		if err := checkScope(p.PermissionScope); err != nil {
			return p, err
		}
		if p.Username1 == "" {
			p.Username1 = name + "-1"
		}
		if p.Username2 == "" {
			p.Username2 = name + "-2"
		}
		fallthrough
	default:
		for f, u := range map[string]string{"username1": p.Username1, "username2": p.Username2} {
			if !userRE().MatchString(u) {
				return p, errs.Fieldf("parameters."+f, "parameters.%s must be a user name of 1 to 63 letters, digits, '_', '.' and '-'", f)
			}
		}
		if p.Username1 == p.Username2 {
			return p, errs.Fieldf("parameters.username2", "parameters.username1 and username2 must be two different users")
		}
	}
	return p, nil
}

// The bounds of a Redis rotation's permissionScope (checkScope).
const (
	MaxScopeRules = 64
	MaxScopeBytes = 2048
)

// checkScope refuses ACL rules that would touch passwords or reset a user,
// selectors, and rules that would give the rotated users Redis's
// administration commands: a rotation creates its users if they do not
// exist, and whoever reads its secrets would otherwise hold a user who can
// rewrite every other, the connection's own included.
//
// A category other than the data types' (redisDataCategories), and every
// command (allcommands, +@all), is allowed only when followed by -@admin,
// -@dangerous and -@scripting, as dynamic secrets' Redis default has it:
// @slow holds ACL and CONFIG, @write FLUSHALL, @connection CLIENT KILL, and
// @write and @slow FUNCTION LOAD REPLACE, DELETE and FLUSH (a function
// loaded over another user's runs with the rights of whoever calls it).
//
// A scope holds at most MaxScopeRules rules and MaxScopeBytes bytes: Redis
// applies one ACL SETUSER in time that grows faster than its key patterns
// (32,000 took 7 s, the server answering nobody meanwhile).
func checkScope(scope string) error {
	broad := ""
	var noAdmin, noDangerous, noScripting bool
	toks := strings.Fields(scope)
	if len(scope) > MaxScopeBytes || len(toks) > MaxScopeRules {
		return errs.Fieldf("parameters.permissionScope", "parameters.permissionScope may hold at most %d rules and %d bytes", MaxScopeRules, MaxScopeBytes)
	}
	for _, tok := range toks {
		low := strings.ToLower(tok)
		if strings.ContainsAny(tok[:1], "<>#!()") || strings.HasSuffix(tok, ")") || low == "nopass" || low == "resetpass" ||
			low == "reset" || low == "off" || len(tok) > 256 {
			return errs.Fieldf("parameters.permissionScope", "parameters.permissionScope may hold only key, channel and command rules (not %q)", tok)
		}
		switch {
		case low == "allcommands" || strings.HasPrefix(low, "+@") && !redisDataCategories[low[2:]]:
			broad, noAdmin, noDangerous, noScripting = tok, false, false, false
			continue
		case low == "-@admin":
			noAdmin = true
		case low == "-@dangerous":
			noDangerous = true
		case low == "-@scripting":
			noScripting = true
		}
		if adminCommand(low) {
			return errs.Fieldf("parameters.permissionScope", "parameters.permissionScope cannot give administration commands (not %q)", tok)
		}
	}
	if broad != "" && !(noAdmin && noDangerous && noScripting) {
		return errs.Fieldf("parameters.permissionScope", "parameters.permissionScope cannot give administration commands: follow %q with -@admin -@dangerous -@scripting", broad)
	}
	return nil
}

// redisDataCategories are the ACL categories of data commands only: none
// holds an @admin or @dangerous command that changes the server or other
// users (@read's KEYS is @dangerous for its cost only).
var redisDataCategories = map[string]bool{
	"read": true, "string": true, "hash": true, "list": true, "set": true, "sortedset": true, "bitmap": true,
	"hyperloglog": true, "geo": true, "stream": true, "pubsub": true, "transaction": true,
}

// redisAdmin are the commands of Redis's @admin category, and those of
// @dangerous that change the server or other users' data wholesale.
var redisAdmin = map[string]bool{
	"acl": true, "config": true, "module": true, "debug": true, "shutdown": true, "replicaof": true, "slaveof": true,
	"failover": true, "cluster": true, "sync": true, "psync": true, "replconf": true, "monitor": true, "migrate": true,
	"restore": true, "restore-asking": true, "save": true, "bgsave": true, "bgrewriteaof": true, "flushall": true,
	"flushdb": true, "swapdb": true, "pfdebug": true, "pfselftest": true, "lastsave": true, "latency": true,
	"slowlog": true, "script": true, "function": true, "info": true, "role": true,
}

// redisClientSafe are the CLIENT subcommands every client uses; the
// others (KILL, LIST, PAUSE, NO-EVICT, ...) are administration.
var redisClientSafe = map[string]bool{
	"setname": true, "getname": true, "id": true, "info": true, "setinfo": true, "reply": true, "tracking": true,
	"trackinginfo": true, "getredir": true, "caching": true,
}

// adminCommand reports whether an ACL rule (lower case) allows an
// administration command by name (with or without a subcommand).
func adminCommand(r string) bool {
	if !strings.HasPrefix(r, "+") || strings.HasPrefix(r, "+@") {
		return false
	}
	cmd, sub, _ := strings.Cut(r[1:], "|")
	if cmd == "client" {
		return !redisClientSafe[sub]
	}
	return redisAdmin[cmd]
}

func parseMapping(typ string, raw json.RawMessage) (Mapping, error) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
		DN       string `json:"dn"`
	}
	if err := decodeStrict(raw, "secretsMapping", &in); err != nil {
		return Mapping{}, err
	}
	m := Mapping{Username: strings.TrimSpace(in.Username), Password: strings.TrimSpace(in.Password), DN: strings.TrimSpace(in.DN)}
	first, firstName := m.Username, "username"
	if typ == "ldap-password" {
		first, firstName = m.DN, "dn"
	}
	if !secretKeyR().MatchString(first) {
		return m, errs.Fieldf("secretsMapping."+firstName, "secretsMapping.%s must be a secret name", firstName)
	}
	if !secretKeyR().MatchString(m.Password) {
		return m, errs.Fieldf("secretsMapping.password", "secretsMapping.password must be a secret name")
	}
	if first == m.Password {
		return m, errs.Fieldf("secretsMapping.password", "secretsMapping must name two different secrets")
	}
	return m, nil
}

// normPath is p as the secrets service names it (project.NormalizePath):
// the permission checks, the rotation's ownership of its secrets and the
// guards of folder moves compare the stored path with the secrets'. Only
// trimmed, //prod passed rules on /prod and wrote into /prod.
func normPath(p string) (string, error) {
	n, err := project.NormalizePath(p)
	if e, ok := errors.AsType[*errs.Error](err); ok {
		return "", errs.Fieldf("secretPath", "secretPath: %s", e.Message)
	}
	return n, err
}

func notFound(id string) error {
	return errs.NotFoundf("Could not find Secret Rotation with ID %s", id)
}

// check resolves the actor's permissions in projectID and checks action on
// secret-rotation at env/path. hide reports a project the actor is not a
// member of as notFound.
func (s *Service) check(ctx context.Context, actor authz.Actor, projectID, action, env, path string, nf func() error) (authz.Set, error) {
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if nf != nil && (errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden)) {
		return authz.Set{}, nf()
	}
	if err != nil {
		return authz.Set{}, err
	}
	return perms, perms.Check(action, authz.SubSecretRotation, &authz.Fields{Environment: env, SecretPath: path})
}

// mayWrite refuses a mapping onto secrets the caller could not create and
// edit: nobody makes a rotation (which writes as the platform) write secrets
// they could not write themselves. The secrets service weighs each existing
// secret with its tags: a role denied secrets tagged prod mapped one and
// the rotation wrote over it.
func (s *Service) mayWrite(ctx context.Context, actor authz.Actor, perms authz.Set, projectID, env, path string, m Mapping) error {
	keys := []string{m.Username + m.DN, m.Password}
	for _, a := range []string{authz.ActCreate, authz.ActEdit} {
		for _, key := range keys {
			if err := perms.Check(a, authz.SubSecrets, &authz.Fields{Environment: env, SecretPath: path, SecretName: key}); err != nil {
				return err
			}
		}
	}
	return s.secrets.MayWrite(ctx, actor, secret.Scope{ProjectID: projectID, Env: env, Path: path}, keys)
}

// nextAt is the first rotation time interval days after from, at h:m UTC.
func nextAt(from time.Time, days, h, m int) time.Time {
	d := from.UTC().AddDate(0, 0, days)
	return time.Date(d.Year(), d.Month(), d.Day(), h, m, 0, 0, time.UTC)
}

func (s *Service) event(actor authz.Actor, typ string, r Rotation, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["rotationId"], md["type"], md["name"] = r.ID, r.Type, r.Name
	md["environment"], md["secretPath"], md["connectionId"] = r.Environment, r.SecretPath, r.ConnectionID
	ev := audit.New(actor, typ, md).InProject(r.ProjectID, r.Environment)
	if ev.OrgID == "" {
		ev.OrgID = r.OrgID
	}
	return ev
}

// platform is the actor a rotation writes its secrets as.
func platform(r Rotation) authz.Actor {
	return authz.Actor{Kind: authz.ActorPlatform, ID: secret.RotationActorID(r.ID), OrgID: r.OrgID, Name: "secret rotation " + r.Name}
}

// Create stores a rotation and runs its first rotation at once (Infisical
// issues credentials on create); if that fails the rotation is not kept.
func (s *Service) Create(ctx context.Context, actor authz.Actor, n New) (Rotation, error) {
	if err := checkType(n.Type); err != nil {
		return Rotation{}, err
	}
	if strings.TrimSpace(n.ProjectID) == "" {
		return Rotation{}, errs.Fieldf("projectId", "projectId is required")
	}
	n.Name = strings.TrimSpace(n.Name)
	if len(n.Name) < 1 || len(n.Name) > 32 || !slugRE().MatchString(n.Name) {
		return Rotation{}, errs.Fieldf("name", "name must be 1 to 32 lowercase letters, digits and hyphens (a slug)")
	}
	if len(n.Description) > 256 {
		return Rotation{}, errs.Fieldf("description", "description must be at most 256 characters")
	}
	n.Environment = strings.TrimSpace(n.Environment)
	if n.Environment == "" {
		return Rotation{}, errs.Fieldf("environment", "environment is required")
	}
	path, err := normPath(n.SecretPath)
	if err != nil {
		return Rotation{}, err
	}
	if err := checkSchedule(n.IntervalDays, n.RotateAtHours, n.RotateAtMinutes); err != nil {
		return Rotation{}, err
	}
	params, err := parseParameters(n.Type, n.Name, n.Parameters)
	if err != nil {
		return Rotation{}, err
	}
	mapping, err := parseMapping(n.Type, n.SecretsMapping)
	if err != nil {
		return Rotation{}, err
	}
	perms, err := s.check(ctx, actor, n.ProjectID, authz.ActCreate, n.Environment, path, nil)
	if err != nil {
		return Rotation{}, err
	}
	if err := s.mayWrite(ctx, actor, perms, n.ProjectID, n.Environment, path, mapping); err != nil {
		return Rotation{}, err
	}
	conn, anyPrincipal, err := s.conns.Use(ctx, actor, Types[n.Type], n.ConnectionID)
	if err != nil {
		return Rotation{}, err
	}
	server, err := s.sameServer(ctx, conn)
	if err != nil {
		return Rotation{}, err
	}
	for _, c := range server {
		// Nor the account of another connection to the server: it would
		// break that connection and land its password in these secrets.
		if err := notOwnPrincipal(c, params, s.target.SameDN); err != nil {
			return Rotation{}, err
		}
	}
	if !anyPrincipal {
		if err := listed(conn, params, s.target.SameDN); err != nil {
			return Rotation{}, err
		}
	}
	if err := s.principalsFree(ctx, conn, server, params); err != nil {
		return Rotation{}, err
	}
	if err := s.mappingFree(ctx, "", n.ProjectID, n.Environment, path, mapping); err != nil {
		return Rotation{}, err
	}
	now := s.now().UTC()
	auto := n.AutoRotate == nil || *n.AutoRotate
	st := State{Rotation: Rotation{ID: uuid.NewString(), OrgID: actor.OrgID, ProjectID: n.ProjectID, ConnectionID: conn.ID,
		Type: n.Type, Name: n.Name, Description: strings.TrimSpace(n.Description), Environment: n.Environment, SecretPath: path,
		Parameters: params, Mapping: mapping, AutoRotate: auto, IntervalDays: n.IntervalDays,
		RotateAtHours: n.RotateAtHours, RotateAtMinutes: n.RotateAtMinutes, ActiveIndex: 1, Status: Pending,
		CreatedAt: now, UpdatedAt: now, ConnectionApp: conn.App, ConnectionName: conn.Name}}
	err = s.store.CreateRotation(ctx, st, s.event(actor, "create-secret-rotation", st.Rotation, nil), func(others []State) error {
		return s.principalsClash(conn, params, others)
	})
	if errs.Is(err, errs.Conflict) {
		return Rotation{}, errs.BadRequest("A secret rotation with the name %q already exists at %s in %s", n.Name, path, n.Environment)
	}
	if err != nil {
		return Rotation{}, err
	}
	if err := s.runNow(ctx, actor, st.ID, false); err != nil {
		// Not kept: the principals' passwords may have changed, but no secret names them.
		_ = s.store.DeleteRotation(context.WithoutCancel(ctx), st.ID, s.event(actor, "delete-secret-rotation", st.Rotation, map[string]any{"reason": "first rotation failed"}))
		return Rotation{}, err
	}
	got, err := s.store.Rotation(ctx, st.ID)
	return got.Rotation, err
}

// notOwnPrincipal refuses, at once, the principals a rotation's parameters
// name that are plainly the connection's own: its password would land in
// secrets the rotation's readers see, and the connection would stop working.
// Every change asks the target who the connection is as well
// (target.ErrOwnPrincipal), since a name can be spelled many ways.
func notOwnPrincipal(conn appconn.Connection, params Parameters, sameDN func(a, b string) bool) error {
	for _, u := range []string{params.Username1, params.Username2, params.DN} {
		if u == "" {
			continue
		}
		if conn.App == appconn.Redis && u == "default" {
			// Also the connection's own when it names no user.
			return errs.Fieldf("parameters", "Redis's default user cannot be rotated: every client that names no user is it")
		}
		if strings.EqualFold(u, conn.Credentials.Username) || strings.EqualFold(u, conn.Credentials.DN) ||
			(conn.Credentials.DN != "" && sameDN(u, conn.Credentials.DN)) {
			return errs.Fieldf("parameters", "the connection's own user cannot be rotated by it")
		}
	}
	return nil
}

// listed refuses principals the connection does not list for members
// who may only use it: every member holds app-connections connect, and
// the connection's account can usually change far more accounts than one
// project's (a database's superuser, another team's service account).
func listed(conn appconn.Connection, params Parameters, sameDN func(a, b string) bool) error {
	for _, u := range []string{params.Username1, params.Username2, params.DN} {
		if u != "" && !conn.Lists(u, sameDN) {
			return errs.Forbiddenf("This connection's rotationPrincipals do not list %q; ask someone who may edit the connection (app-connections edit) to add it, or to make the rotation", u).WithCode("PermissionDenied")
		}
	}
	return nil
}

// sameServer lists conn and the organization's other connections to the
// same server (appconn.SameTarget): a database's accounts are the server's,
// whichever database a connection names. The store judges again in the
// create's transaction.
func (s *Service) sameServer(ctx context.Context, conn appconn.Connection) ([]appconn.Connection, error) {
	all, err := s.store.AppConnections(ctx, conn.OrgID, conn.App)
	if err != nil {
		return nil, err
	}
	out := []appconn.Connection{conn}
	for _, c := range all {
		if c.ID != conn.ID && appconn.SameTarget(conn, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// principalsFree refuses a new rotation of principals another rotation
// already rotates on the same server (through conn or another connection
// to it, server), in whichever project: otherwise a member allowed to use
// a connection in a project of theirs could take over an account another
// project's rotation manages (its new password landing in their secrets,
// the other project's no longer working).
func (s *Service) principalsFree(ctx context.Context, conn appconn.Connection, server []appconn.Connection, params Parameters) error {
	var others []State
	for _, c := range server {
		rs, err := s.store.RotationsOfConnection(ctx, c.ID)
		if err != nil {
			return err
		}
		others = append(others, rs...)
	}
	return s.principalsClash(conn, params, others)
}

// principalsClash is principalsFree's check of params against others (the
// connection's rotations, as read where it is called: Create asks it again
// in the insert's transaction, where two creates of one principal cannot
// both pass).
func (s *Service) principalsClash(conn appconn.Connection, params Parameters, others []State) error {
	same := func(a, b string) bool {
		return a != "" && b != "" && (strings.EqualFold(a, b) || conn.App == appconn.LDAP && s.target.SameDN(a, b))
	}
	for _, o := range others {
		for _, mine := range []string{params.Username1, params.Username2, params.DN} {
			for _, theirs := range []string{o.Parameters.Username1, o.Parameters.Username2, o.Parameters.DN} {
				if same(mine, theirs) {
					return errs.BadRequest("Another secret rotation already rotates %q on this connection's server", mine)
				}
			}
		}
	}
	return nil
}

// mappingFree refuses secret names of m that another rotation (other than
// self) at the same place writes: a second rotation would take over
// secrets the first one owns.
func (s *Service) mappingFree(ctx context.Context, self, projectID, env, path string, m Mapping) error {
	owners, err := s.store.RotatedSecrets(ctx, projectID, env, path)
	if err != nil {
		return err
	}
	for _, k := range []string{m.Username, m.DN, m.Password} {
		if id, ok := owners[k]; ok && k != "" && id != self {
			return MappingTaken(k)
		}
	}
	return nil
}

// MappingTaken refuses a mapping that names a secret another rotation at
// the same place writes. The service checks on what it read; the store
// checks again under a lock of the project, for concurrent creates and
// updates.
func MappingTaken(secret string) error {
	return errs.BadRequest("The secret %q is already written by another secret rotation", secret)
}

func (s *Service) load(ctx context.Context, actor authz.Actor, typ, id, action string) (State, error) {
	st, err := s.store.Rotation(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && ((typ != "" && st.Type != typ) || st.OrgID != actor.OrgID)) {
		return State{}, notFound(id)
	}
	if err != nil {
		return State{}, err
	}
	if _, err := s.check(ctx, actor, st.ProjectID, action, st.Environment, st.SecretPath, func() error { return notFound(id) }); err != nil {
		return State{}, err
	}
	return st, nil
}

// Get returns a rotation of typ by id.
func (s *Service) Get(ctx context.Context, actor authz.Actor, typ, id string) (Rotation, error) {
	st, err := s.load(ctx, actor, typ, id, authz.ActRead)
	return st.Rotation, err
}

// GetByName returns the rotation of typ called name at env and path.
func (s *Service) GetByName(ctx context.Context, actor authz.Actor, typ, projectID, env, path, name string) (Rotation, error) {
	if err := checkType(typ); err != nil {
		return Rotation{}, err
	}
	path, err := normPath(path)
	if err != nil {
		return Rotation{}, err
	}
	if strings.TrimSpace(projectID) == "" {
		return Rotation{}, errs.Fieldf("projectId", "projectId is required")
	}
	nf := func() error { return errs.NotFoundf("Could not find Secret Rotation with name %s", name) }
	st, err := s.store.RotationByName(ctx, projectID, strings.TrimSpace(env), path, name)
	if errs.Is(err, errs.NotFound) || (err == nil && (st.Type != typ || st.OrgID != actor.OrgID)) {
		// Who may not read the project learns nothing either way.
		if _, err := s.check(ctx, actor, projectID, authz.ActRead, env, path, nf); err != nil {
			return Rotation{}, err
		}
		return Rotation{}, nf()
	}
	if err != nil {
		return Rotation{}, err
	}
	if _, err := s.check(ctx, actor, st.ProjectID, authz.ActRead, st.Environment, st.SecretPath, nf); err != nil {
		return Rotation{}, err
	}
	return st.Rotation, nil
}

// GeneratedCredentials returns a rotation's two generated credentials and
// which is active (Infisical's generated-credentials).
func (s *Service) GeneratedCredentials(ctx context.Context, actor authz.Actor, typ, id string) ([]Credential, Rotation, error) {
	st, err := s.load(ctx, actor, typ, id, authz.ActReadGeneratedCredentials)
	if err != nil {
		return nil, Rotation{}, err
	}
	creds, err := s.openCreds(ctx, st)
	return creds, st.Rotation, err
}

// List returns a project's rotations of typ (empty: all) the actor may read.
func (s *Service) List(ctx context.Context, actor authz.Actor, projectID, typ string) ([]Rotation, error) {
	if typ != "" {
		if err := checkType(typ); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(projectID) == "" {
		return nil, errs.Fieldf("projectId", "projectId is required")
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return nil, err
	}
	sts, err := s.store.Rotations(ctx, projectID, typ)
	if err != nil {
		return nil, err
	}
	out := []Rotation{}
	for _, st := range sts {
		if perms.Can(authz.ActRead, authz.SubSecretRotation, &authz.Fields{Environment: st.Environment, SecretPath: st.SecretPath}) {
			out = append(out, st.Rotation)
		}
	}
	return out, nil
}

// Update changes a rotation's settings.
func (s *Service) Update(ctx context.Context, actor authz.Actor, typ, id string, u Update) (Rotation, error) {
	st, err := s.load(ctx, actor, typ, id, authz.ActEdit)
	if err != nil {
		return Rotation{}, err
	}
	r := st.Rotation
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if len(name) < 1 || len(name) > 32 || !slugRE().MatchString(name) {
			return Rotation{}, errs.Fieldf("name", "name must be 1 to 32 lowercase letters, digits and hyphens (a slug)")
		}
		r.Name = name
	}
	if u.Description != nil {
		if len(*u.Description) > 256 {
			return Rotation{}, errs.Fieldf("description", "description must be at most 256 characters")
		}
		r.Description = strings.TrimSpace(*u.Description)
	}
	if u.AutoRotate != nil {
		r.AutoRotate = *u.AutoRotate
	}
	if u.IntervalDays != nil {
		r.IntervalDays = *u.IntervalDays
	}
	if u.RotateAtHours != nil {
		r.RotateAtHours = *u.RotateAtHours
	}
	if u.RotateAtMinutes != nil {
		r.RotateAtMinutes = *u.RotateAtMinutes
	}
	if err := checkSchedule(r.IntervalDays, r.RotateAtHours, r.RotateAtMinutes); err != nil {
		return Rotation{}, err
	}
	if len(u.SecretsMapping) > 0 && string(u.SecretsMapping) != "null" {
		if r.Mapping, err = parseMapping(r.Type, u.SecretsMapping); err != nil {
			return Rotation{}, err
		}
		perms, err := s.check(ctx, actor, r.ProjectID, authz.ActEdit, r.Environment, r.SecretPath, nil)
		if err != nil {
			return Rotation{}, err
		}
		if err := s.mayWrite(ctx, actor, perms, r.ProjectID, r.Environment, r.SecretPath, r.Mapping); err != nil {
			return Rotation{}, err
		}
		if err := s.mappingFree(ctx, r.ID, r.ProjectID, r.Environment, r.SecretPath, r.Mapping); err != nil {
			return Rotation{}, err
		}
	}
	// The schedule follows the settings; a pending or failed run keeps its retry time.
	due := st.DueAt
	r.NextRotationAt = nil
	if r.LastRotatedAt != nil && r.AutoRotate {
		next := nextAt(*r.LastRotatedAt, r.IntervalDays, r.RotateAtHours, r.RotateAtMinutes)
		r.NextRotationAt = &next
	}
	if st.Pending == nil && r.Status != Failed {
		due = r.NextRotationAt
	}
	r.UpdatedAt = s.now().UTC()
	err = s.store.UpdateRotation(ctx, r, due, s.event(actor, "update-secret-rotation", r, nil))
	if errs.Is(err, errs.Conflict) {
		return Rotation{}, errs.BadRequest("A secret rotation with the name %q already exists at %s in %s", r.Name, r.SecretPath, r.Environment)
	}
	return r, err
}

// Delete deletes a rotation, which releases its secrets to ordinary
// editing. With deleteSecrets its mapped secrets go too (the caller must be
// allowed to delete them); with revoke the credentials it issued stop
// working first, as Infisical's revokeGeneratedCredentials: every principal
// it set a password on gets one nobody knows (Redis: its ACL user is
// deleted). A failed revocation keeps the rotation and answers 400.
func (s *Service) Delete(ctx context.Context, actor authz.Actor, typ, id string, deleteSecrets, revoke bool) (Rotation, error) {
	st, err := s.load(ctx, actor, typ, id, authz.ActDelete)
	if err != nil {
		return Rotation{}, err
	}
	keys := []secret.BatchItem{{Key: st.Mapping.Username + st.Mapping.DN}, {Key: st.Mapping.Password}}
	if deleteSecrets {
		perms, err := s.check(ctx, actor, st.ProjectID, authz.ActDelete, st.Environment, st.SecretPath, nil)
		if err != nil {
			return Rotation{}, err
		}
		for _, k := range keys {
			if err := perms.Check(authz.ActDelete, authz.SubSecrets, &authz.Fields{Environment: st.Environment, SecretPath: st.SecretPath, SecretName: k.Key}); err != nil {
				return Rotation{}, err
			}
		}
	}
	// Hold the rotation so no run sets a password after the revocation.
	now := s.now().UTC()
	claim := uuid.NewString()
	held, ok, err := s.store.ClaimRotation(ctx, id, claim, now, now.Add(s.ClaimTTL))
	if err != nil {
		return Rotation{}, err
	}
	if !ok {
		return Rotation{}, errs.Conflictf("A rotation of this secret rotation is in progress; try again shortly")
	}
	if revoke {
		if err := s.revoke(ctx, held); err != nil {
			_ = s.store.ReleaseRotation(context.WithoutCancel(ctx), id, claim, st.DueAt)
			return Rotation{}, err
		}
	}
	md := map[string]any{"deleteSecrets": deleteSecrets, "revokeGeneratedCredentials": revoke}
	if err := s.store.DeleteRotation(ctx, id, s.event(actor, "delete-secret-rotation", st.Rotation, md)); err != nil {
		return Rotation{}, err
	}
	if deleteSecrets {
		// One by one: a secret already gone (a deleted folder) does not keep
		// the other. The rotation is gone by now (its secrets were its own
		// until then), so a failure says what is left to delete by hand.
		sc := secret.Scope{ProjectID: st.ProjectID, Env: st.Environment, Path: st.SecretPath}
		var left []string
		var first error
		for _, k := range keys {
			if _, err := s.secrets.DeleteMany(ctx, actor, sc, []secret.BatchItem{k}); err != nil && !errs.Is(err, errs.NotFound) {
				left = append(left, k.Key)
				if first == nil {
					first = err
				}
			}
		}
		if len(left) > 0 {
			e := &errs.Error{Kind: errs.KindOf(first), Err: first,
				Message: "The secret rotation was deleted but not its secrets " + strings.Join(left, ", ") + "; delete them by hand"}
			return Rotation{}, e
		}
	}
	return st.Rotation, nil
}

// revoke makes every credential st issued stop working: the principals
// with a generated credential and the one a run left a pending password on.
func (s *Service) revoke(ctx context.Context, st State) error {
	creds, err := s.openCreds(ctx, st)
	if err != nil {
		return err
	}
	users := principals(st.Rotation)
	var todo []string
	for i, u := range users {
		if creds[i].Username != "" || (st.Pending != nil && st.PendingIndex == i) {
			if !slices.Contains(todo, u) {
				todo = append(todo, u)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	tctx, cancel := context.WithTimeout(ctx, 2*appconn.DialTimeout)
	defer cancel()
	conn, admin, err := s.conns.Open(tctx, st.ConnectionID)
	if err != nil {
		return err
	}
	for _, u := range todo {
		if err := s.target.Revoke(tctx, conn.App, admin, u); err != nil {
			secrets := []string{admin.Password, creds[0].Password, creds[1].Password}
			return errs.BadRequest("Failed to revoke generated credentials: %s", appconn.Redact(err.Error(), secrets...))
		}
	}
	return nil
}

// RotateNow runs a rotation at once (Infisical's rotate-secrets).
func (s *Service) RotateNow(ctx context.Context, actor authz.Actor, typ, id string) (Rotation, error) {
	if _, err := s.load(ctx, actor, typ, id, authz.ActRotateSecrets); err != nil {
		return Rotation{}, err
	}
	if err := s.runNow(ctx, actor, id, true); err != nil {
		return Rotation{}, err
	}
	st, err := s.store.Rotation(ctx, id)
	return st.Rotation, err
}

// runNow claims rotation id and runs it; a failure is reported as a 400
// with the target's complaint (it is also recorded on the rotation).
func (s *Service) runNow(ctx context.Context, actor authz.Actor, id string, manual bool) error {
	now := s.now().UTC()
	st, ok, err := s.store.ClaimRotation(ctx, id, uuid.NewString(), now, now.Add(s.ClaimTTL))
	if err != nil {
		return err
	}
	if !ok {
		return errs.Conflictf("A rotation of this secret rotation is already in progress; try again shortly")
	}
	if err := s.run(ctx, actor, st, manual); err != nil {
		if _, typed := errors.AsType[*errs.Error](err); typed || isCrash(err) {
			return err // an internal one is logged in full and answered generically
		}
		// The target's complaint, passwords already removed.
		return errs.BadRequest("Failed to rotate secrets: %s", err.Error())
	}
	return nil
}

func (s *Service) openCreds(ctx context.Context, st State) ([]Credential, error) {
	creds := make([]Credential, 2)
	if st.Credentials == nil {
		return creds, nil
	}
	b, err := s.keys.Open(ctx, keyring.Project(st.ProjectID), st.Credentials, AD(st.ID, "credentials"))
	if err != nil {
		return nil, errs.Internalf(err, "open rotation credentials")
	}
	if err := json.Unmarshal(b, &creds); err != nil || len(creds) != 2 {
		return nil, errs.Internalf(err, "decode rotation credentials")
	}
	return creds, nil
}

// principals are the two principals a rotation alternates.
func principals(r Rotation) [2]string {
	if r.Type == "ldap-password" {
		return [2]string{r.Parameters.DN, r.Parameters.DN}
	}
	return [2]string{r.Parameters.Username1, r.Parameters.Username2}
}

// Option describes a supported rotation type (Infisical's
// secret-rotations/options): its name, the app its connection is for and
// the secret names Infisical's form suggests.
type Option struct {
	Name       string
	Type       string
	Connection string
	Mapping    map[string]string
}

// Options lists the supported rotation types.
func Options() []Option {
	return []Option{
		{"LDAP Password", "ldap-password", appconn.LDAP, map[string]string{"dn": "LDAP_DN", "password": "LDAP_PASSWORD"}},
		{"MySQL Credentials", "mysql-credentials", appconn.MySQL, map[string]string{"username": "MYSQL_DB_USERNAME", "password": "MYSQL_DB_PASSWORD"}},
		{"PostgreSQL Credentials", "postgres-credentials", appconn.Postgres, map[string]string{"username": "POSTGRES_DB_USERNAME", "password": "POSTGRES_DB_PASSWORD"}},
		{"Redis Credentials", "redis-credentials", appconn.Redis, map[string]string{"username": "REDIS_USERNAME", "password": "REDIS_PASSWORD"}},
	}
}
