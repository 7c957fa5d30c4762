package web

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	got := lineDiff("a\nb\nc", "a\nB\nc\nd")
	want := []diffLine{{" ", "a"}, {"-", "b"}, {"+", "B"}, {" ", "c"}, {"+", "d"}}
	if !slices.Equal(got, want) {
		t.Fatalf("lineDiff = %v, want %v", got, want)
	}
}

func TestParseDotenv(t *testing.T) {
	items, err := parseDotenv("# comment\nexport A=1\n\nB = \"x\\ny\"\nC='q'\nA=2\n") // A set twice: its last value, once
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.Key+"="+*it.Value)
	}
	if want := []string{"A=2", "B=x\ny", "C=q"}; !slices.Equal(got, want) {
		t.Fatalf("parsed %q, want %q", got, want)
	}
	if _, err := parseDotenv("not a pair"); err == nil {
		t.Fatal("a line without = was accepted")
	}
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{"/projects": true, "/projects/x?tab=1": true, "//evil.example": false, "/\\evil": false, "https://x": false, "": false,
		"/\t/evil.example": false, "/\n/evil.example": false, "/a\\b": false, "/\x7f": false,
		"/" + strings.Repeat("a", maxNextBytes-1): true, "/" + strings.Repeat("a", maxNextBytes): false} {
		if localPath(p) != want {
			t.Errorf("localPath(%q) = %v", p, !want)
		}
	}
}

// TestBreadcrumbs: one link per folder of the path, each to its prefix;
// a path of 30,000 segments (a 60 KB URL) makes at most maxCrumbs links
// and allocates in proportion to the URL, not to the square of its
// segments (953 MB when each crumb was a copy).
func TestBreadcrumbs(t *testing.T) {
	got := breadcrumbs(cleanPath("/a/bc//d/"))
	want := []crumb{{"root", "/"}, {"a", "/a"}, {"bc", "/a/bc"}, {"d", "/a/bc/d"}}
	if !slices.Equal(got, want) {
		t.Fatalf("breadcrumbs = %v, want %v", got, want)
	}
	if got := breadcrumbs(cleanPath("")); !slices.Equal(got, []crumb{{"root", "/"}}) {
		t.Fatalf("root: %v", got)
	}
	deep := cleanPath(strings.Repeat("/a", 30000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got = breadcrumbs(deep)
	runtime.ReadMemStats(&after)
	if len(got) != maxCrumbs || got[len(got)-1].Path != strings.Repeat("/a", maxCrumbs-1) {
		t.Fatalf("%d crumbs, the last %d bytes long", len(got), len(got[len(got)-1].Path))
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("breadcrumbs of a 60 KB path allocated %d bytes", n)
	}
}
