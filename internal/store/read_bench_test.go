package store_test

import (
	"context"
	"testing"

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
				for b.Loop() {
					rows, err := e.DB.FolderSecrets(ctx, f.ID, "")
					if err != nil || len(rows) != 100 {
						b.Fatal(len(rows), err)
					}
				}
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
				for b.Loop() {
					if _, err := e.DB.SecretTags(ctx, ids); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
