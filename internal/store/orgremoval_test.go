package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// seedOrgUser makes a user and, with member, its membership of org (the
// id of seedProject's organization); it returns both ids.
func seedOrgUser(t *testing.T, db *store.DB, orgID string, member bool) (userID, membershipID string) {
	t.Helper()
	ctx := context.Background()
	userID, membershipID = store.NewID(), store.NewID()
	if err := db.ExecForTest(ctx, `INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?, ?, ?, 'x', 0, 0)`,
		userID, userID+"@example.com", userID); err != nil {
		t.Fatal(err)
	}
	if member {
		if err := db.ExecForTest(ctx, `INSERT INTO org_memberships (id, org_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, 'member', 0, 0)`,
			membershipID, orgID, userID); err != nil {
			t.Fatal(err)
		}
	}
	return userID, membershipID
}

// countRows counts the rows of a query of one text column.
func countRows(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	return len(db.IDsForTest(t, q, args...))
}

// TestAddingToAProjectOrGroupNeedsTheOrgMembership: the services check that
// a user is in the organization on what they read; the store checks again
// in the write, so a user removed from the organization meanwhile gets no
// project or group membership (which a later invitation would bring back,
// roles and all). Concurrent removals and additions on PostgreSQL leave
// either both memberships or neither, never a project or group membership
// without the organization's.
func TestAddingToAProjectOrGroupNeedsTheOrgMembership(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db) // the organization has the project's id
		groupID := store.NewID()
		if err := db.ExecForTest(ctx, `INSERT INTO org_groups (id, org_id, name, slug, role, created_at, updated_at) VALUES (?, ?, 'g', 'g', 'member', 0, 0)`,
			groupID, pid); err != nil {
			t.Fatal(err)
		}
		roles := func() []project.MembershipRole { return []project.MembershipRole{{Role: "admin"}} }
		ev := audit.Event{OrgID: pid, Type: "t"}

		outsider, _ := seedOrgUser(t, db, pid, false)
		if _, err := db.AddUserMemberships(ctx, pid, []string{outsider}, roles, ev); !errs.Is(err, errs.NotFound) {
			t.Fatalf("adding a user outside the organization to a project: %v, want not found", err)
		}
		if err := db.AddGroupMember(ctx, groupID, authz.ActorUser, outsider, nil, ev); !errs.Is(err, errs.NotFound) {
			t.Fatalf("adding a user outside the organization to a group: %v, want not found", err)
		}
		if err := db.SetUserGroups(ctx, pid, outsider, []string{groupID}, func(added, removed []string) []audit.Event { return nil }); !errs.Is(err, errs.NotFound) {
			t.Fatalf("setting the groups of a user outside the organization: %v, want not found", err)
		}
		if n := countRows(t, db, `SELECT id FROM project_memberships WHERE user_id = ?`, outsider) +
			countRows(t, db, `SELECT id FROM group_members WHERE user_id = ?`, outsider); n != 0 {
			t.Fatalf("%d memberships written for a user outside the organization", n)
		}

		for round := range 20 {
			uid, mid := seedOrgUser(t, db, pid, true)
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := db.DeleteOrgMember(ctx, org.Member{ID: mid, OrgID: pid, UserID: uid, UpdatedAt: time.UnixMicro(0)}, ev); err != nil {
					t.Errorf("round %d: remove: %v", round, err)
				}
			})
			wg.Go(func() {
				if _, err := db.AddUserMemberships(ctx, pid, []string{uid}, roles, ev); err != nil && !errs.Is(err, errs.NotFound) {
					t.Errorf("round %d: add to project: %v", round, err)
				}
			})
			wg.Go(func() {
				if err := db.AddGroupMember(ctx, groupID, authz.ActorUser, uid, nil, ev); err != nil && !errs.Is(err, errs.NotFound) {
					t.Errorf("round %d: add to group: %v", round, err)
				}
			})
			wg.Wait()
			if n := countRows(t, db, `SELECT id FROM org_memberships WHERE id = ?`, mid); n != 0 {
				t.Fatalf("round %d: the organization membership survived its removal", round)
			}
			left := countRows(t, db, `SELECT id FROM project_memberships WHERE user_id = ?`, uid) +
				countRows(t, db, `SELECT id FROM group_members WHERE user_id = ?`, uid)
			if left != 0 {
				t.Fatalf("round %d: %d project or group memberships left after the removal from the organization", round, left)
			}
		}
	})
}

// TestRemovingAMemberChangedSinceItWasReadIsStale: the service checks that
// its caller may remove a member of the role it read; a removal of a
// membership changed since (a promotion) is refused as stale, for the
// service to read and check it again, and removes nothing.
func TestRemovingAMemberChangedSinceItWasReadIsStale(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db)
		uid, mid := seedOrgUser(t, db, pid, true) // updated at 0
		ev := audit.Event{OrgID: pid, Type: "t"}
		read := org.Member{ID: mid, OrgID: pid, UserID: uid, UpdatedAt: time.UnixMicro(0)}
		_, other := seedOrgUser(t, db, pid, true) // an admin who stays
		if err := db.ExecForTest(ctx, `UPDATE org_memberships SET role = 'admin' WHERE id = ?`, other); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecForTest(ctx, `UPDATE org_memberships SET role = 'admin', updated_at = 7 WHERE id = ?`, mid); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteOrgMember(ctx, read, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("removing a membership changed since it was read: %v, want stale", err)
		}
		if countRows(t, db, `SELECT id FROM org_memberships WHERE id = ?`, mid) != 1 {
			t.Fatal("the stale removal removed the membership")
		}
		read.UpdatedAt = time.UnixMicro(7)
		if err := db.DeleteOrgMember(ctx, read, ev); err != nil {
			t.Fatalf("removing it as it is: %v", err)
		}
		if err := db.DeleteOrgMember(ctx, read, ev); !errs.Is(err, errs.NotFound) {
			t.Fatalf("removing it again: %v, want not found", err)
		}
	})
}
