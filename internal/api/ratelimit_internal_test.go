package api

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterSharesAnIPv6Prefix: each address has its own budget, and the
// addresses of one IPv6 /64 together have prefixShare budgets (a host
// holding a /64 cannot take a fresh budget per address; a subnet of
// machines still gets more than one's); IPv4-mapped addresses are IPv4.
func TestLimiterSharesAnIPv6Prefix(t *testing.T) {
	l := newIPLimiter(2, time.Minute)
	now := time.Now()
	if !l.allow("2001:db8:1:2::1", now) || !l.allow("2001:db8:1:2::1", now) || l.allow("2001:db8:1:2::1", now) {
		t.Fatal("one IPv6 address does not have a budget of its own")
	}
	allowed := 2
	for i := range 2 * prefixShare {
		addr := fmt.Sprintf("2001:db8:1:2::%x", i+2)
		for range 2 {
			if l.allow(addr, now) {
				allowed++
			}
		}
	}
	if allowed != 2*prefixShare {
		t.Fatalf("the /64 was allowed %d requests, want %d", allowed, 2*prefixShare)
	}
	if !l.allow("2001:db8:1:3::1", now) || !l.allow("127.0.0.2", now) {
		t.Fatal("another /64 or an IPv4 address was refused")
	}
	if !l.allow("::ffff:127.0.0.1", now) || !l.allow("127.0.0.1", now) || l.allow("127.0.0.1", now) {
		t.Fatal("an IPv4 address written as IPv4-mapped IPv6 is not the same client")
	}
}

// TestLimiterIsBounded: a limiter holds at most maxBuckets; when full it
// first drops full buckets (clients that used nothing lately), and only if
// none can be do new clients share one bucket, until idle ones are swept.
func TestLimiterIsBounded(t *testing.T) {
	l := newIPLimiter(2, time.Minute) // a token every 30 s, two at most
	l.maxBuckets = 3
	now := time.Now()
	for i := range 3 {
		if !l.allow(fmt.Sprintf("127.0.0.%d", i+1), now) { // one token left in each
			t.Fatalf("client %d refused", i)
		}
	}
	for i, want := range []bool{true, true, false} {
		if got := l.allow(fmt.Sprintf("127.0.1.%d", i+1), now); got != want {
			t.Fatalf("client %d beyond the bound: allowed %v, want %v (one shared bucket of two)", i, got, want)
		}
	}
	if len(l.buckets) != l.maxBuckets+1 {
		t.Fatalf("%d buckets, want %d and the shared one", len(l.buckets), l.maxBuckets)
	}
	if l.allow("127.0.2.1", now.Add(10*time.Second)) {
		t.Fatal("a new client got a budget of its own while no bucket was full")
	}
	if !l.allow("127.0.2.2", now.Add(31*time.Second)) || len(l.buckets) != 2 {
		t.Fatalf("with full buckets to drop, a new client: %d buckets, want its own and the shared one", len(l.buckets))
	}
	later := now.Add(3 * time.Minute)
	if !l.allow("127.0.1.2", later) || len(l.buckets) != 1 {
		t.Fatalf("after the idle ones are swept: %d buckets", len(l.buckets))
	}
}
