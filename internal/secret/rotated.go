package secret

import (
	"context"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Secrets a secret rotation writes are its own until the rotation is
// deleted: nobody else may change their value or name or delete them (as in
// Infisical, which answers 400 with the messages below), while comments,
// tags and metadata stay editable. The rotation writes as the platform
// actor RotationActorID names.

// RotationActorID is the actor ID a secret rotation writes its secrets as.
func RotationActorID(rotationID string) string { return "secret-rotation:" + rotationID }

// Infisical's messages.
const (
	msgRotatedValue  = "Cannot update rotated secret value"
	msgRotatedName   = "Cannot update rotated secret name"
	msgRotatedDelete = "Cannot delete rotated secrets"
)

// cleanPath is path as rotations store it: "/" or "/a/b".
func cleanPath(p string) string {
	p = strings.TrimSpace(p)
	if p == "" || p == "/" {
		return "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return strings.TrimRight(p, "/")
}

// rotated answers which of the shared secrets at env/path a rotation other
// than actor owns (key -> rotation id). Readers of it call it only for
// shared secrets.
func (s *Service) rotated(ctx context.Context, actor authz.Actor, projectID, env, path string) (map[string]bool, error) {
	owners, err := s.store.RotatedSecrets(ctx, projectID, env, cleanPath(path))
	if err != nil || len(owners) == 0 {
		return nil, err
	}
	out := make(map[string]bool, len(owners))
	for key, rid := range owners {
		if actor.Kind == authz.ActorPlatform && actor.ID == RotationActorID(rid) {
			continue
		}
		out[key] = true
	}
	return out, nil
}

// checkRotatedChange refuses c to key (at env/path) when a rotation owns it
// and c gives a value or a new name.
func (s *Service) checkRotatedChange(ctx context.Context, actor authz.Actor, projectID, env, path, key string, c Change) error {
	renames := c.NewKey != nil && *c.NewKey != "" && *c.NewKey != key
	revalues := c.Value != nil
	if !renames && !revalues {
		return nil
	}
	owned, err := s.rotated(ctx, actor, projectID, env, path)
	if err != nil || !owned[key] {
		return err
	}
	if renames {
		return errs.BadRequest(msgRotatedName)
	}
	return errs.BadRequest(msgRotatedValue)
}

// checkRotatedBatch refuses, before any of it is applied, a batch that
// would change or delete a secret a rotation owns (del: a delete batch).
// Without a project id (a batch addressed by slug) each item is checked
// as it is applied instead.
func (s *Service) checkRotatedBatch(ctx context.Context, actor authz.Actor, sc Scope, items []BatchItem, del bool) error {
	if sc.ProjectID == "" {
		return nil
	}
	perms, err := s.authz.ProjectPermissions(ctx, actor, sc.ProjectID)
	if err != nil {
		return nil // reported by the items
	}
	action := authz.ActEdit
	if del {
		action = authz.ActDelete
	}
	byPath := map[string]map[string]bool{}
	for _, it := range items {
		path := sc.Path
		if it.Path != "" {
			path = it.Path
		}
		// Who may not change the secret learns nothing of its owner: the
		// item fails with 403 as it is applied.
		if it.Type == Personal || !perms.Can(action, authz.SubSecrets, fields(sc.Env, cleanPath(path), it.Key, nil)) {
			continue
		}
		owned, ok := byPath[cleanPath(path)]
		if !ok {
			var err error
			if owned, err = s.rotated(ctx, actor, sc.ProjectID, sc.Env, path); err != nil {
				return err
			}
			byPath[cleanPath(path)] = owned
		}
		if !owned[it.Key] {
			continue
		}
		switch {
		case del:
			return errs.BadRequest(msgRotatedDelete)
		case it.NewKey != nil && *it.NewKey != "" && *it.NewKey != it.Key:
			return errs.BadRequest(msgRotatedName)
		case it.Value != nil:
			return errs.BadRequest(msgRotatedValue)
		}
	}
	return nil
}

// checkRotatedDelete refuses deleting keys at env/path a rotation owns.
func (s *Service) checkRotatedDelete(ctx context.Context, actor authz.Actor, projectID, env, path string, keys ...string) error {
	owned, err := s.rotated(ctx, actor, projectID, env, path)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if owned[k] {
			return errs.BadRequest(msgRotatedDelete)
		}
	}
	return nil
}
