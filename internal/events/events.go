// Package events carries committed secret changes to the clients subscribed
// to them: an in-process broker with a bounded buffer per subscriber, where a
// subscriber too slow to keep up is dropped rather than waited for.
package events

import (
	"context"
	"errors"
	"slices"
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
// (DefaultBuffer if n <= 0) after its filter, and n published batches
// before it.
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
	c       chan Event   // C, written by the filter goroutine only
	in      chan []Event // batches written by Publish under b.mu, closed when ended
	project string
	match   func(Event) bool
	b       *Broker
	stop    func() bool // guarded by b.mu
	err     error       // guarded by b.mu
	ended   atomic.Bool // set once the subscription ends
}

// Subscribe starts a subscription to the events of project ("" for every
// project) that match accepts (all if match is nil). It ends when ctx
// ends, on Close or Stop, or when it falls behind. match runs on the
// subscription's own goroutine.
func (b *Broker) Subscribe(ctx context.Context, project string, match func(Event) bool) *Subscription {
	c := make(chan Event, b.buffer)
	s := &Subscription{C: c, c: c, in: make(chan []Event, b.buffer), project: project, match: match, b: b}
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
// is ended with ErrSlow. Once a subscription has ended, for whatever
// reason, what is left in in is dropped unmatched: its reader must
// subscribe again and resync (or is gone), a stream with a hole in it
// would look whole, and a costly filter must not go on working for nobody.
func (s *Subscription) filter() {
	defer close(s.c)
	for evs := range s.in {
		for _, ev := range evs {
			if s.ended.Load() || (s.match != nil && !s.match(ev)) {
				continue
			}
			select {
			case s.c <- ev:
			default:
				s.b.mu.Lock()
				s.b.endLocked(s, ErrSlow)
				s.b.mu.Unlock()
			}
		}
	}
}

// Publish hands ev to every subscription of its project. A subscription
// whose buffer is full is ended with ErrSlow.
func (b *Broker) Publish(ev Event) { b.PublishAll([]Event{ev}) }

// PublishAll hands the events of one write (a batch of secrets) to every
// subscription of their projects, in order, as one item of its buffer: a
// write of 10,000 secrets does not fill the buffer of a stream watching
// elsewhere in the project. evs must not be changed afterwards.
func (b *Broker) PublishAll(evs []Event) {
	if len(evs) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, project := range projectsOf(evs) {
		mine := evs
		if project != "" && len(b.subs[project]) > 0 {
			mine = ofProject(evs, project)
		}
		for s := range b.subs[project] {
			select {
			case s.in <- mine:
			default:
				b.endLocked(s, ErrSlow)
			}
		}
	}
}

// projectsOf lists the projects of evs, then "" (the subscriptions to every
// project).
func projectsOf(evs []Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.ProjectID != "" && !slices.Contains(out, ev.ProjectID) {
			out = append(out, ev.ProjectID)
		}
	}
	return append(out, "")
}

// ofProject is evs when they are all of project, else those that are.
func ofProject(evs []Event, project string) []Event {
	if !slices.ContainsFunc(evs, func(ev Event) bool { return ev.ProjectID != project }) {
		return evs
	}
	return slices.DeleteFunc(slices.Clone(evs), func(ev Event) bool { return ev.ProjectID != project })
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
	s.ended.Store(true)
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
