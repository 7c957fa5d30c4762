package secret_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// BenchmarkBatchUpdateDeepPath: one batch update of 200 secrets, each
// naming its own secretPath, in a folder 1 or 32 levels deep. Every item
// resolves its path again; what one request costs should not grow with
// the depth of the path it names.
func BenchmarkBatchUpdateDeepPath(b *testing.B) {
	for _, d := range storetest.Engines {
		for _, depth := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/depth=%d", d, depth), func(b *testing.B) {
				benchDeepBatch(b, d, depth)
			})
		}
	}
}

func benchDeepBatch(b *testing.B, d store.Dialect, depth int) {
	e := apptest.Bootstrapped(b, d)
	pid := e.SeedFolder(b, "deep", 1)
	segs := make([]string, depth)
	for i := range segs {
		segs[i] = fmt.Sprintf("d%02d", i)
	}
	path := "/" + strings.Join(segs, "/")
	e.Must(b, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": pid, "environment": "dev",
		"path": "/" + strings.Join(segs[:depth-1], "/"), "name": segs[depth-1]})
	items := make([]secret.BatchItem, 200)
	batch := make([]map[string]any, len(items))
	for i := range items {
		k := fmt.Sprintf("D%03d", i)
		v := "v"
		items[i] = secret.BatchItem{Key: k, Path: path, Change: secret.Change{Value: &v}}
		batch[i] = map[string]any{"secretKey": k, "secretValue": "v0"}
	}
	e.Must(b, 200, "POST", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": pid,
		"environment": "dev", "secretPath": path, "secrets": batch})
	svc, _, actor := newCounted(e)
	benchUpdateMany(b, svc, actor, secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}, items)
}
