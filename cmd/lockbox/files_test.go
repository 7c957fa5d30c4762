package main

import "testing"

// TestThroughOKRefusesAnotherUsersPipe: secrets are written through a
// target that is not a file only if it is the caller's own, or by name one
// of the process's descriptors, /dev/null or /dev/tty. Another user's pipe
// is refused wherever it is, /dev/shm included (anyone may make one there;
// everything under /dev and /proc was let through).
func TestThroughOKRefusesAnotherUsersPipe(t *testing.T) {
	const me, other = 1000, 65534
	for _, c := range []struct {
		path  string
		owner int
		want  bool
	}{
		{"/tmp/mine.fifo", me, true},
		{"/dev/shm/mine.fifo", me, true},
		{"/dev/shm/secrets.env", other, false},
		{"/dev/mqueue/x", other, false},
		{"/proc/1/fd/1", other, false},
		{"/tmp/planted.fifo", other, false},
		{"/dev/null", 0, true},
		{"/dev/tty", 0, true},
		{"/dev/stdout", 0, true},
		{"/dev/fd/63", 0, true},
		{"/proc/self/fd/1", 0, true},
		{"/dev/fd/../shm/secrets.env", other, false},
	} {
		if got := throughOK(c.path, c.owner, me); got != c.want {
			t.Errorf("throughOK(%q, owner %d) = %v, want %v", c.path, c.owner, got, c.want)
		}
	}
}
