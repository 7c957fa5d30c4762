package project_test

import (
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/project"
)

func TestNormalizePath(t *testing.T) {
	ok := map[string]string{"": "/", "/": "/", "//": "/", "/a": "/a", "/a/": "/a", "/a//b/": "/a/b", " /x_y-1 ": "/x_y-1"}
	for in, want := range ok {
		got, err := project.NormalizePath(in)
		if err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a", "/a/../b", "/.", "/a b", "/a/b\x00", "/ä", strings.Repeat("/a", 33)} {
		if got, err := project.NormalizePath(bad); err == nil {
			t.Errorf("NormalizePath(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "//a//", "/a/../b", "a", "/x_y-z/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := project.NormalizePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || (len(out) > 1 && strings.HasSuffix(out, "/")) {
			t.Fatalf("NormalizePath(%q) = %q", in, out)
		}
		again, err := project.NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		for _, seg := range project.Segments(out) {
			if seg == "." || seg == ".." || !project.ValidFolderName(seg) {
				t.Fatalf("segment %q survived", seg)
			}
		}
	})
}
