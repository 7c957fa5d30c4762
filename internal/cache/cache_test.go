package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counter is a database change counter in memory.
type counter struct {
	n    atomic.Uint64
	fail atomic.Bool
}

func (c *counter) Epoch(context.Context) (uint64, error) {
	if c.fail.Load() {
		return 0, errors.New("unreachable")
	}
	return c.n.Load(), nil
}

func begin(t *testing.T, g *Gen) context.Context {
	t.Helper()
	ctx, err := g.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func TestHitUntilTheCounterMoves(t *testing.T) {
	src := &counter{}
	g := New(src)
	m := NewMap[string, int](g, 10)
	now := time.Now()
	reads := 0
	load := func(ctx context.Context) int {
		v, err := Load(ctx, m, "k", now, func(context.Context) (int, time.Time, error) {
			reads++
			return reads, time.Time{}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := load(begin(t, g)); v != 1 {
		t.Fatalf("first read = %d", v)
	}
	if v := load(begin(t, g)); v != 1 || reads != 1 {
		t.Fatalf("second read = %d after %d reads; want the cached 1", v, reads)
	}
	src.n.Add(1) // another node committed a change
	if v := load(begin(t, g)); v != 2 {
		t.Fatalf("after a change elsewhere = %d; want a fresh read", v)
	}
	ctx := begin(t, g)
	g.Changed() // this node committed a change within the request
	if v := load(ctx); v != 3 {
		t.Fatalf("after this node's change = %d; want a fresh read in the same request", v)
	}
	if h, ms := g.Stats(); h != 1 || ms != 3 {
		t.Fatalf("stats = %d hits, %d misses; want 1, 3", h, ms)
	}
}

func TestUnsyncedContextsReadEveryTime(t *testing.T) {
	src := &counter{}
	g := New(src)
	m := NewMap[string, int](g, 10)
	n := 0
	fn := func(context.Context) (int, time.Time, error) { n++; return n, time.Time{}, nil }
	Load(begin(t, g), m, "k", time.Now(), fn)
	for _, ctx := range []context.Context{context.Background(), Unsynced(begin(t, g)), begin(t, New(src))} {
		if v, _ := Load(ctx, m, "k", time.Now(), fn); v == 1 {
			t.Fatal("a context that did not begin with this generation was answered from the cache")
		}
	}
	src.fail.Store(true)
	ctx, err := g.Begin(context.Background())
	if err == nil {
		t.Fatal("Begin hid a failed read")
	}
	if _, ok := m.Get(ctx, "k", time.Now()); ok {
		t.Fatal("a request whose counter read failed was answered from the cache")
	}
}

func TestAValueReadAcrossAChangeIsDropped(t *testing.T) {
	src := &counter{}
	g := New(src)
	m := NewMap[string, string](g, 10)
	ctx := begin(t, g)
	Load(ctx, m, "k", time.Now(), func(context.Context) (string, time.Time, error) {
		// The change commits while the old value is being read.
		src.n.Add(1)
		begin(t, g)
		return "old", time.Time{}, nil
	})
	if v, ok := m.Get(begin(t, g), "k", time.Now()); ok {
		t.Fatalf("value read before a change was kept as current: %q", v)
	}
}

func TestDeadlinesExpireAndPropagateOutwards(t *testing.T) {
	g := New(&counter{})
	inner := NewMap[string, int](g, 10)
	outer := NewMap[string, int](g, 10)
	now := time.Now()
	deadline := now.Add(time.Minute)
	ctx := begin(t, g)
	build := func(ctx context.Context) (int, time.Time, error) {
		v, err := Load(ctx, inner, "perm", now, func(context.Context) (int, time.Time, error) { return 7, deadline, nil })
		return v * 2, time.Time{}, err
	}
	Load(ctx, outer, "list", now, build)
	if _, ok := outer.Get(ctx, "list", deadline.Add(-time.Second)); !ok {
		t.Fatal("outer value missing before the inner deadline")
	}
	if _, ok := outer.Get(ctx, "list", deadline); ok {
		t.Fatal("outer value outlived the inner value it was built from")
	}
	if _, ok := inner.Get(ctx, "perm", deadline); ok {
		t.Fatal("inner value outlived its own deadline")
	}
	// Built from a cached inner value, the outer one gets its deadline too.
	outer2 := NewMap[string, int](g, 10)
	Load(ctx, outer2, "list", now, build)
	if _, ok := outer2.Get(ctx, "list", deadline); ok {
		t.Fatal("outer value built from a cached inner value outlived it")
	}
}

func TestErrorsAreNotCachedAndSizeIsBounded(t *testing.T) {
	g := New(&counter{})
	m := NewMap[int, int](g, 3)
	ctx := begin(t, g)
	calls := 0
	for range 2 {
		Load(ctx, m, 1, time.Now(), func(context.Context) (int, time.Time, error) { calls++; return 0, time.Time{}, errors.New("no") })
	}
	if calls != 2 {
		t.Fatalf("an error was cached: %d calls", calls)
	}
	for i := range 10 {
		Load(ctx, m, i, time.Now(), func(context.Context) (int, time.Time, error) { return i, time.Time{}, nil })
	}
	if m.Len() > 3 {
		t.Fatalf("map holds %d entries, bound 3", m.Len())
	}
	sized := NewMap[int, string](g, 100).Sized(10, func(s string) int { return len(s) })
	for i := range 10 {
		Load(ctx, sized, i, time.Now(), func(context.Context) (string, time.Time, error) { return "abcd", time.Time{}, nil })
		if sized.Bytes() > 10 {
			t.Fatalf("sized map holds %d bytes, budget 10", sized.Bytes())
		}
	}
	Load(ctx, sized, 99, time.Now(), func(context.Context) (string, time.Time, error) { return "far too large", time.Time{}, nil })
	if _, ok := sized.Get(ctx, 99, time.Now()); ok || sized.Bytes() > 10 {
		t.Fatal("a value over the whole budget was kept")
	}
	if sized.Len() != 2 {
		t.Fatalf("sized map holds %d values of 4 bytes, want 2 within 10", sized.Len())
	}
}

func TestMemoComputesOnce(t *testing.T) {
	var m Memo
	var calls atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _ := m.Do("a", func() (any, error) { calls.Add(1); return "x", nil })
			if v != "x" {
				t.Error("wrong value", v)
			}
		}()
	}
	wg.Wait()
	if v, _ := m.Do("a", func() (any, error) { return "y", nil }); v != "x" {
		t.Fatalf("memo recomputed: %v", v)
	}
	var nilMemo *Memo
	if v, _ := nilMemo.Do("a", func() (any, error) { return "z", nil }); v != "z" {
		t.Fatal("nil memo")
	}
}

func BenchmarkHit(b *testing.B) {
	g := New(&counter{})
	m := NewMap[string, int](g, 10)
	ctx, _ := g.Begin(context.Background())
	now := time.Now()
	Load(ctx, m, "k", now, func(context.Context) (int, time.Time, error) { return 1, time.Time{}, nil })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := m.Get(ctx, "k", now); !ok {
				b.Fatal("miss")
			}
		}
	})
}
