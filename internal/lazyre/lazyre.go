// Package lazyre holds regular expressions compiled the first time they are
// used instead of at package initialisation. Every lockbox command is one
// binary with every package in it, so a pattern compiled at start-up costs
// each `lockbox version` and `lockbox run` (a bounded repetition such as
// {1,256} compiles into hundreds of instructions: about a millisecond).
package lazyre

import (
	"fmt"
	"regexp"
	"sync"
)

var (
	mu       sync.Mutex
	patterns []string // every pattern given to New in this binary
)

// New returns a function that compiles pattern on its first call, panicking
// as regexp.MustCompile does if it does not compile, and returns the same
// *regexp.Regexp on every call. Safe for concurrent use.
func New(pattern string) func() *regexp.Regexp {
	mu.Lock()
	patterns = append(patterns, pattern)
	mu.Unlock()
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// Check compiles every pattern New has been given, so that a test of a
// binary's packages finds a bad one without reaching the code that uses it.
func Check() error {
	mu.Lock()
	defer mu.Unlock()
	for _, p := range patterns {
		if _, err := regexp.Compile(p); err != nil {
			return fmt.Errorf("lazyre: %w", err)
		}
	}
	return nil
}
