package project

import (
	"testing"
	"time"
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
