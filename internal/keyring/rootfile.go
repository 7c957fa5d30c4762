package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/durable"
)

// RootKeyFile is the name of the generated root key inside the data directory.
const RootKeyFile = "root.key"

// LoadOrCreateRootKey reads dir/root.key, creating it (mode 0600) with a fresh
// random key if it does not exist. created reports whether it was made now.
func LoadOrCreateRootKey(dir string) (key []byte, created bool, err error) {
	key, err = ReadRootKeyFile(filepath.Join(dir, RootKeyFile))
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("data dir: %w", err)
	}
	key = make([]byte, KeySize)
	rand.Read(key)
	if err := WriteRootKeyFile(dir, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// ReadRootKeyFile reads a root key file (the base64 of KeySize bytes, as
// WriteRootKeyFile writes it). A missing file is an fs.ErrNotExist error.
func ReadRootKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("root key file %s is malformed", path)
	}
	return key, nil
}

// CheckRootKey reports whether root opens every key in keys. The error names
// the first data key that does not open, and never holds key material.
func CheckRootKey(root []byte, keys []WrappedKey) error {
	a, _, err := rootAEAD(root)
	if err != nil {
		return err
	}
	for _, wk := range keys {
		if _, err := open(a, wk.Wrapped, wrapAD(wk.Owner)); err != nil {
			return fmt.Errorf("the root key does not open data key %s/%s", wk.Owner.Type, wk.Owner.ID)
		}
	}
	return nil
}

// WriteRootKeyFile replaces dir/root.key atomically with key (mode 0600).
func WriteRootKeyFile(dir string, key []byte) error {
	path := filepath.Join(dir, RootKeyFile)
	tmp, err := os.CreateTemp(dir, ".root.key-*")
	if err != nil {
		return fmt.Errorf("write root key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename itself must be durable: after a crash, a database beside
	// no root.key made the next start generate another key and refuse to run.
	return durable.SyncDir(filepath.Dir(path))
}
