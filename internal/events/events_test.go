package events_test

import (
	"context"
	"errors"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/events"
)

func TestBrokerDeliversInOrderAndFilters(t *testing.T) {
	b := events.NewBroker(8)
	s := b.Subscribe(t.Context(), func(ev events.Event) bool { return ev.ProjectID == "p" })
	b.Publish(events.Event{Type: events.SecretCreate, ProjectID: "p", Key: "A"})
	b.Publish(events.Event{Type: events.SecretCreate, ProjectID: "q", Key: "X"})
	b.Publish(events.Event{Type: events.SecretUpdate, ProjectID: "p", Key: "A"})
	for _, want := range []events.Type{events.SecretCreate, events.SecretUpdate} {
		if ev := <-s.C; ev.Type != want || ev.ProjectID != "p" {
			t.Fatalf("got %+v, want %s in p", ev, want)
		}
	}
	select {
	case ev := <-s.C:
		t.Fatalf("unexpected %+v", ev)
	default:
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := events.NewBroker(2)
	slow := b.Subscribe(t.Context(), nil)
	fast := b.Subscribe(t.Context(), nil)
	for i := range 3 {
		b.Publish(events.Event{Type: events.SecretUpdate, Version: i})
		<-fast.C
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), events.ErrSlow) {
		t.Fatalf("slow got %d events, err %v", n, slow.Err())
	}
	if b.Len() != 1 {
		t.Fatalf("%d subscribers left, want 1", b.Len())
	}
}

func TestSubscriptionEndsWithContext(t *testing.T) {
	b := events.NewBroker(0)
	ctx, cancel := context.WithCancel(t.Context())
	s := b.Subscribe(ctx, nil)
	cancel()
	for range s.C {
	}
	if s.Err() != nil || b.Len() != 0 {
		t.Fatalf("err %v, %d left", s.Err(), b.Len())
	}
	s.Close() // again: no panic
	i := b.Subscribe(t.Context(), nil)
	b.Interrupt(nil)
	for range i.C {
	}
	if !errors.Is(i.Err(), events.ErrInterrupted) {
		t.Fatalf("err %v", i.Err())
	}
}
