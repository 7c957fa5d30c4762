package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/cache"
)

// globRole: every actor is a member of organization O; actor "big" holds
// in project P a custom role with four long $glob patterns, any other
// actor the built-in viewer role.
type globRole struct{ glob string }

func (globRole) OrgRole(context.Context, string, ActorKind, string) (string, error) {
	return "member", nil
}

func (g globRole) ProjectGrants(_ context.Context, _ string, _ ActorKind, actorID string, _ time.Time) (string, []Grant, time.Time, error) {
	if actorID != "big" {
		return "O", []Grant{{Role: "viewer"}}, time.Time{}, nil
	}
	var rules []string
	for i := range 4 {
		rules = append(rules, fmt.Sprintf(`{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"/%d%s"}}}`, i, g.glob))
	}
	return "O", []Grant{{Role: "globs", Permissions: []byte("[" + strings.Join(rules, ",") + "]")}}, time.Time{}, nil
}

type oneEpoch struct{}

func (oneEpoch) Epoch(context.Context) (uint64, error) { return 1, nil }

// TestCachedSetsAreCountedByTheirGlobs: the node's resolved permissions
// are bounded in bytes, and a set's compiled $glob patterns count for
// what they hold (about 150 bytes a character), not as one rule: a
// member's long globs fill the budget as they fill memory.
func TestCachedSetsAreCountedByTheirGlobs(t *testing.T) {
	glob := "/" + strings.Repeat("a", 470) + "/**"
	chars := 4 * (len(glob) + 2)
	r := NewResolver(globRole{glob: glob}, nil)
	g := cache.New(oneEpoch{})
	r.SetCache(g)
	ctx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	small := Actor{Kind: ActorIdentity, ID: "small", OrgID: "O"}
	if _, err := r.ProjectPermissions(ctx, small, "P"); err != nil {
		t.Fatal(err)
	}
	before := r.grants.Bytes()
	if before <= 0 {
		t.Fatalf("a cached set counts %d bytes", before)
	}
	big := Actor{Kind: ActorIdentity, ID: "big", OrgID: "O"}
	set, err := r.ProjectPermissions(ctx, big, "P")
	if err != nil {
		t.Fatal(err)
	}
	if !set.Can(ActRead, SubSecrets, &Fields{Environment: "prod", SecretPath: "/3/" + strings.Repeat("a", 470) + "/x"}) {
		t.Fatal("the glob role does not read under its glob")
	}
	if grew := r.grants.Bytes() - before; grew < 150*chars {
		t.Fatalf("a set with %d characters of globs counts %d bytes, want at least %d", chars, grew, 150*chars)
	}
}
