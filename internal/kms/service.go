package kms

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Key describes a KMS key. Its material is never part of it: it stays
// sealed in storage and unwrapped only in the service's memory.
type Key struct {
	ID          string
	OrgID       string
	ProjectID   string
	Name        string
	Description string
	Usage       Usage
	Algorithm   Algorithm
	Disabled    bool
	// Version is the newest version, the one that encrypts.
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SealedVersion is one version's key material as stored: sealed with the
// project's data key, bound to the version's row (VersionAD).
type SealedVersion struct {
	KeyID     string
	Version   int
	Material  []byte
	CreatedAt time.Time
}

// VersionAD is the associated data that binds a version's sealed material
// to its row, so material cannot be moved to another key or version.
func VersionAD(keyID string, version int) string {
	return keyring.AD("kms_key_versions", "material", keyID+"/"+strconv.Itoa(version))
}

// ListOptions select a page of a project's keys, ordered by name.
type ListOptions struct {
	Offset, Limit int
	Search        string // part of the name; empty: all
	Descending    bool
}

// Store is the storage KMS keys need.
type Store interface {
	// CreateKMSKey stores a key and its first version; errs.Conflict if the
	// project has a key of that name.
	CreateKMSKey(ctx context.Context, k Key, v SealedVersion, ev audit.Event) error
	KMSKey(ctx context.Context, id string) (Key, error)
	KMSKeyByName(ctx context.Context, projectID, name string) (Key, error)
	// KMSKeys returns a page of the project's keys and how many match in all.
	KMSKeys(ctx context.Context, projectID string, o ListOptions) ([]Key, int, error)
	// UpdateKMSKey writes name, description and disabled if the key is
	// still as read at prev (project.ErrStale otherwise, also when it is
	// gone); errs.Conflict on a taken name.
	UpdateKMSKey(ctx context.Context, k Key, prev time.Time, ev audit.Event) error
	// DeleteKMSKey deletes a key with every version's material.
	DeleteKMSKey(ctx context.Context, id string, ev audit.Event) error
	KMSKeyVersion(ctx context.Context, keyID string, version int) (SealedVersion, error)
	// AddKMSKeyVersion makes v its key's newest version, provided the key's
	// version is still v.Version-1; errs.Conflict otherwise (a concurrent rotation).
	AddKMSKeyVersion(ctx context.Context, v SealedVersion, ev audit.Event) error
	// RetireKMSKeyVersion deletes an older version's material; NotFound if
	// the key has no such version or it is the newest.
	RetireKMSKeyVersion(ctx context.Context, keyID string, version int, ev audit.Event) error
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Service manages KMS keys and performs their operations.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	now   func() time.Time

	// Cached (SetCache): key rows by id, and unwrapped material by key id
	// and version. Both die with the cache generation, so a key deleted,
	// disabled or rotated on any node is never used from memory afterwards.
	byID     *cache.Map[string, Key]
	material *cache.Map[versionKey, *Material]
}

type versionKey struct {
	id      string
	version int
}

// MaxCachedKeys bounds the keys, and separately the unwrapped versions, a
// node keeps in memory.
const MaxCachedKeys = 10_000

// NewService returns the KMS service; now nil means time.Now.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, now: now}
}

// SetCache keeps key rows and unwrapped key material in memory in
// generation g (docs/architecture.md).
func (s *Service) SetCache(g *cache.Gen) {
	s.byID = cache.NewMap[string, Key](g, MaxCachedKeys)
	s.material = cache.NewMap[versionKey, *Material](g, MaxCachedKeys)
}

// NewKey is what Create needs.
type NewKey struct {
	ProjectID   string
	Name        string
	Description string
	Usage       string // empty: encrypt-decrypt
	Algorithm   string // empty: aes-256-gcm
}

// Update changes a key; nil fields stay as they are.
type Update struct {
	Name        *string
	Description *string
	Disabled    *bool
}

var nameRE = lazyre.New(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

func checkName(name string) error {
	if len(name) < 1 || len(name) > 32 || !nameRE().MatchString(name) {
		e := errs.Invalidf("Name must be 1 to 32 lowercase letters, digits and hyphens (a slug)")
		e.Details = []string{"name"}
		return e
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > 500 {
		e := errs.Invalidf("Description must be at most 500 characters")
		e.Details = []string{"description"}
		return e
	}
	return nil
}

func duplicateName(name, projectID string) error {
	return errs.BadRequest("A KMS key with the name %q already exists for the project with ID %q", name, projectID)
}

// Bounds on what one member can make a project hold.
const (
	MaxKeysPerProject = 1000
	MaxKeyVersions    = 100 // versions of one key; rotate refuses more
)

// genPool bounds the key generations running at once, with those of the
// other services (package keygen).
var genPool = keygen.Shared

// signPool bounds RSA signatures made at once (keygen.Signatures).
var signPool = keygen.Signatures

// generate makes new key material for a, holding a generation slot; it
// reports errs.RateLimited when none frees in time.
func generate(ctx context.Context, a Algorithm) ([]byte, error) {
	release, err := genPool.Acquire(ctx, "KMS keys")
	if err != nil {
		return nil, err
	}
	defer release()
	raw, err := Generate(a)
	if err != nil {
		return nil, errs.Internalf(err, "generate %s key", a)
	}
	return raw, nil
}

func keyNotFound(id string) error { return errs.NotFoundf("Key with ID '%s' not found", id) }

func event(actor authz.Actor, typ string, k Key, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["keyId"] = k.ID
	return audit.New(actor, typ, md).InProject(k.ProjectID, "")
}

// permissions resolves the actor's permissions in projectID and checks
// action on KMS keys. A project the actor cannot see at all is reported as
// notFound.
func (s *Service) permissions(ctx context.Context, actor authz.Actor, projectID, action string, notFound func() error) error {
	return s.check(ctx, actor, projectID, action, notFound, false)
}

// keyPermissions is permissions for a key named by id: a key of a project
// the actor is not a member of is not found either, so that its id neither
// confirms the key exists nor names its project.
func (s *Service) keyPermissions(ctx context.Context, actor authz.Actor, projectID, action string, id string) error {
	return s.check(ctx, actor, projectID, action, func() error { return keyNotFound(id) }, true)
}

func (s *Service) check(ctx context.Context, actor authz.Actor, projectID, action string, notFound func() error, hideNonMember bool) error {
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if errs.Is(err, errs.NotFound) || (hideNonMember && errs.Is(err, errs.Forbidden)) {
		return notFound()
	}
	if err != nil {
		return err
	}
	return perms.Check(action, authz.SubCmek, nil)
}

// Create generates a key's first version and stores it sealed.
func (s *Service) Create(ctx context.Context, actor authz.Actor, nk NewKey) (Key, error) {
	nk.Name = strings.TrimSpace(nk.Name)
	nk.Description = strings.TrimSpace(nk.Description)
	if strings.TrimSpace(nk.ProjectID) == "" {
		e := errs.Invalidf("projectId is required")
		e.Details = []string{"projectId"}
		return Key{}, e
	}
	if err := checkName(nk.Name); err != nil {
		return Key{}, err
	}
	if err := checkDescription(nk.Description); err != nil {
		return Key{}, err
	}
	usage, err := ParseUsage(nk.Usage)
	if err != nil {
		return Key{}, err
	}
	alg, err := ParseAlgorithm(usage, nk.Algorithm)
	if err != nil {
		return Key{}, err
	}
	projectNotFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", nk.ProjectID) }
	if _, err := uuid.Parse(nk.ProjectID); err != nil {
		return Key{}, projectNotFound()
	}
	if err := s.permissions(ctx, actor, nk.ProjectID, authz.ActCreate, projectNotFound); err != nil {
		return Key{}, err
	}
	// The cheap refusals come before generating: an RSA key is about a
	// second of CPU. (The store's unique name still decides a race.)
	if _, err := s.store.KMSKeyByName(ctx, nk.ProjectID, nk.Name); err == nil {
		return Key{}, duplicateName(nk.Name, nk.ProjectID)
	} else if !errs.Is(err, errs.NotFound) {
		return Key{}, err
	}
	if _, n, err := s.store.KMSKeys(ctx, nk.ProjectID, ListOptions{Limit: 1}); err != nil {
		return Key{}, err
	} else if n >= MaxKeysPerProject {
		return Key{}, errs.BadRequest("The project has %d KMS keys, the most it may have; delete one first", n)
	}
	raw, err := generate(ctx, alg)
	if err != nil {
		return Key{}, err
	}
	defer clear(raw)
	now := s.now().UTC().Truncate(time.Microsecond)
	k := Key{ID: uuid.NewString(), OrgID: actor.OrgID, ProjectID: nk.ProjectID, Name: nk.Name, Description: nk.Description,
		Usage: usage, Algorithm: alg, Version: 1, CreatedAt: now, UpdatedAt: now}
	sealed, err := s.keys.Seal(ctx, keyring.Project(k.ProjectID), raw, VersionAD(k.ID, 1))
	if err != nil {
		return Key{}, err
	}
	ev := event(actor, "create-cmek", k, map[string]any{"name": k.Name, "description": k.Description,
		"encryptionAlgorithm": string(alg), "keyUsage": string(usage)})
	err = s.store.CreateKMSKey(ctx, k, SealedVersion{KeyID: k.ID, Version: 1, Material: sealed, CreatedAt: now}, ev)
	if errs.Is(err, errs.Conflict) {
		return Key{}, duplicateName(k.Name, k.ProjectID)
	}
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// key reads a key by id, from the cache when it can.
func (s *Service) key(ctx context.Context, id string) (Key, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Key{}, keyNotFound(id)
	}
	k, err := cache.Load(ctx, s.byID, id, s.now(), func(ctx context.Context) (Key, time.Time, error) {
		k, err := s.store.KMSKey(ctx, id)
		return k, time.Time{}, err
	})
	if errs.Is(err, errs.NotFound) {
		return Key{}, keyNotFound(id)
	}
	return k, err
}

// authorized reads a key and checks that actor may do action on it. A key
// of a project the actor cannot see is not found.
func (s *Service) authorized(ctx context.Context, actor authz.Actor, id, action string) (Key, error) {
	k, err := s.key(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if err := s.keyPermissions(ctx, actor, k.ProjectID, action, id); err != nil {
		return Key{}, err
	}
	return k, nil
}

// usable is authorized for an operation on the key material: the key must
// be enabled and of usage u.
func (s *Service) usable(ctx context.Context, actor authz.Actor, id, action string, u Usage) (Key, error) {
	k, err := s.authorized(ctx, actor, id, action)
	if err != nil {
		return Key{}, err
	}
	return k, enabledFor(k, u)
}

func enabledFor(k Key, u Usage) error {
	if k.Disabled {
		return errs.BadRequest("Key with ID '%s' is disabled; enable it (isDisabled: false) to use it", k.ID)
	}
	if k.Usage != u {
		what := "encryption"
		if u == SignVerify {
			what = "signing"
		}
		return errs.BadRequest("Key with ID '%s' is not intended for %s (its usage is %s)", k.ID, what, k.Usage)
	}
	return nil
}

// versionMaterial returns a version's unwrapped material, from the cache
// when it can. A version the key does not have is missing(): for a
// ciphertext, one made by a deleted key or version, or altered.
func (s *Service) versionMaterial(ctx context.Context, k Key, version int, missing func() error) (*Material, error) {
	if version < 1 || version > k.Version {
		return nil, missing()
	}
	m, err := cache.Load(ctx, s.material, versionKey{k.ID, version}, s.now(), func(ctx context.Context) (*Material, time.Time, error) {
		sv, err := s.store.KMSKeyVersion(ctx, k.ID, version)
		if err != nil {
			return nil, time.Time{}, err
		}
		raw, err := s.keys.Open(ctx, keyring.Project(k.ProjectID), sv.Material, VersionAD(k.ID, version))
		if err != nil {
			return nil, time.Time{}, err
		}
		defer clear(raw)
		m, err := Load(k.Algorithm, raw)
		if err != nil {
			return nil, time.Time{}, errs.Internalf(err, "load key %s version %d", k.ID, version)
		}
		return m, time.Time{}, nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil, missing()
	}
	return m, err
}

func (s *Service) audit(ctx context.Context, ev audit.Event) error {
	return s.store.AppendAudit(ctx, ev)
}

// CheckInProject reports whether the actor may do action on key id and the
// key is one of project projectID (NotFound if another project's), for a
// caller that names both; it records nothing: the action that follows
// records itself.
func (s *Service) CheckInProject(ctx context.Context, actor authz.Actor, projectID, id, action string) error {
	k, err := s.authorized(ctx, actor, id, action)
	if err != nil {
		return err
	}
	if k.ProjectID != projectID {
		return errs.NotFoundf("Key with ID '%s' not found", id)
	}
	return nil
}

// Get returns a key by id.
func (s *Service) Get(ctx context.Context, actor authz.Actor, id string) (Key, error) {
	k, err := s.authorized(ctx, actor, id, authz.ActRead)
	if err != nil {
		return Key{}, err
	}
	return k, s.audit(ctx, event(actor, "get-cmek", k, nil))
}

// GetByName returns a project's key by name.
func (s *Service) GetByName(ctx context.Context, actor authz.Actor, projectID, name string) (Key, error) {
	notFound := func() error {
		return errs.NotFoundf("Key with name %q not found for project with ID %q", name, projectID)
	}
	if strings.TrimSpace(projectID) == "" {
		e := errs.Invalidf("Project ID is required")
		e.Details = []string{"projectId"}
		return Key{}, e
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return Key{}, notFound()
	}
	// Permission first: whether a name exists is not told to an outsider.
	if err := s.permissions(ctx, actor, projectID, authz.ActRead, notFound); err != nil {
		return Key{}, err
	}
	k, err := s.store.KMSKeyByName(ctx, projectID, name)
	if errs.Is(err, errs.NotFound) {
		return Key{}, notFound()
	}
	if err != nil {
		return Key{}, err
	}
	return k, s.audit(ctx, event(actor, "get-cmek", k, nil))
}

// List returns a page of a project's keys and the number matching in all.
func (s *Service) List(ctx context.Context, actor authz.Actor, projectID string, o ListOptions) ([]Key, int, error) {
	projectNotFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", projectID) }
	if strings.TrimSpace(projectID) == "" {
		e := errs.Invalidf("projectId is required")
		e.Details = []string{"projectId"}
		return nil, 0, e
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, 0, projectNotFound()
	}
	if err := s.permissions(ctx, actor, projectID, authz.ActRead, projectNotFound); err != nil {
		return nil, 0, err
	}
	if o.Limit == 0 {
		o.Limit = 100
	}
	keys, total, err := s.store.KMSKeys(ctx, projectID, o)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	ev := audit.New(actor, "get-cmeks", map[string]any{"keyIds": ids}).InProject(projectID, "")
	return keys, total, s.audit(ctx, ev)
}

// Update renames, describes, disables or enables a key. A change that
// commits first is read again, not undone.
func (s *Service) Update(ctx context.Context, actor authz.Actor, id string, u Update) (Key, error) {
	return project.RetryStale(ctx, "key", func() (Key, error) { return s.update(ctx, actor, id, u) })
}

func (s *Service) update(ctx context.Context, actor authz.Actor, id string, u Update) (Key, error) {
	k, err := s.authorized(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Key{}, err
	}
	md := map[string]any{}
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if err := checkName(name); err != nil {
			return Key{}, err
		}
		k.Name, md["name"] = name, name
	}
	if u.Description != nil {
		d := strings.TrimSpace(*u.Description)
		if err := checkDescription(d); err != nil {
			return Key{}, err
		}
		k.Description, md["description"] = d, d
	}
	if u.Disabled != nil {
		k.Disabled, md["isDisabled"] = *u.Disabled, *u.Disabled
	}
	prev := k.UpdatedAt
	k.UpdatedAt = project.NextStamp(s.now(), prev)
	err = s.store.UpdateKMSKey(ctx, k, prev, event(actor, "update-cmek", k, md))
	if errs.Is(err, errs.Conflict) {
		return Key{}, duplicateName(k.Name, k.ProjectID)
	}
	return k, err
}

// Delete deletes a key and all its versions' material: every ciphertext
// it made can never be decrypted again.
func (s *Service) Delete(ctx context.Context, actor authz.Actor, id string) (Key, error) {
	k, err := s.authorized(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Key{}, err
	}
	err = s.store.DeleteKMSKey(ctx, id, event(actor, "delete-cmek", k, map[string]any{"name": k.Name}))
	if errs.Is(err, errs.NotFound) {
		return Key{}, keyNotFound(id)
	}
	return k, err
}

// Encrypt seals plaintext with the key's newest version.
func (s *Service) Encrypt(ctx context.Context, actor authz.Actor, id string, plaintext []byte) ([]byte, error) {
	k, err := s.usable(ctx, actor, id, authz.ActEncrypt, EncryptDecrypt)
	if err != nil {
		return nil, err
	}
	m, err := s.versionMaterial(ctx, k, k.Version, func() error { return errs.Internalf(nil, "key %s has no version %d", k.ID, k.Version) })
	if err != nil {
		return nil, err
	}
	ct, err := m.Encrypt(plaintext, k.Version)
	if err != nil {
		return nil, errs.Internalf(err, "encrypt")
	}
	return ct, s.audit(ctx, event(actor, "cmek-encrypt", k, map[string]any{"keyVersion": k.Version}))
}

// open decrypts a ciphertext of key k, returning the version that made it.
func (s *Service) open(ctx context.Context, k Key, ciphertext []byte) ([]byte, int, error) {
	version, body, err := CiphertextVersion(ciphertext)
	if err != nil {
		return nil, 0, err
	}
	m, err := s.versionMaterial(ctx, k, version, ErrCiphertext)
	if err != nil {
		return nil, 0, err
	}
	pt, err := m.Decrypt(body)
	return pt, version, err
}

// Decrypt opens a ciphertext made by any version the key still has.
func (s *Service) Decrypt(ctx context.Context, actor authz.Actor, id string, ciphertext []byte) ([]byte, error) {
	k, err := s.usable(ctx, actor, id, authz.ActDecrypt, EncryptDecrypt)
	if err != nil {
		return nil, err
	}
	pt, version, err := s.open(ctx, k, ciphertext)
	if err != nil {
		return nil, err
	}
	return pt, s.audit(ctx, event(actor, "cmek-decrypt", k, map[string]any{"keyVersion": version}))
}

// Rotate adds a version to an encryption key; new ciphertexts use it, and
// older ones still decrypt.
func (s *Service) Rotate(ctx context.Context, actor authz.Actor, id string) (Key, error) {
	k, err := s.authorized(ctx, actor, id, authz.ActRotate)
	if err != nil {
		return Key{}, err
	}
	if k.Usage == SignVerify {
		// A signature does not name the version that made it, so a signing
		// key keeps one key pair.
		return Key{}, errs.BadRequest("Key with ID '%s' is a signing key; only encryption keys rotate", id)
	}
	if err := enabledFor(k, EncryptDecrypt); err != nil {
		return Key{}, err
	}
	if k.Version >= MaxKeyVersions {
		return Key{}, errs.BadRequest("Key with ID '%s' has %d versions, the most a key may have; create a new key", id, k.Version)
	}
	raw, err := generate(ctx, k.Algorithm)
	if err != nil {
		return Key{}, err
	}
	defer clear(raw)
	next := k.Version + 1
	sealed, err := s.keys.Seal(ctx, keyring.Project(k.ProjectID), raw, VersionAD(k.ID, next))
	if err != nil {
		return Key{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	ev := event(actor, "cmek-rotate", k, map[string]any{"fromVersion": k.Version, "toVersion": next})
	err = s.store.AddKMSKeyVersion(ctx, SealedVersion{KeyID: k.ID, Version: next, Material: sealed, CreatedAt: now}, ev)
	if errs.Is(err, errs.Conflict) {
		return Key{}, errs.Conflictf("Key with ID '%s' was rotated concurrently; try again", id)
	}
	if errs.Is(err, errs.NotFound) {
		return Key{}, keyNotFound(id)
	}
	if err != nil {
		return Key{}, err
	}
	k.Version, k.UpdatedAt = next, now
	return k, nil
}

// RetireVersion destroys the material of one of an encryption key's older
// versions, once its ciphertexts have been rewrapped: they can never be
// decrypted again. The newest version, which encrypts, cannot be retired.
// Destroying material needs delete.
func (s *Service) RetireVersion(ctx context.Context, actor authz.Actor, id string, version int) (Key, error) {
	k, err := s.authorized(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Key{}, err
	}
	noVersion := func() error { return errs.NotFoundf("Key with ID '%s' has no version %d", id, version) }
	if version < 1 || version > k.Version {
		return Key{}, noVersion()
	}
	if version == k.Version {
		return Key{}, errs.BadRequest("Version %d is the newest version of key with ID '%s', the one that encrypts; rotate the key before retiring it", version, id)
	}
	ev := event(actor, "cmek-retire-version", k, map[string]any{"version": version})
	if err := s.store.RetireKMSKeyVersion(ctx, k.ID, version, ev); errs.Is(err, errs.NotFound) {
		return Key{}, noVersion()
	} else if err != nil {
		return Key{}, err
	}
	return k, nil
}

// Rewrap turns a ciphertext of any of the key's versions into one of its
// newest version, without the plaintext leaving the server. It needs both
// decrypt and encrypt.
func (s *Service) Rewrap(ctx context.Context, actor authz.Actor, id string, ciphertext []byte) ([]byte, int, error) {
	k, err := s.usable(ctx, actor, id, authz.ActDecrypt, EncryptDecrypt)
	if err != nil {
		return nil, 0, err
	}
	if err := s.keyPermissions(ctx, actor, k.ProjectID, authz.ActEncrypt, id); err != nil {
		return nil, 0, err
	}
	pt, from, err := s.open(ctx, k, ciphertext)
	if err != nil {
		return nil, 0, err
	}
	defer clear(pt)
	m, err := s.versionMaterial(ctx, k, k.Version, func() error { return errs.Internalf(nil, "key %s has no version %d", k.ID, k.Version) })
	if err != nil {
		return nil, 0, err
	}
	out, err := m.Encrypt(pt, k.Version)
	if err != nil {
		return nil, 0, errs.Internalf(err, "encrypt")
	}
	return out, k.Version, s.audit(ctx, event(actor, "cmek-rewrap", k, map[string]any{"fromVersion": from, "toVersion": k.Version}))
}

// Sign signs data (or a digest, with isDigest) with a signing key.
func (s *Service) Sign(ctx context.Context, actor authz.Actor, id string, sa SigningAlgorithm, data []byte, isDigest bool) ([]byte, error) {
	k, m, err := s.signer(ctx, actor, id, authz.ActSign)
	if err != nil {
		return nil, err
	}
	if k.Algorithm == RSA4096 {
		release, err := signPool.Acquire(ctx, "signatures")
		if err != nil {
			return nil, err
		}
		defer release()
	}
	sig, err := m.Sign(sa, data, isDigest)
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			return nil, errs.Internalf(err, "sign")
		}
		return nil, err
	}
	return sig, s.audit(ctx, event(actor, "cmek-sign", k, map[string]any{"signingAlgorithm": string(sa), "isDigest": isDigest}))
}

// Verify reports whether sig is the key's signature of data.
func (s *Service) Verify(ctx context.Context, actor authz.Actor, id string, sa SigningAlgorithm, data, sig []byte, isDigest bool) (bool, error) {
	k, m, err := s.signer(ctx, actor, id, authz.ActVerify)
	if err != nil {
		return false, err
	}
	ok, err := m.Verify(sa, data, sig, isDigest)
	if err != nil {
		return false, err
	}
	return ok, s.audit(ctx, event(actor, "cmek-verify", k, map[string]any{"signingAlgorithm": string(sa), "isDigest": isDigest, "signatureValid": ok}))
}

func (s *Service) signer(ctx context.Context, actor authz.Actor, id, action string) (Key, *Material, error) {
	k, err := s.usable(ctx, actor, id, action, SignVerify)
	if err != nil {
		return Key{}, nil, err
	}
	m, err := s.versionMaterial(ctx, k, k.Version, func() error { return errs.Internalf(nil, "key %s has no version %d", k.ID, k.Version) })
	return k, m, err
}

// PublicKey returns a signing key's public key, DER SubjectPublicKeyInfo.
func (s *Service) PublicKey(ctx context.Context, actor authz.Actor, id string) ([]byte, error) {
	k, m, err := s.signer(ctx, actor, id, authz.ActRead)
	if err != nil {
		return nil, err
	}
	return m.PublicKey(), s.audit(ctx, event(actor, "cmek-get-public-key", k, map[string]any{"keyName": k.Name}))
}

// SigningAlgorithms lists what a signing key signs with.
func (s *Service) SigningAlgorithms(ctx context.Context, actor authz.Actor, id string) ([]SigningAlgorithm, error) {
	k, err := s.usable(ctx, actor, id, authz.ActRead, SignVerify)
	if err != nil {
		return nil, err
	}
	return SigningAlgorithms(k.Algorithm), s.audit(ctx, event(actor, "cmek-list-signing-algorithms", k, nil))
}
