package store

import (
	"context"

	"github.com/lockbox-dev/lockbox/internal/project"
)

// insertProjectMembership adds a user (userID) or identity (identityID) to a
// project with roles, returning the membership id. A second membership of the
// same actor is a Conflict.
func (tx *Tx) insertProjectMembership(ctx context.Context, projectID, userID, identityID string, roles []project.MembershipRole) (string, error) {
	id := newID()
	if _, err := tx.exec(ctx, `INSERT INTO project_memberships (id, project_id, user_id, identity_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, id, projectID, nullStr(userID), nullStr(identityID), ts(tx.Now), ts(tx.Now)); err != nil {
		return "", dbErr(err, "insert project membership")
	}
	return id, tx.insertMembershipRoles(ctx, id, roles)
}

// insertMembershipRoles adds roles to a membership.
func (tx *Tx) insertMembershipRoles(ctx context.Context, membershipID string, roles []project.MembershipRole) error {
	for _, r := range roles {
		if r.ID == "" {
			r.ID = newID()
		}
		if _, err := tx.exec(ctx, `INSERT INTO project_membership_roles (id, membership_id, role, custom_role_id, is_temporary,
			temporary_mode, temporary_range, temporary_access_start_time, temporary_access_end_time, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, membershipID, r.Role, nullStr(r.CustomRoleID), r.IsTemporary, nullStr(r.TemporaryMode), nullStr(r.TemporaryRange),
			tsp(r.TemporaryAccessStartTime), tsp(r.TemporaryAccessEndTime), ts(tx.Now), ts(tx.Now)); err != nil {
			return dbErr(err, "insert membership role")
		}
	}
	return nil
}
