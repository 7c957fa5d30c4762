package api

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client (an IPv4 address, or an IPv6 /64:
// one host is usually given a whole /64, so per address it would have
// billions of buckets), with idle buckets swept. It holds at most
// maxBuckets: once that many clients were seen in a window, new ones share
// one bucket until the sweep frees room.
type ipLimiter struct {
	mu         sync.Mutex
	perWindow  int
	window     time.Duration
	maxBuckets int
	buckets    map[string]*bucket
	lastSweep  time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// limiterBuckets bounds an ipLimiter's memory (a bucket is ~100 bytes).
const limiterBuckets = 100_000

// overflowKey is the bucket clients share when the limiter is full.
const overflowKey = "overflow"

func newIPLimiter(perWindow int, window time.Duration) *ipLimiter {
	return &ipLimiter{perWindow: perWindow, window: window, maxBuckets: limiterBuckets, buckets: map[string]*bucket{}}
}

// limiterKey is the bucket of a client address: itself for IPv4, its /64
// for IPv6.
func limiterKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
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
	key := limiterKey(ip)
	b, ok := l.buckets[key]
	if !ok && len(l.buckets) >= l.maxBuckets {
		key = overflowKey
		b, ok = l.buckets[key]
	}
	if !ok {
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.window/time.Duration(l.perWindow)), l.perWindow)}
		l.buckets[key] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
