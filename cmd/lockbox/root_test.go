package main

import (
	"io"
	"slices"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func newTestRoot(only string) []string {
	root := newRootCmd(func(string) string { return "" }, nil, io.Discard, io.Discard, only)
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	return names
}

// Each command is registered once: cobra keeps duplicates, lists them twice
// in the help and runs the first one.
func TestRootCommandsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range newTestRoot("") {
		if seen[name] {
			t.Errorf("command %q registered more than once", name)
		}
		seen[name] = true
	}
	for _, want := range []string{"groups", "users", "pki", "ssh", "rotations", "connections", "privileges", "project-templates", "run", "version"} {
		if !seen[want] {
			t.Errorf("command %q missing", want)
		}
	}
}

// A command line naming a top-level command builds that command alone, under
// the name cobra dispatches on; anything else builds the whole tree.
func TestRootBuildsOnlyTheNamedCommand(t *testing.T) {
	all := newTestRoot("")
	var listed []string
	for _, tc := range (&cli{}).topCommands() {
		listed = append(listed, tc.name)
		if got := commandFor([]string{tc.name, "--help"}); got != tc.name {
			t.Errorf("commandFor(%s ...) = %q", tc.name, got)
		}
		if got := newTestRoot(tc.name); !slices.Equal(got, []string{tc.name}) {
			t.Errorf("built for %q: %v, want that command alone under that name", tc.name, got)
		}
	}
	slices.Sort(listed)
	if !slices.Equal(listed, all) {
		t.Errorf("topCommands names %v, the tree has %v", listed, all)
	}
	for _, args := range [][]string{nil, {"--domain", "x", "run"}, {"help", "run"}, {"__complete", "ru"}, {"runn"}} {
		if got := commandFor(args); got != "" {
			t.Errorf("commandFor(%q) = %q, want the whole tree", args, got)
		}
	}
}

// Every package's patterns (compiled on first use, for start-up time)
// compile: this binary links every package.
func TestEveryLazyPatternCompiles(t *testing.T) {
	if err := lazyre.Check(); err != nil {
		t.Fatal(err)
	}
}
