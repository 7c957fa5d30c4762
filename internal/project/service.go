package project

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// Authorizer resolves what an actor may do.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Store is the storage the project service needs.
type Store interface {
}

// Service manages projects, environments and folders.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	now   func() time.Time
}

// NewService returns a project service.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, now: now}
}
