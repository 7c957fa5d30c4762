package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// readEvent is a read's audit event as the secrets service makes it.
func readEvent(org, marker string) audit.Event {
	return audit.Event{OrgID: org, ActorType: "identity", ActorID: "bench-identity",
		ActorMetadata: map[string]any{"identityId": "bench-identity", "name": "bench"}, Type: "get-secrets",
		Metadata: map[string]any{"environment": "dev", "secretPath": "/", "numberOfSecrets": 100, "marker": marker},
		IP:       "127.0.0.1", UserAgent: "lockbox-bench/" + marker}
}

// BenchmarkAppendAudit appends read events from 16 goroutines at once (on two
// cores), as 16 clients reading secrets do.
func BenchmarkAppendAudit(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := db.AppendAudit(ctx, readEvent("bench-org", fmt.Sprint(n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
