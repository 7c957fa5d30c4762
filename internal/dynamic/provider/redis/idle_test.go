package redis_test

import (
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/providertest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/redis"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

func TestIdleClientIsClosedUsedClientKept(t *testing.T) {
	host, port := testsvc.Redis(t)
	clock := providertest.NewClock(time.Now())
	redis.Clients.SetClock(clock.Now, time.Minute)
	t.Cleanup(func() { redis.Clients.SetClock(time.Now, provider.DefaultIdle) })
	ctx := t.Context()

	used := newProvider(t, map[string]any{"host": host, "port": port, "username": "default", "password": ""})
	// Another key: a dynamic secret since deleted or reconfigured. Clients
	// connect lazily, so it needs no server.
	idle := newProvider(t, map[string]any{"host": "127.0.0.1", "port": 1, "username": "admin", "password": "old"})
	usedC, rel, err := redis.Client(used)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	idleC, rel, err := redis.Client(idle)
	if err != nil {
		t.Fatal(err)
	}
	rel()

	clock.Add(40 * time.Second)
	if err := used.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Add(30 * time.Second)
	redis.Clients.Sweep()
	if err := idleC.Ping(ctx).Err(); !errors.Is(err, goredis.ErrClosed) {
		t.Fatalf("idle client not closed: ping %v", err)
	}
	if err := usedC.Ping(ctx).Err(); err != nil {
		t.Fatalf("client in use was closed: %v", err)
	}
	again, rel, err := redis.Client(idle)
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if again == idleC {
		t.Fatal("a closed client was handed out again")
	}
}
