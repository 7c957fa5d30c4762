package project

import (
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	for in, want := range map[string]time.Duration{"30s": 30 * time.Second, "15m": 15 * time.Minute, "1h": time.Hour,
		"2d": 48 * time.Hour, "1w": 7 * 24 * time.Hour, "100y": maxRange, "500ms": 500 * time.Millisecond} {
		if got, ok := ParseRange(in); !ok || got != want {
			t.Errorf("ParseRange(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	// Overflow (300y, 100000w) and nonsense are refused, never negative or wrapped.
	for _, in := range []string{"300y", "100000w", "100000d", "0h", "-1h", "1x", "", "1.5h"} {
		if got, ok := ParseRange(in); ok {
			t.Errorf("ParseRange(%q) = %v, want refused", in, got)
		}
	}
}
