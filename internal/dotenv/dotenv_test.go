package dotenv_test

import (
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/dotenv"
)

// TestQuoteReadsBackAndHidesLineEndsFromNode: every value Quote writes
// parses back exactly, and the $'...' form holds no '#' (Node's dotenv reads
// it unquoted, up to a #) and no U+2028 or U+2029 (a line end to Node's
// regular expression: what followed was read as a variable of its own).
func TestQuoteReadsBackAndHidesLineEndsFromNode(t *testing.T) {
	for _, v := range []string{
		"plain", "", "a b # c", "multi\nline", "it's", `back\slash`, "cr\r\n", "esc\x1b[31m",
		"x'#\u2028API_URL=https://evil.example/'", "para\u2029graph'", "c1\u0085'",
	} {
		q := dotenv.Quote(v)
		if strings.HasPrefix(q, "$'") && strings.ContainsAny(q, "#\u2028\u2029") {
			t.Errorf("Quote(%q) = %q: a # or a line end Node's dotenv stops at", v, q)
		}
		if dotenv.SingleQuoted(v) != strings.HasPrefix(q, "'") {
			t.Errorf("SingleQuoted(%q) disagrees with Quote: %q", v, q)
		}
		ps, err := dotenv.Parse("KEY=" + q + "\nNEXT='n'\n")
		if err != nil || len(ps) != 2 || ps[0].Value != v || ps[1].Key != "NEXT" {
			t.Errorf("Parse(Quote(%q) = %q) = %+v, %v", v, q, ps, err)
		}
	}
}

func TestIsShellName(t *testing.T) {
	for k, want := range map[string]bool{"A": true, "_x1": true, "DB_URL": true, "1ABC": false, "my-key": false, "a.b": false, "": false, "é": false} {
		if got := dotenv.IsShellName(k); got != want {
			t.Errorf("IsShellName(%q) = %v, want %v", k, got, want)
		}
	}
}
