package secret_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// BenchmarkBatchUpdateWithReferences: one batch update of 100 secrets,
// each given a value with a reference, in a folder of 2,000 secrets on
// SQLite. The write-time expansion check of every item looks the
// reference up; what it costs grows with the folder if the folder is read
// again for each item.
func BenchmarkBatchUpdateWithReferences(b *testing.B) {
	e := apptest.Bootstrapped(b, store.SQLite)
	pid := e.SeedFolder(b, "batch", 2000)
	svc, _, actor := newCounted(e)
	sc := secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}
	items := make([]secret.BatchItem, 100)
	for i := range items {
		v := fmt.Sprintf("x${K%03d}", i)
		items[i] = secret.BatchItem{Key: fmt.Sprintf("K%04d", 1000+i), Change: secret.Change{Value: &v}}
	}
	benchUpdateMany(b, svc, actor, sc, items)
}

// benchUpdateMany times one UpdateMany of items a loop, with allocations
// and the process's CPU time an op.
func benchUpdateMany(b *testing.B, svc *secret.Service, actor authz.Actor, sc secret.Scope, items []secret.BatchItem) {
	ctx := context.Background()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := svc.UpdateMany(ctx, actor, sc, "", items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}
