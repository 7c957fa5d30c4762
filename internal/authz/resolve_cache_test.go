package authz_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// twoOrgs: user u is admin of org A and a plain member of org B; project P
// belongs to B and u holds no role in it.
type twoOrgs struct{}

func (twoOrgs) OrgRole(_ context.Context, orgID string, _ authz.ActorKind, _ string) (string, error) {
	switch orgID {
	case "A":
		return "admin", nil
	case "B":
		return "member", nil
	}
	return "", errs.NotFoundf("no")
}

func (twoOrgs) ProjectGrants(context.Context, string, authz.ActorKind, string, time.Time) (string, []authz.Grant, time.Time, error) {
	return "B", nil, time.Time{}, nil
}

type fixedEpoch struct{}

func (fixedEpoch) Epoch(context.Context) (uint64, error) { return 1, nil }

// TestCachedPermissionsAreKeyedBySessionOrg: a set resolved for a session in
// one organization (where the user is admin) must not answer a session of
// the same user in another (where it is not), with nothing written between.
func TestCachedPermissionsAreKeyedBySessionOrg(t *testing.T) {
	r := authz.NewResolver(twoOrgs{}, nil)
	g := cache.New(fixedEpoch{})
	r.SetCache(g)
	ctx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inA := authz.Actor{Kind: authz.ActorUser, ID: "u", OrgID: "A"}
	if _, err := r.ProjectPermissions(ctx, inA, "P"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("session in A: %v, want not found", err)
	}
	inB := inA
	inB.OrgID = "B"
	for range 2 {
		set, err := r.ProjectPermissions(ctx, inB, "P")
		if !errs.Is(err, errs.Forbidden) || set.Can(authz.ActRead, authz.SubSecrets, nil) {
			t.Fatalf("session in B after one in A: %v (reads secrets: %v), want not a member", err, set.Can(authz.ActRead, authz.SubSecrets, nil))
		}
	}
}

// demotable: user u is an organization admin until demote runs, and holds
// no role in project P (of the same organization); onRole runs once, right
// after an organization-role read has taken its answer.
type demotable struct {
	admin  atomic.Bool
	onRole func()
}

func (d *demotable) OrgRole(context.Context, string, authz.ActorKind, string) (string, error) {
	role := "member"
	if d.admin.Load() {
		role = "admin"
	}
	if f := d.onRole; f != nil {
		d.onRole = nil
		f()
	}
	return role, nil
}

func (d *demotable) ProjectGrants(context.Context, string, authz.ActorKind, string, time.Time) (string, []authz.Grant, time.Time, error) {
	return "O", nil, time.Time{}, nil
}

type counterEpoch struct{ n atomic.Uint64 }

func (c *counterEpoch) Epoch(context.Context) (uint64, error) { return c.n.Load(), nil }

// TestDemotedAdminKeepsNoCachedAdminSet: a request reads u's organization
// role (admin); before it loads u's grants in P, another node demotes u and
// another request on this node sees the change. The first request's answer
// may be the admin set (it began before the demotion), but what it caches
// must not give the admin set to u's next request, which reads u's role as
// member: that one is refused, u holding no role in P.
func TestDemotedAdminKeepsNoCachedAdminSet(t *testing.T) {
	ep := &counterEpoch{}
	ep.n.Store(1)
	d := &demotable{}
	d.admin.Store(true)
	g := cache.New(ep)
	r := authz.NewResolver(d, nil)
	r.SetCache(g)
	u := authz.Actor{Kind: authz.ActorUser, ID: "u", OrgID: "O"}
	first, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.onRole = func() {
		d.admin.Store(false) // the demotion commits, moving the counter
		ep.n.Add(1)
		if _, err := g.Begin(context.Background()); err != nil { // a request that sees it
			t.Error(err)
		}
	}
	if _, err := r.ProjectPermissions(first, u, "P"); err != nil {
		t.Fatalf("the request that began before the demotion: %v", err)
	}
	next, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := r.ProjectPermissions(next, u, "P")
	if !errs.Is(err, errs.Forbidden) || set.Can(authz.ActRead, authz.SubSecrets, nil) {
		t.Fatalf("after the demotion: %v (reads secrets: %v), want not a member", err, set.Can(authz.ActRead, authz.SubSecrets, nil))
	}
}

// brokenGrant: u holds in P (of organization O) a custom role whose stored
// rules do not parse; its organization role is role.
type brokenGrant struct{ role string }

func (b brokenGrant) OrgRole(context.Context, string, authz.ActorKind, string) (string, error) {
	return b.role, nil
}

func (brokenGrant) ProjectGrants(context.Context, string, authz.ActorKind, string, time.Time) (string, []authz.Grant, time.Time, error) {
	return "O", []authz.Grant{{Role: "broken", Permissions: []byte("{not rules")}}, time.Time{}, nil
}

// TestBrokenGrantFailsOnlyTheMember: an invalid stored role fails the checks
// of a member holding it (500), not those of an organization admin, who
// holds the project admin set whatever else.
func TestBrokenGrantFailsOnlyTheMember(t *testing.T) {
	u := authz.Actor{Kind: authz.ActorUser, ID: "u", OrgID: "O"}
	for _, cached := range []bool{false, true} {
		admin := authz.NewResolver(brokenGrant{"admin"}, nil)
		member := authz.NewResolver(brokenGrant{"member"}, nil)
		ctx := context.Background()
		if cached {
			g := cache.New(fixedEpoch{})
			admin.SetCache(g)
			member.SetCache(g)
			var err error
			if ctx, err = g.Begin(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if set, err := admin.ProjectPermissions(ctx, u, "P"); err != nil || !set.Can(authz.ActDelete, authz.SubSecrets, nil) {
				t.Fatalf("cached %v: the admin: %v", cached, err)
			}
			if _, err := member.ProjectPermissions(ctx, u, "P"); !errs.Is(err, errs.Internal) {
				t.Fatalf("cached %v: the member: %v, want an internal error", cached, err)
			}
		}
	}
}
