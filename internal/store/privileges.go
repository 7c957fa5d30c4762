package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var _ project.PrivilegeStore = (*DB)(nil)

const privilegeCols = `v.id, v.slug, v.membership_id, m.project_id, COALESCE(m.identity_id, ''), COALESCE(m.user_id, ''), v.permissions,
	v.is_temporary, COALESCE(v.temporary_mode, ''), COALESCE(v.temporary_range, ''), v.temporary_access_start_time,
	v.temporary_access_end_time, v.created_at, v.updated_at`

const privilegeFrom = ` FROM project_membership_privileges v JOIN project_memberships m ON m.id = v.membership_id`

func scanPrivilege(sc interface{ Scan(...any) error }) (project.Privilege, error) {
	var p project.Privilege
	var perms string
	if err := sc.Scan(&p.ID, &p.Slug, &p.MembershipID, &p.ProjectID, &p.IdentityID, &p.UserID, &perms, &p.IsTemporary,
		&p.TemporaryMode, &p.TemporaryRange, optTimeCol{&p.TemporaryAccessStartTime}, optTimeCol{&p.TemporaryAccessEndTime},
		timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(perms), &p.Permissions); err != nil {
		return p, errs.Internalf(err, "stored rules of privilege %s", p.ID)
	}
	return p, nil
}

// CreatePrivilege stores an additional privilege of a project membership.
// The membership's row is locked first, so that it cannot go meanwhile
// (errs.NotFound) and concurrent creates count its privileges exactly.
func (db *DB) CreatePrivilege(ctx context.Context, p project.Privilege, permissions string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		var id string
		if err := tx.queryRow(ctx, `SELECT id FROM project_memberships WHERE id = ?`+db.forUpdate(), p.MembershipID).Scan(&id); err != nil {
			return dbErr(err, "lock membership")
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM project_membership_privileges WHERE membership_id = ?`, p.MembershipID).Scan(&n); err != nil {
			return dbErr(err, "count privileges")
		}
		if n >= project.MaxPrivileges {
			return errs.BadRequest("A project member holds at most %d additional privileges", project.MaxPrivileges)
		}
		if _, err := tx.exec(ctx, `INSERT INTO project_membership_privileges (id, membership_id, slug, permissions, is_temporary,
			temporary_mode, temporary_range, temporary_access_start_time, temporary_access_end_time, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.MembershipID, p.Slug, permissions, p.IsTemporary, nullStr(p.TemporaryMode), nullStr(p.TemporaryRange),
			tsp(p.TemporaryAccessStartTime), tsp(p.TemporaryAccessEndTime), ts(p.CreatedAt), ts(p.UpdatedAt)); err != nil {
			return dbErr(err, "CreatePrivilege")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// PrivilegeByID returns a privilege by id, in any project.
func (db *DB) PrivilegeByID(ctx context.Context, id string) (project.Privilege, error) {
	p, err := scanPrivilege(db.readRow(ctx, `SELECT `+privilegeCols+privilegeFrom+` WHERE v.id = ?`, id))
	return p, dbErr(err, "PrivilegeByID")
}

// PrivilegeBySlug returns a membership's privilege by slug.
func (db *DB) PrivilegeBySlug(ctx context.Context, membershipID, slug string) (project.Privilege, error) {
	p, err := scanPrivilege(db.readRow(ctx, `SELECT `+privilegeCols+privilegeFrom+` WHERE v.membership_id = ? AND v.slug = ?`, membershipID, slug))
	return p, dbErr(err, "PrivilegeBySlug")
}

// Privileges lists a membership's privileges, oldest first.
func (db *DB) Privileges(ctx context.Context, membershipID string) ([]project.Privilege, error) {
	rows, err := db.readq(ctx, `SELECT `+privilegeCols+privilegeFrom+` WHERE v.membership_id = ? ORDER BY v.id`, membershipID)
	if err != nil {
		return nil, dbErr(err, "Privileges")
	}
	defer rows.Close()
	out := []project.Privilege{}
	for rows.Next() {
		p, err := scanPrivilege(rows)
		if err != nil {
			return nil, dbErr(err, "scan privilege")
		}
		out = append(out, p)
	}
	return out, dbErr(rows.Err(), "Privileges")
}

// UpdatePrivilege rewrites a privilege.
func (db *DB) UpdatePrivilege(ctx context.Context, p project.Privilege, permissions string, prev time.Time, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `UPDATE project_membership_privileges SET slug = ?, permissions = ?, is_temporary = ?, temporary_mode = ?,
			temporary_range = ?, temporary_access_start_time = ?, temporary_access_end_time = ?, updated_at = ? WHERE id = ? AND updated_at = ?`,
			p.Slug, permissions, p.IsTemporary, nullStr(p.TemporaryMode), nullStr(p.TemporaryRange), tsp(p.TemporaryAccessStartTime),
			tsp(p.TemporaryAccessEndTime), ts(p.UpdatedAt), p.ID, ts(prev))
		if err := staleIfNone(res, err, "UpdatePrivilege"); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeletePrivilege deletes a privilege.
func (db *DB) DeletePrivilege(ctx context.Context, p project.Privilege, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		res, err := tx.exec(ctx, `DELETE FROM project_membership_privileges WHERE id = ?`, p.ID)
		if err != nil {
			return dbErr(err, "DeletePrivilege")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.NotFoundf("Identity privilege with ID '%s' not found", p.ID)
		}
		return tx.insertAudit(ctx, ev)
	})
}

// MembershipOwner returns a project membership's project and member.
func (db *DB) MembershipOwner(ctx context.Context, membershipID string) (project.MemberRef, error) {
	var m project.MemberRef
	err := db.readRow(ctx, `SELECT id, project_id, COALESCE(user_id, ''), COALESCE(identity_id, '') FROM project_memberships WHERE id = ?`,
		membershipID).Scan(&m.ID, &m.ProjectID, &m.UserID, &m.IdentityID)
	return m, dbErr(err, "MembershipOwner")
}
