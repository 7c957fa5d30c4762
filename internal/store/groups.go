package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
)

var (
	_ org.GroupStore     = (*DB)(nil)
	_ project.GroupStore = (*DB)(nil)
)

const groupCols = `g.id, g.org_id, g.name, g.slug, g.role, COALESCE(g.custom_role_id, ''), COALESCE(r.slug, ''), g.created_at, g.updated_at`

const groupFrom = ` FROM org_groups g LEFT JOIN org_roles r ON r.id = g.custom_role_id`

func scanGroup(sc interface{ Scan(...any) error }) (org.Group, error) {
	var g org.Group
	err := sc.Scan(&g.ID, &g.OrgID, &g.Name, &g.Slug, &g.Role, &g.CustomRoleID, &g.CustomRoleSlug, timeCol{&g.CreatedAt}, timeCol{&g.UpdatedAt})
	return g, err
}

// CreateGroup writes a group.
func (db *DB) CreateGroup(ctx context.Context, g org.Group, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `INSERT INTO org_groups (id, org_id, name, slug, role, custom_role_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.OrgID, g.Name, g.Slug, g.Role, nullStr(g.CustomRoleID), ts(g.CreatedAt), ts(g.UpdatedAt)); err != nil {
			return dbErr(err, "CreateGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// Group returns a group of an organization.
func (db *DB) Group(ctx context.Context, orgID, id string) (org.Group, error) {
	g, err := scanGroup(db.readRow(ctx, `SELECT `+groupCols+groupFrom+` WHERE g.org_id = ? AND g.id = ?`, orgID, id))
	return g, dbErr(err, "Group")
}

func (db *DB) groups(ctx context.Context, where string, args ...any) ([]org.Group, error) {
	rows, err := db.readq(ctx, `SELECT `+groupCols+groupFrom+` WHERE `+where+` ORDER BY g.name, g.id`, args...)
	if err != nil {
		return nil, dbErr(err, "Groups")
	}
	defer rows.Close()
	out := []org.Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, dbErr(err, "scan group")
		}
		out = append(out, g)
	}
	return out, dbErr(rows.Err(), "Groups")
}

// Groups lists an organization's groups by name.
func (db *DB) Groups(ctx context.Context, orgID string) ([]org.Group, error) {
	return db.groups(ctx, `g.org_id = ?`, orgID)
}

// GroupsByName returns the organization's groups whose name is among names.
func (db *DB) GroupsByName(ctx context.Context, orgID string, names []string) ([]org.Group, error) {
	if len(names) == 0 {
		return nil, nil
	}
	args := []any{orgID}
	for _, n := range names {
		args = append(args, n)
	}
	return db.groups(ctx, `g.org_id = ? AND g.name IN (`+placeholders(len(names))+`)`, args...)
}

// SSOManagesGroups reports whether the organization's active OIDC
// configuration maps its groups' users from the provider's groups claim.
func (db *DB) SSOManagesGroups(ctx context.Context, orgID string) (bool, error) {
	var on bool
	err := db.readRow(ctx, `SELECT manage_group_memberships FROM oidc_configs WHERE org_id = ? AND is_active = ?`, orgID, true).Scan(&on)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	return on, dbErr(err, "SSOManagesGroups")
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// UpdateGroup writes a group's name, slug and role, if the group's
// project roles are still seen (nil: not compared).
func (db *DB) UpdateGroup(ctx context.Context, g org.Group, seen *org.GrantsSeen, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupUnchanged(ctx, g.ID, seen); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE org_groups SET name = ?, slug = ?, role = ?, custom_role_id = ?, updated_at = ? WHERE id = ? AND org_id = ?`,
			g.Name, g.Slug, g.Role, nullStr(g.CustomRoleID), ts(g.UpdatedAt), g.ID, g.OrgID); err != nil {
			return dbErr(err, "UpdateGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteGroup removes a group with its members and project memberships,
// if its project roles are still seen.
func (db *DB) DeleteGroup(ctx context.Context, g org.Group, seen *org.GrantsSeen, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupUnchanged(ctx, g.ID, seen); err != nil {
			return err
		}
		// Roles reference custom project roles without cascade; remove them first.
		if _, err := tx.exec(ctx, `DELETE FROM project_group_membership_roles WHERE membership_id IN
			(SELECT id FROM project_group_memberships WHERE group_id = ?)`, g.ID); err != nil {
			return dbErr(err, "delete group roles")
		}
		if _, err := tx.exec(ctx, `DELETE FROM org_groups WHERE id = ? AND org_id = ?`, g.ID, g.OrgID); err != nil {
			return dbErr(err, "DeleteGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// memberFilter adds f's conditions on the membership row alias gm.
func memberFilter(f org.GroupFilter, where *string) {
	if f.Members != nil {
		if *f.Members {
			*where += ` AND gm.id IS NOT NULL`
		} else {
			*where += ` AND gm.id IS NULL`
		}
	}
}

// GroupUsers lists the organization's users with whether each is in the
// group: members first, then by username.
func (db *DB) GroupUsers(ctx context.Context, orgID, groupID string, f org.GroupFilter) ([]org.GroupUser, int, error) {
	from := ` FROM org_memberships om JOIN users u ON u.id = om.user_id
		LEFT JOIN group_members gm ON gm.group_id = ? AND gm.user_id = u.id
		WHERE om.org_id = ?`
	args := []any{groupID, orgID}
	memberFilter(f, &from)
	if f.Search != "" {
		from += ` AND (LOWER(u.email) LIKE ? ESCAPE '\' OR LOWER(u.username) LIKE ? ESCAPE '\'
			OR LOWER(u.first_name || ' ' || u.last_name) LIKE ? ESCAPE '\')`
		p := likePattern(f.Search)
		args = append(args, p, p, p)
	}
	if f.Username != "" {
		from += ` AND LOWER(u.username) = ?`
		args = append(args, strings.ToLower(f.Username))
	}
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count group users")
	}
	rows, err := db.readq(ctx, `SELECT u.id, u.email, u.username, u.first_name, u.last_name, gm.created_at`+from+
		` ORDER BY CASE WHEN gm.id IS NULL THEN 1 ELSE 0 END, u.username, u.id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, dbErr(err, "GroupUsers")
	}
	defer rows.Close()
	out := []org.GroupUser{}
	for rows.Next() {
		var u org.GroupUser
		if err := rows.Scan(&u.ID, &u.Email, &u.Username, &u.FirstName, &u.LastName, optTimeCol{&u.JoinedGroupAt}); err != nil {
			return nil, 0, dbErr(err, "scan group user")
		}
		u.IsPartOfGroup = u.JoinedGroupAt != nil
		out = append(out, u)
	}
	return out, total, dbErr(rows.Err(), "GroupUsers")
}

// GroupIdentities lists the organization's machine identities with whether
// each is in the group: members first, then by name.
func (db *DB) GroupIdentities(ctx context.Context, orgID, groupID string, f org.GroupFilter) ([]org.GroupIdentity, int, error) {
	from := ` FROM identities i LEFT JOIN group_members gm ON gm.group_id = ? AND gm.identity_id = i.id WHERE i.org_id = ?`
	args := []any{groupID, orgID}
	memberFilter(f, &from)
	if f.Search != "" {
		from += ` AND LOWER(i.name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(f.Search))
	}
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count group identities")
	}
	rows, err := db.readq(ctx, `SELECT i.id, i.name, gm.created_at`+from+
		` ORDER BY CASE WHEN gm.id IS NULL THEN 1 ELSE 0 END, i.name, i.id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, dbErr(err, "GroupIdentities")
	}
	defer rows.Close()
	out := []org.GroupIdentity{}
	for rows.Next() {
		var i org.GroupIdentity
		if err := rows.Scan(&i.ID, &i.Name, optTimeCol{&i.JoinedGroupAt}); err != nil {
			return nil, 0, dbErr(err, "scan group identity")
		}
		i.IsPartOfGroup = i.JoinedGroupAt != nil
		out = append(out, i)
	}
	return out, total, dbErr(rows.Err(), "GroupIdentities")
}

// GroupMembers lists a group's users and identities by name (a user's
// username, an identity's name).
func (db *DB) GroupMembers(ctx context.Context, groupID string, f org.GroupFilter) ([]org.GroupMember, int, error) {
	users := `SELECT gm.created_at AS joined, 'user' AS kind, u.id AS id, u.email AS email, u.username AS username,
		u.first_name AS first_name, u.last_name AS last_name, '' AS name, LOWER(u.username) AS sort_name
		FROM group_members gm JOIN users u ON u.id = gm.user_id WHERE gm.group_id = ?`
	idents := `SELECT gm.created_at AS joined, 'identity' AS kind, i.id AS id, '' AS email, '' AS username,
		'' AS first_name, '' AS last_name, i.name AS name, LOWER(i.name) AS sort_name
		FROM group_members gm JOIN identities i ON i.id = gm.identity_id WHERE gm.group_id = ?`
	uargs, iargs := []any{groupID}, []any{groupID}
	if f.Search != "" {
		p := likePattern(f.Search)
		users += ` AND (LOWER(u.email) LIKE ? ESCAPE '\' OR LOWER(u.username) LIKE ? ESCAPE '\'
			OR LOWER(u.first_name || ' ' || u.last_name) LIKE ? ESCAPE '\')`
		uargs = append(uargs, p, p, p)
		idents += ` AND LOWER(i.name) LIKE ? ESCAPE '\'`
		iargs = append(iargs, p)
	}
	var parts []string
	var args []any
	if len(f.Kinds) == 0 || slices.Contains(f.Kinds, authz.ActorUser) {
		parts, args = append(parts, users), append(args, uargs...)
	}
	if len(f.Kinds) == 0 || slices.Contains(f.Kinds, authz.ActorIdentity) {
		parts, args = append(parts, idents), append(args, iargs...)
	}
	union := strings.Join(parts, " UNION ALL ")
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM (`+union+`) m`, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count group members")
	}
	dir := "ASC"
	if f.Descending {
		dir = "DESC"
	}
	rows, err := db.readq(ctx, `SELECT joined, kind, id, email, username, first_name, last_name, name FROM (`+union+`) m
		ORDER BY sort_name `+dir+`, id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, dbErr(err, "GroupMembers")
	}
	defer rows.Close()
	out := []org.GroupMember{}
	for rows.Next() {
		var m org.GroupMember
		var kind, id, email, username, first, last, name string
		if err := rows.Scan(timeCol{&m.JoinedGroupAt}, &kind, &id, &email, &username, &first, &last, &name); err != nil {
			return nil, 0, dbErr(err, "scan group member")
		}
		if kind == "user" {
			m.Kind = authz.ActorUser
			m.User = org.GroupUser{ID: id, Email: email, Username: username, FirstName: first, LastName: last, IsPartOfGroup: true}
		} else {
			m.Kind = authz.ActorIdentity
			m.Identity = org.GroupIdentity{ID: id, Name: name, IsPartOfGroup: true}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbErr(err, "GroupMembers")
	}
	return out, total, nil
}

// GroupProjects lists the organization's projects the viewer sees, by
// name, with when the group joined each.
func (db *DB) GroupProjects(ctx context.Context, orgID, groupID string, viewer org.VisibleTo, f org.GroupFilter) ([]org.GroupProject, int, error) {
	from := ` FROM projects p LEFT JOIN project_group_memberships gm ON gm.project_id = p.id AND gm.group_id = ? WHERE p.org_id = ?`
	args := []any{groupID, orgID}
	if !viewer.All {
		from += ` AND (p.id IN (SELECT project_id FROM project_memberships WHERE ` + memberCol(viewer.Kind) + ` = ?)
			OR p.id IN (SELECT pg.project_id FROM group_members g JOIN project_group_memberships pg ON pg.group_id = g.group_id
			WHERE g.` + memberCol(viewer.Kind) + ` = ?))`
		args = append(args, viewer.ID, viewer.ID)
	}
	memberFilter(f, &from)
	if f.Search != "" {
		from += ` AND (LOWER(p.name) LIKE ? ESCAPE '\' OR LOWER(p.slug) LIKE ? ESCAPE '\')`
		p := likePattern(f.Search)
		args = append(args, p, p)
	}
	var total int
	if err := db.readRow(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, dbErr(err, "count group projects")
	}
	dir := "ASC"
	if f.Descending {
		dir = "DESC"
	}
	rows, err := db.readq(ctx, `SELECT p.id, p.name, p.slug, p.description, p.type, gm.created_at`+from+
		` ORDER BY LOWER(p.name) `+dir+`, p.id LIMIT ? OFFSET ?`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, dbErr(err, "GroupProjects")
	}
	defer rows.Close()
	out := []org.GroupProject{}
	for rows.Next() {
		var p org.GroupProject
		if err := rows.Scan(&p.ID, &p.Name, &p.Slug, &p.Description, &p.Type, optTimeCol{&p.JoinedGroupAt}); err != nil {
			return nil, 0, dbErr(err, "scan group project")
		}
		out = append(out, p)
	}
	return out, total, dbErr(rows.Err(), "GroupProjects")
}

// OrgUserByUsername finds a user of the organization by username or email.
func (db *DB) OrgUserByUsername(ctx context.Context, orgID, username string) (org.GroupUser, error) {
	var u org.GroupUser
	err := db.readRow(ctx, `SELECT u.id, u.email, u.username, u.first_name, u.last_name
		FROM org_memberships om JOIN users u ON u.id = om.user_id
		WHERE om.org_id = ? AND (LOWER(u.username) = ? OR LOWER(u.email) = ?)
		ORDER BY CASE WHEN LOWER(u.username) = ? THEN 0 ELSE 1 END LIMIT 1`, orgID, username, username, username).
		Scan(&u.ID, &u.Email, &u.Username, &u.FirstName, &u.LastName)
	return u, dbErr(err, "OrgUserByUsername")
}

// AddGroupMember adds a user or an identity to a group, if the group's
// project roles are still seen (org.ErrGroupRolesChanged if not).
func (db *DB) AddGroupMember(ctx context.Context, groupID string, kind authz.ActorKind, memberID string, seen *org.GrantsSeen, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupUnchanged(ctx, groupID, seen); err != nil {
			return err
		}
		if err := tx.insertGroupMember(ctx, groupID, kind, memberID); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

func (tx *Tx) insertGroupMember(ctx context.Context, groupID string, kind authz.ActorKind, memberID string) error {
	user, ident := memberID, ""
	if kind == authz.ActorIdentity {
		user, ident = "", memberID
	} else {
		// A user must still be in the group's organization (holdOrgMember).
		var orgID string
		if err := tx.queryRow(ctx, `SELECT org_id FROM org_groups WHERE id = ?`, groupID).Scan(&orgID); err != nil {
			return dbErr(err, "group's organization")
		}
		if err := tx.holdOrgMember(ctx, orgID, user); err != nil {
			return err
		}
	}
	_, err := tx.exec(ctx, `INSERT INTO group_members (id, group_id, user_id, identity_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		newID(), groupID, nullStr(user), nullStr(ident), ts(tx.Now))
	return dbErr(err, "add group member")
}

// RemoveGroupMember removes a user or an identity from a group, if the
// group's project roles are still seen.
func (db *DB) RemoveGroupMember(ctx context.Context, groupID string, kind authz.ActorKind, memberID string, seen *org.GrantsSeen, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupUnchanged(ctx, groupID, seen); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM group_members WHERE group_id = ? AND `+memberCol(kind)+` = ?`, groupID, memberID)
		if err != nil {
			return dbErr(err, "RemoveGroupMember")
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return dbErr(errNoRows, "RemoveGroupMember")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// SetUserGroups makes a user a member of exactly groupIDs among the
// organization's groups.
func (db *DB) SetUserGroups(ctx context.Context, orgID, userID string, groupIDs []string, evs func(added, removed []string) []audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.holdOrgMember(ctx, orgID, userID); err != nil {
			return err
		}
		rows, err := tx.query(ctx, `SELECT gm.group_id FROM group_members gm JOIN org_groups g ON g.id = gm.group_id
			WHERE gm.user_id = ? AND g.org_id = ?`, userID, orgID)
		if err != nil {
			return dbErr(err, "user groups")
		}
		var have []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return dbErr(err, "user groups")
			}
			have = append(have, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbErr(err, "user groups")
		}
		var added, removed []string
		for _, id := range groupIDs {
			if !slices.Contains(have, id) {
				added = append(added, id)
			}
		}
		for _, id := range have {
			if !slices.Contains(groupIDs, id) {
				removed = append(removed, id)
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			return nil
		}
		// A group deleted since the caller looked it up is skipped, and a
		// membership a concurrent sign-in just wrote is kept: neither fails
		// the sign-in.
		joined := added[:0:0]
		for _, id := range added {
			res, err := tx.exec(ctx, `INSERT INTO group_members (id, group_id, user_id, identity_id, created_at)
				SELECT ?, id, ?, NULL, ? FROM org_groups WHERE id = ? AND org_id = ? ON CONFLICT DO NOTHING`,
				newID(), userID, ts(tx.Now), id, orgID)
			if err != nil {
				return dbErr(err, "add group member")
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				joined = append(joined, id)
			}
		}
		added = joined
		for _, id := range removed {
			if _, err := tx.exec(ctx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, id, userID); err != nil {
				return dbErr(err, "remove group member")
			}
		}
		return tx.insertAudits(ctx, evs(added, removed)...)
	})
}

// lockGroup locks a group's row (on PostgreSQL; SQLite has one writer):
// writes that depend on the group's project roles and changes of those
// roles take it first, so neither writes on what the other is about to
// change. FOR NO KEY UPDATE: inserting a member (whose foreign key takes a
// key-share lock on the row) is not held up by it.
func (tx *Tx) lockGroup(ctx context.Context, groupID string) error {
	return tx.lockRow(ctx, "org_groups", groupID)
}

// groupUnchanged locks the group and reports org.ErrGroupRolesChanged
// unless its project roles are still seen (nil: only locks).
func (tx *Tx) groupUnchanged(ctx context.Context, groupID string, seen *org.GrantsSeen) error {
	if err := tx.lockGroup(ctx, groupID); err != nil {
		return err
	}
	if seen == nil {
		return nil
	}
	rows, err := tx.query(ctx, `SELECT r.id, cr.permissions FROM project_group_memberships gm
		JOIN project_group_membership_roles r ON r.membership_id = gm.id
		LEFT JOIN project_roles cr ON cr.id = r.custom_role_id WHERE gm.group_id = ?`, groupID)
	if err != nil {
		return dbErr(err, "group roles")
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		var perms *string
		if err := rows.Scan(&id, &perms); err != nil {
			return dbErr(err, "group roles")
		}
		got = append(got, grantKey(id, perms))
	}
	if err := rows.Err(); err != nil {
		return dbErr(err, "group roles")
	}
	orgKey, err := groupOrgKey(tx.queryRow(ctx, qGroupOrgKey, groupID))
	if err != nil {
		return err
	}
	got = append(got, orgKey)
	want := slices.Clone(seen.Keys)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return org.ErrGroupRolesChanged
	}
	return nil
}

// qGroupOrgKey reads what groupOrgKey makes a key of.
const qGroupOrgKey = `SELECT g.role, COALESCE(g.custom_role_id, ''), r.permissions FROM org_groups g
	LEFT JOIN org_roles r ON r.id = g.custom_role_id WHERE g.id = ?`

// groupOrgKey is a group's organization role as a check sees it: the role,
// and a digest of a custom role's rules (members hold it too), from a row
// of qGroupOrgKey.
func groupOrgKey(row interface{ Scan(...any) error }) (string, error) {
	var role, customID string
	var perms *string
	if err := row.Scan(&role, &customID, &perms); err != nil {
		return "", dbErr(err, "group role")
	}
	return grantKey("org:"+role+":"+customID, perms), nil
}

// grantKey is a group role row as a check sees it: its id, and a digest
// of its custom role's rules (edited in place, under the same id).
func grantKey(id string, perms *string) string {
	if perms == nil {
		return id
	}
	sum := sha256.Sum256([]byte(*perms))
	return id + ":" + hex.EncodeToString(sum[:16])
}

// GroupProjectGrants returns the roles a group holds, per project, a
// temporary one with its end (Until) whether or not it has started or
// ended, and the keys (grantKey) of all its project role rows.
func (db *DB) GroupProjectGrants(ctx context.Context, groupID string) (org.GroupGrants, error) {
	out := org.GroupGrants{ByProject: map[string][]authz.Grant{}}
	rows, err := db.readq(ctx, `SELECT r.id, gm.project_id, r.role, cr.permissions, r.is_temporary, r.temporary_access_end_time
		FROM project_group_memberships gm
		JOIN project_group_membership_roles r ON r.membership_id = gm.id
		LEFT JOIN project_roles cr ON cr.id = r.custom_role_id
		WHERE gm.group_id = ?`, groupID)
	if err != nil {
		return out, dbErr(err, "GroupProjectGrants")
	}
	defer rows.Close()
	for rows.Next() {
		var id, pid, role string
		var perms *string
		var temporary *bool
		var end time.Time
		if err := rows.Scan(&id, &pid, &role, &perms, &temporary, timeCol{&end}); err != nil {
			return out, dbErr(err, "scan group grant")
		}
		out.Seen.Keys = append(out.Seen.Keys, grantKey(id, perms))
		g := authz.Grant{Role: role}
		if temporary != nil && *temporary {
			if end.IsZero() {
				continue // never in force (ProjectGrants)
			}
			g.Until = end
		}
		if perms != nil {
			g.Permissions = []byte(*perms)
		}
		out.ByProject[pid] = append(out.ByProject[pid], g)
	}
	if err := rows.Err(); err != nil {
		return out, dbErr(err, "GroupProjectGrants")
	}
	orgKey, err := groupOrgKey(db.readRow(ctx, qGroupOrgKey, groupID))
	if err != nil {
		return out, err
	}
	out.Seen.Keys = append(out.Seen.Keys, orgKey)
	return out, nil
}

// GroupRef finds a group of an organization by id, or by slug or name.
func (db *DB) GroupRef(ctx context.Context, orgID, idOrName string) (project.GroupRef, error) {
	var g project.GroupRef
	if _, err := uuid.Parse(idOrName); err == nil {
		err := db.readRow(ctx, `SELECT id, org_id, name, slug FROM org_groups WHERE org_id = ? AND id = ?`, orgID, idOrName).
			Scan(&g.ID, &g.OrgID, &g.Name, &g.Slug)
		return g, dbErr(err, "GroupRef")
	}
	// A slug may be another group's name: then the reference is refused,
	// not resolved to whichever group a member could have made to match.
	rows, err := db.readq(ctx, `SELECT id, org_id, name, slug FROM org_groups WHERE org_id = ? AND (slug = ? OR name = ?) LIMIT 2`,
		orgID, idOrName, idOrName)
	if err != nil {
		return g, dbErr(err, "GroupRef")
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := rows.Scan(&g.ID, &g.OrgID, &g.Name, &g.Slug); err != nil {
			return project.GroupRef{}, dbErr(err, "GroupRef")
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return project.GroupRef{}, dbErr(err, "GroupRef")
	}
	switch n {
	case 0:
		return project.GroupRef{}, dbErr(errNoRows, "GroupRef")
	case 1:
		return g, nil
	}
	return project.GroupRef{}, errs.BadRequest("%.64q names more than one group (one's slug, another's name); use the group's id", idOrName)
}

// AddProjectGroup makes a group a member of a project with roles.
func (db *DB) AddProjectGroup(ctx context.Context, projectID, groupID string, roles []project.MembershipRole, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.lockGroup(ctx, groupID); err != nil {
			return err
		}
		id := newID()
		if _, err := tx.exec(ctx, `INSERT INTO project_group_memberships (id, project_id, group_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			id, projectID, groupID, ts(tx.Now), ts(tx.Now)); err != nil {
			return dbErr(err, "AddProjectGroup")
		}
		if err := tx.insertRoles(ctx, groupRoles, id, roles); err != nil {
			return err
		}
		return tx.insertAudit(ctx, ev)
	})
}

const projectGroupCols = `gm.id, gm.project_id, g.id, g.org_id, g.name, g.slug, gm.created_at, gm.updated_at`

const projectGroupFrom = ` FROM project_group_memberships gm JOIN org_groups g ON g.id = gm.group_id`

func scanProjectGroup(sc interface{ Scan(...any) error }) (project.GroupMembership, error) {
	var m project.GroupMembership
	err := sc.Scan(&m.ID, &m.ProjectID, &m.Group.ID, &m.Group.OrgID, &m.Group.Name, &m.Group.Slug, timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt})
	return m, err
}

// ProjectGroup returns a group's membership of a project with its roles.
func (db *DB) ProjectGroup(ctx context.Context, projectID, groupID string) (project.GroupMembership, error) {
	m, err := scanProjectGroup(db.readRow(ctx, `SELECT `+projectGroupCols+projectGroupFrom+` WHERE gm.project_id = ? AND gm.group_id = ?`, projectID, groupID))
	if err != nil {
		return m, dbErr(err, "ProjectGroup")
	}
	list := []project.GroupMembership{m}
	return list[0], db.fillGroupRoles(ctx, list)
}

// ProjectGroups lists a project's group memberships by group name.
func (db *DB) ProjectGroups(ctx context.Context, projectID string) ([]project.GroupMembership, error) {
	rows, err := db.readq(ctx, `SELECT `+projectGroupCols+projectGroupFrom+` WHERE gm.project_id = ? ORDER BY g.name, g.id`, projectID)
	if err != nil {
		return nil, dbErr(err, "ProjectGroups")
	}
	list := []project.GroupMembership{}
	for rows.Next() {
		m, err := scanProjectGroup(rows)
		if err != nil {
			rows.Close()
			return nil, dbErr(err, "scan project group")
		}
		list = append(list, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "ProjectGroups")
	}
	return list, db.fillGroupRoles(ctx, list)
}

// fillGroupRoles loads the roles of group memberships.
func (db *DB) fillGroupRoles(ctx context.Context, list []project.GroupMembership) error {
	if len(list) == 0 {
		return nil
	}
	ids := make([]string, len(list))
	for i := range list {
		ids[i] = list[i].ID
	}
	byID, err := db.membershipRoles(ctx, groupRoles, ids)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].Roles = byID[list[i].ID]
		if list[i].Roles == nil {
			list[i].Roles = []project.MembershipRole{}
		}
	}
	return nil
}

// ReplaceProjectGroupRoles swaps a group membership's roles, if they are
// still expect.
func (db *DB) ReplaceProjectGroupRoles(ctx context.Context, membershipID string, expect []string, roles []project.MembershipRole, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupRolesUnchanged(ctx, membershipID, expect); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM project_group_membership_roles WHERE membership_id = ?`, membershipID); err != nil {
			return dbErr(err, "delete group roles")
		}
		if err := tx.insertRoles(ctx, groupRoles, membershipID, roles); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE project_group_memberships SET updated_at = ? WHERE id = ?`, ts(tx.Now), membershipID); err != nil {
			return dbErr(err, "touch group membership")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// DeleteProjectGroup removes a group's membership of a project, if its
// roles are still expect.
func (db *DB) DeleteProjectGroup(ctx context.Context, membershipID string, expect []string, ev audit.Event) error {
	return db.Transact(ctx, func(tx *Tx) error {
		if err := tx.groupRolesUnchanged(ctx, membershipID, expect); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM project_group_memberships WHERE id = ?`, membershipID); err != nil {
			return dbErr(err, "DeleteProjectGroup")
		}
		return tx.insertAudit(ctx, ev)
	})
}

// groupRolesUnchanged holds the membership's project (holdProject: its
// deletion takes the membership's roles, then the membership), locks the
// group (lockGroup) and the group membership, and reports a Conflict
// unless its role ids are expect.
func (tx *Tx) groupRolesUnchanged(ctx context.Context, membershipID string, expect []string) error {
	var groupID, projectID string
	if err := tx.queryRow(ctx, `SELECT group_id, project_id FROM project_group_memberships WHERE id = ?`, membershipID).Scan(&groupID, &projectID); err != nil {
		return dbErr(err, "group membership")
	}
	if err := tx.holdProject(ctx, projectID); err != nil {
		return err
	}
	if err := tx.lockGroup(ctx, groupID); err != nil {
		return err
	}
	var id string
	if err := tx.queryRow(ctx, `SELECT id FROM project_group_memberships WHERE id = ?`+tx.db.forUpdate(), membershipID).Scan(&id); err != nil {
		return dbErr(err, "lock group membership")
	}
	rows, err := tx.query(ctx, `SELECT id FROM project_group_membership_roles WHERE membership_id = ?`, membershipID)
	if err != nil {
		return dbErr(err, "group roles")
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return dbErr(err, "group roles")
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		return dbErr(err, "group roles")
	}
	want := slices.Clone(expect)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return errs.Conflictf("The group's roles changed while this request was checked; try again")
	}
	return nil
}
