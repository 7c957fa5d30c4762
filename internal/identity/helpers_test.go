package identity_test

import (
	"crypto/rand"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// newKeyring is a keyring over db with a random root key.
func newKeyring(t testing.TB, db *store.DB) *keyring.Keyring {
	t.Helper()
	root := make([]byte, keyring.KeySize)
	rand.Read(root)
	kr, err := keyring.New(root, db)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}
