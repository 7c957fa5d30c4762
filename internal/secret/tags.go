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
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Tag labels secrets of a project.
type Tag struct {
	ID                 string
	ProjectID          string
	Slug               string
	Name               string
	Color              string
	CreatedBy          string
	CreatedByActorType string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// TagStore is the storage tags need.
type TagStore interface {
	CreateTag(ctx context.Context, t Tag, ev audit.Event) error
	Tags(ctx context.Context, projectID string) ([]Tag, error)
	TagByID(ctx context.Context, projectID, id string) (Tag, error)
	TagBySlug(ctx context.Context, projectID, slug string) (Tag, error)
	UpdateTag(ctx context.Context, t Tag, ev audit.Event) error
	DeleteTag(ctx context.Context, t Tag, ev audit.Event) error
	// SecretTags returns the tags of each secret.
	SecretTags(ctx context.Context, secretIDs []string) (map[string][]Tag, error)
	// ProjectHasTags reports whether a project has any tag.
	ProjectHasTags(ctx context.Context, projectID string) (bool, error)
	// ProjectMoves returns a project's count of committed moves
	// (project.MoveGuard).
	ProjectMoves(ctx context.Context, projectID string) (int64, error)
}

func (s *Service) tagPerms(ctx context.Context, actor authz.Actor, projectID, action string) error {
	_, err := s.tagSet(ctx, actor, projectID, action)
	return err
}

// tagSet checks action on the project's tags and returns the actor's
// permissions in it.
func (s *Service) tagSet(ctx context.Context, actor authz.Actor, projectID, action string) (authz.Set, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return authz.Set{}, errs.NotFoundf("Project with ID '%s' not found", projectID)
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if err != nil {
		return authz.Set{}, err
	}
	return perms, perms.Check(action, authz.SubTags, nil)
}

// retagGuard refuses a change of tag t's slug (to slug; "" removes the tag
// from its secrets) after which perms would allow more on one of the secrets
// that carry it than they do now: a role that hides tagged values must not
// rename or delete the tag to read them. It returns ctx with guard (read by
// BeginMove, failed if serr) for the change's write, which reads the tagged
// secrets and checks them once it holds the project (MoveGuard.Check). A
// set with no rule on secrets that names tags allows the same whatever
// their tags: no secret is read (the change is guarded all the same).
func (s *Service) retagGuard(ctx context.Context, perms authz.Set, guard project.MoveGuard, serr error, t Tag, slug string) (context.Context, error) {
	if serr != nil {
		return ctx, serr
	}
	if perms.UsesCondition(authz.SubSecrets, "secretTags") {
		guard.Check = func(ctx context.Context, c project.Contents) error {
			held, err := c.TaggedSecrets(ctx, t.ProjectID, t.ID)
			if err != nil {
				return err
			}
			return project.MayMove(perms, held, func(h project.Held) project.Held {
				tags := slices.DeleteFunc(slices.Clone(h.Tags), func(x string) bool { return x == t.Slug })
				if slug != "" {
					tags = append(tags, slug)
				}
				h.Tags = tags
				return h
			})
		}
	}
	return project.WithMoveGuard(ctx, guard), nil
}

func tagNotFound(what string) error { return errs.NotFoundf("Tag %s not found", what) }

// TagChange is a create or update request; nil fields stay.
type TagChange struct {
	Slug  *string
	Name  *string
	Color *string
}

// MaxTagNameLen bounds a tag's display name.
const MaxTagNameLen = 255

func (c TagChange) apply(t *Tag) error {
	if c.Slug != nil {
		if !project.ValidSlug(*c.Slug, 1, 64) {
			return invalidField("slug", "slug must be 1 to 64 lowercase letters, digits and hyphens")
		}
		t.Slug = *c.Slug
	}
	if c.Name != nil && strings.TrimSpace(*c.Name) != "" {
		if len(strings.TrimSpace(*c.Name)) > MaxTagNameLen {
			return invalidField("name", "name must be at most %d characters", MaxTagNameLen)
		}
		t.Name = strings.TrimSpace(*c.Name)
	}
	if t.Name == "" {
		t.Name = t.Slug
	}
	if c.Color != nil {
		if len(*c.Color) > 32 {
			return invalidField("color", "color must be at most 32 characters")
		}
		t.Color = *c.Color
	}
	return nil
}

// CreateTag adds a tag to a project.
func (s *Service) CreateTag(ctx context.Context, actor authz.Actor, projectID string, c TagChange) (Tag, error) {
	if err := s.tagPerms(ctx, actor, projectID, authz.ActCreate); err != nil {
		return Tag{}, err
	}
	if c.Slug == nil {
		return Tag{}, invalidField("slug", "Required")
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	t := Tag{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID, CreatedBy: actor.ID, CreatedByActorType: string(actor.Kind),
		CreatedAt: now, UpdatedAt: now}
	if err := c.apply(&t); err != nil {
		return Tag{}, err
	}
	ev := audit.New(actor, "create-tag", map[string]any{"tagId": t.ID, "slug": t.Slug}).InProject(projectID, "")
	if err := s.tags.CreateTag(ctx, t, ev); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Tag{}, errs.BadRequest("A tag with the slug '%s' already exists", t.Slug)
		}
		return Tag{}, err
	}
	return t, nil
}

// Tags lists a project's tags.
func (s *Service) Tags(ctx context.Context, actor authz.Actor, projectID string) ([]Tag, error) {
	if err := s.tagPerms(ctx, actor, projectID, authz.ActRead); err != nil {
		return nil, err
	}
	return s.tags.Tags(ctx, projectID)
}

// Tag returns a tag by id or, with bySlug, by slug.
func (s *Service) Tag(ctx context.Context, actor authz.Actor, projectID, ref string, bySlug bool) (Tag, error) {
	if err := s.tagPerms(ctx, actor, projectID, authz.ActRead); err != nil {
		return Tag{}, err
	}
	var t Tag
	var err error
	if bySlug {
		t, err = s.tags.TagBySlug(ctx, projectID, ref)
	} else {
		t, err = s.tags.TagByID(ctx, projectID, ref)
	}
	if errs.Is(err, errs.NotFound) {
		return Tag{}, tagNotFound("'" + truncate(ref, 64) + "'")
	}
	return t, err
}

// UpdateTag changes a tag's slug, name or color.
func (s *Service) UpdateTag(ctx context.Context, actor authz.Actor, projectID, id string, c TagChange) (Tag, error) {
	var out Tag
	err := project.RetryMoves(ctx, func() (err error) {
		out, err = s.updateTag(ctx, actor, projectID, id, c)
		return err
	})
	return out, err
}

// updateTag is one try of UpdateTag.
func (s *Service) updateTag(ctx context.Context, actor authz.Actor, projectID, id string, c TagChange) (Tag, error) {
	ctx, seen, serr := project.BeginMove(ctx, s.tags, projectID)
	perms, err := s.tagSet(ctx, actor, projectID, authz.ActEdit)
	if err != nil {
		return Tag{}, err
	}
	t, err := s.tags.TagByID(ctx, projectID, id)
	if errs.Is(err, errs.NotFound) {
		return Tag{}, tagNotFound("'" + truncate(id, 64) + "'")
	}
	if err != nil {
		return Tag{}, err
	}
	old := t
	if err := c.apply(&t); err != nil {
		return Tag{}, err
	}
	if t.Slug != old.Slug {
		if ctx, err = s.retagGuard(ctx, perms, project.MoveGuard{ProjectID: projectID, Seen: seen}, serr, old, t.Slug); err != nil {
			return Tag{}, err
		}
	}
	t.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	ev := audit.New(actor, "update-tag", map[string]any{"tagId": t.ID, "slug": t.Slug}).InProject(projectID, "")
	if err := s.tags.UpdateTag(ctx, t, ev); err != nil {
		if errs.Is(err, errs.Conflict) && !errors.Is(err, project.ErrMoved) {
			return Tag{}, errs.BadRequest("A tag with the slug '%s' already exists", t.Slug)
		}
		return Tag{}, err
	}
	return t, nil
}

// DeleteTag removes a tag from the project and from its secrets.
func (s *Service) DeleteTag(ctx context.Context, actor authz.Actor, projectID, id string) (Tag, error) {
	var out Tag
	err := project.RetryMoves(ctx, func() (err error) {
		out, err = s.deleteTag(ctx, actor, projectID, id)
		return err
	})
	return out, err
}

// deleteTag is one try of DeleteTag.
func (s *Service) deleteTag(ctx context.Context, actor authz.Actor, projectID, id string) (Tag, error) {
	ctx, seen, serr := project.BeginMove(ctx, s.tags, projectID)
	perms, err := s.tagSet(ctx, actor, projectID, authz.ActDelete)
	if err != nil {
		return Tag{}, err
	}
	t, err := s.tags.TagByID(ctx, projectID, id)
	if errs.Is(err, errs.NotFound) {
		return Tag{}, tagNotFound("'" + truncate(id, 64) + "'")
	}
	if err != nil {
		return Tag{}, err
	}
	if ctx, err = s.retagGuard(ctx, perms, project.MoveGuard{ProjectID: projectID, Seen: seen}, serr, t, ""); err != nil {
		return Tag{}, err
	}
	ev := audit.New(actor, "delete-tag", map[string]any{"tagId": t.ID, "slug": t.Slug}).InProject(projectID, "")
	return t, s.tags.DeleteTag(ctx, t, ev)
}

// MaxTagsPerSecret bounds the tags one secret names (each is looked up and
// linked in the write).
const MaxTagsPerSecret = 100

// MaxTagsPerProject bounds a project's tags: their list is answered whole
// (each up to ~350 bytes of slug, name and color).
const MaxTagsPerProject = 1000

// TooManyTags refuses a tag past MaxTagsPerProject.
func TooManyTags(n int) error {
	return errs.BadRequest("The project has %d tags, the most it may have; delete one first", n)
}

// resolveTags checks tag ids belong to the project and returns the tags.
// A tag named twice is given once (a secret carries a tag or not).
func (s *Service) resolveTags(ctx context.Context, projectID string, ids []string) ([]Tag, error) {
	return s.resolveTagsIn(ctx, projectID, ids, map[string]Tag{})
}

// resolveTagsIn is resolveTags with known, the tags already looked up by
// id for the same request (a batch naming the same tags on every item
// looks each up once); it adds what it looks up.
func (s *Service) resolveTagsIn(ctx context.Context, projectID string, ids []string, known map[string]Tag) ([]Tag, error) {
	if len(ids) > MaxTagsPerSecret {
		return nil, invalidField("tagIds", "A secret carries at most %d tags", MaxTagsPerSecret)
	}
	out := make([]Tag, 0, len(ids))
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			continue
		}
		t, ok := known[id]
		if !ok {
			var err error
			t, err = s.tags.TagByID(ctx, projectID, id)
			if errs.Is(err, errs.NotFound) {
				return nil, errs.NotFoundf("Tag not found: %s", truncate(id, 64))
			} else if err != nil {
				return nil, err
			}
			known[id] = t
		}
		out = append(out, t)
	}
	return out, nil
}

func tagIDs(tags []Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.ID
	}
	return out
}

func tagSlugs(tags []Tag) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.Slug
	}
	return out
}

// loadTags returns the tags of sealed secrets by secret id. A secret only
// ever carries tags of its own project (resolveTags checks it on every
// write), so when none of the rows' projects has a tag no row can have one
// and the links are not read: one indexed probe per project instead of a
// query with an IN list of every row (most projects have no tags).
func (s *Service) loadTags(ctx context.Context, sealed []Sealed) (map[string][]Tag, error) {
	tagged := false
	var checked []string
	for i := 0; i < len(sealed) && !tagged; i++ {
		p := sealed[i].ProjectID
		if slices.Contains(checked, p) {
			continue
		}
		checked = append(checked, p)
		has, err := s.tags.ProjectHasTags(ctx, p)
		if err != nil {
			return nil, err
		}
		tagged = has
	}
	if !tagged {
		return nil, nil
	}
	ids := make([]string, len(sealed))
	for i := range sealed {
		ids[i] = sealed[i].ID
	}
	return s.tags.SecretTags(ctx, ids)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
