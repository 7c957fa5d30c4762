// Package keyring holds lockbox's key hierarchy: a root key wraps one data key per
// organization, project and system purpose; data keys seal values with AES-256-GCM
// whose associated data binds each ciphertext to its row and column.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// KeySize is the size of the root key and of every data key.
const KeySize = 32

const version1 = 1

// Owner names whose data key seals a value.
type Owner struct {
	Type string // OwnerOrg, OwnerProject or OwnerSystem
	ID   string
}

// Owner types.
const (
	OwnerOrg     = "org"
	OwnerProject = "project"
	OwnerSystem  = "system"
)

// Org returns the owner for an organization's data key.
func Org(id string) Owner { return Owner{OwnerOrg, id} }

// Project returns the owner for a project's data key.
func Project(id string) Owner { return Owner{OwnerProject, id} }

// WrappedKey is a data key as stored.
type WrappedKey struct {
	Owner   Owner
	Wrapped []byte
}

// Store keeps wrapped data keys. DataKey reports errs.NotFound when there is none;
// CreateDataKey reports errs.Conflict when one exists.
type Store interface {
	DataKey(ctx context.Context, o Owner) ([]byte, error)
	CreateDataKey(ctx context.Context, o Owner, wrapped []byte, rootKeyID string) error
}

// Keyring seals and opens values. It caches unwrapped data keys in memory.
type Keyring struct {
	root   cipher.AEAD
	rootID string
	store  Store

	mu    sync.RWMutex
	cache map[Owner]cipher.AEAD
	raw   map[Owner][]byte
}

// New returns a keyring over root (KeySize bytes) and st.
func New(root []byte, st Store) (*Keyring, error) {
	a, id, err := rootAEAD(root)
	if err != nil {
		return nil, err
	}
	return &Keyring{root: a, rootID: id, store: st, cache: map[Owner]cipher.AEAD{}, raw: map[Owner][]byte{}}, nil
}

func rootAEAD(root []byte) (cipher.AEAD, string, error) {
	if len(root) != KeySize {
		return nil, "", fmt.Errorf("root key must be %d bytes, got %d", KeySize, len(root))
	}
	wrapKey, err := hkdf.Key(sha256.New, root, nil, "lockbox root wrap v1", KeySize)
	if err != nil {
		return nil, "", err
	}
	a, err := newGCM(wrapKey)
	if err != nil {
		return nil, "", err
	}
	m := hmac.New(sha256.New, root)
	m.Write([]byte("lockbox root key id"))
	return a, hex.EncodeToString(m.Sum(nil)[:8]), nil
}

// RootKeyID is a fingerprint of the root key, safe to store and log.
func (k *Keyring) RootKeyID() string { return k.rootID }

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func wrapAD(o Owner) []byte { return []byte("lockbox data key|" + o.Type + "|" + o.ID) }

// NewDataKey makes a data key for o and returns it wrapped, for the caller to
// store in the same transaction as the owner's row. The key is cached.
func (k *Keyring) NewDataKey(o Owner) ([]byte, error) {
	key, wrapped := k.newKey(o)
	if err := k.remember(o, key); err != nil {
		return nil, err
	}
	return wrapped, nil
}

// newKey makes a data key for o, and the key wrapped by the root key.
func (k *Keyring) newKey(o Owner) (key, wrapped []byte) {
	key = make([]byte, KeySize)
	rand.Read(key)
	return key, seal(k.root, key, wrapAD(o))
}

// Forget drops o's cached key (after its owner is deleted).
func (k *Keyring) Forget(o Owner) {
	k.mu.Lock()
	delete(k.cache, o)
	delete(k.raw, o)
	k.mu.Unlock()
}

func (k *Keyring) remember(o Owner, key []byte) error {
	a, err := newGCM(key)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.cache[o] = a
	k.raw[o] = key
	k.mu.Unlock()
	return nil
}

func (k *Keyring) aead(ctx context.Context, o Owner) (cipher.AEAD, error) {
	k.mu.RLock()
	a, ok := k.cache[o]
	k.mu.RUnlock()
	if ok {
		return a, nil
	}
	if _, err := k.load(ctx, o); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cache[o], nil
}

func (k *Keyring) load(ctx context.Context, o Owner) ([]byte, error) {
	wrapped, err := k.store.DataKey(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("load data key %s/%s: %w", o.Type, o.ID, err)
	}
	key, err := open(k.root, wrapped, wrapAD(o))
	if err != nil {
		return nil, errs.Internalf(err, "unwrap data key %s/%s: wrong root key?", o.Type, o.ID)
	}
	if err := k.remember(o, key); err != nil {
		return nil, err
	}
	return key, nil
}

// AD builds associated data that binds a ciphertext to one column of one row.
func AD(table, column, rowID string) string { return table + "|" + column + "|" + rowID }

// Seal encrypts plaintext under o's data key, bound to ad.
func (k *Keyring) Seal(ctx context.Context, o Owner, plaintext []byte, ad string) ([]byte, error) {
	a, err := k.aead(ctx, o)
	if err != nil {
		return nil, err
	}
	return seal(a, plaintext, []byte(ad)), nil
}

// Open decrypts a ciphertext made by Seal with the same owner and ad. A
// ciphertext moved to another row or column fails to open.
func (k *Keyring) Open(ctx context.Context, o Owner, ciphertext []byte, ad string) ([]byte, error) {
	a, err := k.aead(ctx, o)
	if err != nil {
		return nil, err
	}
	pt, err := open(a, ciphertext, []byte(ad))
	if err != nil {
		return nil, errs.Internalf(err, "open sealed value (%s)", ad)
	}
	return pt, nil
}

// ErrDecrypt is returned when a ciphertext is malformed or fails authentication.
var ErrDecrypt = errors.New("keyring: message authentication failed")

func seal(a cipher.AEAD, plaintext, ad []byte) []byte {
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = version1
	rand.Read(out[1:])
	return a.Seal(out, out[1:1+a.NonceSize()], plaintext, ad)
}

func open(a cipher.AEAD, ct, ad []byte) ([]byte, error) {
	ns := a.NonceSize()
	if len(ct) < 1+ns+a.Overhead() || ct[0] != version1 {
		return nil, ErrDecrypt
	}
	pt, err := a.Open(nil, ct[1:1+ns], ct[1+ns:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SystemKey returns a 32-byte key for purpose (for example "jwt" or "hmac"),
// derived from the instance's system data key, which is created on first use.
// System keys survive root key rotation, so tokens and hashes stay valid.
func (k *Keyring) SystemKey(ctx context.Context, purpose string) ([]byte, error) {
	o := Owner{OwnerSystem, "instance"}
	k.mu.RLock()
	key, ok := k.raw[o]
	k.mu.RUnlock()
	if !ok {
		var err error
		key, err = k.load(ctx, o)
		if errs.Is(err, errs.NotFound) {
			// Kept in memory only once stored: a key another goroutine could
			// take from the cache before the insert, and that then lost to
			// another node's (or failed to be stored), would sign this node's
			// tokens and key its hashes apart from every other node's.
			var wrapped []byte
			key, wrapped = k.newKey(o)
			err = k.store.CreateDataKey(ctx, o, wrapped, k.rootID)
			if errs.Is(err, errs.Conflict) {
				// Another node (or goroutine) won the race: use its key.
				key, err = k.load(ctx, o)
			} else if err == nil {
				err = k.remember(o, key)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return hkdf.Key(sha256.New, key, nil, "lockbox system "+purpose, KeySize)
}

// Rewrap unwraps each key with oldRoot and wraps it with newRoot. It fails,
// changing nothing, if any key does not open with oldRoot.
func Rewrap(keys []WrappedKey, oldRoot, newRoot []byte) (rewrapped []WrappedKey, newRootID string, err error) {
	oldA, _, err := rootAEAD(oldRoot)
	if err != nil {
		return nil, "", fmt.Errorf("old root key: %w", err)
	}
	newA, newID, err := rootAEAD(newRoot)
	if err != nil {
		return nil, "", fmt.Errorf("new root key: %w", err)
	}
	out := make([]WrappedKey, 0, len(keys))
	for _, wk := range keys {
		key, err := open(oldA, wk.Wrapped, wrapAD(wk.Owner))
		if err != nil {
			return nil, "", fmt.Errorf("data key %s/%s does not open with the current root key", wk.Owner.Type, wk.Owner.ID)
		}
		out = append(out, WrappedKey{Owner: wk.Owner, Wrapped: seal(newA, key, wrapAD(wk.Owner))})
	}
	return out, newID, nil
}
