package secret

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/events"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// folderEntry is one folder read by List.
type folderEntry struct {
	folder project.Folder
	path   string
}

// Result is a listing: the folder's own secrets and, when asked, the imported ones.
type Result struct {
	Secrets []Secret
	Imports []ImportedSecrets
	// Memo keeps what is derived from a cached result (its encoded body),
	// shared by every request the result answers; nil when not cached.
	// Secrets and Imports are shared the same way: read them, never change
	// them.
	Memo *cache.Memo
}

// listKey is a listing as asked by one actor.
type listKey struct {
	kind      authz.ActorKind
	actor     string
	org       string // the session's organization: another one sees other projects
	scope     Scope
	opts      readFlags
	tagSlugs  string
	getKey    string // Get: the secret's key
	getType   string
	version   int
	isGetting bool
}

// MaxTagSlugs bounds the tags one listing filters on.
const MaxTagSlugs = 100

func readKey(actor authz.Actor, sc Scope, o ReadOptions) listKey {
	if p, err := project.NormalizePath(sc.Path); err == nil {
		sc.Path = p // one entry for every spelling of a path ("/a", "//a/")
	}
	return listKey{kind: actor.Kind, actor: actor.ID, org: actor.OrgID, scope: sc, tagSlugs: strings.Join(o.TagSlugs, "\x00"),
		opts: readFlags{o.Expand, o.HideValue, o.Recursive, o.PersonalOverrides, o.SharedOnly, o.IncludeImports}}
}

// readFlags are ReadOptions but the tags, comparable.
type readFlags struct {
	expand, hideValue, recursive, personalOverrides, sharedOnly, includeImports bool
}

// cachedRead is a listing or a secret as it was answered, with the project
// it was found in (for the audit event of each later answer).
type cachedRead struct {
	res       Result
	sec       Secret
	projectID string
}

// MaxCachedReads and MaxCachedReadBytes bound the listings and secrets a
// node keeps in memory (their encoded bodies counted).
const (
	MaxCachedReads     = 10_000
	MaxCachedReadBytes = 128 << 20
)

// readBytes estimates what a cached read holds: its secrets, and their
// JSON (escapes counted) for the encoded body kept beside a listing.
func readBytes(c cachedRead) int {
	n := secretBytes(c.sec) + jsonBytes(c.sec)
	for _, s := range c.res.Secrets {
		n += secretBytes(s) + jsonBytes(s)
	}
	for _, im := range c.res.Imports {
		for _, s := range im.Secrets {
			n += secretBytes(s) + jsonBytes(s)
		}
	}
	return n
}

func secretBytes(s Secret) int {
	n := 512 + len(s.Key) + len(s.Value) + len(s.Comment) + len(s.Path) + len(s.Reminder.Note)
	for _, t := range s.Tags {
		n += 64 + len(t.Slug) + len(t.Name)
	}
	for _, m := range s.Metadata {
		n += 64 + len(m.Key) + len(m.Value)
	}
	return n
}

// SetCache keeps listings and single-secret reads, as each actor was
// answered, in memory in generation g: any change to secrets, folders,
// imports, tags, memberships or roles moves the generation. Every answer is
// still audited.
func (s *Service) SetCache(g *cache.Gen) {
	s.reads = cache.NewMap[listKey, cachedRead](g, MaxCachedReads).Sized(MaxCachedReadBytes, readBytes)
}

// List returns the secrets of a folder (and, recursively, of its subfolders)
// that the actor may see, optionally with its imports. Values it may not read
// are hidden; a folder the actor cannot read at all is a 403. The read is audited.
//
// A service token with exactly one scope whose path is no glob lists that
// scope whatever the query names, as Infisical does.
func (s *Service) List(ctx context.Context, actor authz.Actor, sc Scope, o ReadOptions) (Result, error) {
	if len(o.TagSlugs) > 0 {
		// The slugs are part of the cached read's key: canonical and bounded.
		o.TagSlugs = slices.Compact(slices.Sorted(slices.Values(o.TagSlugs)))
		if len(o.TagSlugs) > MaxTagSlugs {
			return Result{}, errs.Fieldf("tagSlugs", "tagSlugs may name at most %d tags", MaxTagSlugs)
		}
		for _, t := range o.TagSlugs {
			if len(t) > 64 {
				return Result{}, errs.Fieldf("tagSlugs", "a tag slug is at most 64 characters")
			}
		}
	}
	if st := actor.Service; actor.Kind == authz.ActorServiceToken && st != nil && len(st.Scopes) == 1 &&
		!authz.IsGlob(st.Scopes[0].SecretPath) {
		sc.ProjectID, sc.ProjectSlug = st.ProjectID, ""
		sc.Env, sc.Path = st.Scopes[0].Environment, st.Scopes[0].SecretPath
	}
	c, err := cache.Load(ctx, s.reads, readKey(actor, sc, o), s.now(), func(ctx context.Context) (cachedRead, time.Time, error) {
		sc := sc
		secs, imps, err := s.list(ctx, actor, &sc, o)
		if err != nil {
			return cachedRead{}, time.Time{}, err
		}
		if len(o.TagSlugs) > 0 {
			secs = slices.DeleteFunc(secs, func(sec Secret) bool {
				return !slices.ContainsFunc(sec.Tags, func(t Tag) bool { return slices.Contains(o.TagSlugs, t.Slug) })
			})
		}
		return cachedRead{res: Result{Secrets: secs, Imports: imps, Memo: &cache.Memo{}}, projectID: sc.ProjectID}, time.Time{}, nil
	})
	if err != nil {
		return Result{}, err
	}
	md := map[string]any{"environment": sc.Env, "secretPath": sc.Path, "numberOfSecrets": len(c.res.Secrets)}
	if imps, omitted := importsRead(c.res.Imports); imps != nil {
		md["imports"] = imps
		if omitted > 0 {
			md["importsOmitted"] = omitted
		}
	}
	ev := audit.New(actor, "get-secrets", md).InProject(c.projectID, "")
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return Result{}, err
	}
	return c.res, nil
}

// importsRead names, for a read's audit event, the imported folders whose
// secrets it answered and how many of each: a read of prod:/payments
// through an import was recorded against the importing folder alone, so a
// search for who read prod:/payments missed it (lockbox; Infisical records
// the importing folder only).
func importsRead(imps []ImportedSecrets) (out []map[string]any, omitted int) {
	for _, im := range imps {
		if len(im.Secrets) == 0 {
			continue
		}
		if len(out) == MaxAuditedImports {
			omitted++
			continue
		}
		out = append(out, map[string]any{"environment": im.Env, "secretPath": im.Path, "numberOfSecrets": len(im.Secrets)})
	}
	return out, omitted
}

// MaxAuditedImports bounds the imported folders one read's audit event
// names (the rest are counted, importsOmitted): a read follows up to
// MaxImportFolders of them, each path up to a few KiB, and the event is
// written on every read.
const MaxAuditedImports = 10

func (s *Service) list(ctx context.Context, actor authz.Actor, scp *Scope, o ReadOptions) ([]Secret, []ImportedSecrets, error) {
	sc := *scp
	defer func() { scp.ProjectID = sc.ProjectID }()
	f, env, perms, err := s.folder(ctx, actor, &sc)
	// A path with no folder yet lists as empty (Infisical's answer, which
	// `infisical run --path /new` relies on); the permission checks below
	// still apply to it.
	missing := errors.Is(err, project.ErrNoFolder)
	if err != nil && !missing {
		return nil, nil, err
	}
	if !perms.Can(authz.ActRead, authz.SubSecrets, nil) && !perms.Can(authz.ActDescribeSecret, authz.SubSecrets, nil) {
		return nil, nil, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
	}
	folders := []folderEntry{{f, f.Path}}
	if missing {
		folders = nil
	}
	if o.Recursive && len(folders) == 1 {
		// The whole subtree in one query, walked breadth first with each
		// folder's children by name in the database's order (that of the
		// walk folder by folder, one query a folder, before: on PostgreSQL
		// the collation's, which decides which of two same-named keys at
		// one depth a client keeps).
		below, err := s.folders.SubtreeFolders(ctx, f.ID) // by name
		if err != nil {
			return nil, nil, err
		}
		kids := make(map[string][]project.Folder)
		for _, k := range below {
			kids[k.ParentID] = append(kids[k.ParentID], k)
		}
		for i := 0; i < len(folders); i++ {
			for _, k := range kids[folders[i].folder.ID] {
				folders = append(folders, folderEntry{k, project.JoinPath(folders[i].path, k.Name)})
			}
		}
	}
	rd := s.newReader(actor, perms, sc.ProjectID)
	var out []Secret
	seenAny := false
	// Every folder's rows first, so that one query loads the tags of all.
	rows := make([][]Sealed, len(folders))
	var all []Sealed
	if len(folders) == 1 {
		if rows[0], err = s.store.FolderSecrets(ctx, folders[0].folder.ID, userOf(actor)); err != nil {
			return nil, nil, err
		}
		all = rows[0]
	} else if len(folders) > 1 {
		ids := make([]string, len(folders))
		for i, fe := range folders {
			ids[i] = fe.folder.ID
		}
		byFolder, err := s.store.FoldersSecrets(ctx, ids, userOf(actor))
		if err != nil {
			return nil, nil, err
		}
		for i, fe := range folders {
			rows[i] = byFolder[fe.folder.ID]
			all = append(all, rows[i]...)
		}
	}
	tags, err := s.loadTags(ctx, all)
	if err != nil {
		return nil, nil, err
	}
	listed := make([][]Secret, len(folders))
	for i, fe := range folders {
		// To expand, every row of the folder is opened once and handed to
		// the reader as well, so that references into the listed folders
		// are resolved without reading them again.
		var all map[string]Secret
		if o.Expand {
			all = make(map[string]Secret, len(rows[i]))
		}
		for _, sl := range rows[i] {
			describe, value := canSee(perms, env.Slug, fe.path, sl.Key, tags[sl.ID])
			listable := describe && (!o.SharedOnly || sl.Type != Personal)
			if !listable && all == nil {
				continue
			}
			// Opened: its value answered, or kept for expansion.
			if err := rd.size.opened(sl, all != nil || listable && value && !o.HideValue); err != nil {
				return nil, nil, err
			}
			sec, err := s.open(ctx, sl, env.Slug, fe.path)
			if err != nil {
				return nil, nil, err
			}
			sec.Tags = tags[sl.ID]
			if _, dup := all[sec.Key]; all != nil && (!dup || sl.Type == Personal) {
				all[sec.Key] = sec // personal overrides win for their owner, as in reader.lookup
			}
			if !listable {
				continue
			}
			seenAny = true
			if !value || o.HideValue {
				sec.Value, sec.ValueHidden = HiddenValue, true
			}
			listed[i] = append(listed[i], sec)
		}
		if all != nil {
			rd.cache[env.Slug+":"+fe.path] = all
		}
	}
	for _, secs := range listed {
		if o.PersonalOverrides {
			secs = overridePersonal(secs)
		}
		for i := range secs {
			if o.Expand && !secs[i].ValueHidden {
				if err := rd.expand(ctx, &secs[i]); err != nil {
					return nil, nil, err
				}
			}
		}
		out = append(out, secs...)
	}
	if !seenAny && len(out) == 0 && !perms.Can(authz.ActRead, authz.SubSecrets, fields(env.Slug, f.Path, "", nil)) &&
		!perms.Can(authz.ActDescribeSecret, authz.SubSecrets, fields(env.Slug, f.Path, "", nil)) {
		return nil, nil, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
	}
	if o.Recursive {
		byKeyThenDepth(out)
	}
	if out == nil {
		out = []Secret{}
	}
	var imps []ImportedSecrets
	if o.IncludeImports && !missing {
		if imps, err = s.imported(ctx, perms, sc.ProjectID, f.ID, o, rd); err != nil {
			return nil, nil, err
		}
	}
	if err := answerFits(out, imps); err != nil {
		return nil, nil, err
	}
	return out, imps, nil
}

// MaxAnswerBytes bounds the secrets one read answers with (a listing with
// its imports, a page of versions) and the folders its references open:
// the sealed values (those answered or expanded), comments and metadata of
// the rows it opens, before they are opened, and its JSON once they are. A
// member could otherwise store a folder of large values (or values of
// characters JSON writes six bytes for) and make each read build hundreds
// of megabytes. Rows the caller cannot see, and values it does not get,
// are not counted.
const MaxAnswerBytes = 32 << 20

// answerSize counts the sealed bytes a read opens; a nil one counts nothing.
type answerSize int

// opened counts row r, its value if withValue.
func (n *answerSize) opened(r Sealed, withValue bool) error {
	if n == nil {
		return nil
	}
	*n += answerSize(len(r.Comment) + len(r.Metadata) + len(r.ReminderNote))
	if withValue {
		*n += answerSize(len(r.Value))
	}
	if *n > MaxAnswerBytes {
		return tooLarge()
	}
	return nil
}

// sealed counts rows, values and all.
func (n *answerSize) sealed(rows []Sealed) error {
	for _, r := range rows {
		if err := n.opened(r, true); err != nil {
			return err
		}
	}
	return nil
}

// answerFits checks what a read answers with, as JSON, against MaxAnswerBytes.
func answerFits(secs []Secret, imps []ImportedSecrets) error {
	n := 0
	for _, sec := range secs {
		n += jsonBytes(sec)
	}
	for _, im := range imps {
		for _, sec := range im.Secrets {
			n += jsonBytes(sec)
		}
	}
	if n > MaxAnswerBytes {
		return tooLarge()
	}
	return nil
}

// errTooLarge marks tooLarge's error.
var errTooLarge = errors.New("answer too large")

func tooLarge() error {
	e := errs.BadRequest("The secrets this read would answer with come to more than %d MiB, the most one answer holds: read a narrower path, without recursive or imports, or fewer versions",
		MaxAnswerBytes>>20)
	e.Err = errTooLarge
	return e
}

// secretJSON is about what a secret's fields other than its strings
// take in an answer (ids, environment, version, times, names).
const secretJSON = 400

// jsonBytes is about what sec takes as JSON: secretJSON, and each
// character of its strings as encoding/json writes it (HTML characters left
// as they are).
func jsonBytes(sec Secret) int {
	n := secretJSON + jsonLen(sec.Path) + jsonLen(sec.Key) + jsonLen(sec.Value) + jsonLen(sec.Comment) + jsonLen(sec.Reminder.Note)
	for _, m := range sec.Metadata {
		n += jsonLen(m.Key) + jsonLen(m.Value)
	}
	return n
}

// jsonLen is len(s) as a JSON string's contents: control characters take
// six bytes (\u0001) or two (\n), quotes and backslashes two, U+2028 and
// U+2029 six.
func jsonLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n' || c == '\r' || c == '\t' || c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			n += 3
		}
	}
	return n
}

// byKeyThenDepth orders a recursive listing as Infisical does, by key, and
// makes explicit the tie Infisical leaves to its database: a key found at
// several depths is listed shallowest first. Clients (the Infisical CLI's
// run, export and secrets) keep the last of each key, so the deepest folder
// wins, as it does against Infisical. Within a folder the order is kept
// (a personal override after its shared secret).
func byKeyThenDepth(secs []Secret) {
	slices.SortStableFunc(secs, func(a, b Secret) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := len(project.Segments(a.Path)) - len(project.Segments(b.Path)); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// overridePersonal keeps, per key, the personal secret when there is one.
func overridePersonal(secs []Secret) []Secret {
	personal := map[string]bool{}
	for _, s := range secs {
		if s.Type == Personal {
			personal[s.Key] = true
		}
	}
	return slices.DeleteFunc(secs, func(s Secret) bool { return s.Type == Shared && personal[s.Key] })
}

func notFound(key string) error { return errs.NotFoundf("Secret with name '%s' not found", key) }

// GetOptions select one secret.
type GetOptions struct {
	ReadOptions
	Type    string
	Version int // 0 = current
}

// Get returns one secret by name, optionally at an older version. The
// caller must be allowed to describe the secret, its tags considered. The
// read is audited.
func (s *Service) Get(ctx context.Context, actor authz.Actor, sc Scope, key string, o GetOptions) (Secret, error) {
	o.TagSlugs = nil // a secret by name is not filtered by tags; they would key the cache
	k := readKey(actor, sc, o.ReadOptions)
	k.isGetting, k.getKey, k.getType, k.version = true, key, o.Type, o.Version
	c, err := cache.Load(ctx, s.reads, k, s.now(), func(ctx context.Context) (cachedRead, time.Time, error) {
		sec, err := s.get(ctx, actor, sc, key, o)
		return cachedRead{sec: sec}, time.Time{}, err
	})
	if err != nil {
		return Secret{}, err
	}
	return s.auditedRead(ctx, actor, c.sec)
}

func (s *Service) get(ctx context.Context, actor authz.Actor, sc Scope, key string, o GetOptions) (Secret, error) {
	f, env, perms, err := s.folder(ctx, actor, &sc)
	if err != nil {
		return Secret{}, err
	}
	typ := o.Type
	if typ == "" {
		typ = Shared
	}
	if typ != Shared && typ != Personal {
		return Secret{}, invalidField("type", "type must be shared or personal")
	}
	if !perms.Can(authz.ActRead, authz.SubSecrets, nil) && !perms.Can(authz.ActDescribeSecret, authz.SubSecrets, nil) {
		return Secret{}, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
	}
	user := userOf(actor)
	if typ == Personal && user == "" {
		return Secret{}, notFound(key)
	}
	if typ == Shared {
		user = ""
	}
	sl, err := s.store.SecretByKey(ctx, f.ID, key, typ, user)
	if errs.Is(err, errs.NotFound) {
		if describe, _ := canSee(perms, env.Slug, f.Path, key, nil); !describe {
			return Secret{}, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
		}
		if o.IncludeImports && typ == Shared && o.Version == 0 {
			return s.getImported(ctx, actor, perms, sc, f.ID, key, o)
		}
		return Secret{}, notFound(key)
	}
	if err != nil {
		return Secret{}, err
	}
	tags, err := s.loadTags(ctx, []Sealed{sl})
	if err != nil {
		return Secret{}, err
	}
	describe, value := canSee(perms, env.Slug, f.Path, key, tags[sl.ID])
	if !describe {
		return Secret{}, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
	}
	if o.Version > 0 && o.Version != sl.Version {
		if sl, err = s.store.SecretVersion(ctx, sl.ID, o.Version); errs.Is(err, errs.NotFound) {
			return Secret{}, errs.NotFoundf("Secret '%s' has no version %d", key, o.Version)
		} else if err != nil {
			return Secret{}, err
		}
	}
	sec, err := s.open(ctx, sl, env.Slug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	sec.Tags = tags[sl.ID]
	if o.Version > 0 {
		// An older version may have had another name: as in Versions, it
		// is described (comment, tags, metadata, reminder) only as far as
		// that name may be, and its value shows only if readable both now
		// and under that name.
		old := visibleVersion(perms, sec)
		value = value && !old.ValueHidden
		sec = old
	}
	if !value || o.HideValue {
		sec.Value, sec.ValueHidden = HiddenValue, true
	} else if o.Expand {
		if err := s.newReader(actor, perms, sc.ProjectID).expand(ctx, &sec); err != nil {
			return Secret{}, err
		}
	}
	return sec, nil
}

// auditedRead records the read of sec, whose tags are loaded.
func (s *Service) auditedRead(ctx context.Context, actor authz.Actor, sec Secret) (Secret, error) {
	if err := s.store.AppendAudit(ctx, event(actor, "get-secret", sec)); err != nil {
		return Secret{}, err
	}
	return sec, nil
}

// getImported finds key among the folder's imports; the last import wins.
func (s *Service) getImported(ctx context.Context, actor authz.Actor, perms authz.Set, sc Scope, folderID, key string, o GetOptions) (Secret, error) {
	rd := s.newReader(actor, perms, sc.ProjectID)
	// Only key is opened in the imported folders (their other rows were
	// all decrypted and held: 592 MiB for a 404), and counted as a
	// listing's rows are.
	rd.only = key
	imps, err := s.imported(ctx, perms, sc.ProjectID, folderID, o.ReadOptions, rd)
	if err != nil {
		return Secret{}, err
	}
	for i := len(imps) - 1; i >= 0; i-- {
		for _, sec := range imps[i].Secrets {
			if sec.Key == key {
				return sec, nil
			}
		}
	}
	return Secret{}, notFound(key)
}

// New describes a secret to create.
type New struct {
	TagIDs        []string
	Key           string
	Value         string
	Comment       string
	Type          string
	SkipMultiline bool
	Extras
}

func (s *Service) prepare(actor authz.Actor, perms authz.Set, f project.Folder, env project.Environment, n New, tags []Tag, now time.Time) (Secret, error) {
	n.Key = strings.TrimSpace(n.Key)
	if err := ValidateKey(n.Key); err != nil {
		return Secret{}, err
	}
	if err := checkValue(n.Value); err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActCreate, authz.SubSecrets, fields(env.Slug, f.Path, n.Key, tags)); err != nil {
		return Secret{}, err
	}
	typ := n.Type
	if typ == "" {
		typ = Shared
	}
	sec := Secret{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: env.ProjectID, Env: env.Slug, Path: f.Path, FolderID: f.ID,
		Key: n.Key, Type: typ, Version: 1, Value: normalizeValue(n.Value), Comment: strings.TrimSpace(n.Comment),
		SkipMultiline: n.SkipMultiline, Tags: tags, Metadata: []MetaEntry{}, Reminder: Reminder{Recipients: []string{}},
		CreatedAt: now, UpdatedAt: now}
	if err := applyExtras(&sec, n.Extras); err != nil {
		return Secret{}, err
	}
	switch typ {
	case Shared:
	case Personal:
		if actor.Kind != authz.ActorUser {
			return Secret{}, errs.BadRequest("Must be user to create personal secret")
		}
		sec.UserID = actor.ID
	default:
		return Secret{}, invalidField("type", "type must be shared or personal")
	}
	return sec, nil
}

func event(actor authz.Actor, typ string, p Secret) audit.Event {
	return audit.New(actor, typ, map[string]any{"environment": p.Env, "secretPath": p.Path, "secretId": p.ID,
		"secretKey": p.Key, "secretVersion": p.Version}).InProject(p.ProjectID, "")
}

// MaxBatch bounds the secrets one request creates, updates or deletes (an
// API batch, a .env pasted into the dashboard): each is a write with its
// version and audit event.
const MaxBatch = 10000

// Create makes secrets in one folder, all or none. It is a create
// (project.Place): no rename or deletion of the folder, its environment or
// the secrets' tags commits between the checks and the write.
func (s *Service) Create(ctx context.Context, actor authz.Actor, sc Scope, items []New) ([]Secret, error) {
	if len(items) == 0 {
		return nil, invalidField("secrets", "At least one secret is required")
	}
	if len(items) > MaxBatch {
		return nil, invalidField("secrets", "At most %d secrets in one request", MaxBatch)
	}
	if err := s.projectOf(ctx, actor, &sc); err != nil {
		return nil, err
	}
	ctx = WithWriteChecks(ctx)
	var out, visible []Secret
	err := project.Place(ctx, s.tags, sc.ProjectID, func(ctx context.Context) (err error) {
		out, visible, err = s.create(ctx, actor, sc, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out) > 0 {
		keys := make([]string, len(out))
		for i, sec := range out {
			keys[i] = sec.Key
		}
		writeChecksOf(ctx).wrote(out[0].Env, out[0].Path, keys...)
	}
	s.publish(ctx, events.SecretCreate, out...)
	return visible, nil
}

// create is one try of Create; it returns the secrets made and what of
// them the caller may see.
func (s *Service) create(ctx context.Context, actor authz.Actor, sc Scope, items []New) ([]Secret, []Secret, error) {
	f, env, perms, err := s.folder(ctx, actor, &sc)
	if err != nil {
		return nil, nil, err
	}
	rd := s.writeReader(ctx, actor, perms, env.ProjectID) // reused by every item's expansion check
	now := s.now().UTC().Truncate(time.Microsecond)
	out := make([]Secret, 0, len(items))
	sealed := make([]Sealed, 0, len(items))
	evs := make([]audit.Event, 0, len(items))
	seen := map[string]bool{}
	known := map[string]Tag{} // tags looked up, by id: each once for the batch
	for _, n := range items {
		var tags []Tag
		if len(n.TagIDs) > 0 {
			if tags, err = s.resolveTagsIn(ctx, env.ProjectID, n.TagIDs, known); err != nil {
				return nil, nil, err
			}
		}
		sec, err := s.prepare(actor, perms, f, env, n, tags, now)
		if err != nil {
			return nil, nil, err
		}
		if seen[sec.Key+"\x00"+sec.Type] {
			return nil, nil, errs.BadRequest("Secret '%s' appears twice in the request", sec.Key)
		}
		seen[sec.Key+"\x00"+sec.Type] = true
		if sec.Type == Personal {
			if _, err := s.store.SecretByKey(ctx, f.ID, sec.Key, Shared, ""); errs.Is(err, errs.NotFound) {
				return nil, nil, errs.BadRequest("Failed to create personal secret override for no corresponding shared secret")
			} else if err != nil {
				return nil, nil, err
			}
		}
		sl, err := s.seal(ctx, sec)
		if err != nil {
			return nil, nil, err
		}
		if len(tags) > 0 {
			sl.TagIDs = tagIDs(tags)
		}
		if err := s.checkExpansion(ctx, rd, sec); err != nil {
			return nil, nil, err
		}
		out, sealed = append(out, sec), append(sealed, sl)
		evs = append(evs, event(actor, "create-secret", sec))
	}
	if err := s.store.CreateSecrets(ctx, sealed, string(actor.Kind), actor.ID, evs); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, project.ErrMoved) {
			return nil, nil, errs.BadRequest("Secret already exists")
		}
		return nil, nil, err
	}
	return out, visibleAll(perms, out), nil
}

// Change describes an update; nil fields stay.
type Change struct {
	TagIDs        *[]string
	Type          string
	NewKey        *string
	Value         *string
	Comment       *string
	SkipMultiline *bool
	Extras
	// IfMatch, when not nil, makes the update conditional: it applies only
	// if the secret's current version is one of these (an empty list matches
	// none), else it fails with PreconditionFailed.
	IfMatch []int
	// Version, when positive, makes the update conditional: it applies only
	// if the secret's current version is this one, else it fails with Conflict.
	Version int
}

// Update writes a new version of a secret. Edit is checked on the secret as
// it is (its tags included) and, when the change renames or retags it, as it
// will be.
//
// An update without IfMatch or Version is blind: it never fails because
// another write landed first. It is applied to the secret as it is when it is
// written, every check above included, so concurrent blind updates each make
// a version and the last one wins.
func (s *Service) Update(ctx context.Context, actor authz.Actor, sc Scope, key string, c Change) (Secret, error) {
	typ, err := secretType(c.Type)
	if err != nil {
		return Secret{}, err
	}
	f, env, perms, err := s.folder(ctx, actor, &sc)
	if err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActEdit, authz.SubSecrets, nil); err != nil {
		return Secret{}, err
	}
	user := ""
	if typ == Personal {
		if user = userOf(actor); user == "" {
			return Secret{}, errs.BadRequest("Must be user to update personal secret")
		}
	}
	var out Secret
	var moved movedTries
	guard := s.moves(ctx, f, key, typ, user, c)
	err = retryStale(ctx, func() (err error) {
		ctx, f, env, perms := ctx, f, env, perms
		if guard {
			// A rename or a retag is a move (project.MoveGuard): the
			// project's count is read first, then the folder and the secret
			// again, from the database.
			var seen int64
			sc := sc
			if ctx, seen, err = project.BeginMove(ctx, s.tags, sc.ProjectID); err != nil {
				return err
			}
			if f, env, perms, err = s.folder(ctx, actor, &sc); err != nil {
				return err
			}
			ctx = project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: sc.ProjectID, Seen: seen})
		}
		out, err = s.update(ctx, actor, perms, f, env, key, typ, user, c)
		if errors.Is(err, errUnguardedMove) {
			guard = true
		}
		return moved.stale(err)
	})
	if err == nil {
		writeChecksOf(ctx).wrote(out.Env, out.Path, key, out.Key) // its old name and its new one
	}
	return out, err
}

// errUnguardedMove is update's answer to a change that turned out to be a
// move without a guard: Update tries again, guarded.
var errUnguardedMove = &errs.Error{Kind: errs.Conflict, Message: "The secret was changed concurrently; retry", Err: ErrStale}

// moves reports whether change c renames or retags the secret key as it
// is now (possibly read from a cache): only a move reads the project's
// count of moves and everything it checks again, uncached (update finds
// out if the secret changed meanwhile).
func (s *Service) moves(ctx context.Context, f project.Folder, key, typ, user string, c Change) bool {
	if nk := strings.TrimSpace(deref(c.NewKey)); nk != "" && nk != key {
		return true
	}
	if c.TagIDs == nil {
		return false
	}
	sl, err := s.store.SecretByKey(ctx, f.ID, key, typ, user)
	if err != nil {
		return !errs.Is(err, errs.NotFound)
	}
	tags, err := s.loadTags(ctx, []Sealed{sl})
	if err != nil {
		return true
	}
	return !sameTagIDs(tagIDs(tags[sl.ID]), *c.TagIDs)
}

// sameTagIDs reports whether a and b name the same tags, in any order.
func sameTagIDs(a, b []string) bool {
	return slices.Equal(slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(b))))
}

// movedTries makes a move that another move beat (project.ErrMoved) a
// stale write, which retryStale tries again on what is there now, up to
// project.MoveTries times (as project.RetryMoves): then its 409 is returned.
type movedTries int

func (n *movedTries) stale(err error) error {
	if !errors.Is(err, project.ErrMoved) {
		return err
	}
	if *n++; *n >= project.MoveTries {
		return err
	}
	return &errs.Error{Kind: errs.Conflict, Message: "The secret was moved concurrently; retry", Err: ErrStale}
}

// update is one try of Update against the secret as it is now.
func (s *Service) update(ctx context.Context, actor authz.Actor, perms authz.Set, f project.Folder, env project.Environment, key, typ, user string, c Change) (Secret, error) {
	sec, err := s.openByKey(ctx, f, env.Slug, key, typ, user)
	if errs.Is(err, errs.NotFound) {
		if err := perms.Check(authz.ActEdit, authz.SubSecrets, fields(env.Slug, f.Path, key, nil)); err != nil {
			return Secret{}, err
		}
	}
	if err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActEdit, authz.SubSecrets, fields(env.Slug, f.Path, sec.Key, sec.Tags)); err != nil {
		return Secret{}, err
	}
	if sec.Type == Shared {
		if err := s.checkRotatedChange(ctx, actor, sec.ProjectID, env.Slug, f.Path, sec.Key, c); err != nil {
			return Secret{}, err
		}
	}
	if c.IfMatch != nil && !slices.Contains(c.IfMatch, sec.Version) {
		return Secret{}, errs.PreconditionFailedf("Secret '%s' is at version %d, which If-Match does not name", sec.Key, sec.Version)
	}
	if c.Version > 0 && c.Version != sec.Version {
		return Secret{}, errs.Conflictf("Secret '%s' is at version %d, not %d", sec.Key, sec.Version, c.Version)
	}
	before := sec
	renamed := false
	if c.NewKey != nil && strings.TrimSpace(*c.NewKey) != "" && strings.TrimSpace(*c.NewKey) != sec.Key {
		nk := strings.TrimSpace(*c.NewKey)
		if err := ValidateKey(nk); err != nil {
			return Secret{}, err
		}
		if err := perms.Check(authz.ActCreate, authz.SubSecrets, fields(env.Slug, f.Path, nk, sec.Tags)); err != nil {
			return Secret{}, err
		}
		if _, err := s.store.SecretByKey(ctx, f.ID, nk, sec.Type, sec.UserID); err == nil {
			return Secret{}, renameTaken(nk)
		} else if !errs.Is(err, errs.NotFound) {
			return Secret{}, err
		}
		sec.Key, renamed = nk, nk != before.Key
	}
	var newTags []Tag
	if c.TagIDs != nil {
		if newTags, err = s.resolveTags(ctx, sec.ProjectID, *c.TagIDs); err != nil {
			return Secret{}, err
		}
		if err := perms.Check(authz.ActEdit, authz.SubSecrets, fields(env.Slug, f.Path, sec.Key, newTags)); err != nil {
			return Secret{}, err
		}
		sec.Tags = newTags
	}
	if c.Value != nil {
		if err := checkValue(*c.Value); err != nil {
			return Secret{}, err
		}
		sec.Value = normalizeValue(*c.Value)
	}
	// A renamed secret is what references to its new name now reach, so
	// its value is checked as a new one: the renamer may not point
	// another's ${dev.app.K} at a value that reaches what it cannot read.
	if c.Value != nil || renamed {
		if err := s.checkExpansion(ctx, s.writeReader(ctx, actor, perms, sec.ProjectID), sec); err != nil {
			return Secret{}, err
		}
	}
	if c.Comment != nil {
		sec.Comment = strings.TrimSpace(*c.Comment)
	}
	if c.SkipMultiline != nil {
		sec.SkipMultiline = *c.SkipMultiline
	}
	if err := applyExtras(&sec, c.Extras); err != nil {
		return Secret{}, err
	}
	if err := noReveal(perms, before, sec); err != nil {
		return Secret{}, err
	}
	switch _, guarded := project.MoveGuardOf(ctx); {
	case !renamed && sameTagIDs(tagIDs(before.Tags), tagIDs(sec.Tags)):
		ctx = project.WithMoveGuard(ctx, project.MoveGuard{}) // not a move: no need to wait for one
	case !guarded:
		return Secret{}, errUnguardedMove // changed since Update looked: again, as a move
	}
	sec.Version++
	sec.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	nsl, err := s.seal(ctx, sec)
	if err != nil {
		return Secret{}, err
	}
	if c.TagIDs != nil {
		nsl.TagIDs = tagIDs(newTags)
	}
	err = s.store.UpdateSecret(ctx, nsl, string(actor.Kind), actor.ID, event(actor, "update-secret", sec))
	if renamed && errs.Is(err, errs.Conflict) && !errors.Is(err, ErrStale) && !errors.Is(err, project.ErrMoved) {
		// The new name was taken between the check above and the write.
		return Secret{}, renameTaken(sec.Key)
	}
	if err != nil {
		return Secret{}, err
	}
	s.publish(ctx, events.SecretUpdate, sec)
	return visible(perms, sec), nil
}

func renameTaken(key string) error {
	return errs.BadRequest("A secret named '%s' already exists in this folder", key)
}

// retryStale runs write until it fails for another reason than ErrStale or
// succeeds. Each ErrStale means another write to the secret committed
// between this try's read and its write, so while some try fails another
// succeeds: n writers racing for one secret all finish within n rounds, and
// a try only waits for writes that landed meanwhile. Waits are jittered so
// the losers do not collide again in lockstep; ctx bounds the whole, and its
// end returns the last ErrStale (a 409).
func retryStale(ctx context.Context, write func() error) error {
	return project.Retry(ctx, func(err error) bool { return errors.Is(err, ErrStale) }, 0, write)
}

// noReveal refuses a change (a rename, a retag, a rollback to another name)
// after which the caller could read more of the secret than before, or do
// anything to it it may not do now: a role that hides tagged values must
// not untag one to read it, and one that may not delete CRITICAL must not
// rename it to delete it.
func noReveal(perms authz.Set, before, after Secret) error {
	d0, v0 := canSee(perms, before.Env, before.Path, before.Key, before.Tags)
	d1, v1 := canSee(perms, after.Env, after.Path, after.Key, after.Tags)
	if (v1 && !v0) || (d1 && !d0) {
		return errs.Forbiddenf("This change would let you read a secret you cannot read now").WithCode("PermissionDenied")
	}
	// What one may do to the secret itself: create is not (the new name is
	// checked for it on its own), reading is above.
	f0, f1 := fields(before.Env, before.Path, before.Key, before.Tags), fields(after.Env, after.Path, after.Key, after.Tags)
	for _, a := range []authz.Action{authz.ActEdit, authz.ActDelete} {
		if perms.Can(a, authz.SubSecrets, f1) && !perms.Can(a, authz.SubSecrets, f0) {
			return errs.Forbiddenf("This change would let you do more with a secret than you may now").WithCode("PermissionDenied")
		}
	}
	return nil
}

// Delete removes a secret with its history.
// A personal secret is a user's: an identity asking for one is a 400, as in
// Infisical (the CLI's `secrets delete` sends type personal unless told otherwise).
func (s *Service) Delete(ctx context.Context, actor authz.Actor, sc Scope, key, typ string) (Secret, error) {
	typ, err := secretType(typ)
	if err != nil {
		return Secret{}, err
	}
	f, env, perms, err := s.folder(ctx, actor, &sc)
	if err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActDelete, authz.SubSecrets, nil); err != nil {
		return Secret{}, err
	}
	user := ""
	if typ == Personal {
		if user = userOf(actor); user == "" {
			return Secret{}, errs.BadRequest("Must be user to delete personal secret")
		}
	}
	sec, err := s.openByKey(ctx, f, env.Slug, key, typ, user)
	if errs.Is(err, errs.NotFound) {
		if err := perms.Check(authz.ActDelete, authz.SubSecrets, fields(env.Slug, f.Path, key, nil)); err != nil {
			return Secret{}, err
		}
	}
	if err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActDelete, authz.SubSecrets, fields(env.Slug, f.Path, sec.Key, sec.Tags)); err != nil {
		return Secret{}, err
	}
	if sec.Type == Shared {
		if err := s.checkRotatedDelete(ctx, actor, sec.ProjectID, env.Slug, f.Path, sec.Key); err != nil {
			return Secret{}, err
		}
	}
	if err := s.store.DeleteSecret(ctx, sec.ID, event(actor, "delete-secret", sec)); err != nil {
		return Secret{}, err
	}
	s.publish(ctx, events.SecretDelete, sec)
	return visible(perms, sec), nil
}

// secretType is typ with its default (shared); a type that is neither shared
// nor personal is a validation failure, as Infisical's schema makes it.
func secretType(typ string) (string, error) {
	switch typ {
	case "":
		return Shared, nil
	case Shared, Personal:
		return typ, nil
	}
	return "", invalidField("type", "type must be shared or personal")
}

// openByKey loads and decrypts the current version of key in folder f; a
// missing secret is Infisical's "not found" message.
func (s *Service) openByKey(ctx context.Context, f project.Folder, envSlug, key, typ, user string) (Secret, error) {
	sl, err := s.store.SecretByKey(ctx, f.ID, key, typ, user)
	if errs.Is(err, errs.NotFound) {
		return Secret{}, notFound(key)
	}
	if err != nil {
		return Secret{}, err
	}
	sec, err := s.open(ctx, sl, envSlug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	tags, err := s.loadTags(ctx, []Sealed{sl})
	sec.Tags = tags[sl.ID]
	return sec, err
}

// MayWrite refuses (403) keys at sc that actor could not create and edit
// as they are now: each existing shared secret weighed with its tags, a
// missing one as it would be created (untagged). Services that write
// secrets as the platform on a member's behalf (a rotation) ask it first:
// nobody makes them write what they could not write themselves, a secret
// a tag-conditioned rule keeps from them included.
func (s *Service) MayWrite(ctx context.Context, actor authz.Actor, sc Scope, keys []string) error {
	f, env, perms, err := s.folder(ctx, actor, &sc)
	missing := errors.Is(err, project.ErrNoFolder)
	if err != nil && !missing {
		return err
	}
	for _, key := range keys {
		var tags []Tag
		if !missing {
			sl, err := s.store.SecretByKey(ctx, f.ID, key, Shared, "")
			switch {
			case err == nil:
				byID, err := s.loadTags(ctx, []Sealed{sl})
				if err != nil {
					return err
				}
				tags = byID[sl.ID]
			case !errs.Is(err, errs.NotFound):
				return err
			}
		}
		for _, a := range []authz.Action{authz.ActCreate, authz.ActEdit} {
			if err := perms.Check(a, authz.SubSecrets, fields(env.Slug, f.Path, key, tags)); err != nil {
				return err
			}
		}
	}
	return nil
}
