// Package secret stores and serves secrets: values sealed with the project's
// data key, a version per write, ${...} references expanded on read, and a
// permission check on every secret touched.
package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Secret types.
const (
	Shared   = "shared"
	Personal = "personal"
)

// MaxValueBytes bounds a secret value (the request body limit applies too).
const MaxValueBytes = 512 << 10

// Secret is a decrypted secret as the caller may see it.
type Secret struct {
	ID            string
	ProjectID     string
	Env           string // environment slug
	Path          string // folder path
	FolderID      string
	Key           string
	Type          string
	UserID        string
	Version       int
	Value         string
	ValueHidden   bool
	Comment       string
	SkipMultiline bool
	Tags          []Tag
	Metadata      []MetaEntry
	Reminder      Reminder
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// MetaEntry is one key/value pair of a secret's metadata.
type MetaEntry struct {
	Key   string
	Value string
}

// Reminder is a secret's rotation reminder. It is stored and returned only:
// lockbox sends no mail. RepeatDays 0 means no reminder.
type Reminder struct {
	RepeatDays int
	Note       string
	Recipients []string // user ids
}

// Sealed is a secret as stored: value and comment encrypted.
type Sealed struct {
	ID            string
	ProjectID     string
	FolderID      string
	Key           string
	Type          string
	UserID        string
	Version       int
	Value         []byte
	Comment       []byte
	SkipMultiline bool
	// Metadata is the sealed JSON of the metadata entries and ReminderNote
	// the sealed note; empty (never sealed) means none.
	Metadata           []byte
	ReminderNote       []byte
	ReminderRepeatDays int
	ReminderRecipients []string
	// TagIDs, when not nil, replaces the secret's tags on write.
	TagIDs    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store is the storage secrets need.
type Store interface {
	// FolderSecrets lists a folder's shared secrets and, if userID is set, that user's personal ones.
	FolderSecrets(ctx context.Context, folderID, userID string) ([]Sealed, error)
	// FoldersSecrets is FolderSecrets of several folders, by folder id.
	FoldersSecrets(ctx context.Context, folderIDs []string, userID string) (map[string][]Sealed, error)
	SecretByKey(ctx context.Context, folderID, key, typ, userID string) (Sealed, error)
	SecretByID(ctx context.Context, id string) (Sealed, error)
	// SecretVersion returns a secret as it was at version v.
	SecretVersion(ctx context.Context, id string, v int) (Sealed, error)
	// CreateSecrets writes new secrets (version 1 and its history row) and the events.
	CreateSecrets(ctx context.Context, ss []Sealed, actorType, actorID string, evs []audit.Event) error
	// UpdateSecret writes s as version s.Version if the stored version is
	// s.Version-1; otherwise (another write landed first, or a delete) it
	// fails with an error wrapping ErrStale and writes nothing.
	UpdateSecret(ctx context.Context, s Sealed, actorType, actorID string, ev audit.Event) error
	DeleteSecret(ctx context.Context, id string, ev audit.Event) error
	// RotatedSecrets maps the keys of the shared secrets a secret rotation
	// writes at projectID/env/path to the rotation's id.
	RotatedSecrets(ctx context.Context, projectID, env, path string) (map[string]string, error)
	// SecretVersions lists a secret's history, newest first.
	SecretVersions(ctx context.Context, id string, offset, limit int) ([]Sealed, error)
	// AppendAudit records an event that changes nothing (a read); it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
	TagStore
	ImportStore
}

// ErrStale is wrapped by a Store's refusal to write a version on top of one
// that is no longer current.
var ErrStale = errors.New("secret changed since it was read")

// Folders resolves folders; project.Service implements it.
type Folders interface {
	ResolveFolder(ctx context.Context, projectID, envSlug, path string) (project.Folder, project.Environment, error)
	ChildFolders(ctx context.Context, folderID string) ([]project.Folder, error)
	// SubtreeFolders lists every folder below folderID, by name.
	SubtreeFolders(ctx context.Context, folderID string) ([]project.Folder, error)
	IDBySlug(ctx context.Context, actor authz.Actor, slug string) (string, error)
	FolderLocation(ctx context.Context, folderID string) (project.Folder, project.Environment, error)
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Service implements secrets.
type Service struct {
	store   Store
	tags    TagStore
	folders Folders
	authz   Authorizer
	keys    *keyring.Keyring
	now     func() time.Time
	feed    Feed // nil: no events

	reads *cache.Map[listKey, cachedRead] // SetCache; nil: read each time
}

// NewService returns the secret service.
func NewService(st Store, folders Folders, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, tags: st, folders: folders, authz: az, keys: kr, now: now}
}

// Scope names a folder of a project's environment.
type Scope struct {
	ProjectID   string
	ProjectSlug string // used when ProjectID is empty
	Env         string
	Path        string
}

// sealAD is keyring.AD("secrets", column, id+"@"+version), built with one
// allocation: a listing opens two or more columns of every secret it reads.
func sealAD(id string, version int, column string) string {
	var buf [128]byte
	b := append(buf[:0], "secrets|"...)
	b = append(b, column...)
	b = append(b, '|')
	b = append(b, id...)
	b = append(b, '@')
	return string(strconv.AppendInt(b, int64(version), 10))
}

func (s *Service) seal(ctx context.Context, sec Secret) (Sealed, error) {
	o := keyring.Project(sec.ProjectID)
	v, err := s.keys.Seal(ctx, o, []byte(sec.Value), sealAD(sec.ID, sec.Version, "value"))
	if err != nil {
		return Sealed{}, err
	}
	c, err := s.keys.Seal(ctx, o, []byte(sec.Comment), sealAD(sec.ID, sec.Version, "comment"))
	if err != nil {
		return Sealed{}, err
	}
	// No metadata and no note are stored as empty columns, not sealed: most
	// secrets have neither, and every read would otherwise open two more
	// ciphertexts per secret (a list of 100 secrets lost ~20% of its rate).
	m, n := []byte{}, []byte{}
	if len(sec.Metadata) > 0 {
		md, err := json.Marshal(metaJSON(sec.Metadata))
		if err != nil {
			return Sealed{}, err
		}
		if m, err = s.keys.Seal(ctx, o, md, sealAD(sec.ID, sec.Version, "metadata")); err != nil {
			return Sealed{}, err
		}
	}
	if sec.Reminder.Note != "" {
		var err error
		if n, err = s.keys.Seal(ctx, o, []byte(sec.Reminder.Note), sealAD(sec.ID, sec.Version, "reminderNote")); err != nil {
			return Sealed{}, err
		}
	}
	return Sealed{ID: sec.ID, ProjectID: sec.ProjectID, FolderID: sec.FolderID, Key: sec.Key, Type: sec.Type, UserID: sec.UserID,
		Version: sec.Version, Value: v, Comment: c, SkipMultiline: sec.SkipMultiline, Metadata: m, ReminderNote: n,
		ReminderRepeatDays: sec.Reminder.RepeatDays, ReminderRecipients: slices.Clone(sec.Reminder.Recipients),
		CreatedAt: sec.CreatedAt, UpdatedAt: sec.UpdatedAt}, nil
}

// metaJSON is the sealed form of metadata: a JSON list of {key, value}.
type metaJSON []MetaEntry

func (m metaJSON) MarshalJSON() ([]byte, error) {
	type entry struct {
		K string `json:"key"`
		V string `json:"value"`
	}
	out := make([]entry, len(m))
	for i, e := range m {
		out[i] = entry{e.Key, e.Value}
	}
	return json.Marshal(out)
}

func (m *metaJSON) UnmarshalJSON(b []byte) error {
	var in []struct {
		K string `json:"key"`
		V string `json:"value"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*m = make(metaJSON, len(in))
	for i, e := range in {
		(*m)[i] = MetaEntry{e.K, e.V}
	}
	return nil
}

// openOptional opens a column that rows written before it existed hold empty.
func (s *Service) openOptional(ctx context.Context, sl Sealed, b []byte, column string) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return s.keys.Open(ctx, keyring.Project(sl.ProjectID), b, sealAD(sl.ID, sl.Version, column))
}

func (s *Service) open(ctx context.Context, sl Sealed, env, path string) (Secret, error) {
	o := keyring.Project(sl.ProjectID)
	v, err := s.keys.Open(ctx, o, sl.Value, sealAD(sl.ID, sl.Version, "value"))
	if err != nil {
		return Secret{}, err
	}
	c, err := s.keys.Open(ctx, o, sl.Comment, sealAD(sl.ID, sl.Version, "comment"))
	if err != nil {
		return Secret{}, err
	}
	md, err := s.openOptional(ctx, sl, sl.Metadata, "metadata")
	if err != nil {
		return Secret{}, err
	}
	meta := metaJSON{}
	if len(md) > 0 {
		if err := json.Unmarshal(md, &meta); err != nil {
			return Secret{}, fmt.Errorf("decode metadata of secret %s: %w", sl.ID, err)
		}
	}
	note, err := s.openOptional(ctx, sl, sl.ReminderNote, "reminderNote")
	if err != nil {
		return Secret{}, err
	}
	recipients := slices.Clone(sl.ReminderRecipients)
	if recipients == nil {
		recipients = []string{}
	}
	return Secret{ID: sl.ID, ProjectID: sl.ProjectID, Env: env, Path: path, FolderID: sl.FolderID, Key: sl.Key, Type: sl.Type,
		UserID: sl.UserID, Version: sl.Version, Value: string(v), Comment: string(c), SkipMultiline: sl.SkipMultiline,
		Metadata: []MetaEntry(meta), Reminder: Reminder{RepeatDays: sl.ReminderRepeatDays, Note: string(note), Recipients: recipients},
		CreatedAt: sl.CreatedAt, UpdatedAt: sl.UpdatedAt}, nil
}

// ValidateKey checks a secret name: non-empty, at most 256 bytes of valid
// UTF-8, no spaces, slashes, colons or control characters.
func ValidateKey(k string) error {
	if k == "" || len(k) > 256 || !utf8.ValidString(k) {
		return invalidField("secretKey", "Secret name must be 1 to 256 characters")
	}
	for _, r := range k {
		if r == '/' || r == ':' || r == ' ' || r < 0x20 || r == 0x7f {
			return invalidField("secretKey", "Secret name must not contain spaces, '/', ':' or control characters")
		}
	}
	return nil
}

func invalidField(field, format string, args ...any) error {
	e := errs.Invalidf(format, args...)
	e.Details = []string{field}
	return e
}

func checkValue(v string) error {
	if len(v) > MaxValueBytes {
		return invalidField("secretValue", "Secret value must be at most %d bytes", MaxValueBytes)
	}
	if !utf8.ValidString(v) {
		return invalidField("secretValue", "Secret value must be valid UTF-8")
	}
	if n := CountRefs(v); n > MaxRefsPerValue {
		return invalidField("secretValue", "Secret value holds %d references; at most %d are allowed", n, MaxRefsPerValue)
	}
	return nil
}

const expandDenied = "Failed to expand one or more secret references: "

// checkExpansion refuses a value that refers to a secret the writer may not
// read (403; Infisical refuses it too), at any depth of its expansion as the
// writer would read it through rd, or whose expansion exceeds what is left of
// the request's budget (writeChecks): the values one request writes share
// one budget, as the values one read expands do. Otherwise a writer confined
// to one folder could plant ${prod.DB_PASSWORD} in a value that readers with
// wider rights (a deployment's identity) then read expanded. References
// resolve to shared secrets, as wider readers see them, never the writer's
// personal overrides (but a personal value's, which its owner alone reads,
// resolve as the owner reads them). A reference to a secret that does not exist yet, a
// cycle or a chain deeper than the limit does not stop a write (the read
// reports it), nor the check of the value's other references; any other
// failure of the check refuses the write.
func (s *Service) checkExpansion(ctx context.Context, rd *reader, sec Secret) error {
	if !strings.Contains(sec.Value, "${") {
		return nil
	}
	if sec.Type == Personal && rd.sharedOnly {
		// A personal value is read by its owner alone, through the
		// owner's own overrides: checked as the owner reads it (a shared
		// secret the owner may not read, behind an override it may, refused
		// a personal reference to the override).
		rd = s.ownerReader(ctx, rd)
	}
	wc := writeChecksOf(ctx)
	id := sec.FolderID + "/" + sec.Type + "/" + sec.Key
	bytes, refs := wc.left(id)
	rd.x = NewExpander(rd.lookup).WithBudget(bytes, refs).Checking()
	err := rd.expand(ctx, &sec)
	wc.charge(id, rd.x.bytes, rd.x.refs)
	if errors.Is(err, errBudget) {
		return invalidField("secretValue", "Secret '%s' would expand beyond the limits of %d bytes, %d references or %d folders for the values of one request", sec.Key, MaxExpandBytes, MaxExpandRefs, MaxExpandFolders)
	}
	if errs.Is(err, errs.Forbidden) {
		var e *errs.Error
		errors.As(err, &e)
		return errs.Forbiddenf("Secret '%s' may refer only to secrets you can read: %s", sec.Key,
			strings.TrimPrefix(e.Message, expandDenied)).WithCode("PermissionDenied")
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, errTooLarge) {
		return invalidField("secretValue", "The secrets that secret '%s' refers to, with the request's other values, come to more than %d MiB: refer to fewer or smaller secrets", sec.Key, MaxAnswerBytes>>20)
	}
	// Any other failure (what the references open is over the answer's
	// limit, a database error) refuses the write: the value's remaining
	// references were not checked.
	return err
}

// writeChecks is one request's state for the expansion checks of the
// secrets it writes: one budget for them all, and one reader (with its
// folder cache) per actor and project. A batch of values each within the
// budget alone could otherwise make the server expand the budget once per
// item. Each secret is charged what its last check used, so a write tried
// again (after a concurrent move) is not counted twice. Not safe for
// concurrent use: a request's writes are checked one after the other.
type writeChecks struct {
	cost        map[string][2]int // secret id -> bytes and references its last check used
	bytes, refs int               // their sums
	readers     map[string]*reader
}

type writeChecksKey struct{}

// WithWriteChecks gives ctx a request's writeChecks, unless it has them:
// the writes made with it share one expansion budget (a batch, or a page
// that writes several secrets one at a time).
func WithWriteChecks(ctx context.Context) context.Context {
	if _, ok := ctx.Value(writeChecksKey{}).(*writeChecks); ok {
		return ctx
	}
	return context.WithValue(ctx, writeChecksKey{}, newWriteChecks())
}

func newWriteChecks() *writeChecks {
	return &writeChecks{cost: map[string][2]int{}, readers: map[string]*reader{}}
}

// writeChecksOf returns ctx's writeChecks, or fresh ones for a lone write.
func writeChecksOf(ctx context.Context) *writeChecks {
	if wc, ok := ctx.Value(writeChecksKey{}).(*writeChecks); ok {
		return wc
	}
	return newWriteChecks()
}

// left is the budget the check of secret id may use: all but what the
// request's other secrets used.
func (wc *writeChecks) left(id string) (bytes, refs int) {
	c := wc.cost[id]
	return MaxExpandBytes - (wc.bytes - c[0]), MaxExpandRefs - (wc.refs - c[1])
}

// wrote tells the request's readers that it wrote keys in env:path: a
// later check must see what the request has written there. Only those keys
// are read again (one row each), not the whole folder: a batch of 10,000
// items in a folder of 10,000 secrets, each with a reference, read and
// decrypted the folder 10,000 times.
func (wc *writeChecks) wrote(env, path string, keys ...string) {
	ck := env + ":" + path
	for _, rd := range wc.readers {
		secs, ok := rd.cache[ck]
		if !ok {
			continue
		}
		if _, ok := rd.folders[ck]; !ok { // looked up while it did not exist: whole again
			delete(rd.cache, ck)
			continue
		}
		if rd.stale[ck] == nil {
			rd.stale[ck] = map[string]bool{}
		}
		for _, k := range keys {
			delete(secs, k)
			rd.stale[ck][k] = true
		}
	}
}

func (wc *writeChecks) charge(id string, bytes, refs int) {
	c := wc.cost[id]
	wc.bytes += bytes - c[0]
	wc.refs += refs - c[1]
	wc.cost[id] = [2]int{bytes, refs}
}

// writeReader is the request's reader for the expansion checks of actor's
// writes in projectID (perms, resolved for the write, are the same for
// every write of one actor in one project within a request).
func (s *Service) writeReader(ctx context.Context, actor authz.Actor, perms authz.Set, projectID string) *reader {
	wc := writeChecksOf(ctx)
	k := string(actor.Kind) + ":" + actor.ID + ":" + projectID
	rd, ok := wc.readers[k]
	if !ok {
		rd = s.newReader(actor, perms, projectID)
		rd.sharedOnly = true
		wc.readers[k] = rd
	}
	return rd
}

// ownerReader is writeReader's counterpart for a personal value's check:
// the same actor, permissions and project, with the actor's overrides.
func (s *Service) ownerReader(ctx context.Context, shared *reader) *reader {
	wc := writeChecksOf(ctx)
	k := string(shared.actor.Kind) + ":" + shared.actor.ID + ":" + shared.project + ":own"
	rd, ok := wc.readers[k]
	if !ok {
		rd = s.newReader(shared.actor, shared.perms, shared.project)
		// One request's limits on what it opens and the folders it looks
		// up hold for both readers together.
		rd.size, rd.looked = shared.size, shared.looked
		wc.readers[k] = rd
	}
	return rd
}

// normalizeValue trims a value as Infisical does, keeping one trailing newline.
func normalizeValue(v string) string {
	nl := strings.HasSuffix(v, "\n")
	v = strings.TrimSpace(v)
	if nl && v != "" {
		v += "\n"
	}
	return v
}

// projectOf fills in sc's project id: a service token's own when sc names
// none, or the one sc's slug names.
func (s *Service) projectOf(ctx context.Context, actor authz.Actor, sc *Scope) error {
	if sc.ProjectID == "" && sc.ProjectSlug == "" && actor.Kind == authz.ActorServiceToken && actor.Service != nil {
		sc.ProjectID = actor.Service.ProjectID // a service token's project is implied
	}
	if sc.ProjectID == "" && sc.ProjectSlug != "" {
		id, err := s.folders.IDBySlug(ctx, actor, sc.ProjectSlug)
		if err != nil {
			return err
		}
		sc.ProjectID = id
	}
	if sc.ProjectID == "" {
		return invalidField("workspaceId", "Missing project id")
	}
	return nil
}

// folder resolves a scope for an actor: the project must be visible to it.
// When only the folder is missing the error wraps project.ErrNoFolder and the
// environment, the permissions and a Folder with just its Path come with it.
func (s *Service) folder(ctx context.Context, actor authz.Actor, sc *Scope) (project.Folder, project.Environment, authz.Set, error) {
	if err := s.projectOf(ctx, actor, sc); err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, err
	}
	if sc.Env == "" {
		return project.Folder{}, project.Environment{}, authz.Set{}, invalidField("environment", "Missing environment")
	}
	if _, err := uuid.Parse(sc.ProjectID); err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, errs.NotFoundf("Project with ID '%s' not found", sc.ProjectID)
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, sc.ProjectID)
	if err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, err
	}
	f, env, err := s.folders.ResolveFolder(ctx, sc.ProjectID, sc.Env, sc.Path)
	if errors.Is(err, project.ErrNoFolder) {
		return project.Folder{Path: f.Path, EnvID: env.ID}, env, perms, err
	}
	if err != nil {
		return project.Folder{}, project.Environment{}, authz.Set{}, err
	}
	return f, env, perms, nil
}

func fields(env, path, key string, tags []Tag) *authz.Fields {
	return &authz.Fields{Environment: env, SecretPath: path, SecretName: key, SecretTags: tagSlugs(tags)}
}

// Fields are the condition fields a permission check on secret key (in env
// and path, with tags) matches: what callers outside the package give
// authz.Set.Can to ask what the service would allow on that secret.
func Fields(env, path, key string, tags []Tag) *authz.Fields { return fields(env, path, key, tags) }

// ValueReadable reports whether perms let the actor read the value of
// secret key (in env and path, with tags), as every read of the service
// decides it.
func ValueReadable(perms authz.Set, env, path, key string, tags []Tag) bool {
	_, value := canSee(perms, env, path, key, tags)
	return value
}

// canSee reports whether the actor may see a secret exists, and its value.
func canSee(perms authz.Set, env, path, key string, tags []Tag) (describe, value bool) {
	f := fields(env, path, key, tags)
	read := perms.Can(authz.ActRead, authz.SubSecrets, f)
	value = read || perms.Can(authz.ActReadValue, authz.SubSecrets, f)
	describe = read || value || perms.Can(authz.ActDescribeSecret, authz.SubSecrets, f)
	return describe, value
}

func userOf(actor authz.Actor) string {
	if actor.Kind == authz.ActorUser {
		return actor.ID
	}
	return ""
}

// ReadOptions tune reads.
type ReadOptions struct {
	Expand    bool
	HideValue bool // viewSecretValue=false
	Recursive bool
	// PersonalOnlyOverride: personal secrets replace shared ones of the same key
	// instead of being listed beside them.
	PersonalOverrides bool
	SharedOnly        bool
	IncludeImports    bool
	TagSlugs          []string // only secrets with one of these tags
}

// HiddenValue replaces a value the caller may not read.
const HiddenValue = "<hidden-by-infisical>"

// visible is sec as the caller may see it in any response, a write's
// included: the value hidden without readValue, and the comment and tags too
// without describeSecret.
func visible(perms authz.Set, sec Secret) Secret {
	describe, value := canSee(perms, sec.Env, sec.Path, sec.Key, sec.Tags)
	if !value {
		sec.Value, sec.ValueHidden = HiddenValue, true
	}
	if !describe {
		sec.Comment, sec.Tags = "", []Tag{}
		sec.Metadata, sec.Reminder = []MetaEntry{}, Reminder{Recipients: []string{}}
	}
	return sec
}

// visibleVersion is visible for a past version of a secret, which may have
// had another name: a name the caller may not describe is not shown either
// (the version list showed a renamed STRIPE_LIVE_KEY to a role that
// describes APP_* only).
func visibleVersion(perms authz.Set, sec Secret) Secret {
	if describe, _ := canSee(perms, sec.Env, sec.Path, sec.Key, sec.Tags); !describe {
		sec = visible(perms, sec)
		sec.Key = ""
		return sec
	}
	return visible(perms, sec)
}

func visibleAll(perms authz.Set, secs []Secret) []Secret {
	for i := range secs {
		secs[i] = visible(perms, secs[i])
	}
	return secs
}

// reader expands references for one request, checking readValue on each target.
type reader struct {
	s       *Service
	actor   authz.Actor
	perms   authz.Set
	project string
	cache   map[string]map[string]Secret // env:path -> key -> secret
	folders map[string]project.Folder    // env:path -> the folder cached
	stale   map[string]map[string]bool   // env:path -> keys written since the folder was cached
	looked  map[string]bool              // env:path of every folder looked up
	x       *Expander                    // budget and memo shared by the whole request
	// sharedOnly: references resolve to shared secrets alone, never the
	// actor's personal overrides (a write's check: wider readers get the
	// shared value, so an override must not hide what it reaches).
	sharedOnly bool
	// size counts what the request opens against MaxAnswerBytes: the
	// answer's rows and every folder its references open (nil: not counted).
	size *answerSize
	// only, when set, is the one key a read through imports looks for
	// (getImported): other rows of the imported folders are not read.
	only string
}

// MaxImportFolders bounds the imported folders one read follows (nested
// imports included; each distinct env:path once). Each costs a folder
// lookup, its rows, its tags and its own imports: 300 imports of folders
// 30 deep made one listing with imports take half a second on SQLite, for
// every reader, and imports are cheap to add.
const MaxImportFolders = 100

// MaxExpandFolders bounds the folders one request's reference expansion
// looks up. A lookup walks the folder's path a query per segment, and
// references are cheap to write: 20,000 of them to distinct paths under a
// 30-deep folder cost one read of a folder 10 s on SQLite and over a minute
// on PostgreSQL.
const MaxExpandFolders = 256

func (s *Service) newReader(actor authz.Actor, perms authz.Set, projectID string) *reader {
	rd := &reader{s: s, actor: actor, perms: perms, project: projectID, cache: map[string]map[string]Secret{},
		folders: map[string]project.Folder{}, stale: map[string]map[string]bool{}, looked: map[string]bool{}, size: new(answerSize)}
	rd.x = NewExpander(rd.lookup)
	return rd
}

func (rd *reader) lookup(ctx context.Context, env, path, key string) (string, bool, bool, error) {
	path, err := project.NormalizePath(path)
	if err != nil {
		return "", false, false, nil
	}
	denied := func() error {
		return errs.Forbiddenf(expandDenied+"you cannot read %s in %s:%s", key, env, path).WithCode("PermissionDenied")
	}
	// Refused whether or not the target exists: a reference the caller may
	// not read must not tell them which secrets and folders exist. With tag
	// conditions the exact answer needs the secret's tags, but one that no
	// tags could allow is refused here all the same (nor is its folder read).
	if !rd.perms.UsesCondition(authz.SubSecrets, "secretTags") {
		if _, value := canSee(rd.perms, env, path, key, nil); !value {
			return "", false, false, denied()
		}
	} else if f := fields(env, path, key, nil); !rd.perms.CanWithSomeTags(authz.ActRead, authz.SubSecrets, f) &&
		!rd.perms.CanWithSomeTags(authz.ActReadValue, authz.SubSecrets, f) {
		return "", false, false, denied()
	}
	ck := env + ":" + path
	secs, ok := rd.cache[ck]
	if !ok {
		if !rd.looked[ck] {
			if len(rd.looked) >= MaxExpandFolders {
				return "", false, false, errBudget
			}
			rd.looked[ck] = true // a folder looked up again (after a write) counts once
		}
		f, _, err := rd.s.folders.ResolveFolder(ctx, rd.project, env, path)
		if errs.Is(err, errs.NotFound) {
			rd.cache[ck] = map[string]Secret{}
			return "", false, false, nil
		}
		if err != nil {
			return "", false, false, err
		}
		sealed, err := rd.s.store.FolderSecrets(ctx, f.ID, rd.user())
		if err != nil {
			return "", false, false, err
		}
		if err := rd.size.sealed(sealed); err != nil { // every row is opened
			return "", false, false, err
		}
		var tags map[string][]Tag
		if rd.perms.UsesCondition(authz.SubSecrets, "secretTags") {
			if tags, err = rd.s.loadTags(ctx, sealed); err != nil {
				return "", false, false, err
			}
		}
		secs = map[string]Secret{}
		for _, sl := range sealed {
			if sl.Type == Personal {
				continue
			}
			sec, err := rd.s.open(ctx, sl, env, path)
			if err != nil {
				return "", false, false, err
			}
			sec.Tags = tags[sl.ID]
			secs[sec.Key] = sec
		}
		for _, sl := range sealed { // personal overrides win for their owner
			if sl.Type == Personal {
				sec, err := rd.s.open(ctx, sl, env, path)
				if err != nil {
					return "", false, false, err
				}
				sec.Tags = tags[sl.ID]
				secs[sec.Key] = sec
			}
		}
		rd.cache[ck], rd.folders[ck] = secs, f
		delete(rd.stale, ck)
	} else if rd.stale[ck][key] {
		sec, found, err := rd.one(ctx, rd.folders[ck], env, key)
		if err != nil {
			return "", false, false, err
		}
		if found {
			secs[key] = sec
		}
		delete(rd.stale[ck], key)
	}
	sec, ok := secs[key]
	if !ok {
		return "", false, false, nil
	}
	if _, value := canSee(rd.perms, env, path, key, sec.Tags); !value {
		return "", false, false, denied()
	}
	return sec.Value, sec.SkipMultiline, true, nil
}

// one reads key in folder f again after the request wrote it: the
// caller's personal override, else the shared secret.
// user is the user whose personal overrides the reader sees ("" for none).
func (rd *reader) user() string {
	if rd.sharedOnly {
		return ""
	}
	return userOf(rd.actor)
}

func (rd *reader) one(ctx context.Context, f project.Folder, env, key string) (Secret, bool, error) {
	var sec Secret
	var err error = errs.NotFoundf("no personal secret")
	if user := rd.user(); user != "" {
		sec, err = rd.s.openByKey(ctx, f, env, key, Personal, user)
	}
	if errs.Is(err, errs.NotFound) {
		sec, err = rd.s.openByKey(ctx, f, env, key, Shared, "")
	}
	if errs.Is(err, errs.NotFound) {
		return Secret{}, false, nil
	}
	return sec, err == nil, err
}

func (rd *reader) expand(ctx context.Context, sec *Secret) error {
	v, err := rd.x.Expand(ctx, sec.Value, sec.Env, sec.Path)
	if errors.Is(err, errBudget) {
		e := errs.BadRequest("Cannot expand the references of secret '%s' (%s:%s): %s", sec.Key, sec.Env, sec.Path, rd.x.budgetMessage())
		e.Err = errBudget
		return e
	}
	if err != nil {
		return err
	}
	if sec.SkipMultiline && v != sec.Value && strings.Contains(v, "\n") {
		v = `"` + strings.ReplaceAll(v, "\n", `\n`) + `"`
	}
	sec.Value = v
	return nil
}
