package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

// TestCheckDataDirOwner: the server does not start on a data dir another
// user could have prepared (one everyone may write to, or another user's),
// nor on a root key or database file of another user's in it; it does on a
// directory of its own, or one it will make. (A 1777 directory of nobody's
// with a planted root.key started with three warnings.)
func TestCheckDataDirOwner(t *testing.T) {
	base := t.TempDir()
	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkDataDirOwner(own); err != nil {
		t.Fatalf("a directory of one's own: %v", err)
	}
	if err := checkDataDirOwner(filepath.Join(base, "not-yet")); err != nil {
		t.Fatalf("a directory lockbox will make: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o1777)
	if err := checkDataDirOwner(open); err == nil || !strings.Contains(err.Error(), "writable by every user") {
		t.Fatalf("a world-writable data dir: %v", err)
	}
	if os.Getuid() != 0 {
		return // only root can give a file to another user here
	}
	theirs := filepath.Join(base, "theirs")
	os.Mkdir(theirs, 0o700)
	os.Chown(theirs, 65534, 65534)
	if err := checkDataDirOwner(theirs); err == nil || !strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("another user's data dir: %v", err)
	}
	key := filepath.Join(own, "root.key")
	os.WriteFile(key, []byte("x"), 0o600)
	os.Chown(key, 65534, 65534)
	if err := checkDataDirOwner(own); err == nil || !strings.Contains(err.Error(), "root.key belongs to another user") {
		t.Fatalf("another user's root key: %v", err)
	}
}

// TestASessionFileOthersMayWriteIsNotUsed: a session file others may write
// (or another user's, or a link) is refused, not used: its domain would
// receive the client secret of a login from the environment.
func TestASessionFileOthersMayWriteIsNotUsed(t *testing.T) {
	dir := t.TempDir()
	c := &cli{getenv: func(k string) string {
		if k == "LOCKBOX_CONFIG_DIR" {
			return dir
		}
		return ""
	}}
	p := filepath.Join(dir, "session.json")
	os.WriteFile(p, []byte(`{"domain":"http://127.0.0.1:1","token":"x"}`), 0o600)
	if s, err := c.loadSession(); err != nil || s == nil || s.Domain != "http://127.0.0.1:1" {
		t.Fatalf("one's own session: %+v %v", s, err)
	}
	os.Chmod(p, 0o666)
	if s, err := c.loadSession(); err == nil {
		t.Fatalf("a session file anyone may write was used: %+v", s)
	}
	os.Remove(p)
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	os.WriteFile(target, []byte(`{"domain":"http://127.0.0.1:2","token":"x"}`), 0o600)
	os.Symlink(target, p)
	if s, err := c.loadSession(); err == nil {
		t.Fatalf("a link as the session file was followed: %+v", s)
	}
	if os.Getuid() == 0 {
		os.Remove(p)
		os.WriteFile(p, []byte(`{"domain":"http://127.0.0.1:3","token":"x"}`), 0o600)
		os.Chown(p, 65534, 65534)
		if s, err := c.loadSession(); err == nil {
			t.Fatalf("another user's session file was used: %+v", s)
		}
	}
}
