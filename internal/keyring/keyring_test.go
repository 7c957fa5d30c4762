package keyring_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

func newKey() []byte {
	k := make([]byte, keyring.KeySize)
	rand.Read(k)
	return k
}

func TestSealOpenBindsRowAndOwner(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		kr, err := keyring.New(newKey(), db)
		if err != nil {
			t.Fatal(err)
		}
		projA, projB := keyring.Project("a"), keyring.Project("b")
		for _, o := range []keyring.Owner{projA, projB} {
			w, err := kr.NewDataKey(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.CreateDataKey(ctx, o, w, kr.RootKeyID()); err != nil {
				t.Fatal(err)
			}
		}
		ct, err := kr.Seal(ctx, projA, []byte("s3cret"), keyring.AD("secrets", "value", "row1"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, []byte("s3cret")) {
			t.Fatal("ciphertext contains the plaintext")
		}
		pt, err := kr.Open(ctx, projA, ct, keyring.AD("secrets", "value", "row1"))
		if err != nil || string(pt) != "s3cret" {
			t.Fatalf("open = %q, %v", pt, err)
		}
		cases := []struct {
			name  string
			owner keyring.Owner
			ad    string
		}{
			{"moved to another row", projA, keyring.AD("secrets", "value", "row2")},
			{"moved to another column", projA, keyring.AD("secrets", "comment", "row1")},
			{"moved to another project", projB, keyring.AD("secrets", "value", "row1")},
		}
		for _, c := range cases {
			if _, err := kr.Open(ctx, c.owner, ct, c.ad); err == nil {
				t.Errorf("%s: opened", c.name)
			}
		}
		// A keyring with another root key cannot unwrap the stored data key.
		other, _ := keyring.New(newKey(), db)
		if _, err := other.Open(ctx, projA, ct, keyring.AD("secrets", "value", "row1")); err == nil {
			t.Error("opened with a different root key")
		}
	})
}

func TestRotateRootKeyRewrapsAndEverythingStillReads(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		oldRoot, newRoot := newKey(), newKey()
		kr, _ := keyring.New(oldRoot, db)
		o := keyring.Org("org1")
		w, _ := kr.NewDataKey(o)
		if err := db.CreateDataKey(ctx, o, w, kr.RootKeyID()); err != nil {
			t.Fatal(err)
		}
		sys1, err := kr.SystemKey(ctx, "jwt")
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := kr.Seal(ctx, o, []byte("value"), "t|c|1")

		n, err := db.RotateRootKey(ctx, func(keys []keyring.WrappedKey) ([]keyring.WrappedKey, string, error) {
			return keyring.Rewrap(keys, oldRoot, newRoot)
		})
		if err != nil || n != 2 {
			t.Fatalf("rotate: n=%d err=%v", n, err)
		}
		fresh, _ := keyring.New(newRoot, db)
		pt, err := fresh.Open(ctx, o, ct, "t|c|1")
		if err != nil || string(pt) != "value" {
			t.Fatalf("after rotation open = %q, %v", pt, err)
		}
		sys2, err := fresh.SystemKey(ctx, "jwt")
		if err != nil || !bytes.Equal(sys1, sys2) {
			t.Fatalf("system key changed across rotation (err %v)", err)
		}
		stale, _ := keyring.New(oldRoot, db)
		if _, err := stale.Open(ctx, o, ct, "t|c|1"); err == nil {
			t.Fatal("old root key still opens data keys after rotation")
		}
		// Rotating with the wrong current key changes nothing.
		_, err = db.RotateRootKey(ctx, func(keys []keyring.WrappedKey) ([]keyring.WrappedKey, string, error) {
			return keyring.Rewrap(keys, oldRoot, newKey())
		})
		if !errs.Is(err, errs.Invalid) {
			t.Fatalf("rotate with wrong key: %v", err)
		}
		if _, err := fresh.Open(ctx, o, ct, "t|c|1"); err != nil {
			t.Fatalf("failed rotation damaged keys: %v", err)
		}
	})
}

func TestRootKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, created, err := keyring.LoadOrCreateRootKey(dir)
	if err != nil || !created || len(k1) != keyring.KeySize {
		t.Fatalf("create: %v %v %d", created, err, len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, keyring.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := keyring.LoadOrCreateRootKey(dir)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: created=%v err=%v equal=%v", created, err, bytes.Equal(k1, k2))
	}
	os.WriteFile(filepath.Join(dir, keyring.RootKeyFile), []byte("not base64!"), 0o600)
	if _, _, err := keyring.LoadOrCreateRootKey(dir); err == nil {
		t.Fatal("malformed key file accepted")
	}
}

func TestReadRootKeyFile(t *testing.T) {
	dir := t.TempDir()
	k, _, err := keyring.LoadOrCreateRootKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := keyring.ReadRootKeyFile(filepath.Join(dir, keyring.RootKeyFile))
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("read: %v, same key %v", err, bytes.Equal(got, k))
	}
	if _, err := keyring.ReadRootKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600)
	if _, err := keyring.ReadRootKeyFile(short); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("a 5-byte key: %v", err)
	}
}

func TestCheckRootKey(t *testing.T) {
	root := newKey()
	kr, err := keyring.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []keyring.WrappedKey
	for _, o := range []keyring.Owner{keyring.Org("o"), keyring.Project("p")} {
		w, err := kr.NewDataKey(o)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, keyring.WrappedKey{Owner: o, Wrapped: w})
	}
	if err := keyring.CheckRootKey(root, keys); err != nil {
		t.Fatalf("the right key: %v", err)
	}
	if err := keyring.CheckRootKey(newKey(), keys); err == nil || !strings.Contains(err.Error(), "org/o") {
		t.Fatalf("another key: %v, want it to name org/o", err)
	}
	// A wrapped key moved to another owner does not open.
	moved := []keyring.WrappedKey{keys[0], {Owner: keyring.Project("q"), Wrapped: keys[1].Wrapped}}
	if err := keyring.CheckRootKey(root, moved); err == nil || !strings.Contains(err.Error(), "project/q") {
		t.Fatalf("a key under another owner: %v", err)
	}
	if err := keyring.CheckRootKey(root[:16], keys); err == nil {
		t.Fatal("a 16-byte root key accepted")
	}
}

// lostRace is a data-key store in which another node stores the system key
// while this node's insert waits: every insert waits for the gate, then
// finds the other node's key there (a conflict).
type lostRace struct {
	mu      sync.Mutex
	keys    map[keyring.Owner][]byte
	theirs  []byte
	gate    chan struct{}
	entered chan struct{}
}

func (s *lostRace) DataKey(_ context.Context, o keyring.Owner) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.keys[o]; ok {
		return w, nil
	}
	return nil, errs.NotFoundf("no key")
}

func (s *lostRace) CreateDataKey(_ context.Context, o keyring.Owner, _ []byte, _ string) error {
	s.entered <- struct{}{}
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[o] = s.theirs
	return errs.Conflictf("exists")
}

// TestASystemKeyIsKeptOnlyOnceStored: while this node stores a new system
// key, another request on the node does not take it from memory; when the
// other node's key wins, both requests use that one (before, the second
// used the key that was never stored, and whatever kept it signed tokens
// and keyed hashes apart from every other node's for the life of the
// process).
func TestASystemKeyIsKeptOnlyOnceStored(t *testing.T) {
	root := newKey()
	other, err := keyring.New(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.NewDataKey(keyring.Owner{Type: keyring.OwnerSystem, ID: "instance"})
	if err != nil {
		t.Fatal(err)
	}
	st := &lostRace{keys: map[keyring.Owner][]byte{}, theirs: theirs, gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	k, err := keyring.New(root, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type result struct {
		key []byte
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { key, err := k.SystemKey(ctx, "jwt"); first <- result{key, err} }()
	<-st.entered // the first insert waits
	go func() { key, err := k.SystemKey(ctx, "jwt"); second <- result{key, err} }()
	var early *result
	select {
	case <-st.entered: // the second insert waits too
	case r := <-second:
		early = &r
	}
	close(st.gate)
	r1 := <-first
	r2 := early
	if r2 == nil {
		r := <-second
		r2 = &r
	}
	want, err := other.SystemKey(ctx, "jwt")
	if err != nil || r1.err != nil || r2.err != nil {
		t.Fatal(err, r1.err, r2.err)
	}
	if !bytes.Equal(r1.key, want) || !bytes.Equal(r2.key, want) {
		t.Fatalf("first request's key is the stored one: %v; second's: %v", bytes.Equal(r1.key, want), bytes.Equal(r2.key, want))
	}
}
