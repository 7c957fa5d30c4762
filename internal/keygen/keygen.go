// Package keygen bounds the slow key generations (an RSA-4096 key is about a
// second of one core) running at once in the whole server: KMS keys,
// certificate authorities, certificates and SSH keys share one pool of half
// the cores, so members creating keys in a loop cannot take every core from
// the requests being served.
package keygen

import (
	"context"
	"runtime"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Pool is a bounded set of generation slots.
type Pool struct {
	slots chan struct{}
	// Wait is how long a generation waits for a slot before it is refused.
	Wait time.Duration
}

// NewPool returns a pool of n slots (at least one) whose generations wait
// at most wait.
func NewPool(n int, wait time.Duration) *Pool {
	return &Pool{slots: make(chan struct{}, max(1, n)), Wait: wait}
}

// Shared is the server's pool: half the cores, two seconds of waiting.
var Shared = NewPool(runtime.GOMAXPROCS(0)/2, 2*time.Second)

// Signatures bounds the RSA-4096 signatures made at once for requests (a
// KMS sign is about 13 ms of one core): a cryptographic operator signing in
// 32 loops held a request of another project's encrypt for 625 ms. A pool
// of its own, so that signing and key generation do not starve each other.
var Signatures = NewPool(runtime.GOMAXPROCS(0)/2, 2*time.Second)

// Acquire takes a slot, waiting at most p.Wait; release gives it back. With
// none free in time it reports errs.RateLimited (Retry-After 1 s), saying
// too many of what are being generated.
func (p *Pool) Acquire(ctx context.Context, what string) (release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, p.Wait)
	defer cancel()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		e := errs.RateLimitedf("Too many %s are being generated at once, please try again shortly", what)
		e.RetryAfter = 1
		return nil, e
	}
}

// Cap is the number of slots; InUse how many are taken.
func (p *Pool) Cap() int   { return cap(p.slots) }
func (p *Pool) InUse() int { return len(p.slots) }
