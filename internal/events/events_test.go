package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/events"
)

func TestBrokerDeliversInOrderAndFilters(t *testing.T) {
	b := events.NewBroker(8)
	s := b.Subscribe(t.Context(), "", func(ev events.Event) bool { return ev.ProjectID == "p" })
	byProject := b.Subscribe(t.Context(), "p", nil)
	b.Publish(events.Event{Type: events.SecretCreate, ProjectID: "p", Key: "A"})
	b.Publish(events.Event{Type: events.SecretCreate, ProjectID: "q", Key: "X"})
	b.Publish(events.Event{Type: events.SecretUpdate, ProjectID: "p", Key: "A"})
	for _, want := range []events.Type{events.SecretCreate, events.SecretUpdate} {
		if ev := <-s.C; ev.Type != want || ev.ProjectID != "p" {
			t.Fatalf("got %+v, want %s in p", ev, want)
		}
	}
	for _, want := range []events.Type{events.SecretCreate, events.SecretUpdate} {
		if ev := <-byProject.C; ev.Type != want || ev.ProjectID != "p" {
			t.Fatalf("subscribed to p: got %+v, want %s in p", ev, want)
		}
	}
	select {
	case ev := <-s.C:
		t.Fatalf("unexpected %+v", ev)
	case ev := <-byProject.C:
		t.Fatalf("unexpected %+v", ev)
	default:
	}
}

// TestASlowFilterDelaysOnlyItsSubscription: filters run on their
// subscription's goroutine, not the publisher's. One whose filter never
// returns (a member's costly globs, taken to the limit) neither blocks
// Publish, which on PostgreSQL feeds every project from one goroutine, nor
// the other subscriptions of the project; it falls behind and is dropped.
// Before, Publish ran every filter under the broker's one lock.
func TestASlowFilterDelaysOnlyItsSubscription(t *testing.T) {
	b := events.NewBroker(2)
	release := make(chan struct{})
	stuck := b.Subscribe(t.Context(), "p", func(events.Event) bool { <-release; return true })
	other := b.Subscribe(t.Context(), "p", nil)
	published := make(chan struct{})
	go func() {
		for i := range 8 {
			b.Publish(events.Event{Type: events.SecretUpdate, ProjectID: "p", Version: i})
			if i%2 == 1 {
				<-other.C
				<-other.C
			}
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish waited on a subscription's filter")
	}
	close(release)
	for range stuck.C {
	}
	if !errors.Is(stuck.Err(), events.ErrSlow) {
		t.Fatalf("the stuck subscription ended with %v, want ErrSlow", stuck.Err())
	}
	if b.Len() != 1 {
		t.Fatalf("%d subscriptions left, want the other one", b.Len())
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := events.NewBroker(2)
	slow := b.Subscribe(t.Context(), "", nil)
	fast := b.Subscribe(t.Context(), "", nil)
	for i := range 3 {
		b.Publish(events.Event{Type: events.SecretUpdate, Version: i})
		<-fast.C
	}
	// The slow one's filter passes its events on by itself: it is dropped
	// once the third finds its channel full (read it before, and it keeps up).
	for deadline := time.Now().Add(10 * time.Second); b.Len() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want the slow one dropped", b.Len())
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	// What had passed its filter before it was dropped (none, if the
	// publisher found its buffer full first).
	if n > 2 || !errors.Is(slow.Err(), events.ErrSlow) {
		t.Fatalf("slow got %d events, err %v", n, slow.Err())
	}
	if b.Len() != 1 {
		t.Fatalf("%d subscribers left, want 1", b.Len())
	}
}

func TestSubscriptionEndsWithContext(t *testing.T) {
	b := events.NewBroker(0)
	ctx, cancel := context.WithCancel(t.Context())
	s := b.Subscribe(ctx, "", nil)
	cancel()
	for range s.C {
	}
	if s.Err() != nil || b.Len() != 0 {
		t.Fatalf("err %v, %d left", s.Err(), b.Len())
	}
	s.Close() // again: no panic
	i := b.Subscribe(t.Context(), "", nil)
	b.Interrupt(nil)
	for range i.C {
	}
	if !errors.Is(i.Err(), events.ErrInterrupted) {
		t.Fatalf("err %v", i.Err())
	}
}

// TestNothingAfterAMissedEvent: a subscription that fell behind gets no
// event published after the one it missed (a stream with a hole in it
// would look whole); it ends with ErrSlow after what came before.
func TestNothingAfterAMissedEvent(t *testing.T) {
	b := events.NewBroker(2)
	tokens := make(chan struct{}, 10) // each match waits for one
	s := b.Subscribe(t.Context(), "p", func(events.Event) bool { <-tokens; return true })
	pub := func(v int) { b.Publish(events.Event{Type: events.SecretUpdate, ProjectID: "p", Version: v}) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
		}
	}
	pub(0)
	pub(1)
	tokens <- struct{}{}
	tokens <- struct{}{}
	waitFor("two events passed", func() bool { return len(s.C) == 2 })
	pub(2)
	pub(3)
	tokens <- struct{}{} // 2 finds no room: missed
	waitFor("the subscription ended", func() bool { return b.Len() == 0 })
	if ev := <-s.C; ev.Version != 0 {
		t.Fatalf("first %d", ev.Version)
	}
	tokens <- struct{}{} // room again: 3 must not follow
	var got []int
	for ev := range s.C {
		got = append(got, ev.Version)
	}
	if len(got) != 1 || got[0] != 1 || !errors.Is(s.Err(), events.ErrSlow) {
		t.Fatalf("after the miss: %v, %v; want [1] and ErrSlow", got, s.Err())
	}
}

// TestABatchTakesOnePlaceInABuffer: the events of one write reach each
// stream as one item of its buffer, so a write of 1,000 secrets elsewhere
// in the project does not drop a stream whose filter has not caught up
// (the filter here waits until the write is published).
func TestABatchTakesOnePlaceInABuffer(t *testing.T) {
	b := events.NewBroker(2)
	gate := make(chan struct{})
	s := b.Subscribe(t.Context(), "p", func(ev events.Event) bool { <-gate; return ev.Key == "WATCHED" })
	other := b.Subscribe(t.Context(), "q", nil)
	evs := make([]events.Event, 1000)
	for i := range evs {
		evs[i] = events.Event{Type: events.SecretCreate, ProjectID: "p", Path: "/elsewhere", Key: fmt.Sprintf("K%d", i)}
	}
	evs[500].Key = "WATCHED"
	evs = append(evs, events.Event{Type: events.SecretCreate, ProjectID: "q", Key: "Q"})
	b.PublishAll(evs)
	close(gate)
	if ev := <-s.C; ev.Key != "WATCHED" {
		t.Fatalf("got %+v", ev)
	}
	if ev := <-other.C; ev.Key != "Q" || ev.ProjectID != "q" {
		t.Fatalf("the other project's stream got %+v", ev)
	}
	if b.Len() != 2 {
		t.Fatalf("%d subscriptions left, want both", b.Len())
	}
}
