package secret_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkListUncached lists a folder of 100 secrets (20 with two
// references each) with expansion and imports through secret.Service.List
// on a context that did not go through cache.Gen.Begin, so every lookup
// reads the database, as the first request after any write does: grants,
// project and folder, rows, tags, imports, the expansion's folder, and the
// audit row.
func BenchmarkListUncached(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			pid := e.SeedFolder(b, "bench", 100)
			az := authz.NewResolver(e.DB, nil)
			svc := secret.NewService(e.DB, project.NewService(e.DB, az, e.Keyring, nil), az, e.Keyring, nil)
			actor := authz.Actor{Kind: authz.ActorIdentity, ID: e.IdentityID, OrgID: e.OrgID, Name: "admin"}
			sc := secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}
			o := secret.ReadOptions{Expand: true, IncludeImports: true}
			ctx := context.Background()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				res, err := svc.List(ctx, actor, sc, o)
				if err != nil || len(res.Secrets) != 100 {
					b.Fatal(len(res.Secrets), err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time this process has used. Per operation it is a
// steadier figure than wall time on a machine whose cores are shared (on
// PostgreSQL it leaves out the server's share).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
