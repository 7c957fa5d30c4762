package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"

	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// KeyedHash is HMAC-SHA256 under a key derived from the root key for one
// purpose: how client secrets, service-token secrets, lockout emails and
// invitation tokens are kept, so that the database alone cannot test a guess. The key is loaded on
// first use; a failed load (a cancelled request, a database hiccup) is not
// remembered, the next call tries again.
type KeyedHash struct {
	Purpose string
	mu      sync.Mutex
	key     []byte
}

// Sum is the HMAC of s.
func (k *KeyedHash) Sum(ctx context.Context, kr *keyring.Keyring, s string) ([]byte, error) {
	k.mu.Lock()
	key := k.key
	if key == nil {
		var err error
		if key, err = kr.SystemKey(context.WithoutCancel(ctx), k.Purpose); err != nil {
			k.mu.Unlock()
			return nil, err
		}
		k.key = key
	}
	k.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil), nil
}
