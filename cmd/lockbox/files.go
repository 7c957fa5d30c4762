package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lockbox-dev/lockbox/internal/durable"
)

// throughOK reports whether a target at path that is not a regular file,
// owned by owner, may be written through by user me: one of its own, or, by
// name, the process's own descriptors (/dev/stdout, /dev/fd/N), /dev/null
// and /dev/tty, whoever owns them.
func throughOK(path string, owner, me int) bool {
	if owner == me {
		return true
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	switch abs {
	case "/dev/null", "/dev/tty", "/dev/stdout", "/dev/stderr":
		return true
	}
	return strings.HasPrefix(abs, "/dev/fd/") || strings.HasPrefix(abs, "/proc/self/fd/")
}

// writeFileAtomic writes path whole or not at all: a new file in the same
// directory, with mode perm from before anything is written, synced and
// then renamed over path, and the directory synced. A symbolic link at
// path is replaced, not followed, and an existing file's looser mode is
// not kept.
//
// A target that is not a file (a pipe, /dev/stdout, /dev/fd/N from a
// shell's process substitution), or a link to one, is written through as
// it is: nothing lands on disk, and replacing it would. Only the caller's
// own, or one of the process's own descriptors or /dev/null and /dev/tty
// (throughOK): another user's pipe planted where the file was to go (in
// /dev/shm, say, which anyone may write) would hand them the secrets.
func writeFileAtomic(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	if st, serr := os.Stat(path); serr == nil && !st.Mode().IsRegular() && !st.IsDir() {
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || !throughOK(path, int(sys.Uid), os.Getuid()) {
			return fmt.Errorf("%s is neither a regular file nor yours: not writing secrets into it", path)
		}
		return writeThrough(path, write)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	if err := write(w); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return durable.SyncDir(filepath.Dir(path))
}

// writeBytes is a write function for writeFileAtomic that writes b.
func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

// writeThrough writes to an existing target that is not a file.
func writeThrough(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := write(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
