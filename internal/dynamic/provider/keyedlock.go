package provider

import (
	"context"
	"sync"
)

// KeyedLock is a set of mutexes by key, made on first use and dropped when
// no one holds or waits for them; a wait ends with its context.
type KeyedLock struct {
	mu sync.Mutex
	m  map[string]*keyed
}

type keyed struct {
	ch   chan struct{} // holds a value while locked
	refs int           // holders and waiters
}

// NewKeyedLock returns an empty KeyedLock.
func NewKeyedLock() *KeyedLock { return &KeyedLock{m: map[string]*keyed{}} }

// Lock takes key's mutex, waiting at most as long as ctx; it returns the
// func that gives it back, or ctx's error.
func (l *KeyedLock) Lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	k := l.m[key]
	if k == nil {
		k = &keyed{ch: make(chan struct{}, 1)}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	select {
	case k.ch <- struct{}{}:
		return func() {
			<-k.ch
			l.done(key, k)
		}, nil
	case <-ctx.Done():
		l.done(key, k)
		return nil, ctx.Err()
	}
}

func (l *KeyedLock) done(key string, k *keyed) {
	l.mu.Lock()
	if k.refs--; k.refs == 0 {
		delete(l.m, key)
	}
	l.mu.Unlock()
}

// Len is the number of keys held or waited for.
func (l *KeyedLock) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
