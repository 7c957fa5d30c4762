package identity

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// ServiceTokenPrefix starts every service token: "st.<id>.<secret>".
const ServiceTokenPrefix = "st."

// Service-token permissions.
const (
	PermRead  = "read"
	PermWrite = "write"
)

// ServiceToken is a legacy Infisical service token: a bearer credential for
// one project, reaching the secrets of its scopes. Its secret is never stored.
type ServiceToken struct {
	ID            string
	ProjectID     string
	OrgID         string // the project's organization, as loaded
	Name          string
	Scopes        []authz.TokenScope
	Permissions   []string // PermRead, PermWrite
	CreatedBy     string
	CreatedByType string
	ExpiresAt     *time.Time // nil: never
	LastUsed      *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Expired reports whether the token's expiry has passed at now.
func (t ServiceToken) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// ServiceTokenStore is the storage service tokens need.
type ServiceTokenStore interface {
	// CreateServiceToken stores a token with its secret's keyed hash and ev.
	CreateServiceToken(ctx context.Context, t ServiceToken, hash string, ev audit.Event) error
	// ServiceTokens lists a project's tokens, newest first.
	ServiceTokens(ctx context.Context, projectID string) ([]ServiceToken, error)
	// ServiceTokenByID returns a token (with its project's organization) and
	// its secret's keyed hash.
	ServiceTokenByID(ctx context.Context, id string) (ServiceToken, string, error)
	// DeleteServiceToken removes a token and records ev.
	DeleteServiceToken(ctx context.Context, id string, ev audit.Event) error
}

// ProjectAuthorizer resolves an actor's permissions in a project.
type ProjectAuthorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// EnvResolver finds a project's folder at a path, checking no permission.
type EnvResolver interface {
	ResolveFolder(ctx context.Context, projectID, envSlug, path string) (project.Folder, project.Environment, error)
}

// ServiceTokens creates, lists, deletes and authenticates service tokens.
type ServiceTokens struct {
	store ServiceTokenStore
	authz ProjectAuthorizer
	envs  EnvResolver
	svc   *Service
	now   func() time.Time

	secrets KeyedHash

	// rows holds tokens by id with their hash and rules (SetCache); nil:
	// read each time.
	rows *cache.Map[string, serviceTokenRow]
}

// serviceTokenRow is a stored service token as Authenticate uses it.
type serviceTokenRow struct {
	t     ServiceToken
	hash  []byte // the secret's keyed hash; nil if the stored one is not hex (no secret matches)
	rules *tokenRules
}

// tokenRules are a service token's rules, built once its secret has matched:
// a request with a known id and a wrong secret compiles nothing.
type tokenRules struct {
	once  sync.Once
	rules []authz.Rule
	err   error // a stored token with bad scopes
}

func (r *tokenRules) get(t ServiceToken) ([]authz.Rule, error) {
	r.once.Do(func() {
		r.rules, r.err = authz.ServiceTokenRules(t.Scopes, slices.Contains(t.Permissions, PermRead), slices.Contains(t.Permissions, PermWrite))
	})
	return r.rules, r.err
}

// SetCache keeps service tokens in memory in generation g, so that a request
// with a known token reads nothing; deleting one moves the generation.
func (s *ServiceTokens) SetCache(g *cache.Gen) {
	s.rows = cache.NewMap[string, serviceTokenRow](g, MaxCachedTokens)
}

// Cached reports how many service tokens the cache holds (tests).
func (s *ServiceTokens) Cached() int {
	if s.rows == nil {
		return 0
	}
	return s.rows.Len()
}

// NewServiceTokens returns the service-token service; svc holds the keyring.
func NewServiceTokens(st ServiceTokenStore, az ProjectAuthorizer, envs EnvResolver, svc *Service) *ServiceTokens {
	return &ServiceTokens{store: st, authz: az, envs: envs, svc: svc, now: svc.now, secrets: KeyedHash{Purpose: "service-token-hmac"}}
}

// hash is the secret's HMAC-SHA256 under a key derived from the root key.
func (s *ServiceTokens) hash(ctx context.Context, secret string) ([]byte, error) {
	return s.secrets.Sum(ctx, s.svc.keys, secret)
}

// MaxServiceTokens bounds a project's service tokens: the token list
// returns them all, each with up to 100 scopes. Concurrent creates may
// pass it by a few.
const MaxServiceTokens = 1000

// NewServiceToken is a create request. EncryptedKey, IV and Tag of
// Infisical's end-to-end scheme are accepted on the wire and dropped.
type NewServiceToken struct {
	ProjectID   string
	Name        string
	Scopes      []authz.TokenScope
	ExpiresIn   *int64 // seconds; nil or 0: never
	Permissions []string
}

func invalidST(field, format string, args ...any) error {
	e := errs.Invalidf(format, args...)
	e.Details = []string{field}
	return e
}

// Create makes a service token and returns it with its plaintext, shown once.
// The actor needs to create service tokens in the project and to create
// secrets in every scope, as Infisical requires.
func (s *ServiceTokens) Create(ctx context.Context, actor authz.Actor, req NewServiceToken) (ServiceToken, string, error) {
	if actor.Kind == authz.ActorServiceToken {
		return ServiceToken{}, "", errs.Forbiddenf("Service tokens cannot create service tokens").WithCode("PermissionDenied")
	}
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "" || len(name) > 256:
		return ServiceToken{}, "", invalidST("name", "name must be 1 to 256 characters")
	case len(req.Scopes) == 0 || len(req.Scopes) > 100:
		return ServiceToken{}, "", invalidST("scopes", "scopes must hold 1 to 100 entries")
	case req.ExpiresIn != nil && (*req.ExpiresIn < 0 || *req.ExpiresIn > 100*365*24*3600):
		return ServiceToken{}, "", invalidST("expiresIn", "expiresIn must be a number of seconds or null")
	}
	if _, err := uuid.Parse(req.ProjectID); err != nil {
		return ServiceToken{}, "", errs.NotFoundf("Project with ID '%s' not found", req.ProjectID)
	}
	var perms []string
	for _, p := range req.Permissions {
		switch p {
		case PermRead, PermWrite:
			if !slices.Contains(perms, p) {
				perms = append(perms, p)
			}
		case "readValue": // Infisical accepts it; read already covers values
		default:
			return ServiceToken{}, "", invalidST("permissions", "permissions must be \"read\" or \"write\"")
		}
	}
	scopes := make([]authz.TokenScope, len(req.Scopes))
	globBytes := 0
	for i, sc := range req.Scopes {
		env := strings.TrimSpace(sc.Environment)
		path := strings.TrimSpace(sc.SecretPath)
		if env == "" {
			return ServiceToken{}, "", invalidST("scopes", "scope environment is required")
		}
		if !authz.IsGlob(path) {
			np, err := project.NormalizePath(path)
			if err != nil {
				return ServiceToken{}, "", invalidST("scopes", "scope secretPath is invalid")
			}
			path = np
		} else if !strings.HasPrefix(path, "/") {
			return ServiceToken{}, "", invalidST("scopes", "scope secretPath must start with /")
		}
		scopes[i] = authz.TokenScope{Environment: env, SecretPath: path}
		if globBytes += len(path); globBytes > authz.MaxGlobBytes {
			// As a role's $glob patterns: each compiles to a regular
			// expression for every request that loads the token.
			return ServiceToken{}, "", invalidST("scopes", "the scopes' secretPath patterns are at most %d bytes together", authz.MaxGlobBytes)
		}
	}
	if _, err := authz.ServiceTokenRules(scopes, true, true); err != nil {
		return ServiceToken{}, "", invalidST("scopes", "scope secretPath is not a valid pattern")
	}
	grants, _ := authz.ServiceTokenRules(scopes, slices.Contains(perms, PermRead), slices.Contains(perms, PermWrite))
	set, err := s.authz.ProjectPermissions(ctx, actor, req.ProjectID)
	if err != nil {
		return ServiceToken{}, "", err
	}
	if err := set.Check(authz.ActCreate, authz.SubServiceTokens, nil); err != nil {
		return ServiceToken{}, "", err
	}
	for _, sc := range scopes {
		if err := set.Check(authz.ActCreate, authz.SubSecrets, &authz.Fields{Environment: sc.Environment, SecretPath: sc.SecretPath}); err != nil {
			return ServiceToken{}, "", err
		}
		if _, _, err := s.envs.ResolveFolder(ctx, req.ProjectID, sc.Environment, "/"); err != nil {
			if errs.Is(err, errs.NotFound) {
				return ServiceToken{}, "", errs.NotFoundf("One or more selected environments not found")
			}
			return ServiceToken{}, "", err
		}
	}
	// A token reaches its scopes' paths and every folder below them, with
	// the rights its permissions give: its creator must hold them there (a
	// role kept out of a subfolder, or from reading, cannot mint a token
	// that reads it).
	if !reaches(set, grants) {
		return ServiceToken{}, "", errs.Forbiddenf("Failed to create the service token: it would allow more than you may do in its scopes").WithCode("PermissionBoundaryError")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := ServiceToken{ID: NewID(), ProjectID: req.ProjectID, Name: name, Scopes: scopes, Permissions: perms,
		CreatedBy: actor.ID, CreatedByType: string(actor.Kind), CreatedAt: now, UpdatedAt: now}
	if t.Permissions == nil {
		t.Permissions = []string{}
	}
	if req.ExpiresIn != nil && *req.ExpiresIn > 0 {
		exp := now.Add(time.Duration(*req.ExpiresIn) * time.Second)
		t.ExpiresAt = &exp
	}
	// A token lives on whether or not its creator stays a member: one that
	// outlasts the creator's temporary access needs the same rights held
	// for good.
	if until, temporary := set.Temporary(); temporary && (t.ExpiresAt == nil || t.ExpiresAt.After(until)) {
		lasting := set.Lasting()
		ok := lasting.Can(authz.ActCreate, authz.SubServiceTokens, nil) && reaches(lasting, grants)
		for _, sc := range scopes {
			ok = ok && lasting.Can(authz.ActCreate, authz.SubSecrets, &authz.Fields{Environment: sc.Environment, SecretPath: sc.SecretPath})
		}
		if !ok {
			return ServiceToken{}, "", errs.Forbiddenf("Failed to create the service token: it would outlast the temporary access you hold its scopes by").WithCode("PermissionBoundaryError")
		}
	}
	secret := randomHex(32)
	h, err := s.hash(ctx, secret)
	if err != nil {
		return ServiceToken{}, "", err
	}
	ev := audit.New(actor, "create-service-token", map[string]any{"name": t.Name, "scopes": scopeMeta(t.Scopes)}).InProject(t.ProjectID, "")
	if err := s.store.CreateServiceToken(ctx, t, hex.EncodeToString(h), ev); err != nil {
		return ServiceToken{}, "", err
	}
	return t, ServiceTokenPrefix + t.ID + "." + secret, nil
}

// reaches reports whether set lets its holder do, throughout each rule's
// reach, what a token's rules (grants, ServiceTokenRules) allow there: read
// secrets, values included (read or readValue, with no denial of reading
// that could apply), and for a write token create, edit and delete
// secrets, folders and imports. Reading folders and imports (names and
// where imports point, no value: an imported secret is read under its own
// path's rules) is not asked of the creator, so roles written before those
// subjects existed still make read tokens.
func reaches(set authz.Set, grants []authz.Rule) bool {
	reading := []authz.Action{authz.ActRead, authz.ActReadValue}
	for _, r := range grants {
		for _, a := range r.Actions {
			switch {
			case r.Subject == authz.SubSecrets && a == authz.ActRead:
				if !set.AllowsThroughout(authz.SubSecrets, reading, append(reading, authz.ActDescribeSecret), r.Conditions) {
					return false
				}
			case a == authz.ActCreate || a == authz.ActEdit || a == authz.ActDelete:
				if !set.AllowsThroughout(r.Subject, []authz.Action{a}, []authz.Action{a}, r.Conditions) {
					return false
				}
			}
		}
	}
	return true
}

func scopeMeta(scopes []authz.TokenScope) []map[string]any {
	out := make([]map[string]any, len(scopes))
	for i, sc := range scopes {
		out[i] = map[string]any{"environment": sc.Environment, "secretPath": sc.SecretPath}
	}
	return out
}

// List returns a project's service tokens, newest first.
func (s *ServiceTokens) List(ctx context.Context, actor authz.Actor, projectID string) ([]ServiceToken, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, errs.NotFoundf("Project with ID '%s' not found", projectID)
	}
	set, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return nil, err
	}
	if err := set.Check(authz.ActRead, authz.SubServiceTokens, nil); err != nil {
		return nil, err
	}
	return s.store.ServiceTokens(ctx, projectID)
}

// Delete removes a service token; it stops working at once.
func (s *ServiceTokens) Delete(ctx context.Context, actor authz.Actor, id string) (ServiceToken, error) {
	notFound := errs.NotFoundf("Service token with ID '%s' not found", id)
	if _, err := uuid.Parse(id); err != nil {
		return ServiceToken{}, notFound
	}
	t, _, err := s.store.ServiceTokenByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return ServiceToken{}, notFound
	}
	if err != nil {
		return ServiceToken{}, err
	}
	set, err := s.authz.ProjectPermissions(ctx, actor, t.ProjectID)
	if errs.Is(err, errs.NotFound) {
		return ServiceToken{}, notFound
	}
	if err != nil {
		return ServiceToken{}, err
	}
	if err := set.Check(authz.ActDelete, authz.SubServiceTokens, nil); err != nil {
		return ServiceToken{}, err
	}
	ev := audit.New(actor, "delete-service-token", map[string]any{"name": t.Name, "scopes": scopeMeta(t.Scopes)}).InProject(t.ProjectID, "")
	if err := s.store.DeleteServiceToken(ctx, id, ev); err != nil {
		if errs.Is(err, errs.NotFound) {
			return ServiceToken{}, notFound
		}
		return ServiceToken{}, err
	}
	return t, nil
}

// Self returns the record of the service token the actor authenticated with.
func (s *ServiceTokens) Self(ctx context.Context, actor authz.Actor) (ServiceToken, error) {
	if actor.Kind != authz.ActorServiceToken {
		return ServiceToken{}, errs.NotFoundf("Service token with ID '%s' not found", actor.ID)
	}
	t, _, err := s.store.ServiceTokenByID(ctx, actor.ID)
	if errs.Is(err, errs.NotFound) {
		return ServiceToken{}, errs.Unauthorizedf("Invalid service token")
	}
	return t, err
}

// Authenticate checks "st.<id>.<secret>": the row is found by id and the
// secret's keyed hash compared in constant time. Unknown, deleted, expired
// and wrong tokens are all 401. A fourth part ("st.<id>.<secret>.<key>", the
// end-to-end key Infisical's clients append and its CLI requires) is
// ignored, as Infisical's server does.
func (s *ServiceTokens) Authenticate(ctx context.Context, tok, ip, userAgent string) (authz.Actor, error) {
	return s.authenticate(ctx, tok, ip, userAgent, true)
}

// authenticate is Authenticate; without use it notes no last use (Recheck).
func (s *ServiceTokens) authenticate(ctx context.Context, tok, ip, userAgent string, use bool) (authz.Actor, error) {
	bad := errs.Unauthorizedf("Invalid service token")
	id, secret, ok := strings.Cut(strings.TrimPrefix(tok, ServiceTokenPrefix), ".")
	secret, _, _ = strings.Cut(secret, ".")
	if !ok || secret == "" || len(secret) > 256 {
		return authz.Actor{}, bad
	}
	if _, err := uuid.Parse(id); err != nil {
		return authz.Actor{}, bad
	}
	h, err := s.hash(ctx, secret)
	if err != nil {
		return authz.Actor{}, err
	}
	now := s.now()
	row, err := cache.Load(ctx, s.rows, id, now, func(ctx context.Context) (serviceTokenRow, time.Time, error) {
		t, stored, err := s.store.ServiceTokenByID(ctx, id)
		if err != nil {
			return serviceTokenRow{}, time.Time{}, err
		}
		r := serviceTokenRow{t: t, rules: &tokenRules{}}
		if h, err := hex.DecodeString(stored); err == nil {
			r.hash = h
		}
		var until time.Time
		if t.ExpiresAt != nil {
			until = *t.ExpiresAt
		}
		return r, until, nil
	})
	if errs.Is(err, errs.NotFound) {
		return authz.Actor{}, bad
	}
	if err != nil {
		return authz.Actor{}, err
	}
	t := row.t
	if row.hash == nil || !hmac.Equal(h, row.hash) {
		return authz.Actor{}, bad
	}
	if t.Expired(now) {
		return authz.Actor{}, errs.Unauthorizedf("Service token has expired")
	}
	rules, err := row.rules.get(t)
	if err != nil {
		return authz.Actor{}, errs.Internalf(err, "stored service token %s has bad scopes", t.ID)
	}
	// The last use is written with the access tokens' (LastUse), not here.
	if use {
		s.svc.LastUse.noteService(t.ID, now)
	}
	return authz.Actor{Kind: authz.ActorServiceToken, ID: t.ID, OrgID: t.OrgID, Name: t.Name, TokenID: t.ID,
		AuthMethod: "service-token", IP: ip, UserAgent: userAgent,
		Service: &authz.ServiceScope{ProjectID: t.ProjectID, Rules: rules, Scopes: t.Scopes,
			CreatorKind: authz.ActorKind(t.CreatedByType), CreatorID: t.CreatedBy}}, nil
}
