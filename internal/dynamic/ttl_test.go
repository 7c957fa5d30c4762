package dynamic

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "15m": 15 * time.Minute, "1h": time.Hour, "2d": 48 * time.Hour, "1w": 7 * 24 * time.Hour,
		"1.5h": 90 * time.Minute, "2 days": 48 * time.Hour, "60000": time.Minute, " 1H ": time.Hour, "1y": 365 * 24 * time.Hour,
		"1500ms": time.Second,
	} {
		got, err := ParseTTL(in)
		if err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1h", "0s", "999ms", "11y", "1e3s", "1h30m", "１h", "NaNs", "1.5.5h", "9999999999999999999999y"} {
		if d, err := ParseTTL(in); err == nil {
			t.Errorf("ParseTTL(%q) = %v, want an error", in, d)
		}
	}
}

func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"30s", "1.5h", "2 days", "60000", "10y", "0.0001s", "1e9", " 3 weeks "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err != nil {
			return
		}
		if d < time.Second || d > MaxTTL || d%time.Second != 0 {
			t.Fatalf("ParseTTL(%q) = %v: outside [1s, 10y] or not whole seconds", s, d)
		}
		// The value round-trips through its seconds form.
		again, err := ParseTTL(strconv.FormatInt(int64(d/time.Second), 10) + "s")
		if err != nil || again != d {
			t.Fatalf("ParseTTL(%q) = %v, but %ds gives %v, %v", s, d, d/time.Second, again, err)
		}
	})
}

func TestUsernameAlwaysHasARandomPart(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, c := range []struct{ tmpl, identity, prefix string }{
		{"", "x", "lbx_"},
		{"{{identity.name}}", "victim", "victim_"},
		{"{{identity.name}}", strings.Repeat("a", 40), strings.Repeat("a", 23) + "_"},
		{"{{identity.name}}-{{randomUsername}}", strings.Repeat("b", 30), strings.Repeat("b", 23) + "_"},
		{"app_{{unixTimestamp}}", "x", "app_1700000000_"},
		{"fixed", "x", "fixed_"},
	} {
		a, b := username(c.tmpl, c.identity, now), username(c.tmpl, c.identity, now)
		if a == b || len(a) > 32 || !strings.HasPrefix(a, c.prefix) || len(a) < len(c.prefix)+8 {
			t.Errorf("username(%q, %q) = %q, %q; want %q plus a random part, at most 32 bytes", c.tmpl, c.identity, a, b, c.prefix)
		}
	}
}
