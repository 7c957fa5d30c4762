package secret

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"/", "/", true},
		{"/app", "/app", true},
		{"/app", "/app/db", false},
		{"/app/*", "/app/db", true},
		{"/app/*", "/app", false},
		{"/app/**", "/app", true},
		{"/app/**", "/app/a/b/c", true},
		{"/**/db", "/x/y/db", true},
		{"/**/db", "/db", true},
		{"/**/db", "/x/y/cache", false},
		{"/a*/**/z", "/abc/q/z", true},
		{"/a*/**/z", "/bcd/q/z", false},
	} {
		if got := globMatch(c.glob, c.path); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.glob, c.path, got)
		}
	}
	// 300 "**" against a path that does not match: linear, not C(320, 300) tries.
	glob := strings.Repeat("/**", 300) + "/nope"
	if globMatch(glob, strings.Repeat("/a", 20)) {
		t.Fatal("matched")
	}
}
