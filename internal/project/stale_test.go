package project

import (
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// NextStamp is now to the microsecond, and always later than what was read,
// even when the clock has not moved past it (same microsecond, or a step back).
func TestNextStamp(t *testing.T) {
	prev := time.Date(2026, 12, 2, 10, 0, 0, 500_000, time.UTC)
	for name, c := range map[string]struct{ now, want time.Time }{
		"later":              {prev.Add(time.Second + 700), prev.Add(time.Second)},
		"same microsecond":   {prev.Add(400), prev.Add(time.Microsecond)},
		"clock stepped back": {prev.Add(-time.Hour), prev.Add(time.Microsecond)},
	} {
		if got := NextStamp(c.now.In(time.FixedZone("x", 3600)), prev); !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("%s: NextStamp = %v, want %v (UTC)", name, got, c.want)
		}
	}
}

// RetryStale tries again only after ErrStale, MoveTries times in all, then
// answers 409; any other error ends it at once; an error returns no value.
func TestRetryStale(t *testing.T) {
	tries := 0
	got, err := RetryStale(t.Context(), "thing", func() (int, error) { tries++; return tries, ErrStale })
	if !errs.Is(err, errs.Conflict) || got != 0 || tries != MoveTries {
		t.Fatalf("always stale: %d, %v after %d tries; want 0, a 409 after %d", got, err, tries, MoveTries)
	}
	tries = 0
	other := errs.BadRequest("no")
	if got, err := RetryStale(t.Context(), "thing", func() (int, error) { tries++; return 7, other }); err != other || got != 0 || tries != 1 {
		t.Fatalf("another error: %d, %v after %d tries", got, err, tries)
	}
	tries = 0
	if got, err := RetryStale(t.Context(), "thing", func() (int, error) {
		tries++
		if tries < 3 {
			return 0, ErrStale
		}
		return 42, nil
	}); err != nil || got != 42 || tries != 3 {
		t.Fatalf("stale twice, then written: %d, %v after %d tries", got, err, tries)
	}
}
