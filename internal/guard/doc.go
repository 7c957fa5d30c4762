// Package guard holds tests that keep the code base's shape: the dependency
// direction between packages and a package comment on every package.
package guard
