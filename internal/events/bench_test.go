package events_test

import (
	"fmt"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/events"
)

// BenchmarkPublish: one write's event on a node with 1,000 streams open on
// other projects and 10 on the written one, each draining its channel
// (-benchtime at most 65,536x: beyond, slow subscriptions are dropped).
func BenchmarkPublish(b *testing.B) {
	br := events.NewBroker(1 << 16) // no subscription falls behind within the run
	drain := func(s *events.Subscription) {
		go func() {
			for range s.C {
			}
		}()
	}
	for i := range 1000 {
		p := fmt.Sprintf("other-%d", i)
		drain(br.Subscribe(b.Context(), p, func(ev events.Event) bool { return ev.ProjectID == p }))
	}
	for range 10 {
		drain(br.Subscribe(b.Context(), "p", func(ev events.Event) bool { return ev.ProjectID == "p" }))
	}
	ev := events.Event{Type: events.SecretUpdate, ProjectID: "p", Env: "dev", Path: "/", Key: "K"}
	b.ReportAllocs()
	for b.Loop() {
		br.Publish(ev)
	}
}
