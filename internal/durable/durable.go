// Package durable holds what makes a file system change survive a crash or
// a power loss beyond the file's own fsync.
package durable

import (
	"fmt"
	"os"
)

// SyncDir syncs directory dir, making a rename or a new file in it
// durable: fsync of a file covers its data, not the entry naming it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
