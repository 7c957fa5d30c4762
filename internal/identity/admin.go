package identity

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
)

// Authorizer resolves what an actor may do.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// AdminStore is the storage identity administration needs.
type AdminStore interface {
}

// Admin manages machine identities and their organization roles.
type Admin struct {
	store AdminStore
	authz Authorizer
	now   func() time.Time
}

// NewAdmin returns the identity administration service.
func NewAdmin(st AdminStore, az Authorizer, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	return &Admin{store: st, authz: az, now: now}
}
