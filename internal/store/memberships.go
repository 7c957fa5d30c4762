package store

import (
	"context"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"

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

// roleTable is a table of membership roles; both have the same columns.
type roleTable string

const (
	memberRoles roleTable = "project_membership_roles"       // of users and identities
	groupRoles  roleTable = "project_group_membership_roles" // of groups
)

// insertMembershipRoles adds roles to a membership.
func (tx *Tx) insertMembershipRoles(ctx context.Context, membershipID string, roles []project.MembershipRole) error {
	return tx.insertRoles(ctx, memberRoles, membershipID, roles)
}

// insertRoles adds roles to a membership whose roles are in table.
func (tx *Tx) insertRoles(ctx context.Context, table roleTable, membershipID string, roles []project.MembershipRole) error {
	for _, r := range roles {
		if r.ID == "" {
			r.ID = newID()
		}
		if _, err := tx.exec(ctx, `INSERT INTO `+string(table)+` (id, membership_id, role, custom_role_id, is_temporary,
			temporary_mode, temporary_range, temporary_access_start_time, temporary_access_end_time, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, membershipID, r.Role, nullStr(r.CustomRoleID), r.IsTemporary, nullStr(r.TemporaryMode), nullStr(r.TemporaryRange),
			tsp(r.TemporaryAccessStartTime), tsp(r.TemporaryAccessEndTime), ts(tx.Now), ts(tx.Now)); err != nil {
			return dbErr(err, "insert membership role")
		}
	}
	return nil
}

// membershipRoles returns the roles in table of memberships ids, oldest
// first, one query per fillChunk memberships.
func (db *DB) membershipRoles(ctx context.Context, table roleTable, ids []string) (map[string][]project.MembershipRole, error) {
	out := map[string][]project.MembershipRole{}
	for chunk := range slices.Chunk(ids, fillChunk) {
		if err := db.membershipRolesChunk(ctx, table, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) membershipRolesChunk(ctx context.Context, table roleTable, ids []string, out map[string][]project.MembershipRole) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.readq(ctx, `SELECT r.id, r.membership_id, r.role, COALESCE(r.custom_role_id, ''), COALESCE(cr.slug, ''), COALESCE(cr.name, ''),
		r.is_temporary, COALESCE(r.temporary_mode, ''), COALESCE(r.temporary_range, ''), r.temporary_access_start_time,
		r.temporary_access_end_time, r.created_at, r.updated_at
		FROM `+string(table)+` r LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE r.membership_id IN (`+placeholders(len(ids))+`) ORDER BY r.created_at, r.id`, args...)
	if err != nil {
		return dbErr(err, "membership roles")
	}
	defer rows.Close()
	for rows.Next() {
		var r project.MembershipRole
		var mid string
		if err := rows.Scan(&r.ID, &mid, &r.Role, &r.CustomRoleID, &r.CustomRoleSlug, &r.CustomRoleName, &r.IsTemporary,
			&r.TemporaryMode, &r.TemporaryRange, optTimeCol{&r.TemporaryAccessStartTime}, optTimeCol{&r.TemporaryAccessEndTime},
			timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}); err != nil {
			return dbErr(err, "scan membership role")
		}
		out[mid] = append(out[mid], r)
	}
	return dbErr(rows.Err(), "membership roles")
}

var _ project.MembershipStore = (*DB)(nil)

// IdentityOrg returns the organization an identity belongs to.
func (db *DB) IdentityOrg(ctx context.Context, identityID string) (string, error) {
	var org string
	err := db.readRow(ctx, `SELECT org_id FROM identities WHERE id = ?`, identityID).Scan(&org)
	return org, dbErr(err, "IdentityOrg")
}

// CustomRoleBySlug finds a project's custom role.
func (db *DB) CustomRoleBySlug(ctx context.Context, projectID, slug string) (project.CustomRole, error) {
	var r project.CustomRole
	err := db.readRow(ctx, `SELECT id, slug, name FROM project_roles WHERE project_id = ? AND slug = ?`, projectID, slug).Scan(&r.ID, &r.Slug, &r.Name)
	return r, dbErr(err, "CustomRoleBySlug")
}

// AddIdentityMembership adds an identity to a project with roles.
func (db *DB) AddIdentityMembership(ctx context.Context, projectID, identityID string, roles []project.MembershipRole, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.insertProjectMembership(ctx, projectID, "", identityID, roles); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

const membershipCols = `m.id, m.project_id, p.name, m.identity_id, i.name, i.has_delete_protection, COALESCE(m.last_login_auth_method, ''), m.last_login_time, m.created_at, m.updated_at`

const membershipFrom = ` FROM project_memberships m JOIN projects p ON p.id = m.project_id JOIN identities i ON i.id = m.identity_id`

func scanMembership(sc interface{ Scan(...any) error }) (project.Membership, error) {
	var m project.Membership
	err := sc.Scan(&m.ID, &m.ProjectID, &m.ProjectName, &m.IdentityID, &m.IdentityName, &m.IdentityHasDeleteProtection, &m.LastLoginAuthMethod,
		optTimeCol{&m.LastLoginTime}, timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt})
	return m, err
}

// fillMemberships loads the roles and identity auth methods of memberships.
func (db *DB) fillMemberships(ctx context.Context, list []project.Membership) error {
	for chunk := range slices.Chunk(list, fillChunk) {
		if err := db.fillMembershipsChunk(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) fillMembershipsChunk(ctx context.Context, list []project.Membership) error {
	if len(list) == 0 {
		return nil
	}
	idx := map[string]int{}
	byIdentity := map[string][]int{}
	ids, identityIDs := make([]any, 0, len(list)), make([]any, 0, len(list))
	for i := range list {
		idx[list[i].ID] = i
		list[i].Roles, list[i].IdentityAuthMethods = []project.MembershipRole{}, []string{}
		ids = append(ids, list[i].ID)
		byIdentity[list[i].IdentityID] = append(byIdentity[list[i].IdentityID], i)
		identityIDs = append(identityIDs, list[i].IdentityID)
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	rows, err := db.readq(ctx, `SELECT r.id, r.membership_id, r.role, COALESCE(r.custom_role_id, ''), COALESCE(cr.slug, ''), COALESCE(cr.name, ''),
		r.is_temporary, COALESCE(r.temporary_mode, ''), COALESCE(r.temporary_range, ''), r.temporary_access_start_time,
		r.temporary_access_end_time, r.created_at, r.updated_at
		FROM project_membership_roles r LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE r.membership_id IN (`+ph+`) ORDER BY r.created_at, r.id`, ids...)
	if err != nil {
		return dbErr(err, "membership roles")
	}
	for rows.Next() {
		var r project.MembershipRole
		var mid string
		if err := rows.Scan(&r.ID, &mid, &r.Role, &r.CustomRoleID, &r.CustomRoleSlug, &r.CustomRoleName, &r.IsTemporary,
			&r.TemporaryMode, &r.TemporaryRange, optTimeCol{&r.TemporaryAccessStartTime}, optTimeCol{&r.TemporaryAccessEndTime},
			timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt}); err != nil {
			rows.Close()
			return dbErr(err, "scan membership role")
		}
		list[idx[mid]].Roles = append(list[idx[mid]].Roles, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return dbErr(err, "membership roles")
	}
	q, qargs := authMethodsQuery(identityIDs)
	rows, err = db.readq(ctx, q, qargs...)
	if err != nil {
		return dbErr(err, "auth methods")
	}
	defer rows.Close()
	for rows.Next() {
		var id, method string
		if err := rows.Scan(&id, &method); err != nil {
			return dbErr(err, "scan auth method")
		}
		for _, i := range byIdentity[id] {
			list[i].IdentityAuthMethods = append(list[i].IdentityAuthMethods, method)
		}
	}
	return dbErr(rows.Err(), "auth methods")
}

// IdentityMembership returns an identity's membership of a project.
func (db *DB) IdentityMembership(ctx context.Context, projectID, identityID string) (project.Membership, error) {
	m, err := scanMembership(db.readRow(ctx, `SELECT `+membershipCols+membershipFrom+` WHERE m.project_id = ? AND m.identity_id = ?`, projectID, identityID))
	if err != nil {
		return m, dbErr(err, "IdentityMembership")
	}
	list := []project.Membership{m}
	err = db.fillMemberships(ctx, list)
	return list[0], err
}

// IdentityMembershipByID returns an identity membership by its own id.
func (db *DB) IdentityMembershipByID(ctx context.Context, membershipID string) (project.Membership, error) {
	m, err := scanMembership(db.readRow(ctx, `SELECT `+membershipCols+membershipFrom+` WHERE m.id = ?`, membershipID))
	if err != nil {
		return m, dbErr(err, "IdentityMembershipByID")
	}
	list := []project.Membership{m}
	err = db.fillMemberships(ctx, list)
	return list[0], err
}

// IdentityMemberships lists a project's identity memberships with the total count.
func (db *DB) IdentityMemberships(ctx context.Context, projectID string, offset, limit int) ([]project.Membership, int, error) {
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM project_memberships WHERE project_id = ? AND identity_id IS NOT NULL`, projectID).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count memberships")
	}
	rows, err := db.readq(ctx, `SELECT `+membershipCols+membershipFrom+` WHERE m.project_id = ? ORDER BY i.name, m.id LIMIT ? OFFSET ?`, projectID, limit, offset)
	if err != nil {
		return nil, 0, dbErr(err, "IdentityMemberships")
	}
	list := []project.Membership{}
	for rows.Next() {
		m, err := scanMembership(rows)
		if err != nil {
			rows.Close()
			return nil, 0, dbErr(err, "scan membership")
		}
		list = append(list, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr(err, "IdentityMemberships")
	}
	return list, total, db.fillMemberships(ctx, list)
}

// projectAdmins counts the memberships of a project holding a permanent admin role.
func (tx *Tx) projectAdmins(ctx context.Context, projectID string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(DISTINCT m.id) FROM project_memberships m
		JOIN project_membership_roles r ON r.membership_id = m.id
		WHERE m.project_id = ? AND r.role = 'admin' AND NOT r.is_temporary`, projectID).Scan(&n)
	return n, dbErr(err, "projectAdmins")
}

// keepingAdmin runs change and refuses it if it leaves a project that had a
// permanent admin without one. The project row is locked first, so two
// concurrent changes cannot each remove one of the last two admins.
func (tx *Tx) keepingAdmin(ctx context.Context, projectID string, change func() error) error {
	var id string
	if err := tx.queryRow(ctx, `SELECT id FROM projects WHERE id = ?`+tx.db.forUpdate(), projectID).Scan(&id); err != nil {
		return dbErr(err, "lock project")
	}
	before, err := tx.projectAdmins(ctx, projectID)
	if err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	after, err := tx.projectAdmins(ctx, projectID)
	if err != nil {
		return err
	}
	if before > 0 && after == 0 {
		return errs.BadRequest("The last admin of a project cannot be removed or demoted")
	}
	return nil
}

// ReplaceMembershipRoles swaps a membership's roles, if they are still
// expect (the role ids the caller's check was made on).
func (db *DB) ReplaceMembershipRoles(ctx context.Context, projectID, membershipID string, expect []string, roles []project.MembershipRole, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		return tx.keepingAdmin(ctx, projectID, func() error {
			if err := tx.rolesUnchanged(ctx, membershipID, expect); err != nil {
				return err
			}
			return tx.replaceRoles(ctx, membershipID, roles, ev)
		})
	})
}

// rolesUnchanged reports a Conflict unless the membership's role ids are
// expect; it runs after keepingAdmin has locked the project.
func (tx *Tx) rolesUnchanged(ctx context.Context, membershipID string, expect []string) error {
	rows, err := tx.query(ctx, `SELECT id FROM project_membership_roles WHERE membership_id = ?`, membershipID)
	if err != nil {
		return dbErr(err, "membership roles")
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return dbErr(err, "membership roles")
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		return dbErr(err, "membership roles")
	}
	want := slices.Clone(expect)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return errs.Conflictf("The membership changed while this request was checked; try again")
	}
	return nil
}

func (tx *Tx) replaceRoles(ctx context.Context, membershipID string, roles []project.MembershipRole, ev audit.Event) error {
	{
		if _, err := tx.exec(ctx, `DELETE FROM project_membership_roles WHERE membership_id = ?`, membershipID); err != nil {
			return dbErr(err, "delete roles")
		}
		if err := tx.insertMembershipRoles(ctx, membershipID, roles); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE project_memberships SET updated_at = ? WHERE id = ?`, ts(tx.Now), membershipID); err != nil {
			return dbErr(err, "touch membership")
		}
		return tx.insertAudit(ctx, ev)
	}
}

// DeleteMembership removes a membership and its roles.
func (db *DB) DeleteMembership(ctx context.Context, projectID, membershipID string, expect []string, ev audit.Event) error {
	return db.DeleteMemberships(ctx, projectID, []project.MembershipDeletion{{ID: membershipID, Expect: expect, Event: ev}})
}

// DeleteMemberships deletes memberships of a project in one transaction,
// each only if its roles are still as expected: all of them, or none.
func (db *DB) DeleteMemberships(ctx context.Context, projectID string, dels []project.MembershipDeletion) error {
	return db.Transact(ctx, func(tx *Tx) error {
		return tx.keepingAdmin(ctx, projectID, func() error {
			for _, d := range dels {
				if err := tx.rolesUnchanged(ctx, d.ID, d.Expect); err != nil {
					return err
				}
				if _, err := tx.exec(ctx, `DELETE FROM project_memberships WHERE id = ?`, d.ID); err != nil {
					return dbErr(err, "DeleteMembership")
				}
				if err := tx.insertAudit(ctx, d.Event); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
