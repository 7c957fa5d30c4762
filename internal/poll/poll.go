// Package poll runs the idle loop the claiming workers share (rotations,
// PKI alerts): tick again at once after work, else sleep until the next due
// time the tick reported or maxWait, whichever comes first.
package poll

import (
	"context"
	"log/slog"
	"time"
)

// Tick does one round of work: how many items it handled and, when none,
// the next due time it read (zero: none known).
type Tick func(ctx context.Context) (n int, next time.Time, err error)

// Run calls tick until ctx is done. Errors are logged as name; now is the
// worker's clock, so an injected clock decides the waits.
func Run(ctx context.Context, name string, log *slog.Logger, now func() time.Time, maxWait time.Duration, tick Tick) {
	for ctx.Err() == nil {
		n, next, err := tick(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error(name, "err", err.Error())
		}
		if n > 0 {
			continue
		}
		wait := maxWait
		if !next.IsZero() {
			wait = max(0, min(wait, next.Sub(now())))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}
