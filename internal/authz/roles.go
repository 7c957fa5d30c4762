package authz

import (
	"context"
	"time"
)

// RoleStore is the storage custom project roles need.
type RoleStore interface {
}

// Roles manages custom project roles.
type Roles struct {
	store RoleStore
	authz *Resolver
	now   func() time.Time
}

// NewRoles returns the custom role service.
func NewRoles(st RoleStore, az *Resolver, now func() time.Time) *Roles {
	if now == nil {
		now = time.Now
	}
	return &Roles{store: st, authz: az, now: now}
}

var _ = context.Background
