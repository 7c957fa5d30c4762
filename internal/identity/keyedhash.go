package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"

	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// keyedHash is HMAC-SHA256 under a key derived from the root key for one
// purpose: how client secrets, service-token secrets and lockout emails are
// kept, so that the database alone cannot test a guess. The key is loaded on
// first use; a failed load (a cancelled request, a database hiccup) is not
// remembered, the next call tries again.
type keyedHash struct {
	purpose string
	mu      sync.Mutex
	key     []byte
}

func (k *keyedHash) sum(ctx context.Context, kr *keyring.Keyring, s string) ([]byte, error) {
	k.mu.Lock()
	key := k.key
	if key == nil {
		var err error
		if key, err = kr.SystemKey(context.WithoutCancel(ctx), k.purpose); err != nil {
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
