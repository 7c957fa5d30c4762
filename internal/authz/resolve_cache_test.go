package authz_test

import (
	"context"
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
