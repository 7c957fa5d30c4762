package authz

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, input string
		want           bool
	}{
		{"/app/**", "/app", true},
		{"/app/**", "/app/", true},
		{"/app/**", "/app/a/b/c", true},
		{"/app/**", "/apps", false},
		{"/**", "/", true},
		{"/**", "/anything/at/all", true},
		{"/a/*", "/a/b", true},
		{"/a/*", "/a/b/c", false},
		{"/a/**/z", "/a/z", true},
		{"/a/**/z", "/a/b/c/z", true},
		{"/a/**/z", "/a/b/c/y", false},
		{"**/z", "/x/z", true},
		{"?", "a", true},
		{"?", "/", false},
		{"{dev,staging}", "staging", true},
		{"{dev,staging}", "prod", false},
		{"/{a,b/{c,d}}", "/b/d", true},
		{"[a-c]x", "bx", true},
		{"[!a-c]x", "dx", true},
		{"[!a-c]x", "ax", false},
		{"a.b", "axb", false},
		{"a+b", "a+b", true},
		{`\*`, "*", true},
		{`\*`, "x", false},
	}
	for _, c := range cases {
		g, err := compileGlob(c.pattern)
		if err != nil {
			t.Fatalf("compile %q: %v", c.pattern, err)
		}
		if got := g.match(c.input); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.input, got, c.want)
		}
	}
	for _, bad := range []string{"", "[", "[]", "{a,b", "a}", strings.Repeat("a", maxGlobLen+1)} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("compileGlob(%q) accepted", bad)
		}
	}
}

func FuzzGlob(f *testing.F) {
	for _, s := range []string{"/app/**", "/a/*", "{a,b}", "[a-z]", "a?c", "/a/**/z", `\*x`} {
		f.Add(s, "/app/x")
	}
	f.Fuzz(func(t *testing.T, pattern, input string) {
		g, err := compileGlob(pattern)
		if err == nil {
			g.match(input)
		}
		// A pattern without metacharacters matches exactly itself.
		if pattern != "" && len(pattern) <= maxGlobLen && utf8.ValidString(pattern) && !strings.ContainsAny(pattern, `*?[]{},\`) {
			g, err := compileGlob(pattern)
			if err != nil {
				t.Fatalf("literal %q rejected: %v", pattern, err)
			}
			if !g.match(pattern) {
				t.Fatalf("literal %q does not match itself", pattern)
			}
			if g.match(pattern+"x") && !strings.HasSuffix(pattern, "x") {
				t.Fatalf("literal %q matches more", pattern)
			}
		}
	})
}

// TestStoredRulesAreReadAsTheyAre: a custom role saved before ParseRules
// refused secretPath values no path can match still resolves (its rule
// matches nothing, as before), rather than failing every permission check
// of the project.
func TestStoredRulesAreReadAsTheyAre(t *testing.T) {
	set, err := grantsSet([]Grant{{Role: "old", Permissions: []byte(`[{"subject":"secrets","action":"read"},
		{"subject":"secrets","action":"read","inverted":true,"conditions":{"secretPath":{"$eq":"/prod/"}}}]`)}})
	if err != nil {
		t.Fatal(err)
	}
	if !set.Can(ActRead, SubSecrets, &Fields{Environment: "dev", SecretPath: "/prod"}) {
		t.Fatal("the stored role's read is lost")
	}
}

// TestGlobsAreCompiledOnce: a $glob pattern is compiled once however many
// permission sets and service tokens parse it, and parsed again (a set whose
// cache entry was dropped) it costs no compilation; before, 100 privileges
// of long patterns cost each request 0.15 to 0.45 s after any write. The
// kept patterns stay within their bound.
func TestGlobsAreCompiledOnce(t *testing.T) {
	pat := "/" + strings.Repeat("*/", 200) + "x" + strconv.FormatInt(time.Now().UnixNano(), 36)
	raw := []byte(`[{"subject":"secrets","action":["read"],"conditions":{"secretPath":{"$glob":"` + pat + `"}}}]`)
	before := globsCompiled.Load()
	for range 50 {
		if _, err := ParseRules(raw); err != nil {
			t.Fatal(err)
		}
		if _, err := ServiceTokenRules([]TokenScope{{Environment: "dev", SecretPath: pat}}, true, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := globsCompiled.Load() - before; n != 1 {
		t.Fatalf("one pattern parsed 100 times was compiled %d times; want 1", n)
	}
	// Distinct patterns beyond the bound push older ones out.
	for i := range maxInternedGlobChars/400 + 10 {
		if _, err := compileGlob(fmt.Sprintf("/%s/%d", strings.Repeat("a", 390), i)); err != nil {
			t.Fatal(err)
		}
	}
	compiledGlobs.Lock()
	chars := compiledGlobs.chars
	compiledGlobs.Unlock()
	if chars > maxInternedGlobChars || chars < maxInternedGlobChars/2 {
		t.Fatalf("the kept patterns hold %d characters; want at most %d and most of it used", chars, maxInternedGlobChars)
	}
}
