// Package dynamic issues short-lived credentials in other systems: dynamic
// secrets (a provider and its admin inputs) and their leases, whose rows are
// written before any credential exists and revoked by a worker on every node.
package dynamic

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Secret is a dynamic secret: how to make credentials in one target.
type Secret struct {
	ID               string
	ProjectID        string
	FolderID         string
	Env              string
	Path             string
	Name             string
	Type             string
	Inputs           json.RawMessage // decrypted; never logged
	DefaultTTL       string
	MaxTTL           string
	UsernameTemplate string
	Metadata         []Metadata
	Status           string
	StatusDetails    string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// RootCredentialVisible is set on a secret returned to a caller allowed
	// to read its root credential: Inputs may be shown in clear. Everyone
	// else gets its secret inputs masked.
	RootCredentialVisible bool
}

// Metadata is a key/value label.
type Metadata struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Bounds on a dynamic secret's metadata and on a folder's dynamic secrets:
// a folder's listing (and every lease answer) carries them whole, and a
// member who may create dynamic secrets could otherwise grow every
// reader's answer without end (5 secrets of 340,000 empty entries made one
// listing 37 MB).
const (
	MaxMetadataEntries    = 100
	MaxMetadataKeyBytes   = 128
	MaxMetadataValueBytes = 4 << 10
	MaxMetadataBytes      = 16 << 10 // keys and values together
	MaxPerFolder          = 1000
)

// TooManyInFolder refuses a dynamic secret past MaxPerFolder.
func TooManyInFolder(n int) error {
	return errs.BadRequest("The folder has %d dynamic secrets, the most it may have; delete one first", n)
}

// checkMetadata validates metadata: at most MaxMetadataEntries entries,
// keys 1 to MaxMetadataKeyBytes bytes, values at most MaxMetadataValueBytes,
// MaxMetadataBytes in all, all valid UTF-8. The answers name no value.
func checkMetadata(md []Metadata) error {
	if len(md) > MaxMetadataEntries {
		return invalidField("metadata", "Dynamic secret metadata may hold at most %d entries", MaxMetadataEntries)
	}
	total := 0
	for _, m := range md {
		if m.Key == "" || len(m.Key) > MaxMetadataKeyBytes || !utf8.ValidString(m.Key) {
			return invalidField("metadata", "Dynamic secret metadata keys must be 1 to %d bytes of UTF-8", MaxMetadataKeyBytes)
		}
		if len(m.Value) > MaxMetadataValueBytes || !utf8.ValidString(m.Value) {
			return invalidField("metadata", "Dynamic secret metadata values must be at most %d bytes of UTF-8", MaxMetadataValueBytes)
		}
		total += len(m.Key) + len(m.Value)
	}
	if total > MaxMetadataBytes {
		return invalidField("metadata", "Dynamic secret metadata may hold at most %d bytes of keys and values", MaxMetadataBytes)
	}
	return nil
}

// Lease states.
const (
	Creating     = "creating"
	Active       = "active"
	Revoking     = "revoking"
	Revoked      = "revoked"
	RevokeFailed = "revoke_failed"
)

// Lease is one issued credential.
type Lease struct {
	ID              string
	DynamicSecretID string
	ProjectID       string
	Username        string
	Data            map[string]any // decrypted credentials; empty until active
	Config          json.RawMessage
	Status          string
	StatusDetails   string
	ExpireAt        time.Time
	DueAt           time.Time
	Attempts        int
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Cleanup is the role of a revoked lease that was disabled in its target
// and waits there to be dropped (two-phase revocation).
type Cleanup struct {
	LeaseID         string
	DynamicSecretID string
	Username        string
	DueAt           time.Time
	Attempts        int
	LastError       string
	CreatedAt       time.Time
}

// SealedSecret and SealedLease are what the store keeps.
type SealedSecret struct {
	Secret
	SealedInputs []byte
}

// SealedLease is a lease with its credentials encrypted.
type SealedLease struct {
	Lease
	SealedData []byte
	// SecretStamp, when set, is the dynamic secret's UpdatedAt as the lease
	// read it: the insert is refused (project.ErrStale) if the secret has
	// changed since, since the lease would be created with inputs that are
	// no longer the secret's. Not stored.
	SecretStamp time.Time
}

// Store is the storage dynamic secrets need.
type Store interface {
	CreateDynamicSecret(ctx context.Context, s SealedSecret, ev audit.Event) error
	// ProjectMoves returns a project's count of committed moves
	// (project.MoveGuard).
	ProjectMoves(ctx context.Context, projectID string) (int64, error)
	DynamicSecretByName(ctx context.Context, folderID, name string) (SealedSecret, error)
	DynamicSecretByID(ctx context.Context, id string) (SealedSecret, error)
	DynamicSecrets(ctx context.Context, folderID string) ([]SealedSecret, error)
	// UpdateDynamicSecret writes s if it is still as read, last updated at
	// prev (project.ErrStale if not). With retarget (its inputs now point
	// elsewhere) it is refused (ErrLeasesLeft) while a lease is live or a
	// cleanup pending: their principals are in the old target.
	UpdateDynamicSecret(ctx context.Context, s SealedSecret, prev time.Time, retarget bool, ev audit.Event) error
	// DeleteDynamicSecret deletes it with its (already revoked) lease rows
	// and its cleanups (done, or given up by a forced deletion); unless
	// forced, ErrLeasesLeft if a lease is live or a cleanup pending.
	DeleteDynamicSecret(ctx context.Context, id string, forced bool, ev audit.Event) error

	// InsertLease commits a lease row in state creating, before the target
	// is touched, unless the dynamic secret has limit leases not revoked
	// (ErrLeaseLimit) or is gone (errs.NotFound). Concurrent inserts for one
	// dynamic secret count each other exactly. limit < 1: no limit.
	InsertLease(ctx context.Context, l SealedLease, limit int, ev audit.Event) error
	// ActivateLease records the credentials of a created lease; false if the
	// lease stopped being 'creating' meanwhile.
	ActivateLease(ctx context.Context, id string, data []byte, dueAt time.Time) (bool, error)
	LeaseByID(ctx context.Context, id string) (SealedLease, error)
	// Leases lists a dynamic secret's leases that are not revoked.
	Leases(ctx context.Context, dynamicSecretID string) ([]SealedLease, error)
	// RenewLease moves an active lease's expiry from from to expireAt; NotFound
	// if the lease is no longer active or its expiry is no longer from (a
	// concurrent renewal), so two renewals never count as one.
	RenewLease(ctx context.Context, id string, from, expireAt time.Time, ev audit.Event) error
	// ClaimLease marks one live lease revoking until claimUntil; false if it is not live.
	ClaimLease(ctx context.Context, id string, claimUntil time.Time) (bool, error)
	// ClaimLeases is ClaimLease for many leases in one statement; it returns
	// the ids it claimed.
	ClaimLeases(ctx context.Context, ids []string, claimUntil time.Time) ([]string, error)
	// ExtendClaims moves the claim of those listed leases that are still
	// being revoked under the claim that ends at from (not yet recorded,
	// not claimed since by another) to end at to. On PostgreSQL it skips a
	// lease whose row is locked (being recorded or claimed).
	ExtendClaims(ctx context.Context, ids []string, from, to time.Time) error
	// ClaimDueLeases marks up to limit due leases of a dynamic secret revoking
	// until claimUntil (FOR UPDATE SKIP LOCKED on PostgreSQL) and returns them.
	ClaimDueLeases(ctx context.Context, dynamicSecretID string, now, claimUntil time.Time, limit int) ([]SealedLease, error)
	// DueSecrets lists up to limit dynamic secrets, other than except, with
	// leases due at now, the longest-due first. It only reads.
	DueSecrets(ctx context.Context, now time.Time, except []string, limit int) ([]string, error)
	// FinishRevoke records a revocation outcome: ok → revoked; otherwise
	// revoke_failed with details, retried at retryAt.
	// evs are recorded in the same transaction. A lease already revoked is
	// left as it is, without evs. It reports whether it recorded.
	FinishRevoke(ctx context.Context, id string, ok bool, details string, retryAt time.Time, evs ...audit.Event) (bool, error)
	// ForceRevoked records a forced revocation the target refused: the
	// lease revoked with details, and a cleanup of its user queued (due at
	// retryAt) in the same transaction, with evs. It reports whether it
	// recorded (not when the lease was already revoked).
	ForceRevoked(ctx context.Context, id, details string, retryAt time.Time, evs ...audit.Event) (bool, error)
	// RevokedMany marks leases revoked in one write, with their audit
	// events (evs[i] is ids[i]'s). A lease already revoked is left as it is,
	// without its event. It returns the ids it marked.
	RevokedMany(ctx context.Context, ids []string, evs []audit.Event) ([]string, error)
	// DisabledMany marks leases revoked whose credentials were disabled but
	// not removed, and queues a cleanup of each one's user (due at once), in
	// the same transaction, with their audit events (evs[i] is ids[i]'s). A
	// lease already revoked is left as it is, without event and (unless
	// its one-phase revocation commits between the two statements, when
	// the cleanup finds its user gone) without cleanup. It returns the ids
	// it marked.
	DisabledMany(ctx context.Context, ids []string, evs []audit.Event) ([]string, error)
	// ClaimCleanups takes up to limit due cleanups of one dynamic secret (the
	// one with the longest-due cleanup), moving their due time to claimUntil.
	ClaimCleanups(ctx context.Context, now, claimUntil time.Time, limit int) ([]Cleanup, error)
	// FinishCleanups records the outcome of cleanups: ok deletes them (the
	// users are gone); otherwise they are retried at retryAt, with details.
	FinishCleanups(ctx context.Context, leaseIDs []string, ok bool, details string, retryAt time.Time) error
	// Cleanups lists a dynamic secret's pending cleanups, claimed or not.
	Cleanups(ctx context.Context, dynamicSecretID string) ([]Cleanup, error)
	// NextCleanup is the earliest due time of a cleanup, or zero. It only reads.
	NextCleanup(ctx context.Context) (time.Time, error)
	// NextDue is the earliest due time of live work of dynamic secrets other
	// than except, or zero.
	NextDue(ctx context.Context, except ...string) (time.Time, error)
	CountLeases(ctx context.Context, status string) (int, error)
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Folders resolves folders; project.Service implements it.
type Folders interface {
	ResolveFolder(ctx context.Context, projectID, envSlug, path string) (project.Folder, project.Environment, error)
	IDBySlug(ctx context.Context, actor authz.Actor, slug string) (string, error)
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Metrics receives lease engine events; nil-safe no-op when absent.
type Metrics interface {
	Revoked(ok bool, lag time.Duration)
}

// Service implements dynamic secrets and leases.
type Service struct {
	store   Store
	folders Folders
	authz   Authorizer
	keys    *keyring.Keyring
	now     func() time.Time
	wake    chan struct{}
	metrics Metrics
	targets *TargetPolicy
	log     *slog.Logger

	// CreatingTimeout: see DefaultCreatingTimeout. It must exceed ProviderTimeout.
	CreatingTimeout time.Duration
	// MaxLeases: see DefaultMaxLeases.
	MaxLeases int
}

// NewService returns the dynamic secret service.
func NewService(st Store, folders Folders, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, folders: folders, authz: az, keys: kr, now: now, wake: make(chan struct{}, 1),
		CreatingTimeout: DefaultCreatingTimeout, MaxLeases: DefaultMaxLeases}
}

// SetLogger sets where failures whose detail clients do not see are logged.
func (s *Service) SetLogger(l *slog.Logger) { s.log = l }

func (s *Service) logger() *slog.Logger {
	if s.log == nil {
		return slog.Default()
	}
	return s.log
}

// dialCtx returns ctx carrying the target policy's address check for p's
// connections, which each applies to the address it dials.
func (s *Service) dialCtx(ctx context.Context, p provider.Provider) context.Context {
	return provider.WithChecker(ctx, s.targets.checkerFor(p))
}

// SetTargetPolicy installs the policy of which hosts dynamic secrets may
// connect to; without one, DefaultDeny applies.
func (s *Service) SetTargetPolicy(p *TargetPolicy) { s.targets = p }

// SetMetrics installs a metrics sink.
func (s *Service) SetMetrics(m Metrics) { s.metrics = m }

// Scope addresses a folder the way dynamic-secret clients do: by project slug.
type Scope struct {
	ProjectSlug string
	ProjectID   string
	Env         string
	Path        string
}

func invalidField(field, format string, args ...any) error {
	e := errs.Invalidf(format, args...)
	e.Details = []string{field}
	return e
}

func (s *Service) resolve(ctx context.Context, actor authz.Actor, sc Scope) (project.Folder, project.Environment, authz.Set, string, error) {
	pid := sc.ProjectID
	if pid == "" {
		if sc.ProjectSlug == "" {
			return project.Folder{}, project.Environment{}, authz.Set{}, "", invalidField("projectSlug", "Required")
		}
		var err error
		if pid, err = s.folders.IDBySlug(ctx, actor, sc.ProjectSlug); err != nil {
			return project.Folder{}, project.Environment{}, authz.Set{}, "", err
		}
	}
	if sc.Env == "" {
		return project.Folder{}, project.Environment{}, authz.Set{}, "", invalidField("environmentSlug", "Required")
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, pid)
	if err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, "", err
	}
	path := sc.Path
	if path == "" {
		path = "/"
	}
	f, env, err := s.folders.ResolveFolder(ctx, pid, sc.Env, path)
	if err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, "", err
	}
	return f, env, perms, pid, nil
}

func check(perms authz.Set, action string, env project.Environment, f project.Folder) error {
	return perms.Check(action, authz.SubDynamicSecrets, &authz.Fields{Environment: env.Slug, SecretPath: f.Path})
}

func inputsAD(id string) string { return keyring.AD("dynamic_secrets", "inputs", id) }

func (s *Service) open(ctx context.Context, ss SealedSecret, env, path string) (Secret, error) {
	b, err := s.keys.Open(ctx, keyring.Project(ss.ProjectID), ss.SealedInputs, inputsAD(ss.ID))
	if err != nil {
		return Secret{}, err
	}
	sec := ss.Secret
	sec.Inputs, sec.Env, sec.Path = b, env, path
	return sec, nil
}

// NewSecret is a create request.
type NewSecret struct {
	Name             string
	Type             string
	Inputs           json.RawMessage
	DefaultTTL       string
	MaxTTL           string
	UsernameTemplate string
	Metadata         []Metadata
}

func validName(n string) bool { return project.ValidSlug(n, 1, 64) }

// instantiate decodes inputs with the provider's factory and tests the connection.
func instantiate(ctx context.Context, typ string, inputs json.RawMessage) (provider.Provider, error) {
	reg, ok := provider.Lookup(typ)
	if !ok {
		return nil, invalidField("provider.type", "Unknown provider type %q (known: %s)", truncate(typ, 32), strings.Join(provider.Types(), ", "))
	}
	p, err := reg.New(inputs)
	if err != nil {
		return nil, errs.BadRequest("%s", err.Error())
	}
	return p, nil
}

// canonical re-encodes inputs under the provider's declared names, so that
// what is stored, merged and redacted is what the provider decodes.
func canonical(typ string, inputs json.RawMessage) (map[string]json.RawMessage, error) {
	reg, ok := provider.Lookup(typ)
	if !ok {
		return nil, invalidField("provider.type", "Unknown provider type %q (known: %s)", truncate(typ, 32), strings.Join(provider.Types(), ", "))
	}
	m, err := reg.Canonical(inputs)
	if err != nil {
		return nil, invalidField("provider.inputs", "%s", err.Error())
	}
	return m, nil
}

// errTarget is what a client learns when the target cannot be reached or
// refuses the admin credentials: the detail (which would make the server a
// port scanner, and can quote what answered on the port) goes to the server
// log only.
var errTarget = "Failed to connect with provider: the target could not be reached or did not accept the configured credentials (the detail is in the server log)"

// validate tests the connection; a failure is logged with its detail, and
// audited and reported to the client without it: the audit log is read by
// every organization member.
func (s *Service) validate(ctx context.Context, actor authz.Actor, p provider.Provider, sec Secret, op string) error {
	vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := s.targets.Check(vctx, p)
	if err == nil {
		// Unpooled: nothing made for the inputs checked outlives the check.
		err = p.Validate(provider.Unpooled(s.dialCtx(vctx, p)))
	}
	if err == nil {
		return nil
	}
	s.logger().WarnContext(ctx, "dynamic secret target check failed", "op", op, "dynamicSecret", sec.Name, "type", sec.Type,
		"error", truncate(err.Error(), 400))
	msg := errTarget
	if pe, ok := errors.AsType[*policyError](err); ok {
		msg = pe.Error()
	}
	ev := secretEvent(actor, op+"-dynamic-secret-failed", sec)
	ev.Metadata["reason"] = msg
	if aerr := s.store.AppendAudit(ctx, ev); aerr != nil {
		s.logger().ErrorContext(ctx, "audit of a failed dynamic secret check", "error", aerr)
	}
	return errs.BadRequest("%s", msg)
}

func checkTTLs(defTTL, maxTTL string) error {
	d, err := ParseTTL(defTTL)
	if err != nil {
		return err
	}
	if maxTTL != "" {
		m, err := ParseTTL(maxTTL)
		if err != nil {
			return err
		}
		if d > m {
			return invalidField("defaultTTL", "defaultTTL cannot be larger than maxTTL")
		}
	}
	return nil
}

func secretEvent(actor authz.Actor, typ string, sec Secret) audit.Event {
	return audit.New(actor, typ, map[string]any{"dynamicSecretId": sec.ID, "dynamicSecretName": sec.Name,
		"dynamicSecretType": sec.Type, "environment": sec.Env, "secretPath": sec.Path}).InProject(sec.ProjectID, "")
}

// Create makes a dynamic secret after checking its inputs against the
// target. It is a create (project.Place): once the target answered, the
// folder is resolved and checked again, and no rename or deletion of it
// commits between that check and the write.
func (s *Service) Create(ctx context.Context, actor authz.Actor, sc Scope, n NewSecret) (Secret, error) {
	f, env, perms, pid, err := s.resolve(ctx, actor, sc)
	if err != nil {
		return Secret{}, err
	}
	if err := mayCreate(perms, env, f); err != nil {
		return Secret{}, err
	}
	n.Name = strings.ToLower(strings.TrimSpace(n.Name))
	if !validName(n.Name) {
		return Secret{}, invalidField("name", "name must be 1 to 64 lowercase letters, digits and hyphens")
	}
	if err := checkTTLs(n.DefaultTTL, n.MaxTTL); err != nil {
		return Secret{}, err
	}
	if err := checkTemplate(n.UsernameTemplate); err != nil {
		return Secret{}, err
	}
	if err := checkMetadata(n.Metadata); err != nil {
		return Secret{}, err
	}
	m, err := canonical(n.Type, n.Inputs)
	if err != nil {
		return Secret{}, err
	}
	n.Inputs, _ = json.Marshal(m)
	p, err := instantiate(ctx, n.Type, n.Inputs)
	if err != nil {
		return Secret{}, err
	}
	if _, err := s.store.DynamicSecretByName(ctx, f.ID, n.Name); err == nil {
		return Secret{}, errs.BadRequest("Provided dynamic secret already exists under the folder")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	sec := Secret{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: pid, FolderID: f.ID, Env: env.Slug, Path: f.Path, Name: n.Name,
		Type: n.Type, Inputs: n.Inputs, DefaultTTL: n.DefaultTTL, MaxTTL: n.MaxTTL, UsernameTemplate: n.UsernameTemplate,
		Metadata: n.Metadata, CreatedAt: now, UpdatedAt: now}
	if err := s.validate(ctx, actor, p, sec, "create"); err != nil {
		return Secret{}, err
	}
	sealed, err := s.keys.Seal(ctx, keyring.Project(pid), n.Inputs, inputsAD(sec.ID))
	if err != nil {
		return Secret{}, err
	}
	sc.ProjectID = pid // as resolved: a slug may name another project by the time Place resolves again
	err = project.Place(ctx, s.store, pid, func(ctx context.Context) error {
		if f, env, perms, _, err = s.resolve(ctx, actor, sc); err != nil {
			return err
		}
		if err := mayCreate(perms, env, f); err != nil {
			return err
		}
		sec.FolderID, sec.Env, sec.Path = f.ID, env.Slug, f.Path
		err := s.store.CreateDynamicSecret(ctx, SealedSecret{Secret: sec, SealedInputs: sealed}, secretEvent(actor, "create-dynamic-secret", sec))
		if errs.Is(err, errs.Conflict) && !errors.Is(err, project.ErrMoved) {
			return errs.BadRequest("Provided dynamic secret already exists under the folder")
		}
		return err
	})
	if err != nil {
		return Secret{}, err
	}
	sec.RootCredentialVisible = check(perms, authz.ActReadRootCredential, env, f) == nil
	return sec, nil
}

// mayCreate checks that perms may create a dynamic secret in f: with
// create-root-credential, or create.
func mayCreate(perms authz.Set, env project.Environment, f project.Folder) error {
	if err := check(perms, authz.ActCreateRootCredential, env, f); err != nil {
		if check(perms, authz.ActCreate, env, f) != nil {
			return err
		}
	}
	return nil
}

// byName loads a dynamic secret the actor may act on with action (or, when
// given, any of the alternatives).
func (s *Service) byName(ctx context.Context, actor authz.Actor, sc Scope, name, action string, alternatives ...string) (Secret, authz.Set, error) {
	f, env, perms, _, err := s.resolve(ctx, actor, sc)
	if err != nil {
		return Secret{}, authz.Set{}, err
	}
	if err := check(perms, action, env, f); err != nil {
		if !slices.ContainsFunc(alternatives, func(a string) bool { return check(perms, a, env, f) == nil }) {
			return Secret{}, authz.Set{}, err
		}
	}
	ss, err := s.store.DynamicSecretByName(ctx, f.ID, strings.ToLower(name))
	if errs.Is(err, errs.NotFound) {
		return Secret{}, authz.Set{}, errs.NotFoundf("Dynamic secret with name '%s' in folder with path '%s' not found", truncate(name, 64), f.Path)
	}
	if err != nil {
		return Secret{}, authz.Set{}, err
	}
	sec, err := s.open(ctx, ss, env.Slug, f.Path)
	sec.RootCredentialVisible = check(perms, authz.ActReadRootCredential, env, f) == nil
	return sec, perms, err
}

// Get returns a dynamic secret (its inputs are redacted by the caller's view).
// Get needs read; its inputs are in clear only for read-root-credential.
func (s *Service) Get(ctx context.Context, actor authz.Actor, sc Scope, name string) (Secret, error) {
	sec, _, err := s.byName(ctx, actor, sc, name, authz.ActRead, authz.ActReadRootCredential)
	if err != nil {
		return Secret{}, err
	}
	return sec, s.store.AppendAudit(ctx, secretEvent(actor, "get-dynamic-secret", sec))
}

// List returns a folder's dynamic secrets.
func (s *Service) List(ctx context.Context, actor authz.Actor, sc Scope) ([]Secret, error) {
	f, env, perms, _, err := s.resolve(ctx, actor, sc)
	if err != nil {
		return nil, err
	}
	if err := check(perms, authz.ActRead, env, f); err != nil {
		if check(perms, authz.ActReadRootCredential, env, f) != nil {
			return nil, err
		}
	}
	all, err := s.store.DynamicSecrets(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	out := make([]Secret, 0, len(all))
	for _, ss := range all {
		sec := ss.Secret
		sec.Env, sec.Path = env.Slug, f.Path
		out = append(out, sec)
	}
	return out, nil
}

// Change is an update; nil fields stay. Inputs are merged over the stored ones.
type Change struct {
	Inputs           json.RawMessage
	DefaultTTL       *string
	MaxTTL           *string
	NewName          *string
	UsernameTemplate *string
	Metadata         *[]Metadata
}

// Update changes a dynamic secret, re-checking the target when inputs
// change. Inputs are merged over the stored ones, with two rules that keep
// edit-root-credential from reaching further than the stored credential:
// changing where it goes (a Target input) requires sending every stored
// Secret input again, and changing what runs with it (a Statement input)
// requires create-root-credential. A masked value sent back means unchanged.
//
// A change of a Target input is refused (400) while the secret has a lease
// not revoked or a user still to drop: their principals are in the current
// target, and revoking them through the new inputs would miss them. The
// change is applied to the secret as it is when written (read and applied
// again if another change came first).
func (s *Service) Update(ctx context.Context, actor authz.Actor, sc Scope, name string, c Change) (Secret, error) {
	sec, err := project.RetryStale(ctx, "dynamic secret", func() (Secret, error) { return s.update(ctx, actor, sc, name, c) })
	if errors.Is(err, ErrLeasesLeft) {
		return Secret{}, errs.BadRequest("Revoke the dynamic secret's leases before changing where it connects or its admin user: their users are in the current target, made by the current admin")
	}
	return sec, err
}

func (s *Service) update(ctx context.Context, actor authz.Actor, sc Scope, name string, c Change) (Secret, error) {
	sec, perms, err := s.byName(ctx, actor, sc, name, authz.ActEditRootCredential)
	if err != nil {
		return Secret{}, err
	}
	prev, retarget := sec.UpdatedAt, false
	if len(c.Inputs) > 0 && string(c.Inputs) != "null" {
		reg, _ := provider.Lookup(sec.Type)
		stored, err := canonical(sec.Type, sec.Inputs)
		if err != nil {
			return Secret{}, errs.Internalf(err, "stored inputs")
		}
		patch, err := canonical(sec.Type, c.Inputs)
		if err != nil {
			return Secret{}, invalidField("data.inputs", "inputs must be an object with the provider's fields")
		}
		var moved, changedStmt []string
		for k, v := range patch {
			in, _ := reg.Input(k)
			if in.Secret && string(v) == `"`+provider.Masked+`"` {
				delete(patch, k)
				continue
			}
			if sameJSON(stored[k], v) {
				continue
			}
			if in.Target {
				moved = append(moved, k)
			}
			if in.Statement {
				changedStmt = append(changedStmt, k)
			}
		}
		if len(moved) > 0 {
			retarget = true
			for _, in := range reg.Inputs {
				if _, had := stored[in.Name]; in.Secret && had {
					if _, sent := patch[in.Name]; !sent {
						slices.Sort(moved)
						return Secret{}, invalidField("data.inputs."+in.Name, "Changing %s requires sending %s again", strings.Join(moved, ", "), in.Name)
					}
				}
			}
		}
		if len(changedStmt) > 0 {
			f := &authz.Fields{Environment: sec.Env, SecretPath: sec.Path}
			if err := perms.Check(authz.ActCreateRootCredential, authz.SubDynamicSecrets, f); err != nil {
				slices.Sort(changedStmt)
				return Secret{}, errs.Forbiddenf("Changing %s requires permission to create root credentials", strings.Join(changedStmt, ", ")).WithCode("PermissionDenied")
			}
		}
		for k, v := range patch {
			stored[k] = v
		}
		merged, _ := json.Marshal(stored)
		p, err := instantiate(ctx, sec.Type, merged)
		if err != nil {
			return Secret{}, err
		}
		if err := s.validate(ctx, actor, p, sec, "update"); err != nil {
			return Secret{}, err
		}
		if retarget {
			// Users of revoked leases still waiting to be dropped live on the
			// current target: drop them there before the secret points
			// elsewhere (the worker would drop names on the new one).
			if err := s.dropPending(ctx, sec); err != nil {
				return Secret{}, err
			}
		}
		sec.Inputs = merged
	}
	if c.DefaultTTL != nil && *c.DefaultTTL != "" {
		sec.DefaultTTL = *c.DefaultTTL
	}
	if c.MaxTTL != nil {
		sec.MaxTTL = *c.MaxTTL
	}
	if err := checkTTLs(sec.DefaultTTL, sec.MaxTTL); err != nil {
		return Secret{}, err
	}
	if c.UsernameTemplate != nil {
		if err := checkTemplate(*c.UsernameTemplate); err != nil {
			return Secret{}, err
		}
		sec.UsernameTemplate = *c.UsernameTemplate
	}
	if c.Metadata != nil {
		if err := checkMetadata(*c.Metadata); err != nil {
			return Secret{}, err
		}
		sec.Metadata = *c.Metadata
	}
	if c.NewName != nil && *c.NewName != "" && *c.NewName != sec.Name {
		nn := strings.ToLower(strings.TrimSpace(*c.NewName))
		if !validName(nn) {
			return Secret{}, invalidField("data.newName", "name must be 1 to 64 lowercase letters, digits and hyphens")
		}
		if _, err := s.store.DynamicSecretByName(ctx, sec.FolderID, nn); err == nil {
			return Secret{}, errs.BadRequest("Provided dynamic secret already exists under the folder")
		}
		sec.Name = nn
	}
	sec.Status, sec.StatusDetails = "", ""
	sec.UpdatedAt = project.NextStamp(s.now(), prev)
	sealed, err := s.keys.Seal(ctx, keyring.Project(sec.ProjectID), sec.Inputs, inputsAD(sec.ID))
	if err != nil {
		return Secret{}, err
	}
	return sec, s.store.UpdateDynamicSecret(ctx, SealedSecret{Secret: sec, SealedInputs: sealed}, prev, retarget, secretEvent(actor, "update-dynamic-secret", sec))
}

// Delete revokes every live lease of a dynamic secret, drops the disabled
// users of its revoked leases still waiting for it, then deletes it. If a
// revocation or a drop fails the secret stays (400) unless forced; forced
// deletion leaves credentials that could not be removed in the target.
func (s *Service) Delete(ctx context.Context, actor authz.Actor, sc Scope, name string, forced bool) (Secret, error) {
	sec, _, err := s.byName(ctx, actor, sc, name, authz.ActDeleteRootCredential)
	if err != nil {
		return Secret{}, err
	}
	// Leases created meanwhile (by requests that read the secret before the
	// deletion took it) are found by the deletion's transaction: revoked in
	// another round.
	for round := 1; ; round++ {
		leases, err := s.store.Leases(ctx, sec.ID)
		if err != nil {
			return Secret{}, err
		}
		if err := s.revokeAll(ctx, sec, leases, forced); err != nil {
			return Secret{}, err
		}
		// Users of revoked leases that are disabled but not yet dropped go
		// now, whether or not the worker is at them (dropping is
		// idempotent): the secret's deletion leaves no user behind, unless
		// forced.
		if err := s.dropPending(ctx, sec); err != nil && !forced {
			return Secret{}, err
		}
		err = s.store.DeleteDynamicSecret(ctx, sec.ID, forced, secretEvent(actor, "delete-dynamic-secret", sec))
		if errs.Is(err, errs.NotFound) { // deleted meanwhile by another request
			return Secret{}, errs.NotFoundf("Dynamic secret with name '%s' in folder with path '%s' not found", truncate(name, 64), sec.Path)
		}
		if !errors.Is(err, ErrLeasesLeft) {
			return sec, err
		}
		if round == 3 {
			return Secret{}, errs.Conflictf("Leases of this dynamic secret are being created while it is deleted; retry")
		}
	}
}

// revokeAll revokes a dynamic secret's live leases for its deletion. When
// the provider removes many users in one call, leases go dropBatch at a
// time (revokeGroup); one by one otherwise, and those a group did not
// claim. A lease it cannot revoke (unless forced), or that another request
// or node is revoking meanwhile, fails the deletion.
func (s *Service) revokeAll(ctx context.Context, sec Secret, leases []SealedLease, forced bool) error {
	p, err := s.provider(sec)
	br, batched := p.(provider.BatchRevoker)
	batched = batched && err == nil
	var down error // the target found unreachable: no later group calls it
	for group := range slices.Chunk(leases, dropBatch) {
		rest := group
		if batched && len(group) > 1 {
			if rest, err = s.revokeGroup(ctx, sec, p, br, group, forced, &down); err != nil {
				return err
			}
		}
		for _, l := range rest {
			got, err := s.revokeNow(ctx, sec, l.Lease, forced, true)
			if err != nil {
				return err
			}
			if got.Status == Revoking { // claimed by the worker or another request
				return errs.Conflictf("Lease %s is being revoked; retry shortly", got.ID)
			}
			if got.Status != Revoked {
				return errs.BadRequest("Failed to revoke lease %s (%s); retry, or delete with isForced", got.ID, got.StatusDetails)
			}
		}
	}
	return nil
}

// revokeGroup claims a group of leases in one statement, removes their
// users in one call to the target and records them revoked in one
// transaction with their events; it returns the leases it did not claim. If
// the call fails, the claimed leases are revoked one by one; if the target
// is unreachable (*down, kept for later groups), see unreachable.
func (s *Service) revokeGroup(ctx context.Context, sec Secret, p provider.Provider, br provider.BatchRevoker, group []SealedLease, forced bool, down *error) ([]SealedLease, error) {
	ids := make([]string, len(group))
	for i, l := range group {
		ids[i] = l.ID
	}
	claimed, err := s.store.ClaimLeases(ctx, ids, s.now().UTC().Add(claimLength))
	if err != nil {
		return nil, err
	}
	var mine, rest []SealedLease
	for _, l := range group {
		if slices.Contains(claimed, l.ID) {
			mine = append(mine, l)
		} else {
			rest = append(rest, l)
		}
	}
	if len(mine) == 0 {
		return rest, nil
	}
	rerr := *down
	if rerr == nil {
		names := make([]string, len(mine))
		for i, l := range mine {
			names[i] = l.Username
		}
		pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
		rerr = br.RevokeMany(pctx, names)
		cancel()
		if errors.Is(rerr, provider.ErrUnreachable) {
			// Unreachable also marks a session lost or timed out after
			// login: one lease alone tells whether the target is down, or
			// the group too much for it.
			pctx, cancel := context.WithTimeout(s.dialCtx(ctx, p), ProviderTimeout)
			if perr := p.Revoke(pctx, provider.RevokeRequest{Username: mine[0].Username}); errors.Is(perr, provider.ErrUnreachable) {
				*down = perr
			}
			cancel()
		}
	}
	switch {
	case *down != nil:
		// One by one would wait on the same target for each lease.
		return rest, s.unreachable(ctx, sec, mine, *down, forced)
	case rerr == nil:
		return rest, s.recordRevoked(context.WithoutCancel(ctx), sec, mine)
	}
	s.logger().Warn("batch revocation failed; revoking one by one", "dynamicSecret", sec.ID, "err", truncate(rerr.Error(), 250))
	for i, l := range mine {
		got, err := s.revokeClaimed(ctx, sec, l.Lease, forced, true)
		if err == nil && got.Status != Revoked {
			err = errs.BadRequest("Failed to revoke lease %s (%s); retry, or delete with isForced", got.ID, got.StatusDetails)
		}
		if err != nil {
			// The rest of the group is claimed by this deletion: give it
			// back rather than leave it claimed, and a retry refused, until
			// the claims run out.
			s.giveBack(ctx, sec, mine[i+1:], "deletion stopped: "+truncate(err.Error(), 200), false)
			return nil, err
		}
	}
	return rest, nil
}

// unreachable records the claimed leases of a deletion whose target could
// not be reached: forced (and the request still there), revoked without
// their principals, each with its event; otherwise given back to the worker,
// and the deletion refused.
func (s *Service) unreachable(ctx context.Context, sec Secret, leases []SealedLease, rerr error, forced bool) error {
	shown := truncate(s.shown(ctx, "revoke leases", rerr), 200)
	if !forced || ctx.Err() != nil {
		// Tried only if the request was still there: a cancelled one's
		// failure says nothing about the target.
		s.giveBack(ctx, sec, leases, "deletion stopped: "+shown, ctx.Err() == nil)
		return errs.BadRequest("Failed to revoke the leases: %s; retry, or delete with isForced", shown)
	}
	now := s.now().UTC()
	for _, l := range leases {
		details := "forced: not revoked: " + shown
		recorded, err := s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, true, details, now, revokeEvent(sec, l.Lease, details))
		if err != nil {
			return err
		}
		if recorded && s.metrics != nil {
			s.metrics.Revoked(false, 0)
		}
	}
	return nil
}

// giveBack hands claimed leases back to the worker: revoke_failed with
// details, due now. failed says their revocation was tried (the target
// could not be reached): each is then a failed revocation, with its audit
// event and in the metrics, as the worker records one; leases the deletion
// did not get to are only handed back.
func (s *Service) giveBack(ctx context.Context, sec Secret, leases []SealedLease, details string, failed bool) {
	now := s.now().UTC()
	for _, l := range leases {
		var evs []audit.Event
		if failed {
			evs = append(evs, revokeEvent(sec, l.Lease, details))
		}
		recorded, err := s.store.FinishRevoke(context.WithoutCancel(ctx), l.ID, false, details, now, evs...)
		if failed && recorded && err == nil && s.metrics != nil {
			s.metrics.Revoked(false, 0)
		}
	}
	s.wakeWorker()
}

// sameJSON reports whether two JSON values are equal.
func sameJSON(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Username templates: {{randomUsername}}, {{unixTimestamp}}, {{identity.name}}.
func checkTemplate(t string) error {
	if len(t) > 255 {
		return invalidField("usernameTemplate", "usernameTemplate must be at most 255 characters")
	}
	rest := t
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return invalidField("usernameTemplate", "unclosed {{ in usernameTemplate")
		}
		switch strings.TrimSpace(rest[i+2 : i+j]) {
		case "randomUsername", "unixTimestamp", "identity.name":
		default:
			return invalidField("usernameTemplate", "usernameTemplate may use {{randomUsername}}, {{unixTimestamp}} and {{identity.name}}")
		}
		rest = rest[i+j+2:]
	}
	return nil
}

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func random(alphabet string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// username renders the template; characters a database cannot take are
// replaced with '_', and the result is at most 32 characters (MySQL's limit).
// It always carries a random part, so that no template (such as
// "{{identity.name}}" alone) can name a principal that already exists: when
// the template has none, or truncation would cut it, at most 23 characters
// of the rendered name are kept and "_" and 8 random characters added.
func username(tmpl, identityName string, now time.Time) string {
	if strings.TrimSpace(tmpl) == "" {
		tmpl = "lbx_{{randomUsername}}"
	}
	rnd := random(lowerAlnum, 20)
	out := strings.NewReplacer("{{randomUsername}}", rnd, "{{ randomUsername }}", rnd,
		"{{unixTimestamp}}", strconv.FormatInt(now.Unix(), 10), "{{identity.name}}", identityName).Replace(tmpl)
	b := []byte(out)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 32 || !strings.Contains(string(b), rnd) {
		if len(b) > 23 {
			b = b[:23]
		}
		if len(b) > 0 {
			b = append(b, '_')
		}
		b = append(b, random(lowerAlnum, 8)...)
	}
	return string(b)
}

// dropPending drops, on sec's current target, the users of revoked leases
// that are disabled but not yet dropped.
func (s *Service) dropPending(ctx context.Context, sec Secret) error {
	cleanups, err := s.store.Cleanups(ctx, sec.ID)
	if err != nil || len(cleanups) == 0 {
		return err
	}
	names, ids := make([]string, len(cleanups)), make([]string, len(cleanups))
	for i, c := range cleanups {
		names[i], ids[i] = c.Username, c.LeaseID
	}
	failed, err := s.dropUsers(ctx, sec.ID, names)
	if err != nil {
		dropped, _ := splitDropped(ids, names, failed)
		if ferr := s.store.FinishCleanups(ctx, dropped, true, "", time.Time{}); ferr != nil {
			return ferr
		}
		return errs.BadRequest("Failed to drop %d disabled users of revoked leases (%s); retry, or delete with isForced",
			len(failed), truncate(s.shown(ctx, "drop users", err), 250))
	}
	return s.store.FinishCleanups(ctx, ids, true, "", time.Time{})
}
