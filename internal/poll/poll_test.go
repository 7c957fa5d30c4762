package poll

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// After work Run ticks again at once; idle, it waits until the reported
// due time (not maxWait); an error is logged and the loop goes on; it
// returns when ctx is done.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var calls []time.Duration
	tick := func(context.Context) (int, time.Time, error) {
		calls = append(calls, time.Since(start))
		switch len(calls) {
		case 1:
			return 3, time.Time{}, nil // work: again at once
		case 2:
			return 0, time.Now().Add(50 * time.Millisecond), errors.New("boom") // idle until then
		default:
			cancel()
			return 0, time.Time{}, nil
		}
	}
	done := make(chan struct{})
	go func() {
		Run(ctx, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, time.Hour, tick)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after ctx was done")
	}
	if len(calls) != 3 {
		t.Fatalf("ticks %v, want 3", calls)
	}
	if gap := calls[2] - calls[1]; gap < 50*time.Millisecond {
		t.Fatalf("idle wait %v, want at least the 50 ms to the next due time", gap)
	}
}
