package main

import (
	"io"
	"testing"
)

// Each command is registered once: cobra keeps duplicates, lists them twice
// in the help and runs the first one.
func TestRootCommandsAreUnique(t *testing.T) {
	root := newRootCmd(func(string) string { return "" }, nil, io.Discard, io.Discard)
	seen := map[string]bool{}
	for _, c := range root.Commands() {
		if seen[c.Name()] {
			t.Errorf("command %q registered more than once", c.Name())
		}
		seen[c.Name()] = true
	}
	for _, want := range []string{"groups", "users", "pki", "ssh", "rotations", "connections", "privileges", "project-templates"} {
		if !seen[want] {
			t.Errorf("command %q missing", want)
		}
	}
}
