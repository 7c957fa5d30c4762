package store

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
)

var _ authz.Memberships = (*DB)(nil)

// memberCol is the membership column that holds an actor of kind k.
func memberCol(k authz.ActorKind) string {
	if k == authz.ActorIdentity {
		return "identity_id"
	}
	return "user_id"
}

// OrgRole returns an actor's role in an organization.
func (db *DB) OrgRole(ctx context.Context, orgID string, kind authz.ActorKind, actorID string) (string, error) {
	var role string
	err := db.readRow(ctx, `SELECT role FROM org_memberships WHERE org_id = ? AND `+memberCol(kind)+` = ?`, orgID, actorID).Scan(&role)
	return role, dbErr(err, "OrgRole")
}

// ProjectGrants returns the project's org and the actor's roles in it that are in force at now.
func (db *DB) ProjectGrants(ctx context.Context, projectID string, kind authz.ActorKind, actorID string, now time.Time) (string, []authz.Grant, error) {
	var orgID string
	if err := db.readRow(ctx, `SELECT org_id FROM projects WHERE id = ?`, projectID).Scan(&orgID); err != nil {
		return "", nil, dbErr(err, "ProjectGrants")
	}
	rows, err := db.readq(ctx, `SELECT r.role, cr.permissions FROM project_memberships m
		JOIN project_membership_roles r ON r.membership_id = m.id
		LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE m.project_id = ? AND m.`+memberCol(kind)+` = ?
		  AND (r.is_temporary = FALSE OR (r.temporary_access_start_time <= ? AND r.temporary_access_end_time > ?))`,
		projectID, actorID, ts(now), ts(now))
	if err != nil {
		return "", nil, dbErr(err, "ProjectGrants")
	}
	defer rows.Close()
	var out []authz.Grant
	for rows.Next() {
		var g authz.Grant
		var perms *string
		if err := rows.Scan(&g.Role, &perms); err != nil {
			return "", nil, dbErr(err, "scan grant")
		}
		if perms != nil {
			g.Permissions = []byte(*perms)
		}
		out = append(out, g)
	}
	return orgID, out, dbErr(rows.Err(), "ProjectGrants")
}
