// Package events carries committed secret changes to the clients subscribed
// to them: an in-process broker with a bounded buffer per subscriber, where a
// subscriber too slow to keep up is dropped rather than waited for.
package events

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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
// subscriber, and never runs a subscriber's filter: it hands each event of a
// project to the subscriptions of that project (and those of every
// project), and each subscription filters on a goroutine of its own. A
// filter that is slow (a member's costly globs) delays only its own
// subscription, which falls behind and is dropped, never the publisher
// (the writer's request, or on PostgreSQL the one goroutine that feeds every
// project) nor other subscriptions. The zero value is not usable; call
// NewBroker.
type Broker struct {
	buffer int
	mu     sync.Mutex
	subs   map[string]map[*Subscription]struct{} // by project, "" for every project
	n      int
}

// NewBroker returns a broker giving each subscriber a buffer of n events
// (DefaultBuffer if n <= 0) before its filter and n after it.
func NewBroker(n int) *Broker {
	if n <= 0 {
		n = DefaultBuffer
	}
	return &Broker{buffer: n, subs: map[string]map[*Subscription]struct{}{}}
}

// Subscription receives the events its match function accepts, in publish
// order, on C. C is closed when the subscription ends; Err then says why
// (nil after Close or the end of the subscribing context).
type Subscription struct {
	C       <-chan Event
	c       chan Event // C, written by the filter goroutine only
	in      chan Event // written by Publish under b.mu, closed when ended
	project string
	match   func(Event) bool
	b       *Broker
	stop    func() bool // guarded by b.mu
	err     error       // guarded by b.mu
	closed  atomic.Bool // ended by Close or its context: nobody reads C
}

// Subscribe starts a subscription to the events of project ("" for every
// project) that match accepts (all if match is nil). It ends when ctx
// ends, on Close or Stop, or when it falls behind. match runs on the
// subscription's own goroutine.
func (b *Broker) Subscribe(ctx context.Context, project string, match func(Event) bool) *Subscription {
	c := make(chan Event, b.buffer)
	s := &Subscription{C: c, c: c, in: make(chan Event, b.buffer), project: project, match: match, b: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[project] == nil {
		b.subs[project] = map[*Subscription]struct{}{}
	}
	b.subs[project][s] = struct{}{}
	b.n++
	s.stop = context.AfterFunc(ctx, s.Close)
	go s.filter()
	return s
}

// filter passes the events match accepts from in to C, until in is closed
// (the subscription ended); then it closes C. A subscriber whose C is full
// is ended with ErrSlow and gets nothing after the event it missed; one
// that ended otherwise gets what was published before its end (unless
// closed: then nobody reads, and nothing more is matched).
func (s *Subscription) filter() {
	defer close(s.c)
	dropped := false
	for ev := range s.in {
		if dropped || s.closed.Load() || (s.match != nil && !s.match(ev)) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			dropped = true
			s.b.mu.Lock()
			s.b.endLocked(s, ErrSlow)
			s.b.mu.Unlock()
		}
	}
}

// Publish hands ev to every subscription of its project. A subscription
// whose buffer is full is ended with ErrSlow.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, project := range []string{ev.ProjectID, ""} {
		for s := range b.subs[project] {
			select {
			case s.in <- ev:
			default:
				b.endLocked(s, ErrSlow)
			}
		}
		if ev.ProjectID == "" {
			break
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
	for _, subs := range b.subs {
		for s := range subs {
			b.endLocked(s, err)
		}
	}
}

// Len reports the number of live subscriptions.
func (b *Broker) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *Broker) endLocked(s *Subscription, err error) {
	subs := b.subs[s.project]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(b.subs, s.project)
	}
	b.n--
	s.err = err
	s.closed.Store(err == nil)
	close(s.in)
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
