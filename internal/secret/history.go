package secret

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/events"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// byID loads a secret by id with its location and the actor's permissions.
func (s *Service) byID(ctx context.Context, actor authz.Actor, id string) (Sealed, project.Folder, project.Environment, authz.Set, error) {
	notFound := errs.NotFoundf("Secret with ID '%s' not found", truncate(id, 64))
	if _, err := uuid.Parse(id); err != nil {
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, notFound
	}
	sl, err := s.store.SecretByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, notFound
	}
	if err != nil {
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, err
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, sl.ProjectID)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden) {
		// Someone outside the secret's project learns neither that the id
		// exists nor which project holds it.
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, notFound
	}
	if err != nil {
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, err
	}
	if sl.Type == Personal && sl.UserID != userOf(actor) {
		return Sealed{}, project.Folder{}, project.Environment{}, authz.Set{}, notFound
	}
	f, env, err := s.folders.FolderLocation(ctx, sl.FolderID)
	return sl, f, env, perms, err
}

// describable loads sl's tags and checks the actor may describe sl.
func (s *Service) describable(ctx context.Context, perms authz.Set, sl Sealed, env, path string) ([]Tag, bool, error) {
	tags, err := s.loadTags(ctx, []Sealed{sl})
	if err != nil {
		return nil, false, err
	}
	describe, value := canSee(perms, env, path, sl.Key, tags[sl.ID])
	if !describe {
		return nil, false, errs.PermissionDenied(authz.ActRead, authz.SubSecrets)
	}
	return tags[sl.ID], value, nil
}

// GetByID returns a secret by id (what Terraform reads).
func (s *Service) GetByID(ctx context.Context, actor authz.Actor, id string) (Secret, error) {
	sl, f, env, perms, err := s.byID(ctx, actor, id)
	if err != nil {
		return Secret{}, err
	}
	tags, value, err := s.describable(ctx, perms, sl, env.Slug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	sec, err := s.open(ctx, sl, env.Slug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	sec.Tags = tags
	if !value {
		sec.Value, sec.ValueHidden = HiddenValue, true
	}
	return s.auditedRead(ctx, actor, sec)
}

// Versions lists a secret's versions, newest first. The caller must be
// allowed to read rollbacks and to describe the secret.
func (s *Service) Versions(ctx context.Context, actor authz.Actor, id string, offset, limit int) ([]Secret, error) {
	sl, f, env, perms, err := s.byID(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if err := perms.Check(authz.ActRead, authz.SubSecretRollback, nil); err != nil {
		return nil, err
	}
	tags, value, err := s.describable(ctx, perms, sl, env.Slug, f.Path)
	if err != nil {
		return nil, err
	}
	ev := audit.New(actor, "get-secret-versions", map[string]any{"environment": env.Slug, "secretPath": f.Path, "secretId": sl.ID,
		"secretKey": sl.Key}).InProject(sl.ProjectID, "")
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return nil, err
	}
	hist, err := s.store.SecretVersions(ctx, sl.ID, offset, limit)
	if err != nil {
		return nil, err
	}
	if err := new(answerSize).sealed(hist); err != nil {
		return nil, err
	}
	out := make([]Secret, 0, len(hist))
	for _, h := range hist {
		sec, err := s.open(ctx, h, env.Slug, f.Path)
		if err != nil {
			return nil, err
		}
		// A value is shown only if the caller may read it both as the
		// secret is now and as that version was named (current tags).
		sec.Tags = tags
		sec = visibleVersion(perms, sec)
		if !value {
			sec.Value, sec.ValueHidden = HiddenValue, true
		}
		out = append(out, sec)
	}
	return out, answerFits(out, nil)
}

// Rollback writes a new version whose key, value, comment, encoding,
// metadata and reminder are those of version v. Like a blind Update, it is
// applied on top of whatever version is current when it is written, never
// refused for a write that landed first.
func (s *Service) Rollback(ctx context.Context, actor authz.Actor, id string, v int) (Secret, error) {
	var out Secret
	var moved movedTries
	err := retryStale(ctx, func() (err error) {
		out, err = s.rollback(ctx, actor, id, v)
		return moved.stale(err)
	})
	return out, err
}

// rollback is one try of Rollback against the secret as it is now. A
// rollback to another name is a move (project.MoveGuard): the project's
// count is read, then the secret again, from the database.
func (s *Service) rollback(ctx context.Context, actor authz.Actor, id string, v int) (Secret, error) {
	sl, f, env, perms, err := s.byID(ctx, actor, id)
	if err != nil {
		return Secret{}, err
	}
	ctx, seen, err := project.BeginMove(ctx, s.tags, sl.ProjectID)
	if err != nil {
		return Secret{}, err
	}
	if sl, f, env, perms, err = s.byID(ctx, actor, id); err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActCreate, authz.SubSecretRollback, nil); err != nil {
		return Secret{}, err
	}
	tags, err := s.loadTags(ctx, []Sealed{sl})
	if err != nil {
		return Secret{}, err
	}
	if err := perms.Check(authz.ActEdit, authz.SubSecrets, fields(env.Slug, f.Path, sl.Key, tags[sl.ID])); err != nil {
		return Secret{}, err
	}
	old, err := s.store.SecretVersion(ctx, sl.ID, v)
	if errs.Is(err, errs.NotFound) {
		return Secret{}, errs.NotFoundf("Secret has no version %d", v)
	}
	if err != nil {
		return Secret{}, err
	}
	prev, err := s.open(ctx, old, env.Slug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	sec, err := s.open(ctx, sl, env.Slug, f.Path)
	if err != nil {
		return Secret{}, err
	}
	sec.Tags = tags[sl.ID]
	if prev.Key != sec.Key {
		if err := perms.Check(authz.ActCreate, authz.SubSecrets, fields(env.Slug, f.Path, prev.Key, sec.Tags)); err != nil {
			return Secret{}, err
		}
		if _, err := s.store.SecretByKey(ctx, f.ID, prev.Key, sec.Type, sec.UserID); err == nil {
			return Secret{}, errs.BadRequest("Cannot roll back: a secret named '%s' exists in this folder", prev.Key)
		}
	}
	if sec.Type == Shared {
		if err := s.checkRotatedChange(ctx, actor, sec.ProjectID, env.Slug, f.Path, sec.Key, Change{Value: &prev.Value, NewKey: &prev.Key}); err != nil {
			return Secret{}, err
		}
	}
	before := sec
	sec.Key, sec.Value, sec.Comment, sec.SkipMultiline = prev.Key, prev.Value, prev.Comment, prev.SkipMultiline
	sec.Metadata, sec.Reminder = prev.Metadata, prev.Reminder
	if err := noReveal(perms, before, sec); err != nil {
		return Secret{}, err
	}
	// The old value is written again, by this actor: its references are
	// checked as a new value's are (someone else may have written them).
	if err := s.checkExpansion(ctx, s.writeReader(ctx, actor, perms, sec.ProjectID), sec); err != nil {
		return Secret{}, err
	}
	if sec.Key != before.Key {
		ctx = project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: sl.ProjectID, Seen: seen})
	}
	sec.Version++
	sec.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	nsl, err := s.seal(ctx, sec)
	if err != nil {
		return Secret{}, err
	}
	ev := event(actor, "secret-rollback", sec)
	ev.Metadata["rolledBackToVersion"] = v
	if err := s.store.UpdateSecret(ctx, nsl, string(actor.Kind), actor.ID, ev); err != nil {
		return Secret{}, err
	}
	s.publish(ctx, events.SecretUpdate, sec)
	return visible(perms, sec), nil
}

// BatchItem is one entry of a batch update.
type BatchItem struct {
	Key  string
	Path string // overrides the batch's path when set
	Change
}

// Batch modes for updates of missing secrets.
const (
	FailOnNotFound = "failOnNotFound"
	Upsert         = "upsert"
	Ignore         = "ignore"
)

// UpdateMany applies changes one secret at a time; a missing secret fails,
// is created (upsert) or is skipped (ignore). It stops at the first error.
func (s *Service) UpdateMany(ctx context.Context, actor authz.Actor, sc Scope, mode string, items []BatchItem) ([]Secret, error) {
	if len(items) == 0 {
		return nil, invalidField("secrets", "At least one secret is required")
	}
	if len(items) > MaxBatch {
		return nil, invalidField("secrets", "At most %d secrets in one request", MaxBatch)
	}
	if mode == "" {
		mode = FailOnNotFound
	}
	if mode != FailOnNotFound && mode != Upsert && mode != Ignore {
		return nil, invalidField("mode", "mode must be failOnNotFound, upsert or ignore")
	}
	if err := oneItemPerSecret(sc, items); err != nil {
		return nil, err
	}
	// The project named by slug or implied by a service token, for the
	// checks of the whole batch (an error is the items' to report).
	_ = s.projectOf(ctx, actor, &sc)
	if mode != Ignore { // an ignored item may be skipped as missing before any check
		alt := ""
		if mode == Upsert {
			alt = authz.ActCreate // a missing secret is created
		}
		if err := s.checkBatchUpfront(ctx, actor, sc, items, authz.ActEdit, alt); err != nil {
			return nil, err
		}
	}
	if err := s.checkRotatedBatch(ctx, actor, sc, items, false); err != nil {
		return nil, err
	}
	ctx = WithWriteChecks(ctx) // one expansion budget for every item
	var out []Secret
	for _, it := range items {
		isc := sc
		if it.Path != "" {
			isc.Path = it.Path
		}
		sec, err := s.Update(ctx, actor, isc, it.Key, it.Change)
		if errs.Is(err, errs.NotFound) && mode != FailOnNotFound && it.Value != nil {
			if mode == Ignore {
				continue
			}
			var created []Secret
			created, err = s.Create(ctx, actor, isc, []New{{Key: it.Key, Value: *it.Value, Comment: deref(it.Comment),
				Type: it.Type, SkipMultiline: deref(it.SkipMultiline), TagIDs: deref(it.TagIDs), Extras: it.Extras}})
			if err == nil {
				sec = created[0]
			}
		} else if errs.Is(err, errs.NotFound) && mode == Ignore {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// oneItemPerSecret refuses a batch update that names one secret in more
// than one item, under its name or a name an earlier item gives it: each
// item writes a whole new version, so 200 items {"secretKey":"BIG"} in a
// 4 KB request stored 200 copies of a 900 KB secret (174 MiB) and answered
// all of them at once.
func oneItemPerSecret(sc Scope, items []BatchItem) error {
	seen := make(map[string]bool, len(items))
	name := func(it BatchItem, key string) string {
		path := sc.Path
		if it.Path != "" {
			path = it.Path
		}
		if n, err := project.NormalizePath(path); err == nil {
			path = n
		}
		typ := Shared
		if it.Type == Personal {
			typ = Personal
		}
		return path + "\x00" + typ + "\x00" + strings.TrimSpace(key) // as update trims a new name
	}
	for i, it := range items {
		k := name(it, it.Key)
		if seen[k] {
			return invalidField("secrets", "secrets[%d]: secret %q is named by an earlier item of the batch; change it in one item", i, truncate(it.Key, 64))
		}
		seen[k] = true
		if it.NewKey != nil && strings.TrimSpace(*it.NewKey) != strings.TrimSpace(it.Key) {
			nk := name(it, *it.NewKey)
			if seen[nk] {
				return invalidField("secrets", "secrets[%d]: secret %q is named by an earlier item of the batch; change it in one item", i, truncate(*it.NewKey, 64))
			}
			seen[nk] = true
		}
	}
	return nil
}

// DeleteMany deletes secrets one at a time (each in its own secretPath when
// it names one), stopping at the first error.
func (s *Service) DeleteMany(ctx context.Context, actor authz.Actor, sc Scope, keys []BatchItem) ([]Secret, error) {
	if len(keys) == 0 {
		return nil, invalidField("secrets", "At least one secret is required")
	}
	if len(keys) > MaxBatch {
		return nil, invalidField("secrets", "At most %d secrets in one request", MaxBatch)
	}
	_ = s.projectOf(ctx, actor, &sc) // as in UpdateMany
	if err := s.checkBatchUpfront(ctx, actor, sc, keys, authz.ActDelete, ""); err != nil {
		return nil, err
	}
	if err := s.checkRotatedBatch(ctx, actor, sc, keys, true); err != nil {
		return nil, err
	}
	var out []Secret
	for _, it := range keys {
		// An item's own path counts, as in UpdateMany and as checkRotatedBatch
		// read it.
		isc := sc
		if it.Path != "" {
			isc.Path = it.Path
		}
		sec, err := s.Delete(ctx, actor, isc, it.Key, it.Type)
		if err != nil {
			return out, err
		}
		out = append(out, sec)
	}
	return out, nil
}

// checkBatchUpfront refuses a batch with an item the caller may not
// change (action; or, for an item with a value, alt when set) whatever the
// secret's tags, before any item is applied: items are applied one at a
// time, and a 403 after the first ones were written would tell the client
// (Terraform retries) that nothing changed. Items whose outcome depends on
// tags (the caller's rules name them) are still checked only as they are
// applied, and every item is checked again then.
func (s *Service) checkBatchUpfront(ctx context.Context, actor authz.Actor, sc Scope, items []BatchItem, action, alt string) error {
	if sc.ProjectID == "" {
		return nil
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, sc.ProjectID)
	if err != nil || perms.UsesCondition(authz.SubSecrets, "secretTags") {
		return nil // reported by the items
	}
	for _, it := range items {
		path := sc.Path
		if it.Path != "" {
			path = it.Path
		}
		path, err := project.NormalizePath(path)
		if err != nil || it.Type == Personal {
			continue // reported by the item; personal secrets are the caller's own
		}
		f := fields(sc.Env, path, it.Key, nil)
		if !perms.Can(action, authz.SubSecrets, f) && (alt == "" || it.Value == nil || !perms.Can(alt, authz.SubSecrets, f)) {
			return errs.PermissionDenied(action, authz.SubSecrets)
		}
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
