package org

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Mailer sends a plain-text message; nil means no mail is sent.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// DefaultInviteTTL is how long an invitation link works.
const DefaultInviteTTL = 72 * time.Hour

// MaxInvitees bounds one invitation request.
const MaxInvitees = 100

// MaxInviteProjects bounds the projects one invitation request adds its
// invitees to: each is a permission check and a join with its audit event
// (12,000 entries of one project took 44 s and wrote 12,000 events).
const MaxInviteProjects = 100

// Members manages the users of organizations.
type Members struct {
	store  Store
	authz  Authorizer
	keys   *keyring.Keyring
	hasher *identity.PasswordHasher
	now    func() time.Time

	// Mailer sends invitation links; nil: links are only returned.
	Mailer Mailer
	// InviteTTL is how long an invitation works (DefaultInviteTTL when zero).
	InviteTTL time.Duration
	// Projects adds invitees to projects (InviteRequest.Projects); nil:
	// invitations name no projects.
	Projects ProjectAdder
	// SiteURL is where invitation links point (LOCKBOX_SITE_URL); empty:
	// the InviteRequest's LinkBase.
	SiteURL string
	// Passwords proves an existing account's password when its owner
	// accepts an invitation (identity.Service); nil: such an account
	// cannot accept one.
	Passwords interface {
		ProvePassword(ctx context.Context, email, password, ip, userAgent string) (identity.User, error)
	}

	invites identity.KeyedHash // of invitation tokens
}

// NewMembers returns the organization member service; hasher bounds the
// argon2id work of setting passwords (nil: unbounded).
func NewMembers(st Store, az Authorizer, kr *keyring.Keyring, hasher *identity.PasswordHasher, now func() time.Time) *Members {
	if now == nil {
		now = time.Now
	}
	return &Members{store: st, authz: az, keys: kr, hasher: hasher, now: now,
		invites: identity.KeyedHash{Purpose: "org-invitation-hmac"}}
}

func (s *Members) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func memberNotFound(id string) error {
	return errs.NotFoundf("Organization membership with ID '%s' not found", truncate(id, 64))
}

// List returns the user members of the actor's organization orgID.
func (s *Members) List(ctx context.Context, actor authz.Actor, orgID string) ([]Member, error) {
	if _, _, err := perms(ctx, s.authz, actor, orgID, authz.ActRead, authz.SubMember); err != nil {
		return nil, err
	}
	return s.store.OrgMembers(ctx, orgID)
}

// Get returns one user membership of the actor's organization.
func (s *Members) Get(ctx context.Context, actor authz.Actor, orgID, membershipID string) (Member, error) {
	if _, _, err := perms(ctx, s.authz, actor, orgID, authz.ActRead, authz.SubMember); err != nil {
		return Member{}, err
	}
	return s.load(ctx, orgID, membershipID)
}

func (s *Members) load(ctx context.Context, orgID, membershipID string) (Member, error) {
	if _, err := uuid.Parse(membershipID); err != nil {
		return Member{}, memberNotFound(membershipID)
	}
	m, err := s.store.OrgMember(ctx, orgID, membershipID)
	if errs.Is(err, errs.NotFound) {
		return Member{}, memberNotFound(membershipID)
	}
	return m, err
}

// resolveRole validates a requested role slug and checks the actor may
// grant it, filling the membership's Role, CustomRoleID and CustomRoleSlug.
func (s *Members) resolveRole(ctx context.Context, actor authz.Actor, set authz.Set, mine, slug string, m *Member) error {
	switch {
	case slug == "":
		return invalidField("role", "role is required")
	case authz.IsBuiltinOrgRole(slug):
		m.Role, m.CustomRoleID, m.CustomRoleSlug = slug, "", ""
	default:
		r, err := s.store.OrgRoleBySlug(ctx, actor.OrgID, slug)
		if errs.Is(err, errs.NotFound) {
			return errs.BadRequest("Role '%s' does not exist in this organization", truncate(slug, 64))
		}
		if err != nil {
			return err
		}
		m.Role, m.CustomRoleID, m.CustomRoleSlug = "custom", r.ID, r.Slug
	}
	return mayHoldMember(ctx, s.authz, actor, set, mine, m.UserID, m.RoleSlug())
}

// MemberChange is an update of a membership; nil fields are unchanged.
type MemberChange struct {
	Role     *string
	IsActive *bool
}

// Update changes a member's role or deactivates (reactivates) them. The
// actor must hold every privilege of the member's current and new role, and
// cannot change their own membership; reactivating needs the actor to hold
// what the member will hold in each of its projects again.
//
// It writes only the membership as it read it, and otherwise reads and
// applies the change again (project.RetryStale): a role change from an old read
// must not reactivate a member another change deactivated.
func (s *Members) Update(ctx context.Context, actor authz.Actor, orgID, membershipID string, c MemberChange) (Member, error) {
	return project.RetryStale(ctx, "membership", func() (Member, error) { return s.update(ctx, actor, orgID, membershipID, c) })
}

// update is one try of Update.
func (s *Members) update(ctx context.Context, actor authz.Actor, orgID, membershipID string, c MemberChange) (Member, error) {
	set, mine, err := perms(ctx, s.authz, actor, orgID, authz.ActEdit, authz.SubMember)
	if err != nil {
		return Member{}, err
	}
	m, err := s.load(ctx, orgID, membershipID)
	if err != nil {
		return Member{}, err
	}
	if actor.Kind == authz.ActorUser && m.UserID == actor.ID {
		return Member{}, errs.BadRequest("You cannot change your own organization membership")
	}
	if err := mayHoldMember(ctx, s.authz, actor, set, mine, m.UserID, m.RoleSlug()); err != nil {
		return Member{}, err
	}
	if c.Role != nil {
		old := m.RoleSlug()
		if err := s.resolveRole(ctx, actor, set, mine, *c.Role, &m); err != nil {
			return Member{}, err
		}
		if m.RoleSlug() != old {
			if err := mayLift(ctx, s.authz, actor, set, mine, old); err != nil {
				return Member{}, err
			}
		}
	}
	if c.IsActive != nil {
		if *c.IsActive && !m.IsActive {
			// Back in force, the member holds again every project role it
			// kept: the org role checks above do not cover those.
			target := authz.Actor{Kind: authz.ActorUser, ID: m.UserID, OrgID: orgID}
			if err := s.authz.CoversReactivation(ctx, actor, target, m.RoleSlug()); err != nil {
				return Member{}, err
			}
		}
		m.IsActive = *c.IsActive
	}
	ev := audit.New(actor, "update-user-org-membership", map[string]any{"userId": m.UserID, "email": m.Email,
		"role": m.RoleSlug(), "isActive": m.IsActive})
	if err := s.store.UpdateOrgMember(ctx, m, ev); err != nil {
		return Member{}, err
	}
	return s.store.OrgMember(ctx, orgID, membershipID)
}

// Remove ends a user's membership of the organization and of its projects.
// It removes the membership only as it read and checked it, and otherwise
// reads and checks it again (project.RetryStale): a member promoted since
// the check is removed only by who may remove a member of the new role.
func (s *Members) Remove(ctx context.Context, actor authz.Actor, orgID, membershipID string) (Member, error) {
	set, mine, err := perms(ctx, s.authz, actor, orgID, authz.ActDelete, authz.SubMember)
	if err != nil {
		return Member{}, err
	}
	return project.RetryStale(ctx, "membership", func() (Member, error) {
		m, err := s.removable(ctx, actor, set, mine, orgID, membershipID)
		if err != nil {
			return Member{}, err
		}
		return m, s.store.DeleteOrgMember(ctx, m, removeEvent(actor, m))
	})
}

// removable reads a membership and checks that actor (holding set, mine)
// may remove it.
func (s *Members) removable(ctx context.Context, actor authz.Actor, set authz.Set, mine string, orgID, membershipID string) (Member, error) {
	m, err := s.load(ctx, orgID, membershipID)
	if err != nil {
		return Member{}, err
	}
	if actor.Kind == authz.ActorUser && m.UserID == actor.ID {
		return Member{}, errs.BadRequest("You cannot remove your own organization membership")
	}
	if err := mayHoldMember(ctx, s.authz, actor, set, mine, m.UserID, m.RoleSlug()); err != nil {
		return Member{}, err
	}
	return m, nil
}

func removeEvent(actor authz.Actor, m Member) audit.Event {
	return audit.New(actor, "remove-user-from-org", map[string]any{"userId": m.UserID, "email": m.Email})
}

// RemoveMany removes several members of the organization, checking each as
// Remove does; nothing is removed unless every one may be.
func (s *Members) RemoveMany(ctx context.Context, actor authz.Actor, orgID string, membershipIDs []string) ([]Member, error) {
	set, mine, err := perms(ctx, s.authz, actor, orgID, authz.ActDelete, authz.SubMember)
	if err != nil {
		return nil, err
	}
	if len(membershipIDs) == 0 || len(membershipIDs) > MaxInvitees {
		return nil, invalidField("membershipIds", "give 1 to %d membership ids", MaxInvitees)
	}
	var list []Member
	for _, id := range membershipIDs {
		m, err := s.removable(ctx, actor, set, mine, orgID, id)
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	for i := range list {
		m := list[i]
		done, err := project.RetryStale(ctx, "membership", func() (Member, error) {
			err := s.store.DeleteOrgMember(ctx, m, removeEvent(actor, m))
			if errs.Is(err, errs.NotFound) {
				return m, nil // removed meanwhile by another request
			}
			if errors.Is(err, project.ErrStale) {
				// Changed since it was checked: read and check it again for the next try.
				if m, err = s.removable(ctx, actor, set, mine, orgID, m.ID); err != nil {
					return Member{}, err
				}
				return Member{}, project.ErrStale
			}
			return m, err
		})
		if err != nil {
			return nil, err
		}
		list[i] = done
	}
	return list, nil
}

// InviteLink is the one-time link made for one invitee. Link is shown to
// the inviting admin once; only the token's keyed hash is stored.
type InviteLink struct {
	Email string
	// Link is the one-time link, for the inviter to send by hand; empty
	// when it was mailed, or when the mail failed for an account that
	// has no password yet.
	Link   string
	Member Member
	// Mailed reports whether the link was sent by mail.
	Mailed bool
}

// ProjectAdder adds users of an organization to its projects under the
// actor's permissions (project.Users).
type ProjectAdder interface {
	// CheckAdd reports whether the actor may add members with roles, adding no one.
	CheckAdd(ctx context.Context, actor authz.Actor, projectID string, roles []string) error
	// Join adds the users named by logins with roles (none: member).
	Join(ctx context.Context, actor authz.Actor, projectID string, logins []string, roles []string) error
}

// ProjectInvite is a project an invitee joins, with its roles (none: member).
type ProjectInvite struct {
	ProjectID string
	Roles     []string
}

// InviteRequest invites emails into the actor's organization with a role.
type InviteRequest struct {
	// Projects the invitees are added to once invited; each is checked
	// (the privilege rule included) before anyone is invited.
	Projects []ProjectInvite
	OrgID    string
	Emails   []string
	Role     string // default "member"
	// LinkBase is the URL the link starts with, e.g. "https://lockbox.example.com".
	LinkBase string
}

// Invite creates each invitee's user (when new) and invited membership, and a
// one-time invitation whose link is returned and, when a Mailer is set,
// mailed. Inviting someone already an accepted member is refused; inviting
// an invited one again replaces their link.
func (s *Members) Invite(ctx context.Context, actor authz.Actor, req InviteRequest) ([]InviteLink, error) {
	set, mine, err := perms(ctx, s.authz, actor, req.OrgID, authz.ActCreate, authz.SubMember)
	if err != nil {
		return nil, err
	}
	if len(req.Emails) == 0 {
		return nil, invalidField("inviteeEmails", "At least one email is required")
	}
	if len(req.Emails) > MaxInvitees {
		return nil, invalidField("inviteeEmails", "At most %d emails per request", MaxInvitees)
	}
	if req.Role == "" {
		req.Role = "member"
	}
	var proto Member
	if err := s.resolveRole(ctx, actor, set, mine, req.Role, &proto); err != nil {
		return nil, err
	}
	if s.SiteURL != "" {
		req.LinkBase = s.SiteURL
	} else if s.Mailer != nil && mine != "admin" {
		// The base would be the Host header of this request, and the mailed
		// link the invitee's alone: an inviter could point it at a host of
		// its own and receive the one-time token of someone else's account.
		return nil, boundaryError("invite by mail: without LOCKBOX_SITE_URL a mailed link would start with the address of your request, so only organization admins may")
	}
	base, err := url.Parse(req.LinkBase)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errs.Internalf(fmt.Errorf("link base %q", req.LinkBase), "invitation link base")
	}
	if len(req.Projects) > 0 && s.Projects == nil {
		return nil, invalidField("projects", "projects cannot be given here")
	}
	if len(req.Projects) > MaxInviteProjects {
		return nil, invalidField("projects", "At most %d projects per request", MaxInviteProjects)
	}
	named := make(map[string]bool, len(req.Projects))
	for _, p := range req.Projects {
		if named[p.ProjectID] {
			return nil, invalidField("projects", "Project '%s' is named twice", truncate(p.ProjectID, 64))
		}
		named[p.ProjectID] = true
	}
	for _, p := range req.Projects {
		if err := s.Projects.CheckAdd(ctx, actor, p.ProjectID, p.Roles); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	var emails []string
	for _, e := range req.Emails {
		addr, err := mail.ParseAddress(strings.TrimSpace(e))
		if err != nil || addr.Name != "" || len(addr.Address) > 254 || addr.Address != strings.TrimSpace(e) {
			return nil, invalidField("inviteeEmails", "'%s' is not an email address", truncate(e, 254))
		}
		a := strings.ToLower(addr.Address)
		if !seen[a] {
			seen[a] = true
			emails = append(emails, a)
		}
	}
	now := s.clock()
	ttl := s.InviteTTL
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	out := make([]InviteLink, 0, len(emails))
	for _, email := range emails {
		in := Invitee{Membership: proto}
		u, err := s.store.UserByEmail(ctx, email)
		switch {
		case errs.Is(err, errs.NotFound):
			in.NewUser = true
			in.User = identity.User{ID: identity.NewID(), Email: email, Username: email, CreatedAt: now, UpdatedAt: now}
			if s.Mailer == nil && mine != "admin" {
				// The link will be shown, and it sets the new account's
				// password: a non-admin inviter would become cto@ and get
				// all that is given to cto@ from then on.
				return nil, boundaryError("invite %s, who has no account yet: with invitations not mailed, only organization admins may (the link sets the account's password)", email)
			}
		case err != nil:
			return nil, err
		default:
			in.User = u
			m, err := s.store.OrgMemberByUser(ctx, req.OrgID, u.ID)
			if err == nil && m.Status == StatusAccepted {
				return nil, errs.BadRequest("%s is already a member of this organization", email)
			}
			if err != nil && !errs.Is(err, errs.NotFound) {
				return nil, err
			}
			if err == nil {
				// Inviting again replaces the invited membership's role, as
				// changing a member does.
				if err := mayHoldMember(ctx, s.authz, actor, set, mine, u.ID, m.RoleSlug()); err != nil {
					return nil, err
				}
			}
			if u.PasswordHash == "" && s.Mailer == nil {
				// The link will be shown, and it sets the password of an
				// account that has none: whoever holds it becomes that user,
				// with all that others have given the account since it was
				// first invited.
				if mine != "admin" {
					return nil, boundaryError("issue a new link for %s, who has not set a password yet: with invitations not mailed, only organization admins may", email)
				}
				in.LinkShown = true
			}
		}
		token, hash, err := s.newToken(ctx)
		if err != nil {
			return nil, err
		}
		in.Membership.OrgID, in.Membership.UserID, in.Membership.Email = req.OrgID, in.User.ID, email
		in.Membership.Status, in.Membership.IsActive = StatusInvited, true
		in.Invitation = Invitation{ID: newID(), OrgID: req.OrgID, UserID: in.User.ID, TokenHash: hash, ExpiresAt: now.Add(ttl), CreatedAt: now}
		ev := audit.New(actor, "invite-user-to-org", map[string]any{"email": email, "role": proto.RoleSlug()})
		if err := s.store.Invite(ctx, in, ev); err != nil {
			return nil, err
		}
		m, err := s.store.OrgMemberByUser(ctx, req.OrgID, in.User.ID)
		if err != nil {
			return nil, err
		}
		q := url.Values{"token": {token}, "to": {email}, "organization_id": {req.OrgID}}
		link := strings.TrimSuffix(base.String(), "/") + "/signupinvite?" + q.Encode()
		il := InviteLink{Email: email, Link: link, Member: m}
		if s.Mailer != nil {
			body := fmt.Sprintf("You have been invited to an organization on lockbox.\n\nSet your password with this link (valid until %s):\n\n%s\n\nIf you did not expect this, ignore this message.\n",
				in.Invitation.ExpiresAt.Format(time.RFC1123), link)
			if err := s.Mailer.Send(ctx, email, "You have been invited to lockbox", body); err != nil {
				// The invitation stands; the admin gets the link to send by
				// hand, unless it would set a password an earlier
				// invitation left unset (or a new account's, for an
				// inviter who is not an admin).
				slog.WarnContext(ctx, "invitation mail not sent", "err", err.Error())
				if in.User.PasswordHash == "" && (!in.NewUser || mine != "admin") {
					il.Link = ""
				}
			} else {
				// A mailed link is the invitee's alone: shown, it would let
				// the inviter set the password and act as the invitee.
				il.Mailed, il.Link = true, ""
			}
		}
		out = append(out, il)
	}
	for _, p := range req.Projects {
		if err := s.Projects.Join(ctx, actor, p.ProjectID, emails, p.Roles); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newToken returns a fresh 256-bit token and its keyed hash.
func (s *Members) newToken(ctx context.Context) (string, string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	h, err := s.tokenHash(ctx, tok)
	return tok, h, err
}

func (s *Members) tokenHash(ctx context.Context, tok string) (string, error) {
	h, err := s.invites.Sum(ctx, s.keys, tok)
	return hex.EncodeToString(h), err
}

// invitation finds the invitation of token for email in orgID; any mismatch,
// an expired or used token reads the same.
func (s *Members) invitation(ctx context.Context, orgID, email, token string) (Invitation, identity.User, error) {
	bad := errs.BadRequest("The invitation is invalid or has expired; ask an admin for a new one")
	if token == "" || len(token) > 128 {
		return Invitation{}, identity.User{}, bad
	}
	h, err := s.tokenHash(ctx, token)
	if err != nil {
		return Invitation{}, identity.User{}, err
	}
	inv, err := s.store.InvitationByHash(ctx, h)
	if errs.Is(err, errs.NotFound) {
		return Invitation{}, identity.User{}, bad
	}
	if err != nil {
		return Invitation{}, identity.User{}, err
	}
	if inv.OrgID != orgID || !s.clock().Before(inv.ExpiresAt) {
		return Invitation{}, identity.User{}, bad
	}
	u, err := s.store.UserByID(ctx, inv.UserID)
	if errs.Is(err, errs.NotFound) || (err == nil && !strings.EqualFold(u.Email, strings.TrimSpace(email))) {
		return Invitation{}, identity.User{}, bad
	}
	return inv, u, err
}

// VerifyInvite reports the user an invitation is for, without using it.
func (s *Members) VerifyInvite(ctx context.Context, orgID, email, token string) (identity.User, error) {
	_, u, err := s.invitation(ctx, orgID, email, token)
	return u, err
}

// MinPasswordLength is the shortest password a user may set.
const MinPasswordLength = 14

// AcceptInvite uses an invitation: a user without a password sets one (at
// least MinPasswordLength characters), and the membership becomes accepted.
// A user who already has a password keeps it. The token works once.
func (s *Members) AcceptInvite(ctx context.Context, orgID, email, token, password, firstName, lastName, ip, userAgent string) (identity.User, error) {
	inv, u, err := s.invitation(ctx, orgID, email, token)
	if err != nil {
		return identity.User{}, err
	}
	firstName, lastName = strings.TrimSpace(firstName), strings.TrimSpace(lastName)
	if len(firstName) > 64 || len(lastName) > 64 {
		return identity.User{}, invalidField("firstName", "names must be at most 64 characters")
	}
	hash := ""
	if u.PasswordHash != "" {
		// Whoever holds the link is not necessarily the account's owner
		// (an inviter without mail gets it): joining an organization with
		// an existing account needs its password, checked as a login is.
		if s.Passwords == nil {
			return identity.User{}, errs.BadRequest("This account already has a password; log in to join")
		}
		if _, err := s.Passwords.ProvePassword(ctx, u.Email, password, ip, userAgent); err != nil {
			if errs.Is(err, errs.Invalid) || errs.Is(err, errs.Validation) {
				return identity.User{}, errs.BadRequest("Enter this account's current password to join: the email already has an account")
			}
			return identity.User{}, err
		}
	} else {
		if len(password) < MinPasswordLength || len(password) > 1024 {
			return identity.User{}, invalidField("password", "password must be %d to 1024 characters", MinPasswordLength)
		}
		if s.hasher != nil {
			release, err := s.hasher.Acquire(ctx)
			if err != nil {
				return identity.User{}, err
			}
			hash = identity.HashPassword(password)
			release()
		} else {
			hash = identity.HashPassword(password)
		}
	}
	actor := authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: orgID, Name: u.Email, IP: ip, UserAgent: userAgent}
	ev := audit.New(actor, "accept-org-invitation", map[string]any{"userId": u.ID, "email": u.Email})
	if err := s.store.AcceptInvitation(ctx, inv, hash, firstName, lastName, ev); err != nil {
		if errs.Is(err, errs.NotFound) {
			return identity.User{}, errs.BadRequest("The invitation is invalid or has expired; ask an admin for a new one")
		}
		return identity.User{}, err
	}
	return s.store.UserByID(ctx, u.ID)
}
