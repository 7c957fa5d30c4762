package secret

import (
	"fmt"
	"math/rand/v2"
	"path"
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

// TestStarMatchIsPathMatch: the linear matcher of glob segments agrees with
// path.Match on every pattern of "*" and letters a folder name allows.
func TestStarMatchIsPathMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		var b strings.Builder
		for range r.IntN(n + 1) {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 200000 {
		pattern, name := word("ab*", 8), word("ab", 10)
		want, err := path.Match(pattern, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := starMatch(pattern, name); got != want {
			t.Fatalf("starMatch(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
		}
	}
}

// TestACostlyGlobIsComparedOnce: a stream's glob that alternates "**" with
// long wildcard segments that never match, against a path as deep and long
// as folders go, is accepted (1,024 characters, 31 segments) and costs one
// comparison per path segment: before, every segment of the glob was
// compared with every folder (480 path.Match calls of 60×64 steps each, 3.5 ms
// an event for each rule of each stream).
func TestACostlyGlobIsComparedOnce(t *testing.T) {
	glob, err := normalizeGlob(strings.Repeat("/**/*"+strings.Repeat("a", 58)+"b*", 15) + "/**")
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("/"+strings.Repeat("a", 64), 32)
	ok, n := segMatchCount(splitPath(glob), splitPath(deep))
	if ok || n > 32 {
		t.Fatalf("matched %v after %d comparisons, want no match after at most 32", ok, n)
	}
	if !globMatch(glob, strings.Repeat("/"+strings.Repeat("a", 60)+"b", 15)) {
		t.Fatal("the glob does not match what it names")
	}
}

func BenchmarkCostlyGlob(b *testing.B) {
	glob, _ := normalizeGlob(strings.Repeat("/**/*"+strings.Repeat("a", 58)+"b*", 15) + "/**")
	deep := strings.Repeat("/"+strings.Repeat("a", 64), 32)
	b.ReportAllocs()
	for b.Loop() {
		globMatch(glob, deep)
	}
}

// TestGlobMemo: a stream's memo answers which rules' globs match a path, and
// holds at most 1,024 paths.
func TestGlobMemo(t *testing.T) {
	m := &globMemo{rules: []WatchRule{{Path: "/a/*"}, {Path: ""}, {Path: "/b"}}}
	for range 2 {
		if got := m.matching("/a/x"); got != 0b011 {
			t.Fatalf("/a/x: %b", got)
		}
		if got := m.matching("/b"); got != 0b110 {
			t.Fatalf("/b: %b", got)
		}
	}
	for i := range 3000 {
		m.matching(fmt.Sprintf("/a/%d", i))
		if len(m.seen) > 1024 {
			t.Fatalf("the memo holds %d paths", len(m.seen))
		}
	}
}
