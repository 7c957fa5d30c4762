package dynamic_test

import (
	"fmt"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestCheckingInputsLeavesNoPool: the connection check of a dynamic
// secret's inputs, at creation and at each change, uses a connection of its
// own, closed after it. Before, each distinct admin password a member sent
// (even one that failed) left a shared pool, its goroutine and its
// connection behind for five minutes, with no bound. (Not parallel: the
// pools are the process's.)
func TestCheckingInputsLeavesNoPool(t *testing.T) {
	dbs, prefix, _ := pgTargets(t, 1)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, e)
	provider.SweepIdle() // what earlier tests left idle goes now, not during the counts
	before := provider.Pooled()
	for i := range 5 {
		s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", s.e.Token, map[string]any{"projectSlug": s.slug, "environmentSlug": "dev",
			"path": "/", "name": fmt.Sprintf("pw-%d", i), "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}",
			"provider": map[string]any{"type": "sql-database", "inputs": map[string]any{"client": "postgres", "host": "127.0.0.1",
				"port": 5432, "database": dbs[0], "username": "postgres", "password": fmt.Sprintf("any-%d", i)}}})
		s.e.Must(t, 200, "PATCH", fmt.Sprintf("/api/v1/dynamic-secrets/pw-%d", i), s.e.Token, map[string]any{"projectSlug": s.slug,
			"environmentSlug": "dev", "path": "/", "data": map[string]any{"inputs": map[string]any{"password": fmt.Sprintf("other-%d", i)}}})
	}
	if got := provider.Pooled(); got != before {
		t.Fatalf("checking ten sets of inputs left %d pools (%d before)", got, before)
	}
	// A lease uses the shared pool, as before.
	provider.SweepIdle()
	before = provider.Pooled()
	s.lease(t, "pw-0", "1h")
	if got := provider.Pooled(); got != before+1 {
		t.Fatalf("a lease made %d pools, want 1", got-before)
	}
}
