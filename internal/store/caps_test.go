package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestCapsHoldUnderConcurrentCreates: a project one short of its bound of
// custom roles, service tokens or environments, and an organization one
// short of its custom roles, get exactly one more from twelve creates at
// once. Each count ran in the insert's transaction but without a lock: on
// PostgreSQL concurrent transactions counted the same rows and all
// inserted (as KMS keys did, TestKMSKeyCapHoldsUnderConcurrentCreates).
func TestCapsHoldUnderConcurrentCreates(t *testing.T) {
	const racers = 12
	cases := []struct {
		name   string
		max    int
		seed   string // inserts max-1 rows; ? is the project (or org) id, n the recursive counter
		create func(ctx context.Context, db *store.DB, pid, org string, i int) error
	}{
		{"project roles", project.MaxRoles,
			`INSERT INTO project_roles (id, project_id, slug, name, description, permissions, created_at, updated_at)
				SELECT 'r-' || i || '-' || ?, ?, 'role-' || i, 'r', '', '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateProjectRole(ctx, project.Role{ID: store.NewID(), ProjectID: pid, Slug: fmt.Sprintf("racer-%d", i), Name: "x",
					CreatedAt: now, UpdatedAt: now}, `[]`, audit.Event{OrgID: pid, Type: "t"})
			}},
		{"service tokens", identity.MaxServiceTokens,
			`INSERT INTO service_tokens (id, project_id, name, scopes, permissions, secret_hash, created_by, created_by_type, expires_at,
				last_used, created_at, updated_at) SELECT 's-' || i || '-' || ?, ?, 't', '[]', '[]', 'h' || i, 'x', 'identity', NULL, NULL, 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateServiceToken(ctx, identity.ServiceToken{ID: store.NewID(), ProjectID: pid, Name: "racer", CreatedBy: "x",
					CreatedByType: "identity", CreatedAt: now, UpdatedAt: now}, fmt.Sprintf("hash-%d", i), audit.Event{OrgID: pid, Type: "t"})
			}},
		{"environments", project.MaxEnvironments,
			// seedProject made one environment: max-2 more.
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at)
				SELECT 'e-' || i || '-' || ?, ?, 'e', 'env-' || i, i + 1, 0, 0 FROM n WHERE i < ` + fmt.Sprint(project.MaxEnvironments-1),
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateEnvironment(ctx, project.Environment{ID: store.NewID(), ProjectID: pid, Name: "racer", Slug: fmt.Sprintf("racer-%d", i),
					Position: 1000 + i, CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: pid, Type: "t"})
			}},
		{"organization roles", org.MaxRoles,
			`INSERT INTO org_roles (id, org_id, slug, name, description, permissions, created_at, updated_at)
				SELECT 'o-' || i || '-' || ?, ?, 'role-' || i, 'r', '', '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, _, orgID string, i int) error {
				now := time.Now()
				return db.CreateOrgRole(ctx, org.Role{ID: store.NewID(), OrgID: orgID, Slug: fmt.Sprintf("racer-%d", i), Name: "x",
					CreatedAt: now, UpdatedAt: now}, `[]`, audit.Event{OrgID: orgID, Type: "t"})
			}},
	}
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				pid, _, _ := seedProject(t, db) // the org has the project's id
				owner := pid
				q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, c.max-1) + c.seed
				if err := db.ExecForTest(ctx, q, owner, owner); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errc := make(chan error, racers)
				for i := range racers {
					wg.Go(func() { errc <- c.create(ctx, db, pid, owner, i) })
				}
				wg.Wait()
				close(errc)
				ok := 0
				for err := range errc {
					switch {
					case err == nil:
						ok++
					case !errs.Is(err, errs.Invalid):
						t.Fatalf("a create failed otherwise: %v", err)
					}
				}
				if ok != 1 {
					t.Fatalf("%d creates landed at the bound, want 1", ok)
				}
			})
		}
	})
}
