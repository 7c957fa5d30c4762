package store_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkFolderRead reads a folder of 100 secrets through the store as a
// listing that missed every cache does: the folder's rows, then their tags
// (the project has none).
func BenchmarkFolderRead(b *testing.B) {
	for _, d := range storetest.Engines {
		b.Run(string(d), func(b *testing.B) {
			e := apptest.Bootstrapped(b, d)
			pid := e.SeedFolder(b, "bench", 100)
			ctx := context.Background()
			p, err := e.DB.ProjectByID(ctx, pid)
			if err != nil {
				b.Fatal(err)
			}
			f, err := e.DB.FolderByPath(ctx, p.Environments[0].ID, "/")
			if err != nil {
				b.Fatal(err)
			}
			b.Run("secrets", func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					rows, err := e.DB.FolderSecrets(ctx, f.ID, "")
					if err != nil || len(rows) != 100 {
						b.Fatal(len(rows), err)
					}
				}
				reportCPU(b, cpu)
			})
			rows, err := e.DB.FolderSecrets(ctx, f.ID, "")
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			b.Run("tags", func(b *testing.B) {
				b.ReportAllocs()
				cpu := cpuTime()
				for b.Loop() {
					if _, err := e.DB.SecretTags(ctx, ids); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
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

// reportCPU reports the process CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
