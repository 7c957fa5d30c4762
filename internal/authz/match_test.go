package authz

import (
	"strings"
	"testing"
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
