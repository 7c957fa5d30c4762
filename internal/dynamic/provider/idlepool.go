package provider

import (
	"context"
	"sync"
	"time"
)

// DefaultIdle is how long a shared connection pool or client may go unused
// before its IdlePool closes it.
const DefaultIdle = 5 * time.Minute

// MaxIdleValues bounds the values an IdlePool keeps: past it, the one
// unused the longest is closed to make room (values in use are never
// closed). Every distinct set of inputs makes its own value, and a member
// may try many.
const MaxIdleValues = 256

type unpooledKey struct{}

// Unpooled marks ctx so that what an IdlePool gives for it is made for
// the caller alone and closed on release, never shared nor kept: a check
// of inputs a member sends (each new password would otherwise leave a pool,
// a goroutine and a connection behind for DefaultIdle).
func Unpooled(ctx context.Context) context.Context {
	return context.WithValue(ctx, unpooledKey{}, true)
}

// IdlePool shares values that hold connections and admin credentials (a
// *sql.DB, a Redis client) among providers built from the same inputs, and
// closes each one that has gone unused for DefaultIdle, so a dynamic secret
// that is deleted or reconfigured does not keep them forever. A value is
// never closed while acquired. Expired values are swept whenever the pool is
// used and by SweepIdle; the pool starts no goroutine.
type IdlePool[V any] struct {
	close func(V)

	mu   sync.Mutex
	idle time.Duration
	max  int
	now  func() time.Time
	m    map[[32]byte]*idleEntry[V]
}

type idleEntry[V any] struct {
	v    V
	refs int       // acquisitions not yet released
	last time.Time // when refs last dropped to zero
}

type sweeper interface {
	Sweep()
	Len() int
}

var (
	poolsMu sync.Mutex
	pools   []sweeper
)

// NewIdlePool returns an empty pool that calls close on each value it
// evicts. SweepIdle sweeps it too.
func NewIdlePool[V any](close func(V)) *IdlePool[V] {
	p := &IdlePool[V]{close: close, idle: DefaultIdle, max: MaxIdleValues, now: time.Now, m: map[[32]byte]*idleEntry[V]{}}
	poolsMu.Lock()
	pools = append(pools, p)
	poolsMu.Unlock()
	return p
}

// SweepIdle closes the values of every IdlePool that have been idle too long.
// The lease worker calls it on each round, so eviction does not wait for the
// next use of a provider.
func SweepIdle() {
	for _, p := range allPools() {
		p.Sweep()
	}
}

// Pooled is the number of values every IdlePool holds.
func Pooled() int {
	n := 0
	for _, p := range allPools() {
		n += p.Len()
	}
	return n
}

func allPools() []sweeper {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	return append([]sweeper(nil), pools...)
}

// Acquire returns the value for key, creating it with open if there is none,
// and release, to be called once the caller is done with the value. With a
// ctx marked Unpooled the value is the caller's alone, closed on release.
func (p *IdlePool[V]) Acquire(ctx context.Context, key [32]byte, open func() (V, error)) (v V, release func(), err error) {
	if ctx.Value(unpooledKey{}) != nil {
		if v, err = open(); err != nil {
			return v, nil, err
		}
		var once sync.Once
		return v, func() { once.Do(func() { p.close(v) }) }, nil
	}
	p.mu.Lock()
	expired := p.expireLocked()
	e, ok := p.m[key]
	if !ok {
		if v, err = open(); err != nil {
			p.mu.Unlock()
			p.closeAll(expired)
			return v, nil, err
		}
		if len(p.m) >= p.max {
			if old, ok := p.leastRecentLocked(); ok {
				expired = append(expired, p.m[old].v)
				delete(p.m, old)
			}
		}
		e = &idleEntry[V]{v: v}
		p.m[key] = e
	}
	e.refs++
	p.mu.Unlock()
	p.closeAll(expired)
	var once sync.Once
	return e.v, func() {
		once.Do(func() {
			p.mu.Lock()
			e.refs--
			e.last = p.now()
			p.mu.Unlock()
		})
	}, nil
}

// Sweep closes and removes the values unused for the idle duration.
func (p *IdlePool[V]) Sweep() {
	p.mu.Lock()
	expired := p.expireLocked()
	p.mu.Unlock()
	p.closeAll(expired)
}

// Len is the number of values held.
func (p *IdlePool[V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// leastRecentLocked is the key of the value unused the longest, if one is
// unused.
func (p *IdlePool[V]) leastRecentLocked() (key [32]byte, ok bool) {
	var at time.Time
	for k, e := range p.m {
		if e.refs == 0 && (!ok || e.last.Before(at)) {
			key, at, ok = k, e.last, true
		}
	}
	return key, ok
}

// SetMax replaces MaxIdleValues for this pool, for tests.
func (p *IdlePool[V]) SetMax(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.max = n
}

// SetClock replaces the clock and the idle duration, for tests.
func (p *IdlePool[V]) SetClock(now func() time.Time, idle time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now, p.idle = now, idle
}

func (p *IdlePool[V]) expireLocked() []V {
	var out []V
	now := p.now()
	for k, e := range p.m {
		if e.refs == 0 && now.Sub(e.last) >= p.idle {
			out = append(out, e.v)
			delete(p.m, k)
		}
	}
	return out
}

// closeAll runs outside the lock: closing may wait on the network.
func (p *IdlePool[V]) closeAll(vs []V) {
	for _, v := range vs {
		p.close(v)
	}
}
