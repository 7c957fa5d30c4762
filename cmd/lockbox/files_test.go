package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestCheckDataDirOwner: a server running as an unprivileged user does not
// start on a data dir of another unprivileged user, nor on a root key or
// database file of such a user in its own (a 1777 directory of nobody's with
// a planted root.key started with three warnings); it does on its own
// directory, on root's (a volume, even a world-writable one), on one it will
// make, and a server running as root is not refused.
func TestCheckDataDirOwner(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		t.Helper()
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, mode)
		return d
	}
	// theirs makes path another unprivileged user's, for a server running as
	// the returned uid: as root, by giving it to nobody; else the test's own
	// files are another user's to a server of the next uid.
	theirs := func(path string) int {
		t.Helper()
		if os.Getuid() == 0 {
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return 1000
		}
		return os.Getuid() + 1
	}
	own := mk("own", 0o700)
	if err := checkDataDirOwner(own, os.Getuid()); err != nil {
		t.Fatalf("a directory of one's own: %v", err)
	}
	if err := checkDataDirOwner(filepath.Join(base, "not-yet"), 1000); err != nil {
		t.Fatalf("a directory lockbox will make: %v", err)
	}
	planted := mk("planted", 0o1777)
	me := theirs(planted)
	if err := checkDataDirOwner(planted, me); err == nil || !strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("another user's data dir: %v", err)
	}
	if err := checkDataDirOwner(planted, 0); err != nil {
		t.Fatalf("a server running as root: %v", err)
	}
	if os.Getuid() == 0 {
		volume := mk("volume", 0o777) // root's, as a provisioner makes it
		if err := checkDataDirOwner(volume, 1000); err != nil {
			t.Fatalf("root's world-writable volume: %v", err)
		}
		key := filepath.Join(volume, "root.key")
		os.WriteFile(key, []byte("x"), 0o600)
		theirs(key)
		if err := checkDataDirOwner(volume, 1000); err == nil || !strings.Contains(err.Error(), "root.key belongs to another user") {
			t.Fatalf("another user's root key: %v", err)
		}
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

// TestASessionFileSwappedForALinkIsNotRead: the file is checked on the
// descriptor it is read from; checked by path and read by path, a link
// renamed over it in between was read (42 times in 3 s of swapping).
func TestASessionFileSwappedForALinkIsNotRead(t *testing.T) {
	dir := t.TempDir()
	c := &cli{getenv: func(k string) string {
		if k == "LOCKBOX_CONFIG_DIR" {
			return dir
		}
		return ""
	}}
	p := filepath.Join(dir, "session.json")
	other := filepath.Join(t.TempDir(), "planted.json")
	os.WriteFile(other, []byte(`{"domain":"http://127.0.0.1:6666","token":"x"}`), 0o600)
	own, link := filepath.Join(dir, "own.tmp"), filepath.Join(dir, "link.tmp")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			os.WriteFile(own, []byte(`{"domain":"http://127.0.0.1:1","token":"x"}`), 0o600)
			os.Rename(own, p)
			os.Symlink(other, link)
			os.Rename(link, p)
		}
	}()
	deadline := time.Now().Add(time.Second)
	loads := 0
	for time.Now().Before(deadline) {
		if s, err := c.loadSession(); err == nil && s != nil {
			loads++
			if s.Domain != "http://127.0.0.1:1" {
				close(stop)
				<-done
				t.Fatalf("the planted file was read: %+v", s)
			}
		}
	}
	close(stop)
	<-done
	if loads == 0 {
		t.Fatal("the own file was never read: the test proves nothing")
	}
}
