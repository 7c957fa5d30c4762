package dynamic

import (
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

var ttlRE = lazyre.New(`^(\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)?$`)

// MaxTTL is the longest TTL accepted (ten years).
const MaxTTL = 10 * 365 * 24 * time.Hour

// ParseTTL parses the duration strings Infisical accepts ("30s", "15m", "1h",
// "2d", "1w", "1.5h", "2 days"; a bare number is milliseconds).
func ParseTTL(s string) (time.Duration, error) {
	m := ttlRE().FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, errs.Invalidf("TTL %q is not a duration such as 30s, 15m, 1h or 1d", truncate(s, 32))
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, errs.Invalidf("TTL %q is not a number", truncate(s, 32))
	}
	unit := time.Millisecond
	switch u := m[2]; {
	case u == "" || strings.HasPrefix(u, "ms") || strings.HasPrefix(u, "mil"):
	case strings.HasPrefix(u, "s"):
		unit = time.Second
	case strings.HasPrefix(u, "m"):
		unit = time.Minute
	case strings.HasPrefix(u, "h"):
		unit = time.Hour
	case strings.HasPrefix(u, "d"):
		unit = 24 * time.Hour
	case strings.HasPrefix(u, "w"):
		unit = 7 * 24 * time.Hour
	case strings.HasPrefix(u, "y"):
		unit = 365 * 24 * time.Hour
	}
	if n*float64(unit) > float64(MaxTTL) {
		return 0, errs.Invalidf("TTL must be less than 10 years")
	}
	d := time.Duration(n * float64(unit))
	if d < time.Second {
		return 0, errs.Invalidf("TTL must be at least 1s")
	}
	return d.Truncate(time.Second), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
