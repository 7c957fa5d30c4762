package api

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client address and, for IPv6, another
// per /64 that its addresses share at prefixShare times the rate (one host
// is often given a whole /64, and per address it would have billions of
// budgets; a cloud subnet of many machines is one /64 too). Idle buckets
// are swept. It holds at most maxBuckets: when that many are in use, full
// buckets (which know nothing a new one would not) are dropped, at most
// once a second, and only if none can be do new clients share one bucket.
type ipLimiter struct {
	mu         sync.Mutex
	perWindow  int
	window     time.Duration
	maxBuckets int
	buckets    map[string]*bucket
	lastSweep  time.Time
	lastDrop   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	// limiterBuckets bounds an ipLimiter's memory (a bucket is ~100 bytes).
	limiterBuckets = 100_000
	// prefixShare is how many addresses' budgets an IPv6 /64 has in all.
	prefixShare = 16
	// overflowKey is the bucket clients share when the limiter is full.
	overflowKey = "overflow"
)

func newIPLimiter(perWindow int, window time.Duration) *ipLimiter {
	return &ipLimiter{perWindow: perWindow, window: window, maxBuckets: limiterBuckets, buckets: map[string]*bucket{}}
}

// limiterKeys are the buckets of a client address: the address and, for
// IPv6, its /64.
func limiterKeys(ip string) []string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return []string{ip}
	}
	if a = a.Unmap().WithZone(""); a.Is6() {
		p, _ := a.Prefix(64)
		return []string{a.String(), p.String()}
	}
	return []string{a.String()}
}

func (l *ipLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.window {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.window {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	for i, key := range limiterKeys(ip) {
		burst := l.perWindow
		if i > 0 {
			burst *= prefixShare
		}
		if !l.bucket(key, burst, now).AllowN(now, 1) {
			return false
		}
	}
	return true
}

// bucket returns key's limiter, making it (with burst) if it is new.
func (l *ipLimiter) bucket(key string, burst int, now time.Time) *rate.Limiter {
	b, ok := l.buckets[key]
	if !ok && len(l.buckets) >= l.maxBuckets {
		if now.Sub(l.lastDrop) >= time.Second {
			l.lastDrop = now
			for k, b := range l.buckets {
				if k != overflowKey && b.lim.TokensAt(now) >= float64(b.lim.Burst()) {
					delete(l.buckets, k)
				}
			}
		}
		if len(l.buckets) >= l.maxBuckets {
			key = overflowKey
			b, ok = l.buckets[key]
		}
	}
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.window/time.Duration(burst)), burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim
}
