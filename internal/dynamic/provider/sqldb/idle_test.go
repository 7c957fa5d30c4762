package sqldb_test

import (
	"maps"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/providertest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb"
)

func TestIdlePoolIsClosedUsedPoolKept(t *testing.T) {
	tg := postgresTarget(t)
	clock := providertest.NewClock(time.Now())
	sqldb.Pools.SetClock(clock.Now, time.Minute)
	t.Cleanup(func() { sqldb.Pools.SetClock(time.Now, provider.DefaultIdle) })

	used := newProvider(t, tg.inputs)
	other := maps.Clone(tg.inputs)
	other["database"] = "postgres" // another key: a dynamic secret that was deleted or reconfigured
	idle := newProvider(t, other)
	ctx := t.Context()
	for _, p := range []provider.Provider{used, idle} {
		if err := p.Validate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	usedDB, rel, err := sqldb.Open(used)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	idleDB, rel, err := sqldb.Open(idle)
	if err != nil {
		t.Fatal(err)
	}
	rel()

	clock.Add(40 * time.Second)
	if err := used.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Second)
	sqldb.Pools.Sweep()
	if err := idleDB.PingContext(ctx); err == nil || err.Error() != "sql: database is closed" {
		t.Fatalf("idle pool still open: ping %v", err)
	}
	if err := usedDB.PingContext(ctx); err != nil {
		t.Fatalf("pool in use was closed: %v", err)
	}
	// The evicted secret, used again, gets a new pool.
	if err := idle.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	again, rel, err := sqldb.Open(idle)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if again == idleDB {
		t.Fatal("a closed pool was handed out again")
	}
}
