package web

import (
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
	items, err := parseDotenv("# comment\nexport A=1\n\nB = \"x\\ny\"\nC='q'\n")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.Key+"="+*it.Value)
	}
	if want := []string{"A=1", "B=x\ny", "C=q"}; !slices.Equal(got, want) {
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
