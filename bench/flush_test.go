//go:build linux

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFlushMeasuresBothWays: the flush scenario reports the appended and
// the overwritten file, each with flushes counted and ordered latencies,
// and leaves nothing behind in its directory.
func TestFlushMeasuresBothWays(t *testing.T) {
	dir := t.TempDir()
	rs, err := runFlush(dir, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Mode != "append" || rs[1].Mode != "overwrite" {
		t.Fatalf("results %+v, want append then overwrite", rs)
	}
	for _, r := range rs {
		if r.Flushes < 1 || r.PerSecond <= 0 || r.P50us <= 0 || r.P99us < r.P50us || r.CPUus < 0 {
			t.Fatalf("%s: %+v", r.Mode, r)
		}
	}
	left, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(left) != 0 {
		t.Fatalf("left behind: %v %v", left, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
