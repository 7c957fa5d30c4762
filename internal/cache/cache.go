// Package cache keeps what the read path would otherwise read from the
// database on every request — verified tokens, permission sets, folder
// listings — and the one mechanism that keeps all of it exact: a change
// counter in the database.
//
// Every write transaction that changes anything a cache may hold adds one to
// the counter in the same transaction (store.DB does it in Transact), so the
// counter and the change become visible together on every node. Each request
// starts with Begin, which reads the counter (one indexed read of a few
// rows, shared by concurrent requests that all arrived before it started);
// if it moved since this node last looked, every cache of the node is
// out of date at once. A change committed before a request began is therefore
// seen by that request on every node, with no time window, and a node that
// writes sees its own change even within the request that made it
// (Changed).
//
// A value is stored under the generation that was current before it was
// read from the database (Stamp, then read, then Put): if anything changed in
// between, the value is dropped instead of being kept as if it were current.
package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Source reads the database's change counter.
type Source interface {
	// Epoch returns a number that changes whenever a change that caches may
	// hold commits, on any node.
	Epoch(ctx context.Context) (uint64, error)
}

// Gen is one node's view of the change counter: a generation number that
// moves whenever the database's counter is seen to move, or this node
// commits a change. Entries of every Map are valid only in the generation
// they were stored in.
type Gen struct {
	src Source
	gen atomic.Uint64

	mu   sync.Mutex
	seen uint64 // the database counter last read
	read bool   // seen holds a reading

	// Reads of the counter shared by concurrent Begins (epoch).
	rmu     sync.Mutex
	running *epochRead // the read in flight, if any
	queued  *epochRead // the next read, waited for by the Begins that arrived during running

	hits, misses atomic.Uint64
}

// epochRead is one read of the database counter.
type epochRead struct {
	done chan struct{}
	e    uint64
	err  error
}

// sharedReadTimeout bounds a read of the counter made for several Begins.
const sharedReadTimeout = 10 * time.Second

// New returns a generation over src.
func New(src Source) *Gen {
	g := &Gen{src: src}
	g.gen.Store(1)
	return g
}

type ctxKey struct{}

// Begin reads the database counter and returns ctx marked as synchronised
// with it: caches answer only requests whose context went through Begin. A
// failed read leaves ctx unmarked (every lookup then reads the database) and
// is returned for the caller to log or fail on.
func (g *Gen) Begin(ctx context.Context) (context.Context, error) {
	if g == nil {
		return ctx, nil
	}
	e, err := g.epoch(ctx)
	if err != nil {
		return ctx, err
	}
	g.mu.Lock()
	if !g.read || e != g.seen {
		// Any difference, even an older reading arriving late from a
		// concurrent Begin, starts a new generation: at worst a needless
		// miss, never a stale hit.
		g.seen, g.read = e, true
		g.gen.Add(1)
	}
	g.mu.Unlock()
	return context.WithValue(ctx, ctxKey{}, g), nil
}

// epoch reads the database counter on behalf of a Begin, sharing reads
// between concurrent Begins without ever answering one with a reading taken
// before it arrived: with no read in flight it reads at once; otherwise the
// read in flight may have started before it arrived, so it waits for the
// next one, which starts as soon as that read ends and serves every Begin
// that arrived meanwhile. Under load, one read serves many requests and each
// still sees every change committed before it began.
func (g *Gen) epoch(ctx context.Context) (uint64, error) {
	g.rmu.Lock()
	if g.running == nil {
		r := &epochRead{done: make(chan struct{})}
		g.running = r
		g.rmu.Unlock()
		g.readEpoch(ctx, r)
		return r.e, r.err
	}
	if g.queued == nil {
		g.queued = &epochRead{done: make(chan struct{})}
	}
	r := g.queued
	g.rmu.Unlock()
	select {
	case <-r.done:
		return r.e, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// readEpoch makes read r, then starts the queued read, if any.
func (g *Gen) readEpoch(ctx context.Context, r *epochRead) {
	r.e, r.err = g.src.Epoch(ctx)
	g.rmu.Lock()
	next := g.queued
	g.queued, g.running = nil, next
	g.rmu.Unlock()
	close(r.done)
	if next != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), sharedReadTimeout)
			defer cancel()
			g.readEpoch(ctx, next)
		}()
	}
}

// Changed starts a new generation after this node committed a change, so
// that its own later reads, even within the same request, miss.
func (g *Gen) Changed() {
	if g != nil {
		g.gen.Add(1)
	}
}

// Stats reports the lookups answered from a cache and those that were not.
func (g *Gen) Stats() (hits, misses uint64) { return g.hits.Load(), g.misses.Load() }

// Unsynced returns ctx without Begin's mark, for work that outlives the
// request that began it (a stream's periodic checks): its lookups read the
// database.
func Unsynced(ctx context.Context) context.Context {
	if ctx.Value(ctxKey{}) == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, nil)
}

// Resync returns ctx synchronised with the database counter as it is now,
// when ctx went through Begin (otherwise ctx, whose lookups read the
// database): its lookups see every change committed before Resync was
// called, as a new request's would. It is for a read that must be at least
// as new as something read since the request began (a move's count, read
// before what the move checks). If the counter cannot be read, the context
// returned reads the database.
func Resync(ctx context.Context) context.Context {
	g, _ := ctx.Value(ctxKey{}).(*Gen)
	if g == nil {
		return ctx
	}
	synced, err := g.Begin(ctx)
	if err != nil {
		return Unsynced(ctx)
	}
	return synced
}

func (g *Gen) synced(ctx context.Context) bool {
	return g != nil && ctx.Value(ctxKey{}) == g
}

// Map is one cache: values by key, valid for one generation and, per entry,
// until an optional deadline. It holds at most max entries (and, with
// Sized, at most a budget of bytes); when full, arbitrary entries make room.
type Map[K comparable, V any] struct {
	g   *Gen
	max int

	size     func(V) int // Sized: a value's approximate bytes
	maxBytes int

	mu    sync.RWMutex
	gen   uint64
	m     map[K]entry[V]
	bytes int

	fmu     sync.Mutex
	flights map[flightKey[K]]*flight[V] // Load's reads in progress
}

// flightKey names one read of Load: a key read under one generation.
type flightKey[K comparable] struct {
	k     K
	stamp uint64
}

// flight is a read of Load that concurrent Loads of the same key and
// generation wait for instead of reading the database again.
type flight[V any] struct {
	done    chan struct{}
	waiters int // Loads waiting (tests)
	v       V
	until   time.Time
	err     error
	alone   bool // the reader's own request ended it (cancelled, panicked): each waiter reads for itself
}

type entry[V any] struct {
	v     V
	until time.Time // zero: for the whole generation
	bytes int
}

// Sized bounds m to maxBytes as size measures its values; a value larger
// than the whole budget is not kept. It returns m.
func (m *Map[K, V]) Sized(maxBytes int, size func(V) int) *Map[K, V] {
	m.size, m.maxBytes = size, maxBytes
	return m
}

// NewMap returns an empty cache of at most max entries in generation g. A
// nil g gives a cache that never holds anything.
func NewMap[K comparable, V any](g *Gen, max int) *Map[K, V] {
	if max < 1 {
		max = 1
	}
	return &Map[K, V]{g: g, max: max, m: map[K]entry[V]{}}
}

// Get returns the value stored for k if ctx went through Begin, nothing
// changed since it was stored, and its deadline is after now.
func (m *Map[K, V]) Get(ctx context.Context, k K, now time.Time) (V, bool) {
	v, _, ok := m.get(ctx, k, now)
	return v, ok
}

func (m *Map[K, V]) get(ctx context.Context, k K, now time.Time) (V, time.Time, bool) {
	var zero V
	if m == nil || !m.g.synced(ctx) {
		return zero, time.Time{}, false
	}
	cur := m.g.gen.Load()
	m.mu.RLock()
	e, ok := m.m[k]
	ok = ok && m.gen == cur && (e.until.IsZero() || now.Before(e.until))
	m.mu.RUnlock()
	if !ok {
		m.g.misses.Add(1)
		return zero, time.Time{}, false
	}
	m.g.hits.Add(1)
	return e.v, e.until, true
}

// Stamp is the generation to store a value under; take it before reading the
// value from the database. ok is false when ctx did not go through Begin
// (nothing is cached then).
func (m *Map[K, V]) Stamp(ctx context.Context) (stamp uint64, ok bool) {
	if m == nil || !m.g.synced(ctx) {
		return 0, false
	}
	return m.g.gen.Load(), true
}

// Put stores v for k, valid until the deadline (zero: none), unless the
// generation moved past stamp since it was taken.
func (m *Map[K, V]) Put(stamp uint64, k K, v V, until time.Time) {
	if m == nil || stamp == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if stamp != m.g.gen.Load() {
		return // something changed while v was being read
	}
	if m.gen != stamp {
		clear(m.m)
		m.gen, m.bytes = stamp, 0
	}
	n := 0
	if m.size != nil {
		if n = m.size(v); n > m.maxBytes {
			return
		}
	}
	if old, ok := m.m[k]; ok {
		delete(m.m, k)
		m.bytes -= old.bytes
	}
	for old, e := range m.m {
		if len(m.m) < m.max && (m.size == nil || m.bytes+n <= m.maxBytes) {
			break
		}
		delete(m.m, old)
		m.bytes -= e.bytes
	}
	m.m[k] = entry[V]{v, until, n}
	m.bytes += n
}

// Bytes reports the bytes held as Sized measures them.
func (m *Map[K, V]) Bytes() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.bytes
}

// Len reports the entries held, current or not.
func (m *Map[K, V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

// Load returns the cached value for k or, on a miss, the one fn reads,
// storing it until the deadline fn returns (zero: none). Errors are not
// cached. fn gets a context that collects the deadlines of the values it
// loads in turn (a listing built from a permission set that holds a
// temporary role), so that what is built from them expires with them; Load
// reports its own value's deadline to an enclosing Load the same way.
//
// Concurrent misses of k in one generation share one call of fn, its value
// or its error (after a change every request of a node misses at once: one
// database read, not one per request). A Load never shares a read made in
// an older generation than its own, so sharing hides no change from it; a
// read ended by its own request's cancellation is not shared either: the
// waiters read for themselves. So fn must not Load its own key, nor a key
// whose fn Loads fn's (a cycle between maps): that would wait for itself.
// Today's loaders nest one way only (a listing's fn loads permission sets).
func Load[K comparable, V any](ctx context.Context, m *Map[K, V], k K, now time.Time, fn func(ctx context.Context) (V, time.Time, error)) (V, error) {
	outer, _ := ctx.Value(boundKey{}).(*bound)
	if v, until, ok := m.get(ctx, k, now); ok {
		outer.lower(until)
		return v, nil
	}
	stamp, ok := m.Stamp(ctx)
	if !ok {
		v, _, err := read(ctx, m, 0, k, now, fn, outer)
		return v, err
	}
	fk := flightKey[K]{k, stamp}
	m.fmu.Lock()
	if f := m.flights[fk]; f != nil {
		f.waiters++
		m.fmu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		if !f.alone && (f.until.IsZero() || now.Before(f.until)) {
			outer.lower(f.until)
			return f.v, f.err
		}
		v, _, err := read(ctx, m, stamp, k, now, fn, outer)
		return v, err
	}
	f := &flight[V]{done: make(chan struct{}), alone: true}
	if m.flights == nil {
		m.flights = map[flightKey[K]]*flight[V]{}
	}
	m.flights[fk] = f
	m.fmu.Unlock()
	defer func() {
		m.fmu.Lock()
		delete(m.flights, fk)
		m.fmu.Unlock()
		close(f.done)
	}()
	v, until, err := read(ctx, m, stamp, k, now, fn, outer)
	f.v, f.until, f.err = v, until, err
	f.alone = err != nil && ctx.Err() != nil
	return v, err
}

// read calls fn for Load and stores its value under stamp (0: not kept).
// It returns the value's deadline: the earliest of the values fn used.
func read[K comparable, V any](ctx context.Context, m *Map[K, V], stamp uint64, k K, now time.Time, fn func(ctx context.Context) (V, time.Time, error), outer *bound) (V, time.Time, error) {
	b := &bound{}
	v, until, err := fn(context.WithValue(ctx, boundKey{}, b))
	if err != nil {
		return v, time.Time{}, err
	}
	b.lower(until)
	outer.lower(b.until)
	if stamp != 0 && (b.until.IsZero() || now.Before(b.until)) {
		m.Put(stamp, k, v, b.until)
	}
	return v, b.until, nil
}

type boundKey struct{}

// bound is the earliest deadline of the values a Load's fn used.
type bound struct {
	mu    sync.Mutex
	until time.Time
}

func (b *bound) lower(t time.Time) {
	if b == nil || t.IsZero() {
		return
	}
	b.mu.Lock()
	if b.until.IsZero() || t.Before(b.until) {
		b.until = t
	}
	b.mu.Unlock()
}

// Memo keeps values derived from one cached value (an encoded body, its
// entity tag), computed once per variant and shared by every request served
// from that value. A nil Memo computes every time.
type Memo struct {
	mu sync.Mutex
	m  map[string]any
}

// Do returns the value kept under key, computing it with fn the first time.
func (m *Memo) Do(key string, fn func() (any, error)) (any, error) {
	if m == nil {
		return fn()
	}
	m.mu.Lock()
	v, ok := m.m[key]
	m.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := fn()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.m[key]; ok {
		return old, nil
	}
	if m.m == nil {
		m.m = map[string]any{}
	}
	m.m[key] = v
	return v, nil
}
