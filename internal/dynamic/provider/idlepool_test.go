package provider_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/providertest"
)

type conn struct {
	name   string
	closed bool
}

func TestIdlePoolEvictsIdleKeepsUsed(t *testing.T) {
	clock := providertest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var closed []string
	p := provider.NewIdlePool(func(c *conn) { c.closed = true; closed = append(closed, c.name) })
	p.SetClock(clock.Now, time.Minute)
	opens := 0
	get := func(name string) (*conn, func()) {
		t.Helper()
		c, release, err := p.Acquire(context.Background(), [32]byte{name[0]}, func() (*conn, error) { opens++; return &conn{name: name}, nil })
		if err != nil {
			t.Fatal(err)
		}
		return c, release
	}

	a, rel := get("a")
	rel()
	b, rel := get("b")
	rel()
	if again, rel := get("a"); again != a || opens != 2 {
		t.Fatalf("a second acquisition opened another value (opens %d)", opens)
	} else {
		rel()
	}

	// "b" goes idle for the whole duration; "a" is used half-way through.
	clock.Add(40 * time.Second)
	_, rel = get("a")
	rel()
	clock.Add(30 * time.Second)
	p.Sweep()
	if !b.closed || a.closed || p.Len() != 1 || !slices.Equal(closed, []string{"b"}) {
		t.Fatalf("after b's idle time: a closed %v, b closed %v, len %d, closed %v", a.closed, b.closed, p.Len(), closed)
	}

	// An acquired value is never evicted, however long it is held...
	held, release := get("a")
	clock.Add(time.Hour)
	p.Sweep()
	if held.closed || p.Len() != 1 {
		t.Fatal("a value in use was evicted")
	}
	// ...and its idle time starts at release. Acquire sweeps, too.
	release()
	release() // a second call is harmless
	clock.Add(59 * time.Second)
	p.Sweep()
	if held.closed {
		t.Fatal("evicted before its idle time since release")
	}
	clock.Add(time.Second)
	c, rel := get("c")
	defer rel()
	if !held.closed || c.closed || p.Len() != 1 {
		t.Fatalf("Acquire did not sweep: a closed %v, len %d", held.closed, p.Len())
	}

	// A reopened key gets a fresh value.
	if a2, rel := get("a"); a2 == held || a2.closed {
		t.Fatal("evicted value handed out again")
	} else {
		rel()
	}
}

func TestIdlePoolOpenError(t *testing.T) {
	p := provider.NewIdlePool(func(*conn) {})
	boom := errors.New("boom")
	if _, _, err := p.Acquire(context.Background(), [32]byte{1}, func() (*conn, error) { return nil, boom }); err != boom || p.Len() != 0 {
		t.Fatalf("err %v, len %d", err, p.Len())
	}
}

func TestSweepIdleSweepsEveryPool(t *testing.T) {
	clock := providertest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var pools []*provider.IdlePool[*conn]
	for range 2 {
		p := provider.NewIdlePool(func(c *conn) { c.closed = true })
		p.SetClock(clock.Now, time.Minute)
		_, rel, _ := p.Acquire(context.Background(), [32]byte{}, func() (*conn, error) { return &conn{}, nil })
		rel()
		pools = append(pools, p)
	}
	clock.Add(time.Minute)
	provider.SweepIdle()
	for i, p := range pools {
		if p.Len() != 0 {
			t.Fatalf("pool %d not swept", i)
		}
	}
}

// TestIdlePoolIsBounded: past its bound, a pool closes the value unused the
// longest to make room, never one in use; an Unpooled acquisition makes a
// value for the caller alone, closed on release and never kept.
func TestIdlePoolIsBounded(t *testing.T) {
	clock := providertest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var closed []string
	p := provider.NewIdlePool(func(c *conn) { c.closed = true; closed = append(closed, c.name) })
	p.SetClock(clock.Now, time.Hour)
	p.SetMax(3)
	get := func(ctx context.Context, name string) (*conn, func()) {
		t.Helper()
		c, release, err := p.Acquire(ctx, [32]byte{name[0]}, func() (*conn, error) { return &conn{name: name}, nil })
		if err != nil {
			t.Fatal(err)
		}
		return c, release
	}
	ctx := context.Background()
	_, holdA := get(ctx, "a") // in use throughout
	for _, name := range []string{"b", "c", "d", "e"} {
		clock.Add(time.Second)
		_, rel := get(ctx, name)
		rel()
	}
	if p.Len() != 3 || !slices.Equal(closed, []string{"b", "c"}) {
		t.Fatalf("after five values with room for three: %d kept, closed %v (want b then c, unused the longest; a is in use)", p.Len(), closed)
	}
	holdA()

	one, rel := get(provider.Unpooled(ctx), "z")
	if p.Len() != 3 || one.closed {
		t.Fatalf("an unpooled value was kept (%d) or closed before release", p.Len())
	}
	rel()
	rel()
	if !one.closed || !slices.Equal(closed, []string{"b", "c", "z"}) {
		t.Fatalf("an unpooled value not closed once on release: closed %v", closed)
	}
}
