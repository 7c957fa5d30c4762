package store_test

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// seedOrg makes an organization (its slug is its id) and returns its id.
func seedOrg(t testing.TB, db *store.DB) string {
	t.Helper()
	org := store.NewID()
	if err := db.ExecForTest(t.Context(), `INSERT INTO orgs (id, name, slug, created_at, updated_at) VALUES (?, 'o', ?, 0, 0)`, org, org); err != nil {
		t.Fatal(err)
	}
	return org
}

// seedMember adds a machine identity named bot (kind "identity") or a user
// (kind "user") to org with an organization role; it returns the
// identity's or user's id and the membership's.
func seedMember(t testing.TB, db *store.DB, org, kind, role string) (id, membership string) {
	t.Helper()
	id, membership = store.NewID(), store.NewID()
	who := `INSERT INTO identities (id, org_id, name, created_at, updated_at) VALUES (?, ?, 'bot', 0, 0)`
	args := []any{id, org}
	if kind == "user" {
		who, args = `INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?, ?, 'u', 'x', 0, 0)`, []any{id, id + "@x"}
	}
	if err := db.ExecForTest(t.Context(), who, args...); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecForTest(t.Context(), `INSERT INTO org_memberships (id, org_id, `+kind+`_id, role, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)`,
		membership, org, id, role); err != nil {
		t.Fatal(err)
	}
	return id, membership
}

// TestProjectWritesCheckWhatTheyRead: a settings write from a read that
// another change has overtaken is refused (project.ErrStale), and a
// deletion re-reads delete protection in its own transaction.
func TestProjectWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		pid, _, _ := seedProject(t, db)
		read, err := db.ProjectByID(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		first := read
		first.HasDeleteProtection, first.UpdatedAt = true, read.UpdatedAt.Add(time.Second)
		if err := db.UpdateProject(ctx, first, read.UpdatedAt, audit.Event{Type: "protect", OrgID: pid}); err != nil {
			t.Fatal(err)
		}
		stale := read
		stale.Description, stale.UpdatedAt = "later", read.UpdatedAt.Add(2*time.Second)
		if err := db.UpdateProject(ctx, stale, read.UpdatedAt, audit.Event{Type: "describe", OrgID: pid}); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a write from an overtaken read: %v, want ErrStale", err)
		}
		if err := db.DeleteProject(ctx, pid, audit.Event{Type: "delete", OrgID: pid}); !errors.Is(err, project.ErrDeleteProtected) {
			t.Fatalf("deleting a protected project: %v", err)
		}
		if got, err := db.ProjectByID(ctx, pid); err != nil || !got.HasDeleteProtection || got.Description == "later" {
			t.Fatalf("after the refusals: %+v %v", got, err)
		}
	})
}

// TestLoginMethodWritesCheckWhatTheyRead: a write of Universal Auth's,
// Token Auth's or a platform method's settings from a read that another
// change has overtaken is refused (project.ErrStale) and changes nothing.
func TestLoginMethodWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		org := seedOrg(t, db)
		ident, _ := seedMember(t, db, org, "identity", "member")
		at := time.Now().UTC().Truncate(time.Microsecond)
		ev := audit.Event{Type: "cfg", OrgID: org}
		narrow := []identity.TrustedIP{{IPAddress: "10.1.2.3", Prefix: 32, Type: "ipv4"}}

		ua := identity.UniversalAuth{ID: store.NewID(), IdentityID: ident, ClientID: store.NewID(), AccessTokenTTL: 60, AccessTokenMaxTTL: 60,
			ClientSecretTrustedIPs: identity.AnyIP, AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
		ta := identity.TokenAuth{ID: store.NewID(), IdentityID: ident, AccessTokenTTL: 60, AccessTokenMaxTTL: 60,
			AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
		ac := identity.AuthConfig{ID: store.NewID(), IdentityID: ident, Method: "jwt-auth", Config: []byte(`{}`), AccessTokenTTL: 60,
			AccessTokenMaxTTL: 60, AccessTokenTrustedIPs: identity.AnyIP, CreatedAt: at, UpdatedAt: at}
		if err := db.CreateUniversalAuth(ctx, ua, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateTokenAuth(ctx, ta, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateAuthConfig(ctx, ac, ev); err != nil {
			t.Fatal(err)
		}
		// What each write read: the rows as created (their times are the
		// store's).
		var err error
		if ua, err = db.UniversalAuthByIdentity(ctx, ident); err != nil {
			t.Fatal(err)
		}
		if ta, err = db.TokenAuth(ctx, ident); err != nil {
			t.Fatal(err)
		}
		if ac, err = db.AuthConfig(ctx, ident, "jwt-auth"); err != nil {
			t.Fatal(err)
		}
		later, latest := at.Add(time.Hour), at.Add(2*time.Hour)

		// Universal Auth: the first write from the read wins; the second,
		// from the same read, is stale.
		first, stale := ua, ua
		first.AccessTokenTrustedIPs, first.UpdatedAt = narrow, later
		stale.AccessTokenNumUsesLimit, stale.UpdatedAt = 5, latest
		if err := db.UpdateUniversalAuth(ctx, first, ua.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateUniversalAuth(ctx, stale, ua.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("universal auth: a write from an overtaken read: %v", err)
		}
		if got, err := db.UniversalAuthByIdentity(ctx, ident); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
			t.Fatalf("universal auth after the stale write: %+v %v", got, err)
		}

		ft, st := ta, ta
		ft.AccessTokenTrustedIPs, ft.UpdatedAt = narrow, later
		st.AccessTokenNumUsesLimit, st.UpdatedAt = 5, latest
		if err := db.UpdateTokenAuth(ctx, ft, ta.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateTokenAuth(ctx, st, ta.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("token auth: a write from an overtaken read: %v", err)
		}
		if got, err := db.TokenAuth(ctx, ident); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
			t.Fatalf("token auth after the stale write: %+v %v", got, err)
		}

		// A token issued through Universal Auth under any address is
		// checked against the method's list as it is now: narrowed.
		tok := store.NewID()
		if err := db.ExecForTest(ctx, `INSERT INTO identity_access_tokens (id, identity_id, auth_method, access_token_ttl,
			access_token_max_ttl, trusted_ips, created_at, updated_at) VALUES (?, ?, 'universal-auth', 60, 60, ?, 0, 0)`,
			tok, ident, `[{"ipAddress":"0.0.0.0","type":"ipv4","prefix":0}]`); err != nil {
			t.Fatal(err)
		}
		if got, _, err := db.AccessTokenByID(ctx, tok); err != nil || len(got.TrustedIPs) != 1 || got.TrustedIPs[0] != narrow[0] {
			t.Fatalf("a token's trusted IPs are its method's as configured now: %+v %v", got.TrustedIPs, err)
		}

		fc, sc := ac, ac
		fc.AccessTokenTrustedIPs, fc.UpdatedAt = narrow, later
		sc.AccessTokenNumUsesLimit, sc.UpdatedAt = 5, latest
		if err := db.UpdateAuthConfig(ctx, fc, ac.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateAuthConfig(ctx, sc, ac.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("auth config: a write from an overtaken read: %v", err)
		}
		if got, err := db.AuthConfig(ctx, ident, "jwt-auth"); err != nil || got.AccessTokenNumUsesLimit != 0 || len(got.AccessTokenTrustedIPs) != 1 {
			t.Fatalf("auth config after the stale write: %+v %v", got, err)
		}
	})
}

// TestRoleWritesCheckWhatTheyRead: a write of a project role or an
// organization role from a read that another change has overtaken is
// refused (ErrStale) and changes nothing: a rename from an old read must
// not bring back a permission taken away since.
func TestRoleWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		pid, _, _ := seedProject(t, db) // the organization's id is the project's
		at := time.Now().UTC().Truncate(time.Microsecond)
		ev := audit.Event{Type: "role", OrgID: pid}
		pr := project.Role{ID: store.NewID(), ProjectID: pid, Slug: "ops", Name: "ops", CreatedAt: at, UpdatedAt: at}
		if err := db.CreateProjectRole(ctx, pr, `[{"subject":"secrets","action":["read","edit"]}]`, ev); err != nil {
			t.Fatal(err)
		}
		read, err := db.ProjectRole(ctx, pid, pr.ID)
		if err != nil {
			t.Fatal(err)
		}
		narrowed, renamed := read, read
		narrowed.UpdatedAt, renamed.Name, renamed.UpdatedAt = at.Add(time.Hour), "renamed", at.Add(2*time.Hour)
		if err := db.UpdateProjectRole(ctx, narrowed, `[{"subject":"secrets","action":["read"]}]`, read.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateProjectRole(ctx, renamed, `[{"subject":"secrets","action":["read","edit"]}]`, read.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("project role: a write from an overtaken read: %v", err)
		}
		if got, err := db.ProjectRole(ctx, pid, pr.ID); err != nil || got.Name != "ops" || len(got.Permissions) != 1 || len(got.Permissions[0].Actions) != 1 {
			t.Fatalf("project role after the stale write: %+v %v", got, err)
		}

		or := org.Role{ID: store.NewID(), OrgID: pid, Slug: "auditor", Name: "auditor", CreatedAt: at, UpdatedAt: at}
		if err := db.CreateOrgRole(ctx, or, `[{"subject":"member","action":["read","edit"]}]`, ev); err != nil {
			t.Fatal(err)
		}
		oread, err := db.OrgRoleByID(ctx, pid, or.ID)
		if err != nil {
			t.Fatal(err)
		}
		onarrowed, orenamed := oread, oread
		onarrowed.UpdatedAt, orenamed.Name, orenamed.UpdatedAt = at.Add(time.Hour), "renamed", at.Add(2*time.Hour)
		if err := db.UpdateOrgRole(ctx, onarrowed, `[{"subject":"member","action":["read"]}]`, oread.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateOrgRole(ctx, orenamed, `[{"subject":"member","action":["read","edit"]}]`, oread.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("organization role: a write from an overtaken read: %v", err)
		}
		if got, err := db.OrgRoleByID(ctx, pid, or.ID); err != nil || got.Name != "auditor" || len(got.Permissions) != 1 || len(got.Permissions[0].Actions) != 1 {
			t.Fatalf("organization role after the stale write: %+v %v", got, err)
		}
	})
}

// TestPrivilegeWritesCheckWhatTheyRead: a write of an additional privilege
// from a read that another change has overtaken is refused
// (project.ErrStale) and changes nothing: a new slug from an old read must
// not bring back a window another change shortened.
func TestPrivilegeWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		pid, _, _ := seedProject(t, db) // the organization's id is the project's
		ident, _ := seedMember(t, db, pid, "identity", "member")
		ms := store.NewID()
		if err := db.ExecForTest(ctx, `INSERT INTO project_memberships (id, project_id, identity_id, created_at, updated_at) VALUES (?, ?, ?, 0, 0)`,
			ms, pid, ident); err != nil {
			t.Fatal(err)
		}
		at := time.Now().UTC().Truncate(time.Microsecond)
		end := at.Add(time.Hour)
		pv := project.Privilege{ID: store.NewID(), Slug: "temp", MembershipID: ms, ProjectID: pid, IdentityID: ident, IsTemporary: true,
			TemporaryMode: "relative", TemporaryRange: "1h", TemporaryAccessStartTime: &at, TemporaryAccessEndTime: &end, CreatedAt: at, UpdatedAt: at}
		ev := audit.Event{Type: "privilege", OrgID: pid}
		rules := `[{"subject":"secrets","action":["read"]}]`
		if err := db.CreatePrivilege(ctx, pv, rules, ev); err != nil {
			t.Fatal(err)
		}
		read, err := db.PrivilegeByID(ctx, pv.ID)
		if err != nil {
			t.Fatal(err)
		}
		shorter := at.Add(time.Minute)
		shortened, renamed := read, read
		shortened.TemporaryRange, shortened.TemporaryAccessEndTime, shortened.UpdatedAt = "1m", &shorter, at.Add(time.Second)
		renamed.Slug, renamed.UpdatedAt = "renamed", at.Add(2*time.Second)
		if err := db.UpdatePrivilege(ctx, shortened, rules, read.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdatePrivilege(ctx, renamed, rules, read.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a write from an overtaken read: %v", err)
		}
		if got, err := db.PrivilegeByID(ctx, pv.ID); err != nil || got.Slug != "temp" || got.TemporaryAccessEndTime == nil || !got.TemporaryAccessEndTime.Equal(shorter) {
			t.Fatalf("after the stale write: %+v %v", got, err)
		}
	})
}

// TestIdentityWritesCheckWhatTheyRead: an identity's update from a read
// that another change has overtaken is refused (project.ErrStale) and
// changes nothing: a rename from an old read must not bring back the admin
// role another change took away.
func TestIdentityWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		org := seedOrg(t, db)
		ident, _ := seedMember(t, db, org, "identity", "admin")
		seedMember(t, db, org, "user", "admin") // the identity is not the last admin
		read, err := db.OrgIdentity(ctx, org, ident)
		if err != nil {
			t.Fatal(err)
		}
		ev := audit.Event{Type: "update-identity", OrgID: org}
		demoted, renamed := read.Identity, read.Identity
		demoted.UpdatedAt = read.UpdatedAt.Add(time.Second)
		renamed.Name, renamed.UpdatedAt = "renamed", read.UpdatedAt.Add(2*time.Second)
		if err := db.UpdateIdentity(ctx, demoted, identity.OrgRoleRef{Role: "member"}, nil, read.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateIdentity(ctx, renamed, identity.OrgRoleRef{Role: "admin"}, nil, read.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a write from an overtaken read: %v", err)
		}
		if got, err := db.OrgIdentity(ctx, org, ident); err != nil || got.Role != "member" || got.Name != "bot" {
			t.Fatalf("after the stale write: role %q name %q %v", got.Role, got.Name, err)
		}
	})
}

// TestOrgMemberWritesCheckWhatTheyRead: a user's organization membership
// written from a read that another change has overtaken is refused
// (project.ErrStale) and changes nothing: a role change from an old read must
// not reactivate a member another change deactivated.
func TestOrgMemberWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		o := seedOrg(t, db)
		seedMember(t, db, o, "user", "admin")
		_, ms := seedMember(t, db, o, "user", "member")
		read, err := db.OrgMember(ctx, o, ms)
		if err != nil {
			t.Fatal(err)
		}
		ev := audit.Event{Type: "update-user-org-membership", OrgID: o}
		deactivated, promoted := read, read
		deactivated.IsActive = false
		promoted.Role = "admin"
		if err := db.UpdateOrgMember(ctx, deactivated, ev); err != nil {
			t.Fatal(err)
		}
		if err := db.UpdateOrgMember(ctx, promoted, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("a write from an overtaken read: %v", err)
		}
		if got, err := db.OrgMember(ctx, o, ms); err != nil || got.IsActive || got.Role != "member" {
			t.Fatalf("after the stale write: active %v role %q %v", got.IsActive, got.Role, err)
		}
	})
}

// TestWriteToADeletedRoleIsRefused: a membership given a custom role that
// was deleted after the service read it is a 400 that names nothing, not a
// 500, and the membership keeps its role. The database's foreign key is
// what catches the race.
func TestWriteToADeletedRoleIsRefused(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		o := seedOrg(t, db)
		seedMember(t, db, o, "user", "admin")
		_, ms := seedMember(t, db, o, "user", "member")
		role := org.Role{ID: store.NewID(), OrgID: o, Slug: "auditor", Name: "Auditor", CreatedAt: time.Now(), UpdatedAt: time.Now()}
		ev := audit.Event{Type: "role", OrgID: o}
		if err := db.CreateOrgRole(ctx, role, "[]", ev); err != nil {
			t.Fatal(err)
		}
		read, err := db.OrgMember(ctx, o, ms)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteOrgRole(ctx, role, ev); err != nil {
			t.Fatal(err)
		}
		read.Role, read.CustomRoleID = "custom", role.ID
		err = db.UpdateOrgMember(ctx, read, ev)
		if !errs.Is(err, errs.Invalid) {
			t.Fatalf("a membership given a deleted role: %v (kind %v)", err, errs.KindOf(err))
		}
		if e, _ := errors.AsType[*errs.Error](err); strings.Contains(e.Message, role.ID) || strings.Contains(e.Message, "auditor") {
			t.Fatalf("the refusal names the role: %q", e.Message)
		}
		if got, err := db.OrgMember(ctx, o, ms); err != nil || got.Role != "member" || got.CustomRoleID != "" {
			t.Fatalf("after the refusal: role %q custom %q %v", got.Role, got.CustomRoleID, err)
		}
	})
}

// TestShownLinkForAnAccountOfAnotherOrganization: an invitation whose link
// is shown to the inviter (org.Invitee.LinkShown) is refused for a user
// without a password who is already invited to another organization: the
// link would set that account's password. Mailed (LinkShown false), the
// same invitation is written.
func TestShownLinkForAnAccountOfAnotherOrganization(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		a, b := seedOrg(t, db), seedOrg(t, db)
		now := time.Now().UTC().Truncate(time.Microsecond)
		user := identity.User{ID: store.NewID(), Email: "carol-" + store.NewID() + "@example.com", CreatedAt: now, UpdatedAt: now}
		user.Username = user.Email
		in := func(orgID string) org.Invitee {
			return org.Invitee{User: user, Membership: org.Member{OrgID: orgID, UserID: user.ID, Role: "member"},
				Invitation: org.Invitation{ID: store.NewID(), OrgID: orgID, UserID: user.ID, TokenHash: store.NewID(), ExpiresAt: now.Add(time.Hour), CreatedAt: now}}
		}
		ev := audit.Event{Type: "invite-user-to-org"}
		first := in(b)
		first.NewUser = true
		if err := db.Invite(ctx, first, ev); err != nil {
			t.Fatal(err)
		}
		shown := in(a)
		shown.LinkShown = true
		if err := db.Invite(ctx, shown, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("a shown link for an account invited elsewhere: %v", err)
		}
		if _, err := db.OrgMemberByUser(ctx, a, user.ID); !errs.Is(err, errs.NotFound) {
			t.Fatalf("the refused invitation left a membership: %v", err)
		}
		// Shown again in its own organization, and mailed to the other: both written.
		again := in(b)
		again.LinkShown = true
		if err := db.Invite(ctx, again, ev); err != nil {
			t.Fatalf("a shown link in the account's only organization: %v", err)
		}
		if err := db.Invite(ctx, in(a), ev); err != nil {
			t.Fatalf("a mailed invitation: %v", err)
		}
	})
}

// TestLastAdminIdentityStays: an organization whose only active admin is
// an identity keeps it: demoting or deleting it is refused (400), as for a
// user; with another admin, both go through.
func TestLastAdminIdentityStays(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		org := seedOrg(t, db)
		ident, _ := seedMember(t, db, org, "identity", "admin")
		read, err := db.OrgIdentity(ctx, org, ident)
		if err != nil {
			t.Fatal(err)
		}
		ev := audit.Event{Type: "identity", OrgID: org}
		demoted := read.Identity
		demoted.UpdatedAt = read.UpdatedAt.Add(time.Second)
		if err := db.UpdateIdentity(ctx, demoted, identity.OrgRoleRef{Role: "member"}, nil, read.UpdatedAt, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("demoting the last admin: %v", err)
		}
		if err := db.DeleteIdentity(ctx, ident, read.UpdatedAt, ev); !errs.Is(err, errs.Invalid) {
			t.Fatalf("deleting the last admin: %v", err)
		}
		if got, err := db.OrgIdentity(ctx, org, ident); err != nil || got.Role != "admin" {
			t.Fatalf("after the refusals: %q %v", got.Role, err)
		}
		seedMember(t, db, org, "identity", "admin")
		if err := db.UpdateIdentity(ctx, demoted, identity.OrgRoleRef{Role: "member"}, nil, read.UpdatedAt, ev); err != nil {
			t.Fatalf("demoting an admin beside another: %v", err)
		}
		if err := db.DeleteIdentity(ctx, ident, read.UpdatedAt, ev); !errors.Is(err, project.ErrStale) {
			t.Fatalf("deleting an identity changed since it was read (demoted): %v, want stale", err)
		}
		if err := db.DeleteIdentity(ctx, ident, demoted.UpdatedAt, ev); err != nil {
			t.Fatalf("deleting a member: %v", err)
		}
	})
}

// TestMembershipWritesMoveTheStamp: writes of an organization membership
// that do not compare-and-set themselves (a new invitation, its
// acceptance) still move its updated_at past the value a compare-and-set
// writer read, even when the clock has not moved (here it is stopped): a
// role change from a read taken before a new invitation must not undo the
// invitation's role.
func TestMembershipWritesMoveTheStamp(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			ctx := t.Context()
			stopped := time.Now().UTC().Truncate(time.Microsecond)
			opts := storetest.Options(t, d)
			opts.Now = func() time.Time { return stopped }
			db, err := store.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			o := seedOrg(t, db)
			seedMember(t, db, o, "user", "admin")
			user := identity.User{ID: store.NewID(), Email: "fay-" + store.NewID() + "@example.com", CreatedAt: stopped, UpdatedAt: stopped}
			user.Username = user.Email
			in := func(role string) org.Invitee {
				return org.Invitee{User: user, Membership: org.Member{OrgID: o, UserID: user.ID, Role: role},
					Invitation: org.Invitation{ID: store.NewID(), OrgID: o, UserID: user.ID, TokenHash: store.NewID(), ExpiresAt: stopped.Add(time.Hour), CreatedAt: stopped}}
			}
			first := in("member")
			first.NewUser = true
			ev := audit.Event{Type: "invite-user-to-org", OrgID: o}
			if err := db.Invite(ctx, first, ev); err != nil {
				t.Fatal(err)
			}
			read, err := db.OrgMemberByUser(ctx, o, user.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Invite(ctx, in("no-access"), ev); err != nil {
				t.Fatal(err)
			}
			read.IsActive = false
			if err := db.UpdateOrgMember(ctx, read, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("a change from a read taken before the new invitation: %v", err)
			}
			if got, err := db.OrgMemberByUser(ctx, o, user.ID); err != nil || got.Role != "no-access" || !got.IsActive {
				t.Fatalf("after the stale change: role %q active %v %v", got.Role, got.IsActive, err)
			}
		})
	}
}

// TestProjectsHoldBoundedRolesAndServiceTokens: a project's custom roles
// and service tokens are listed whole, so each is bounded (project.MaxRoles,
// identity.MaxServiceTokens): one more is a 400 and writes nothing.
func TestProjectsHoldBoundedRolesAndServiceTokens(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := t.Context()
		pid, _, _ := seedProject(t, db)
		ev := audit.Event{Type: "test", OrgID: pid}
		// Rows up to the bounds, in one statement each (both engines take a
		// recursive WITH before an INSERT).
		seed := func(n int, insert string) {
			t.Helper()
			q := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ` + strconv.Itoa(n) + `) ` + insert
			if err := db.ExecForTest(ctx, q, pid); err != nil {
				t.Fatal(err)
			}
		}
		seed(project.MaxRoles, `INSERT INTO project_roles (id, project_id, slug, name, description, permissions, created_at, updated_at)
			SELECT 'r' || i, ?, 'role-' || i, 'r', '', '[]', 0, 0 FROM n`)
		seed(identity.MaxServiceTokens, `INSERT INTO service_tokens (id, project_id, name, scopes, permissions, secret_hash, created_by,
			created_by_type, expires_at, last_used, created_at, updated_at) SELECT 's' || i, ?, 't', '[]', '[]', 'h' || i, 'x', 'identity', NULL, NULL, 0, 0 FROM n`)

		at := time.Now().UTC().Truncate(time.Microsecond)
		err := db.CreateProjectRole(ctx, project.Role{ID: store.NewID(), ProjectID: pid, Slug: "one-more", Name: "x", CreatedAt: at, UpdatedAt: at}, `[]`, ev)
		if !errs.Is(err, errs.Invalid) {
			t.Fatalf("a custom role past the bound: %v, want a 400", err)
		}
		err = db.CreateServiceToken(ctx, identity.ServiceToken{ID: store.NewID(), ProjectID: pid, Name: "one-more", CreatedBy: "x",
			CreatedByType: "identity", CreatedAt: at, UpdatedAt: at}, "hash", ev)
		if !errs.Is(err, errs.Invalid) {
			t.Fatalf("a service token past the bound: %v, want a 400", err)
		}
		if err := db.ExecForTest(ctx, `DELETE FROM project_roles WHERE id = 'r1'`); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateProjectRole(ctx, project.Role{ID: store.NewID(), ProjectID: pid, Slug: "one-more", Name: "x", CreatedAt: at, UpdatedAt: at}, `[]`, ev); err != nil {
			t.Fatalf("a custom role once one was deleted: %v", err)
		}
	})
}

// TestProjectsListEachProjectsEnvironments: an organization's project list
// reads the environments of all its projects together (it read them a
// query per project); each project still gets its own, by position, and a
// project without any an empty list.
func TestProjectsListEachProjectsEnvironments(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		org, env, _ := seedProject(t, db) // the org has the project's id
		for _, q := range []string{
			`INSERT INTO projects (id, org_id, name, slug, type, created_at, updated_at) VALUES (?1 || '-b', ?1, 'b', ?1 || '-b', 'secret-manager', 1, 1)`,
			`INSERT INTO projects (id, org_id, name, slug, type, created_at, updated_at) VALUES (?1 || '-c', ?1, 'c', ?1 || '-c', 'secret-manager', 2, 2)`,
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-b2', ?1 || '-b', 'b2', 'b2', 2, 0, 0)`,
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-b1', ?1 || '-b', 'b1', 'b1', 1, 0, 0)`,
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-a2', ?1, 'a2', 'a2', 0, 0, 0)`,
		} {
			if err := db.ExecForTest(ctx, strings.ReplaceAll(q, "?1", "'"+org+"'")); err != nil { // org: an id we made
				t.Fatal(err)
			}
		}
		ps, err := db.Projects(ctx, org, false, authz.ActorUser, "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, p := range ps {
			if p.Environments == nil {
				t.Errorf("project %s lists environments as null, want []", p.ID)
			}
			got[p.ID] = []string{}
			for _, e := range p.Environments {
				if e.ProjectID != p.ID {
					t.Errorf("project %s lists environment %s of %s", p.ID, e.ID, e.ProjectID)
				}
				got[p.ID] = append(got[p.ID], e.ID)
			}
		}
		want := map[string][]string{org: {org + "-a2", env}, org + "-b": {org + "-b1", org + "-b2"}, org + "-c": {}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("environments by project %v, want %v", got, want)
		}
	})
}
