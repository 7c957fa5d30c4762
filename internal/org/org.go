package org

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// Membership states of a user in an organization.
const (
	StatusInvited  = "invited"
	StatusAccepted = "accepted"
)

// Member is a user's membership of an organization.
type Member struct {
	ID     string // membership id
	OrgID  string
	UserID string
	Email  string
	// Username is the user's login name (the email for invited users).
	Username  string
	FirstName string
	LastName  string
	// Role is a built-in slug ("admin", "member", "no-access") or "custom".
	Role           string
	CustomRoleID   string
	CustomRoleSlug string
	Status         string
	IsActive       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// RoleSlug is the slug of the member's role, custom or built-in.
func (m Member) RoleSlug() string {
	if m.CustomRoleSlug != "" {
		return m.CustomRoleSlug
	}
	return m.Role
}

// Role is an organization role: built-in (ID equals its slug) or custom.
type Role struct {
	ID          string
	OrgID       string
	Slug        string
	Name        string
	Description string
	Permissions []authz.Rule
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Invitation is a pending one-time invitation; only the keyed hash of its
// token is stored.
type Invitation struct {
	ID        string
	OrgID     string
	UserID    string
	TokenHash string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Invitee is who an invitation creates or reuses.
type Invitee struct {
	User       identity.User // ID set; created when new
	NewUser    bool
	Membership Member // Role, CustomRoleID set
	Invitation Invitation
	// LinkShown says the invitation's link goes back to the inviter for an
	// existing user without a password: the store refuses it (errs.Invalid)
	// if the user has a membership in another organization, whose
	// invitation set them up.
	LinkShown bool
}

// Store is the storage the organization services need. Each write takes the
// audit event that records it, written in the same transaction.
type Store interface {
	OrgMembers(ctx context.Context, orgID string) ([]Member, error)
	OrgMember(ctx context.Context, orgID, membershipID string) (Member, error)
	// OrgMemberByUser finds a user's membership; errs.NotFound if none.
	OrgMemberByUser(ctx context.Context, orgID, userID string) (Member, error)
	// UpdateOrgMember writes Role, CustomRoleID and IsActive if the
	// membership is still as read, last updated at m.UpdatedAt (project.ErrStale
	// otherwise). It refuses (errs.Invalid) to leave the organization
	// without an active admin.
	UpdateOrgMember(ctx context.Context, m Member, ev audit.Event) error
	// DeleteOrgMember removes the membership and the user's memberships of
	// the organization's projects, with the same refusal, if the membership
	// is still as read (project.ErrStale otherwise).
	DeleteOrgMember(ctx context.Context, m Member, ev audit.Event) error
	UserByEmail(ctx context.Context, email string) (identity.User, error)
	// Invite writes the user (when new), the invited membership (when the
	// user has none) and the invitation, replacing an older invitation of
	// the same user to the organization.
	Invite(ctx context.Context, in Invitee, ev audit.Event) error
	InvitationByHash(ctx context.Context, tokenHash string) (Invitation, error)
	// AcceptInvitation consumes the invitation (errs.NotFound if it is gone
	// already), sets the user's password hash and names when passwordHash
	// is not empty, and marks the membership accepted.
	AcceptInvitation(ctx context.Context, inv Invitation, passwordHash, firstName, lastName string, ev audit.Event) error
	UserByID(ctx context.Context, id string) (identity.User, error)

	OrgRoles(ctx context.Context, orgID string) ([]Role, error)
	OrgRoleByID(ctx context.Context, orgID, id string) (Role, error)
	OrgRoleBySlug(ctx context.Context, orgID, slug string) (Role, error)
	CreateOrgRole(ctx context.Context, r Role, permissions string, ev audit.Event) error
	// UpdateOrgRole writes r if it is still as read, last updated at prev;
	// project.ErrStale if another change came first.
	UpdateOrgRole(ctx context.Context, r Role, permissions string, prev time.Time, ev audit.Event) error
	// DeleteOrgRole deletes a role; errs.Conflict while a membership uses it.
	DeleteOrgRole(ctx context.Context, r Role, ev audit.Event) error
}

// Authorizer resolves what an actor may do.
type Authorizer interface {
	OrgPermissions(ctx context.Context, actor authz.Actor) (authz.Set, error)
	OrgRole(ctx context.Context, actor authz.Actor) (string, error)
	// OrgRoleSet is the permission set of a role of the actor's organization.
	OrgRoleSet(ctx context.Context, actor authz.Actor, role string) (authz.Set, error)
	// HeldOrgRoles is what a principal of the actor's organization holds:
	// its own role own and its groups' roles.
	HeldOrgRoles(ctx context.Context, actor authz.Actor, kind authz.ActorKind, id, own string) ([]string, error)
	// CoversReactivation refuses an actor who is not an organization admin
	// unless it holds, in every project target is a member of, what target
	// will hold there once reactivated with organization role role.
	CoversReactivation(ctx context.Context, actor authz.Actor, target authz.Actor, role string) error
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func invalidField(field, format string, args ...any) error {
	return errs.Fieldf(field, format, args...)
}

func boundaryError(format string, args ...any) error {
	return errs.Forbiddenf("Failed to "+format, args...).WithCode("PermissionBoundaryError")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// perms checks action on subject in the actor's organization (orgID, when
// given, must be it) and returns the actor's permissions and role.
func perms(ctx context.Context, az Authorizer, actor authz.Actor, orgID, action, subject string) (authz.Set, string, error) {
	if actor.Kind == authz.ActorServiceToken {
		return authz.Set{}, "", errs.Forbiddenf("Service tokens cannot act on the organization").WithCode("PermissionDenied")
	}
	if orgID != "" && orgID != actor.OrgID {
		return authz.Set{}, "", errs.Forbiddenf("You are not a member of organization %s", truncate(orgID, 64)).WithCode("PermissionDenied")
	}
	set, err := az.OrgPermissions(ctx, actor)
	if err != nil {
		return authz.Set{}, "", err
	}
	if err := set.Check(action, subject, nil); err != nil {
		return authz.Set{}, "", err
	}
	role, err := az.OrgRole(ctx, actor)
	return set, role, err
}

// mayHoldMember is mayHold for every organization role a user holds: own
// (its membership's role, whatever the membership's state) and those of
// the groups it is in. Changing or removing a member takes all of them.
func mayHoldMember(ctx context.Context, az Authorizer, actor authz.Actor, set authz.Set, mine, userID, own string) error {
	roles, err := az.HeldOrgRoles(ctx, actor, authz.ActorUser, userID, own)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if err := mayHold(ctx, az, actor, set, mine, r); err != nil {
			return err
		}
	}
	return nil
}

// mayLift refuses to take organization role target away from whoever
// holds it (replacing it with another) unless the actor holds, for good,
// what it denies: any set covers one that only denies (mayHold), yet
// taking it away gives its holder back what it denied.
func mayLift(ctx context.Context, az Authorizer, actor authz.Actor, set authz.Set, mine, target string) error {
	if mine == "admin" {
		return nil
	}
	ts, err := az.OrgRoleSet(ctx, actor, target)
	if err != nil {
		return err
	}
	if !set.CoversLift(ts, time.Time{}) {
		return boundaryError("change role '%s': it denies what you may not do yourself, and this takes it away", target)
	}
	return nil
}

// mayHold reports whether an actor of role mine with permissions set may
// grant, change or remove a member holding role target: an organization
// admin may; anyone else only roles whose rules their own cover, and never
// admin (which reaches every project).
func mayHold(ctx context.Context, az Authorizer, actor authz.Actor, set authz.Set, mine, target string) error {
	if mine == "admin" {
		return nil
	}
	if target == "admin" {
		return boundaryError("grant or change the admin role: only organization admins may")
	}
	ts, err := az.OrgRoleSet(ctx, actor, target)
	if err != nil {
		return err
	}
	if !set.Covers(ts) {
		return boundaryError("grant or change role '%s': it holds privileges you do not have", target)
	}
	return nil
}
