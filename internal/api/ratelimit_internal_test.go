package api

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterKeysIPv6ByPrefix: the addresses of one IPv6 /64 share a
// bucket (a host holding a /64 cannot take a fresh budget per address);
// IPv4 addresses and other /64s do not.
func TestLimiterKeysIPv6ByPrefix(t *testing.T) {
	l := newIPLimiter(2, time.Minute)
	now := time.Now()
	for i := range 2 {
		if !l.allow(fmt.Sprintf("2001:db8:1:2::%x", i+1), now) {
			t.Fatalf("address %d of the /64 refused within its budget", i)
		}
	}
	if l.allow("2001:db8:1:2:ffff::9", now) {
		t.Fatal("a third address of the same /64 was given a budget of its own")
	}
	if !l.allow("2001:db8:1:3::1", now) || !l.allow("::ffff:127.0.0.1", now) || !l.allow("127.0.0.2", now) {
		t.Fatal("another /64 or an IPv4 address was refused")
	}
	if !l.allow("127.0.0.1", now) || l.allow("127.0.0.1", now) {
		t.Fatal("an IPv4 address written as IPv4-mapped IPv6 is not the same client")
	}
}

// TestLimiterIsBounded: a limiter holds at most maxBuckets clients; beyond
// them, new clients share one bucket, until idle ones are swept.
func TestLimiterIsBounded(t *testing.T) {
	l := newIPLimiter(1, time.Minute)
	l.maxBuckets = 3
	now := time.Now()
	for i := range 3 {
		if !l.allow(fmt.Sprintf("127.0.0.%d", i+1), now) {
			t.Fatalf("client %d refused", i)
		}
	}
	if !l.allow("127.0.1.1", now) {
		t.Fatal("the first client beyond the bound was refused: the shared bucket holds a budget")
	}
	if l.allow("127.0.1.2", now) {
		t.Fatal("a second client beyond the bound got a budget of its own")
	}
	if len(l.buckets) != l.maxBuckets+1 {
		t.Fatalf("%d buckets, want %d and the shared one", len(l.buckets), l.maxBuckets)
	}
	later := now.Add(2 * time.Minute)
	if !l.allow("127.0.1.2", later) || len(l.buckets) != 1 {
		t.Fatalf("after the idle ones are swept: %d buckets", len(l.buckets))
	}
}
