package project

import (
	"context"
	"time"
)

// MembershipRole is one role of a project membership; temporary roles hold
// only between their start and end times.
type MembershipRole struct {
	ID                       string
	Role                     string // built-in slug, or "custom"
	CustomRoleID             string
	CustomRoleSlug           string
	CustomRoleName           string
	IsTemporary              bool
	TemporaryMode            string // "relative"
	TemporaryRange           string // e.g. "1h"
	TemporaryAccessStartTime *time.Time
	TemporaryAccessEndTime   *time.Time
	CreatedAt                time.Time
	UpdatedAt                time.Time
}

// MembershipStore is the storage project memberships need.
type MembershipStore interface {
}

// Memberships manages which identities belong to a project, with which roles.
type Memberships struct {
	store MembershipStore
	authz Authorizer
	now   func() time.Time
}

// NewMemberships returns the membership service.
func NewMemberships(st MembershipStore, az Authorizer, now func() time.Time) *Memberships {
	if now == nil {
		now = time.Now
	}
	return &Memberships{store: st, authz: az, now: now}
}

var _ = context.Background
