package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var (
	_ org.Store         = (*DB)(nil)
	_ project.UserStore = (*DB)(nil)
)

const orgMemberCols = `m.id, m.org_id, u.id, u.email, u.username, u.first_name, u.last_name, m.role, COALESCE(m.custom_role_id, ''),
	COALESCE(r.slug, ''), m.status, m.is_active, m.created_at, m.updated_at`

const orgMemberFrom = ` FROM org_memberships m JOIN users u ON u.id = m.user_id LEFT JOIN org_roles r ON r.id = m.custom_role_id`

func scanOrgMember(sc interface{ Scan(...any) error }) (org.Member, error) {
	var m org.Member
	err := sc.Scan(&m.ID, &m.OrgID, &m.UserID, &m.Email, &m.Username, &m.FirstName, &m.LastName, &m.Role, &m.CustomRoleID,
		&m.CustomRoleSlug, &m.Status, &m.IsActive, timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt})
	return m, err
}

// OrgMembers lists an organization's user members by email.
func (db *DB) OrgMembers(ctx context.Context, orgID string) ([]org.Member, error) {
	rows, err := db.readq(ctx, `SELECT `+orgMemberCols+orgMemberFrom+` WHERE m.org_id = ? ORDER BY u.email`, orgID)
	if err != nil {
		return nil, dbErr(err, "OrgMembers")
	}
	defer rows.Close()
	out := []org.Member{}
	for rows.Next() {
		m, err := scanOrgMember(rows)
		if err != nil {
			return nil, dbErr(err, "scan org member")
		}
		out = append(out, m)
	}
	return out, dbErr(rows.Err(), "OrgMembers")
}

// OrgMember returns a user membership of an organization by its id.
func (db *DB) OrgMember(ctx context.Context, orgID, membershipID string) (org.Member, error) {
	m, err := scanOrgMember(db.readRow(ctx, `SELECT `+orgMemberCols+orgMemberFrom+` WHERE m.org_id = ? AND m.id = ?`, orgID, membershipID))
	return m, dbErr(err, "OrgMember")
}

// OrgMemberByUser returns a user's membership of an organization.
func (db *DB) OrgMemberByUser(ctx context.Context, orgID, userID string) (org.Member, error) {
	m, err := scanOrgMember(db.readRow(ctx, `SELECT `+orgMemberCols+orgMemberFrom+` WHERE m.org_id = ? AND m.user_id = ?`, orgID, userID))
	return m, dbErr(err, "OrgMemberByUser")
}

// keepingOrgAdmin runs change and refuses it if it leaves an organization
// that had an active admin (user or identity) without one; the org row is
// locked first so two concurrent demotions cannot both pass. On PostgreSQL
// the lock is FOR NO KEY UPDATE: it excludes the other demotions but not
// the inserts that reference the organization (a login's session, a new
// identity or project), which FOR UPDATE would hold up for the whole
// change (an identity's deletion deletes all its tokens).
func (tx *Tx) keepingOrgAdmin(ctx context.Context, orgID string, change func() error) error {
	if err := tx.lockRow(ctx, "orgs", orgID); err != nil {
		return err
	}
	count := func() (int, error) {
		var n int
		err := tx.queryRow(ctx, `SELECT COUNT(*) FROM org_memberships WHERE org_id = ? AND role = 'admin' AND status = 'accepted' AND is_active`, orgID).Scan(&n)
		return n, dbErr(err, "count org admins")
	}
	before, err := count()
	if err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	after, err := count()
	if err != nil {
		return err
	}
	if before > 0 && after == 0 {
		return errs.BadRequest("The last admin of an organization cannot be removed, demoted or deactivated")
	}
	return nil
}

// endUserSessions revokes every session of a user (API and dashboard, in
// every organization) but except ("" for none): when it is deactivated or
// removed in one, a session stolen before would otherwise work again once
// the user is reactivated or invited back (the user signs in again); when it
// enables TOTP, one taken with the password alone would outlive it.
//
// The statement runs twice: the first waits for the sessions being made
// from the user's sessions at that moment (CreateSession and
// CompleteWebSessionMFA hold the session they come from), which the second,
// on a snapshot taken after them, then sees and revokes.
func (tx *Tx) endUserSessions(ctx context.Context, userID, except string) error {
	if userID == "" {
		return nil
	}
	// A device login approved but not yet collected is a session in
	// waiting: collected after this, it would outlive the end it missed.
	// Denied first: a collect that holds the row (TakeDeviceLogin) has
	// stored its session by the time this goes on, and the statements
	// below end it; one that comes later finds the approval gone.
	if _, err := tx.exec(ctx, `UPDATE device_logins SET status = ? WHERE user_id = ? AND status = ?`,
		identity.DeviceDenied, userID, identity.DeviceApproved); err != nil {
		return dbErr(err, "end device logins")
	}
	for range 2 {
		if _, err := tx.exec(ctx, `UPDATE user_sessions SET revoked = TRUE WHERE user_id = ? AND revoked = FALSE AND id <> ?`,
			userID, except); err != nil {
			return dbErr(err, "end sessions")
		}
	}
	return nil
}

// UpdateOrgMember writes a membership's role and active flag if it is
// still as read (last updated at m.UpdatedAt; project.ErrStale otherwise).
func (db *DB) UpdateOrgMember(ctx context.Context, m org.Member, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		return tx.keepingOrgAdmin(ctx, m.OrgID, func() error {
			if !m.IsActive { // deactivated now, not edited while inactive
				var was bool
				if err := tx.queryRow(ctx, `SELECT is_active FROM org_memberships WHERE id = ? AND org_id = ?`, m.ID, m.OrgID).Scan(&was); err != nil {
					return dbErr(err, "UpdateOrgMember")
				}
				if was {
					if err := tx.endUserSessions(ctx, m.UserID, ""); err != nil {
						return err
					}
				}
			}
			res, err := tx.exec(ctx, `UPDATE org_memberships SET role = ?, custom_role_id = ?, is_active = ?, updated_at = ?
				WHERE id = ? AND org_id = ? AND updated_at = ?`, m.Role, nullStr(m.CustomRoleID), m.IsActive,
				ts(project.NextStamp(tx.Now, m.UpdatedAt)), m.ID, m.OrgID, ts(m.UpdatedAt))
			if err := staleIfNone(res, err, "UpdateOrgMember"); err != nil {
				return err
			}
			return tx.insertAudit(ctx, ev)
		})
	})
}

// holdOrgMember locks userID's membership of orgID against its removal
// until the transaction ends (PostgreSQL; SQLite has one writer), for a
// write that adds to it (a project membership, a group membership):
// DeleteOrgMember locks the row first, so a removal either waits for that
// write and then takes what it added with it, or commits first and is seen
// here. errs.NotFound without a membership.
func (tx *Tx) holdOrgMember(ctx context.Context, orgID, userID string) error {
	var id string
	err := tx.queryRow(ctx, `SELECT id FROM org_memberships WHERE org_id = ? AND user_id = ?`+tx.db.forShare(), orgID, userID).Scan(&id)
	if errs.Is(dbErr(err, "org membership"), errs.NotFound) {
		return errs.NotFoundf("User %s is not a member of the organization", userID)
	}
	return dbErr(err, "org membership")
}

// DeleteOrgMember removes a user from an organization and its projects,
// if the membership is still as read (updated at m.UpdatedAt; otherwise
// project.ErrStale, or errs.NotFound when it is gone): the service checked
// the caller may remove a member of its role, and a promotion committed
// since must be checked again. The membership's row is locked first, so
// that a project or group membership being added (holdOrgMember) is either
// seen and removed too or refused.
func (db *DB) DeleteOrgMember(ctx context.Context, m org.Member, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		return tx.keepingOrgAdmin(ctx, m.OrgID, func() error {
			var at int64
			if err := tx.queryRow(ctx, `SELECT updated_at FROM org_memberships WHERE id = ? AND org_id = ?`+tx.db.forUpdate(), m.ID, m.OrgID).Scan(&at); err != nil {
				return dbErr(err, "lock org membership")
			}
			if at != m.UpdatedAt.UnixMicro() {
				return project.ErrStale
			}
			// Their roles first, as deleting a project takes them.
			if _, err := tx.exec(ctx, `DELETE FROM project_membership_roles WHERE membership_id IN (SELECT id FROM project_memberships
				WHERE user_id = ? AND project_id IN (SELECT id FROM projects WHERE org_id = ?))`, m.UserID, m.OrgID); err != nil {
				return dbErr(err, "delete project membership roles")
			}
			if _, err := tx.exec(ctx, `DELETE FROM project_memberships WHERE user_id = ? AND project_id IN (SELECT id FROM projects WHERE org_id = ?)`,
				m.UserID, m.OrgID); err != nil {
				return dbErr(err, "delete project memberships")
			}
			if _, err := tx.exec(ctx, `DELETE FROM group_members WHERE user_id = ? AND group_id IN (SELECT id FROM org_groups WHERE org_id = ?)`,
				m.UserID, m.OrgID); err != nil {
				return dbErr(err, "delete group memberships")
			}
			if _, err := tx.exec(ctx, `DELETE FROM org_invitations WHERE org_id = ? AND user_id = ?`, m.OrgID, m.UserID); err != nil {
				return dbErr(err, "delete invitations")
			}
			if _, err := tx.exec(ctx, `DELETE FROM org_memberships WHERE id = ? AND org_id = ?`, m.ID, m.OrgID); err != nil {
				return dbErr(err, "DeleteOrgMember")
			}
			if err := tx.endUserSessions(ctx, m.UserID, ""); err != nil {
				return err
			}
			return tx.insertAudit(ctx, ev)
		})
	})
}

// Invite writes an invitee: the user when new, the invited membership when
// the user has none (or updates the role of an invited one), and the
// invitation, replacing older ones of the user to the organization.
func (db *DB) Invite(ctx context.Context, in org.Invitee, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if in.NewUser {
			if err := tx.insertUser(ctx, in.User); err != nil {
				return err
			}
		}
		if in.LinkShown {
			// The user's row is locked, so another organization's
			// invitation of the same user waits for this one; the count is
			// a statement of its own, after the lock, so that on PostgreSQL
			// it sees what the lock waited for.
			var locked string
			if err := tx.queryRow(ctx, `SELECT id FROM users WHERE id = ?`+db.forUpdate(), in.User.ID).Scan(&locked); err != nil {
				return dbErr(err, "lock user")
			}
			var others int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM org_memberships m JOIN users u ON u.id = m.user_id
				WHERE m.user_id = ? AND m.org_id <> ? AND u.password_hash = ''`, in.User.ID, in.Membership.OrgID).Scan(&others); err != nil {
				return dbErr(err, "user's other organizations")
			}
			if others > 0 {
				return errs.BadRequest("%s already has an account, not set up yet: a new link for it can only be mailed", in.User.Email)
			}
		}
		var status string
		err := tx.queryRow(ctx, `SELECT status FROM org_memberships WHERE org_id = ? AND user_id = ?`, in.Membership.OrgID, in.User.ID).Scan(&status)
		switch {
		case err == errNoRows:
			if _, err := tx.exec(ctx, `INSERT INTO org_memberships (id, org_id, user_id, role, custom_role_id, status, is_active, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, TRUE, ?, ?)`, newID(), in.Membership.OrgID, in.User.ID, in.Membership.Role, nullStr(in.Membership.CustomRoleID),
				org.StatusInvited, ts(tx.Now), ts(tx.Now)); err != nil {
				return dbErr(err, "insert org membership")
			}
		case err != nil:
			return dbErr(err, "org membership")
		case status != org.StatusInvited:
			return errs.BadRequest("%s is already a member of this organization", in.User.Email)
		default:
			if _, err := tx.exec(ctx, `UPDATE org_memberships SET role = ?, custom_role_id = ?, `+stampAfter+` WHERE org_id = ? AND user_id = ?`,
				in.Membership.Role, nullStr(in.Membership.CustomRoleID), ts(tx.Now), ts(tx.Now), in.Membership.OrgID, in.User.ID); err != nil {
				return dbErr(err, "update invited membership")
			}
		}
		if _, err := tx.exec(ctx, `DELETE FROM org_invitations WHERE org_id = ? AND user_id = ?`, in.Invitation.OrgID, in.User.ID); err != nil {
			return dbErr(err, "delete old invitations")
		}
		i := in.Invitation
		if _, err := tx.exec(ctx, `INSERT INTO org_invitations (id, org_id, user_id, token_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			i.ID, i.OrgID, i.UserID, i.TokenHash, ts(i.ExpiresAt), ts(i.CreatedAt)); err != nil {
			return dbErr(err, "insert invitation")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// InvitationByHash finds an invitation by its token's keyed hash.
func (db *DB) InvitationByHash(ctx context.Context, tokenHash string) (org.Invitation, error) {
	var i org.Invitation
	err := db.readRow(ctx, `SELECT id, org_id, user_id, token_hash, expires_at, created_at FROM org_invitations WHERE token_hash = ?`, tokenHash).
		Scan(&i.ID, &i.OrgID, &i.UserID, &i.TokenHash, timeCol{&i.ExpiresAt}, timeCol{&i.CreatedAt})
	return i, dbErr(err, "InvitationByHash")
}

// AcceptInvitation consumes an invitation and activates its membership; the
// DELETE decides which of two concurrent uses of one token wins.
func (db *DB) AcceptInvitation(ctx context.Context, inv org.Invitation, passwordHash, firstName, lastName string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM org_invitations WHERE id = ?`, inv.ID)
		if err != nil {
			return dbErr(err, "consume invitation")
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errs.NotFoundf("invitation already used")
		}
		if passwordHash != "" {
			res, err := tx.exec(ctx, `UPDATE users SET password_hash = ?, first_name = CASE WHEN ? = '' THEN first_name ELSE ? END,
				last_name = CASE WHEN ? = '' THEN last_name ELSE ? END, updated_at = ? WHERE id = ? AND password_hash = ''`,
				passwordHash, firstName, firstName, lastName, lastName, ts(tx.Now), inv.UserID)
			if err != nil {
				return dbErr(err, "set password")
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				// Set since it was read (another organization's link): the
				// account now joins only with that password.
				return errs.Conflictf("This account's password was set meanwhile; accept again with it")
			}
		}
		if _, err := tx.exec(ctx, `UPDATE org_memberships SET status = ?, `+stampAfter+` WHERE org_id = ? AND user_id = ?`,
			org.StatusAccepted, ts(tx.Now), ts(tx.Now), inv.OrgID, inv.UserID); err != nil {
			return dbErr(err, "accept membership")
		}
		return tx.insertAudit(ctx, ev)
	})
}

const orgRoleCols = `id, org_id, slug, name, description, permissions, created_at, updated_at`

func scanOrgRole(sc interface{ Scan(...any) error }) (org.Role, error) {
	var r org.Role
	var perms string
	if err := sc.Scan(&r.ID, &r.OrgID, &r.Slug, &r.Name, &r.Description, &perms, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return r, errs.Internalf(err, "stored rules of organization role %s", r.ID)
	}
	return r, nil
}

// OrgRoles lists an organization's custom roles by slug.
func (db *DB) OrgRoles(ctx context.Context, orgID string) ([]org.Role, error) {
	rows, err := db.readq(ctx, `SELECT `+orgRoleCols+` FROM org_roles WHERE org_id = ? ORDER BY slug`, orgID)
	if err != nil {
		return nil, dbErr(err, "OrgRoles")
	}
	defer rows.Close()
	var out []org.Role
	for rows.Next() {
		r, err := scanOrgRole(rows)
		if err != nil {
			return nil, dbErr(err, "scan org role")
		}
		out = append(out, r)
	}
	return out, dbErr(rows.Err(), "OrgRoles")
}

// OrgRoleByID returns an organization's custom role by id.
func (db *DB) OrgRoleByID(ctx context.Context, orgID, id string) (org.Role, error) {
	r, err := scanOrgRole(db.readRow(ctx, `SELECT `+orgRoleCols+` FROM org_roles WHERE org_id = ? AND id = ?`, orgID, id))
	return r, dbErr(err, "OrgRoleByID")
}

// OrgRoleBySlug returns an organization's custom role by slug.
func (db *DB) OrgRoleBySlug(ctx context.Context, orgID, slug string) (org.Role, error) {
	r, err := scanOrgRole(db.readRow(ctx, `SELECT `+orgRoleCols+` FROM org_roles WHERE org_id = ? AND slug = ?`, orgID, slug))
	return r, dbErr(err, "OrgRoleBySlug")
}

// CreateOrgRole stores a custom organization role.
func (db *DB) CreateOrgRole(ctx context.Context, r org.Role, permissions string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		n, err := tx.countUnder(ctx, "orgs", "org_roles", "org_id", r.OrgID)
		if err != nil {
			return err
		}
		if n >= org.MaxRoles {
			return errs.BadRequest("An organization has at most %d custom roles; delete one first", org.MaxRoles)
		}
		if _, err := tx.exec(ctx, `INSERT INTO org_roles (`+orgRoleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.OrgID, r.Slug, r.Name, r.Description, permissions, ts(r.CreatedAt), ts(r.UpdatedAt)); err != nil {
			return dbErr(err, "CreateOrgRole")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// UpdateOrgRole writes a custom organization role.
func (db *DB) UpdateOrgRole(ctx context.Context, r org.Role, permissions string, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// The SSO configuration names its default role by slug: it follows
		// a rename (it pointed at nothing, and every SSO login was a 500).
		// Its updated_at moves too, so that a change of the configuration
		// read before the rename is stale (it would write the old slug back).
		now := tx.Now.UTC().UnixMicro()
		if _, err := tx.exec(ctx, `UPDATE oidc_configs SET default_role = ?, updated_at = CASE WHEN updated_at < ? THEN ? ELSE updated_at + 1 END
			WHERE org_id = ? AND default_role = (SELECT slug FROM org_roles WHERE id = ? AND org_id = ? AND updated_at = ?)`,
			r.Slug, now, now, r.OrgID, r.ID, r.OrgID, ts(prev)); err != nil {
			return dbErr(err, "UpdateOrgRole")
		}
		res, err := tx.exec(ctx, `UPDATE org_roles SET slug = ?, name = ?, description = ?, permissions = ?, updated_at = ?
			WHERE id = ? AND org_id = ? AND updated_at = ?`, r.Slug, r.Name, r.Description, permissions, ts(r.UpdatedAt), r.ID, r.OrgID, ts(prev))
		if err := staleIfNone(res, err, "UpdateOrgRole"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteOrgRole deletes a custom organization role unless a membership, a
// group or the SSO configuration (its default role) uses it.
func (db *DB) DeleteOrgRole(ctx context.Context, r org.Role, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		// Locked first: a configuration naming it as its default role
		// (holdDefaultRole) is either counted below or refused.
		var id string
		if err := tx.queryRow(ctx, `SELECT id FROM org_roles WHERE id = ? AND org_id = ?`+tx.db.forUpdate(), r.ID, r.OrgID).Scan(&id); err != nil {
			return dbErr(err, "lock org role")
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM org_memberships WHERE custom_role_id = ?)
			+ (SELECT COUNT(*) FROM org_groups WHERE custom_role_id = ?)
			+ (SELECT COUNT(*) FROM oidc_configs WHERE org_id = ? AND default_role = (SELECT slug FROM org_roles WHERE id = ?))`,
			r.ID, r.ID, r.OrgID, r.ID).Scan(&n); err != nil {
			return dbErr(err, "org role in use")
		}
		if n > 0 {
			return errs.Conflictf("role %s is in use", r.Slug)
		}
		if _, err := tx.exec(ctx, `DELETE FROM org_roles WHERE id = ? AND org_id = ?`, r.ID, r.OrgID); err != nil {
			return dbErr(err, "DeleteOrgRole")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// OrgUsersByLogin returns the organization's users whose email or username
// is one of logins.
func (db *DB) OrgUsersByLogin(ctx context.Context, orgID string, logins []string) ([]project.OrgUser, error) {
	if len(logins) == 0 {
		return nil, nil
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(logins)), ", ")
	args := []any{orgID}
	for range 2 {
		for _, l := range logins {
			args = append(args, l)
		}
	}
	rows, err := db.readq(ctx, `SELECT u.id, u.email, u.username FROM users u JOIN org_memberships m ON m.user_id = u.id AND m.org_id = ?
		WHERE u.email IN (`+ph+`) OR LOWER(u.username) IN (`+ph+`) ORDER BY u.email`, args...)
	if err != nil {
		return nil, dbErr(err, "OrgUsersByLogin")
	}
	defer rows.Close()
	var out []project.OrgUser
	for rows.Next() {
		var u project.OrgUser
		if err := rows.Scan(&u.ID, &u.Email, &u.Username); err != nil {
			return nil, dbErr(err, "scan user")
		}
		out = append(out, u)
	}
	return out, dbErr(rows.Err(), "OrgUsersByLogin")
}

const userMembershipCols = `m.id, m.project_id, p.name, u.id, u.email, u.username, u.first_name, u.last_name, m.created_at, m.updated_at`

const userMembershipFrom = ` FROM project_memberships m JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id`

func scanUserMembership(sc interface{ Scan(...any) error }) (project.UserMembership, error) {
	var m project.UserMembership
	err := sc.Scan(&m.ID, &m.ProjectID, &m.ProjectName, &m.UserID, &m.Email, &m.Username, &m.FirstName, &m.LastName,
		timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt})
	return m, err
}

// fillUserRoles loads the roles of user memberships.
func (db *DB) fillUserRoles(ctx context.Context, list []project.UserMembership) error {
	for chunk := range slices.Chunk(list, fillChunk) {
		if err := db.fillUserRolesChunk(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) fillUserRolesChunk(ctx context.Context, list []project.UserMembership) error {
	if len(list) == 0 {
		return nil
	}
	idx := map[string]int{}
	ids := make([]any, 0, len(list))
	for i := range list {
		idx[list[i].ID] = i
		list[i].Roles = []project.MembershipRole{}
		ids = append(ids, list[i].ID)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	rows, err := db.readq(ctx, `SELECT r.id, r.membership_id, r.role, COALESCE(r.custom_role_id, ''), COALESCE(cr.slug, ''), COALESCE(cr.name, ''),
		r.is_temporary, COALESCE(r.temporary_mode, ''), COALESCE(r.temporary_range, ''), r.temporary_access_start_time,
		r.temporary_access_end_time, r.created_at, r.updated_at
		FROM project_membership_roles r LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE r.membership_id IN (`+ph+`) ORDER BY r.created_at, r.id`, ids...)
	if err != nil {
		return dbErr(err, "user membership roles")
	}
	defer rows.Close()
	for rows.Next() {
		var r project.MembershipRole
		var mid string
		if err := rows.Scan(&r.ID, &mid, &r.Role, &r.CustomRoleID, &r.CustomRoleSlug, &r.CustomRoleName, &r.IsTemporary,
			&r.TemporaryMode, &r.TemporaryRange, optTimeCol{&r.TemporaryAccessStartTime}, optTimeCol{&r.TemporaryAccessEndTime},
			timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}); err != nil {
			return dbErr(err, "scan user membership role")
		}
		list[idx[mid]].Roles = append(list[idx[mid]].Roles, r)
	}
	return dbErr(rows.Err(), "user membership roles")
}

// UserMembership returns a user membership of a project by its id.
func (db *DB) UserMembership(ctx context.Context, projectID, membershipID string) (project.UserMembership, error) {
	return db.oneUserMembership(ctx, `m.project_id = ? AND m.id = ?`, projectID, membershipID)
}

// UserMembershipByUser returns a user's membership of a project.
func (db *DB) UserMembershipByUser(ctx context.Context, projectID, userID string) (project.UserMembership, error) {
	return db.oneUserMembership(ctx, `m.project_id = ? AND m.user_id = ?`, projectID, userID)
}

func (db *DB) oneUserMembership(ctx context.Context, where string, args ...any) (project.UserMembership, error) {
	m, err := scanUserMembership(db.readRow(ctx, `SELECT `+userMembershipCols+userMembershipFrom+` WHERE `+where, args...))
	if err != nil {
		return m, dbErr(err, "UserMembership")
	}
	list := []project.UserMembership{m}
	err = db.fillUserRoles(ctx, list)
	return list[0], err
}

// UserMemberships lists a project's user memberships by email.
func (db *DB) UserMemberships(ctx context.Context, projectID string) ([]project.UserMembership, error) {
	rows, err := db.readq(ctx, `SELECT `+userMembershipCols+userMembershipFrom+` WHERE m.project_id = ? ORDER BY u.email`, projectID)
	if err != nil {
		return nil, dbErr(err, "UserMemberships")
	}
	list := []project.UserMembership{}
	for rows.Next() {
		m, err := scanUserMembership(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(err, "scan user membership")
		}
		list = append(list, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "UserMemberships")
	}
	return list, db.fillUserRoles(ctx, list)
}

// AddUserMemberships adds users to a project, skipping those already members.
// Each must be a member of the project's organization, held so until the
// transaction ends (holdOrgMember): the service checked on what it read,
// and a removal from the organization committed since would otherwise leave
// a project membership behind, to come back with a later invitation.
func (db *DB) AddUserMemberships(ctx context.Context, projectID string, userIDs []string, rolesOf func() []project.MembershipRole, ev audit.Event) ([]project.UserMembership, error) {
	var ids []string
	err := db.Transact(ctx, func(tx *Tx) error {
		ids = ids[:0]
		var orgID string
		if err := tx.queryRow(ctx, `SELECT org_id FROM projects WHERE id = ?`, projectID).Scan(&orgID); err != nil {
			return dbErr(err, "project's organization")
		}
		for _, uid := range userIDs {
			if err := tx.holdOrgMember(ctx, orgID, uid); err != nil {
				return err
			}
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM project_memberships WHERE project_id = ? AND user_id = ?`, projectID, uid).Scan(&n); err != nil {
				return dbErr(err, "existing membership")
			}
			if n > 0 {
				continue
			}
			id, err := tx.insertProjectMembership(ctx, projectID, uid, "", rolesOf())
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return tx.insertAudit(ctx, ev)
	})
	if err != nil {
		return nil, err
	}
	out := make([]project.UserMembership, 0, len(ids))
	for _, id := range ids {
		m, err := db.UserMembership(ctx, projectID, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
