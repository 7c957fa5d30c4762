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

// gatedCounter is a counter whose reads block until released, and which
// counts them.
type gatedCounter struct {
	n       atomic.Uint64
	reads   atomic.Int64
	started chan struct{} // one value per read begun
	release chan struct{} // one value lets one read finish
}

func (c *gatedCounter) Epoch(context.Context) (uint64, error) {
	c.reads.Add(1)
	v := c.n.Load() // the counter as it is when the read starts
	c.started <- struct{}{}
	<-c.release
	return v, nil
}

// A Begin arriving while a read is in flight is not answered by it (that
// read may predate a change committed before the Begin): it waits for the
// next read, which every Begin arriving meanwhile shares.
func TestBeginsShareReadsButNeverAnOlderOne(t *testing.T) {
	src := &gatedCounter{started: make(chan struct{}, 16), release: make(chan struct{})}
	g := New(src)
	m := NewMap[string, int](g, 10)
	now := time.Now()

	// A first Begin starts a read of counter 0 and is held in it.
	first := make(chan context.Context)
	go func() { ctx, _ := g.Begin(context.Background()); first <- ctx }()
	<-src.started
	// A change commits on another node; then ten requests begin.
	src.n.Store(1)
	var wg sync.WaitGroup
	ctxs := make([]context.Context, 10)
	for i := range ctxs {
		wg.Go(func() {
			ctx, err := g.Begin(context.Background())
			if err != nil {
				t.Error(err)
			}
			ctxs[i] = ctx
		})
	}
	waitFor(t, func() bool {
		g.rmu.Lock()
		defer g.rmu.Unlock()
		return g.queued != nil
	})
	time.Sleep(10 * time.Millisecond) // let the other Begins queue behind the first read
	src.release <- struct{}{}         // the first read answers 0, to the first Begin only
	ctx0 := <-first
	stamp, ok := m.Stamp(ctx0)
	if !ok {
		t.Fatal("the first Begin's context is not synchronised")
	}
	m.Put(stamp, "k", 0, time.Time{}) // cached as of counter 0
	if _, ok := m.Get(ctx0, "k", now); !ok {
		t.Fatal("the value is not served to the Begin that read counter 0")
	}
	<-src.started // the shared second read, begun after all ten
	src.release <- struct{}{}
	wg.Wait()
	for i, ctx := range ctxs {
		if _, ok := m.Get(ctx, "k", now); ok {
			t.Fatalf("Begin %d, which arrived after the change, was served the value cached before it", i)
		}
	}
	if r := src.reads.Load(); r != 2 {
		t.Fatalf("%d reads of the counter for eleven Begins, want 2 (one, then one shared by the ten)", r)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("condition never held")
}

// TestResyncSeesChangesSinceBegin: a request's context began before
// another node's change still hits (its view is as of its Begin); Resync
// gives it the view of a new request, which misses, and then hits again.
// A context that never began stays unsynced, and one whose counter cannot
// be read any more reads the database.
func TestResyncSeesChangesSinceBegin(t *testing.T) {
	src := &counter{}
	g := New(src)
	m := NewMap[string, int](g, 10)
	n := 0
	fn := func(context.Context) (int, time.Time, error) { n++; return n, time.Time{}, nil }
	load := func(ctx context.Context) int {
		v, err := Load(ctx, m, "k", time.Now(), fn)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx := begin(t, g)
	load(ctx)
	src.n.Add(1) // another node committed a change after the request began
	if v := load(ctx); v != 1 {
		t.Fatalf("before Resync = %d; want the request's cached 1", v)
	}
	resynced := Resync(ctx)
	if v := load(resynced); v != 2 {
		t.Fatalf("after Resync = %d; want a fresh read", v)
	}
	if v := load(Resync(resynced)); v != 2 {
		t.Fatalf("Resync with nothing changed = %d; want the cached 2", v)
	}
	if v := load(Resync(context.Background())); v != 3 {
		t.Fatalf("Resync of a context that never began = %d; want a read", v)
	}
	src.fail.Store(true)
	if v := load(Resync(ctx)); v != 4 {
		t.Fatalf("Resync without the counter = %d; want a read", v)
	}
}

// waiting returns how many Loads wait for the read of k under stamp.
func waiting[K comparable, V any](m *Map[K, V], k K, stamp uint64) int {
	m.fmu.Lock()
	defer m.fmu.Unlock()
	if f := m.flights[flightKey[K]{k, stamp}]; f != nil {
		return f.waiters
	}
	return -1
}

// waiters polls until n Loads wait for the read of k under stamp.
func waiters[K comparable, V any](t *testing.T, m *Map[K, V], k K, stamp uint64, n int) {
	t.Helper()
	waitFor(t, func() bool { return waiting(m, k, stamp) == n })
}

func TestConcurrentMissesShareOneRead(t *testing.T) {
	g := New(&counter{})
	m := NewMap[string, int](g, 10)
	now := time.Now()
	deadline := now.Add(time.Minute)
	var reads atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, time.Time, error) {
		reads.Add(1)
		<-release
		return 42, deadline, nil
	}
	const n = 8
	type got struct {
		v     int
		until time.Time
		err   error
	}
	out := make(chan got, n)
	for i := 0; i < n; i++ {
		go func() {
			// Each Load runs inside an enclosing one, to see the deadline reach it.
			var until time.Time
			ctx := begin(t, g)
			b := &bound{}
			v, err := Load(context.WithValue(ctx, boundKey{}, b), m, "k", now, fn)
			until = b.until
			out <- got{v, until, err}
		}()
		if i == 0 {
			for reads.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	stamp, _ := m.Stamp(begin(t, g))
	waiters(t, m, "k", stamp, n-1)
	close(release)
	for i := 0; i < n; i++ {
		r := <-out
		if r.err != nil || r.v != 42 || !r.until.Equal(deadline) {
			t.Fatalf("Load = %d, until %v, %v; want 42 until %v", r.v, r.until, r.err, deadline)
		}
	}
	if r := reads.Load(); r != 1 {
		t.Fatalf("%d reads for %d concurrent misses; want 1", r, n)
	}
	if waiting(m, "k", stamp) != -1 {
		t.Fatal("the finished read is still listed")
	}
	// Errors are shared by the Loads waiting for them, and not kept.
	m2 := NewMap[string, int](g, 10)
	reads.Store(0)
	release = make(chan struct{})
	boom := errors.New("boom")
	errs := make(chan error, 2)
	efn := func(context.Context) (int, time.Time, error) { reads.Add(1); <-release; return 0, time.Time{}, boom }
	go func() { _, err := Load(begin(t, g), m2, "k", now, efn); errs <- err }()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := Load(begin(t, g), m2, "k", now, efn); errs <- err }()
	waiters(t, m2, "k", stamp, 1)
	close(release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != boom {
			t.Fatalf("Load = %v; want the shared error", err)
		}
	}
	if reads.Load() != 1 {
		t.Fatalf("%d reads; want 1", reads.Load())
	}
	if _, ok := m2.Get(begin(t, g), "k", now); ok {
		t.Fatal("an error was kept")
	}
}

func TestALoadNeverSharesAnOlderRead(t *testing.T) {
	src := &counter{}
	g := New(src)
	m := NewMap[string, int](g, 10)
	now := time.Now()
	var reads atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, time.Time, error) {
		n := reads.Add(1)
		if n == 1 {
			<-release // the first read is slow: it began before the change
		}
		return int(n), time.Time{}, nil
	}
	first := make(chan int, 1)
	go func() {
		v, _ := Load(begin(t, g), m, "k", now, fn)
		first <- v
	}()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	src.n.Add(1) // a change commits while the first read is in progress
	second := make(chan int, 1)
	go func() {
		v, _ := Load(begin(t, g), m, "k", now, fn)
		second <- v
	}()
	select {
	case v := <-second:
		if v != 2 {
			t.Fatalf("Load begun after the change = %d; want its own read (2)", v)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatalf("Load begun after the change waits for the read begun before it (then got %d)", <-second)
	}
	close(release)
	if v := <-first; v != 1 {
		t.Fatalf("first Load = %d; want 1", v)
	}
	// Unsynced contexts neither join nor lead a shared read.
	release2 := make(chan struct{})
	var calls atomic.Int32
	slow := func(context.Context) (int, time.Time, error) { calls.Add(1); <-release2; return 9, time.Time{}, nil }
	done := make(chan struct{})
	go func() { Load(begin(t, g), m, "u", now, slow); close(done) }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	quick := func(context.Context) (int, time.Time, error) { calls.Add(1); return 8, time.Time{}, nil }
	if v, _ := Load(Unsynced(begin(t, g)), m, "u", now, quick); v != 8 {
		t.Fatalf("unsynced Load = %d; want its own read", v)
	}
	close(release2)
	<-done
}

func TestAReadEndedByItsRequestIsNotShared(t *testing.T) {
	g := New(&counter{})
	m := NewMap[string, int](g, 10)
	now := time.Now()
	var reads atomic.Int32
	started := make(chan struct{})
	fn := func(ctx context.Context) (int, time.Time, error) {
		if reads.Add(1) == 1 {
			close(started)
			<-ctx.Done() // the first request goes away mid-read
			return 0, time.Time{}, ctx.Err()
		}
		return 5, time.Time{}, nil
	}
	lctx, cancel := context.WithCancel(begin(t, g))
	lead := make(chan error, 1)
	go func() { _, err := Load(lctx, m, "k", now, fn); lead <- err }()
	<-started
	wctx := begin(t, g)
	stamp, _ := m.Stamp(wctx)
	got := make(chan int, 1)
	go func() {
		v, err := Load(wctx, m, "k", now, fn)
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	waiters(t, m, "k", stamp, 1)
	cancel()
	if err := <-lead; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Load = %v", err)
	}
	if v := <-got; v != 5 {
		t.Fatalf("waiting Load = %d; want its own read after the first request ended", v)
	}
	// A read that panics frees its waiters to read for themselves.
	reads.Store(0)
	m2 := NewMap[string, int](g, 10)
	in := make(chan struct{})
	out := make(chan struct{})
	pfn := func(context.Context) (int, time.Time, error) {
		if reads.Add(1) == 1 {
			close(in)
			<-out
			panic("read failed")
		}
		return 6, time.Time{}, nil
	}
	go func() {
		defer func() { recover() }()
		Load(begin(t, g), m2, "k", now, pfn)
	}()
	<-in
	go func() { v, _ := Load(begin(t, g), m2, "k", now, pfn); got <- v }()
	waiters(t, m2, "k", stamp, 1)
	close(out)
	select {
	case v := <-got:
		if v != 6 {
			t.Fatalf("Load after a panicked read = %d; want 6", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Load waits for a read that panicked")
	}
}
