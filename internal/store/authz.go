package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
)

var (
	_ authz.Memberships    = (*DB)(nil)
	_ authz.OrgGroupRoles  = (*DB)(nil)
	_ authz.OrgCustomRoles = (*DB)(nil)
)

// memberCol is the membership column that holds an actor of kind k.
func memberCol(k authz.ActorKind) string {
	if k == authz.ActorIdentity {
		return "identity_id"
	}
	return "user_id"
}

// byMember is a query in two forms: for a user's membership column and for
// an identity's.
type byMember [2]string

func memberQuery(f func(col string) string) byMember { return byMember{f("user_id"), f("identity_id")} }

// of is the form for an actor of kind k.
func (q byMember) of(k authz.ActorKind) string {
	if k == authz.ActorIdentity {
		return q[1]
	}
	return q[0]
}

var (
	qOrgRole = memberQuery(func(col string) string {
		// An invited or deactivated member holds no role (migration 00018).
		return `SELECT COALESCE(r.slug, m.role) FROM org_memberships m LEFT JOIN org_roles r ON r.id = m.custom_role_id
		WHERE m.org_id = ? AND m.` + col + ` = ? AND m.status = 'accepted' AND m.is_active`
	})
	qOrgGroupRoles = memberQuery(func(col string) string {
		return `SELECT COALESCE(r.slug, g.role) FROM group_members gm JOIN org_groups g ON g.id = gm.group_id
		LEFT JOIN org_roles r ON r.id = g.custom_role_id WHERE g.org_id = ? AND gm.` + col + ` = ?`
	})
	qProjectGrants = memberQuery(func(col string) string {
		return `SELECT p.org_id, r.role, cr.permissions, r.is_temporary, r.temporary_access_start_time, r.temporary_access_end_time, 0, r.id
		FROM projects p
		LEFT JOIN project_memberships m ON m.project_id = p.id AND m.` + col + ` = ?
		LEFT JOIN project_membership_roles r ON r.membership_id = m.id
		LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE p.id = ?
		UNION ALL
		SELECT p.org_id, r.role, cr.permissions, r.is_temporary, r.temporary_access_start_time, r.temporary_access_end_time, 0, r.id
		FROM group_members g
		JOIN project_group_memberships gm ON gm.group_id = g.group_id AND gm.project_id = ?
		JOIN projects p ON p.id = gm.project_id
		JOIN project_group_membership_roles r ON r.membership_id = gm.id
		LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE g.` + col + ` = ?
		UNION ALL
		SELECT p.org_id, 'privilege', v.permissions, v.is_temporary, v.temporary_access_start_time, v.temporary_access_end_time, 1, v.id
		FROM project_memberships m
		JOIN projects p ON p.id = m.project_id
		JOIN project_membership_privileges v ON v.membership_id = m.id
		WHERE m.project_id = ? AND m.` + col + ` = ?`
	})
)

var qPrincipalProjects = memberQuery(func(col string) string {
	return `SELECT project_id FROM project_memberships WHERE ` + col + ` = ?
	UNION
	SELECT gm.project_id FROM group_members g JOIN project_group_memberships gm ON gm.group_id = g.group_id WHERE g.` + col + ` = ?`
})

// PrincipalProjects returns the ids of the projects a user or identity is a
// member of, itself or through a group.
func (db *DB) PrincipalProjects(ctx context.Context, kind authz.ActorKind, id string) ([]string, error) {
	ids, err := scanIDs(db.readq(ctx, qPrincipalProjects.of(kind), id, id))
	return ids, dbErr(err, "PrincipalProjects")
}

// OrgRole returns an actor's role in an organization.
func (db *DB) OrgRole(ctx context.Context, orgID string, kind authz.ActorKind, actorID string) (string, error) {
	var role string
	err := db.readRow(ctx, qOrgRole.of(kind), orgID, actorID).Scan(&role)
	return role, dbErr(err, "OrgRole")
}

// OrgGroupRoles returns the organization roles of the groups of orgID an
// actor is in, one per group: a prepared hot read (no DISTINCT, whose sort
// the plan test refuses; callers drop repeats).
func (db *DB) OrgGroupRoles(ctx context.Context, orgID string, kind authz.ActorKind, actorID string) ([]string, error) {
	rows, err := db.readq(ctx, qOrgGroupRoles.of(kind), orgID, actorID)
	if err != nil {
		return nil, dbErr(err, "OrgGroupRoles")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var role string
		if err := rows.Scan(&role); err != nil {
			return nil, dbErr(err, "OrgGroupRoles")
		}
		out = append(out, role)
	}
	return out, dbErr(rows.Err(), "OrgGroupRoles")
}

// ProjectGrants returns the project's org and the actor's roles in it that
// are in force at now (its own and those of the groups it is in), followed by its additional privileges in force at now
// (grants named "privilege" carrying their rules), and the next moment after
// now at which a temporary role or privilege starts or ends (zero if none
// will): one query.
func (db *DB) ProjectGrants(ctx context.Context, projectID string, kind authz.ActorKind, actorID string, now time.Time) (string, []authz.Grant, time.Time, error) {
	rows, err := db.readq(ctx, qProjectGrants.of(kind), actorID, projectID, projectID, actorID, projectID, actorID)
	if err != nil {
		return "", nil, time.Time{}, dbErr(err, "ProjectGrants")
	}
	defer rows.Close()
	var orgID string
	var out []authz.Grant
	type privilegeGrant struct {
		id string
		g  authz.Grant
	}
	var privileges []privilegeGrant
	var next time.Time
	found := false
	soonest := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for rows.Next() {
		found = true
		var role, perms *string
		var temporary *bool
		var start, end time.Time
		var rank int
		var rowID *string
		if err := rows.Scan(&orgID, &role, &perms, &temporary, timeCol{&start}, timeCol{&end}, &rank, &rowID); err != nil {
			return "", nil, time.Time{}, dbErr(err, "scan grant")
		}
		if role == nil {
			continue // the project, with no membership of the actor
		}
		if temporary != nil && *temporary {
			soonest(start)
			soonest(end)
			if start.IsZero() || end.IsZero() || start.After(now) || !end.After(now) {
				continue
			}
		}
		g := authz.Grant{Role: *role}
		if temporary != nil && *temporary {
			g.Until = end
		}
		if perms != nil {
			g.Permissions = []byte(*perms)
		}
		if rank == 1 {
			privileges = append(privileges, privilegeGrant{*rowID, g})
			continue
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return "", nil, time.Time{}, dbErr(err, "ProjectGrants")
	}
	if !found {
		return "", nil, time.Time{}, dbErr(errNoRows, "ProjectGrants")
	}
	// Privileges after roles, oldest first (ids are time-ordered), sorted
	// here so that the query needs no sort.
	slices.SortFunc(privileges, func(a, b privilegeGrant) int { return strings.Compare(a.id, b.id) })
	for _, p := range privileges {
		out = append(out, p.g)
	}
	return orgID, out, next, nil
}

// OrgRolePermissions returns the rules of an organization's custom role.
func (db *DB) OrgRolePermissions(ctx context.Context, orgID, slug string) ([]byte, error) {
	var perms string
	err := db.readRow(ctx, `SELECT permissions FROM org_roles WHERE org_id = ? AND slug = ?`, orgID, slug).Scan(&perms)
	return []byte(perms), dbErr(err, "OrgRolePermissions")
}
