// Package events carries committed secret changes to the clients subscribed
// to them: an in-process broker with a bounded buffer per subscriber, where a
// subscriber too slow to keep up is dropped rather than waited for.
package events

import (
	"context"
	"errors"
	"sync"
)

// Type names a change, as Infisical's event subscriptions spell it.
type Type string

// Event types.
const (
	SecretCreate         Type = "secret:create"
	SecretUpdate         Type = "secret:update"
	SecretDelete         Type = "secret:delete"
	SecretImportMutation Type = "secret:import-mutation"
)

// Known reports whether t is an event type lockbox knows.
func Known(t Type) bool {
	switch t {
	case SecretCreate, SecretUpdate, SecretDelete, SecretImportMutation:
		return true
	}
	return false
}

// Event is one committed change to a secret. It never carries a value or a
// comment: only where the secret lives, its name, tags and new version.
type Event struct {
	Type      Type
	ProjectID string
	Env       string // environment slug
	Path      string // folder path
	Key       string
	Tags      []string // tag slugs, for permission conditions on tags
	Version   int
}

// Why a subscription ended other than by its own Close.
var (
	// ErrSlow ends a subscriber whose buffer filled: it missed events.
	ErrSlow = errors.New("subscriber fell behind and missed events")
	// ErrInterrupted ends subscribers when the node may have missed events
	// (its cross-node feed was lost); they should subscribe again and resync.
	ErrInterrupted = errors.New("event feed interrupted")
)

// DefaultBuffer is a subscriber's buffer when NewBroker is given 0.
const DefaultBuffer = 256

// Broker fans events out to subscribers. Publish never blocks on a
// subscriber. The zero value is not usable; call NewBroker.
type Broker struct {
	buffer int
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
}

// NewBroker returns a broker giving each subscriber a buffer of n events
// (DefaultBuffer if n <= 0).
func NewBroker(n int) *Broker {
	if n <= 0 {
		n = DefaultBuffer
	}
	return &Broker{buffer: n, subs: map[*Subscription]struct{}{}}
}

// Subscription receives the events its match function accepts, in publish
// order, on C. C is closed when the subscription ends; Err then says why
// (nil after Close or the end of the subscribing context).
type Subscription struct {
	C     <-chan Event
	c     chan Event
	match func(Event) bool
	b     *Broker
	stop  func() bool // guarded by b.mu
	err   error       // guarded by b.mu
}

// Subscribe starts a subscription to the events match accepts (all if match
// is nil). It ends when ctx ends, on Close or Stop, or when it falls behind.
// match runs on the publisher's goroutine and must be fast.
func (b *Broker) Subscribe(ctx context.Context, match func(Event) bool) *Subscription {
	c := make(chan Event, b.buffer)
	s := &Subscription{C: c, c: c, match: match, b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, s.Close)
	return s
}

// Publish delivers ev to every subscriber that accepts it. A subscriber whose
// buffer is full is ended with ErrSlow.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.match != nil && !s.match(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			b.endLocked(s, ErrSlow)
		}
	}
}

// Interrupt ends every subscription with err (ErrInterrupted if nil).
func (b *Broker) Interrupt(err error) {
	if err == nil {
		err = ErrInterrupted
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		b.endLocked(s, err)
	}
}

// Len reports the number of live subscriptions.
func (b *Broker) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *Broker) endLocked(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.c)
}

// Close ends the subscription; C is closed and Err reports nil.
func (s *Subscription) Close() { s.Stop(nil) }

// Stop ends the subscription with err, which Err then reports. Stopping an
// ended subscription does nothing.
func (s *Subscription) Stop(err error) {
	s.b.mu.Lock()
	stop := s.stop
	s.b.endLocked(s, err)
	s.b.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Err reports why the subscription ended; read it after C is closed.
func (s *Subscription) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}
