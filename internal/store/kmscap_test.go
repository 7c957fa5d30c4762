package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestKMSKeyCapHoldsUnderConcurrentCreates: a project one key short of
// kms.MaxKeysPerProject gets exactly one more from twelve creates at once
// (the service's count ran outside the insert's transaction: 1,004 keys).
func TestKMSKeyCapHoldsUnderConcurrentCreates(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			org := orgOf(t, db, pid)
			if err := db.ExecForTest(ctx, fmt.Sprintf(`INSERT INTO kms_keys (id, org_id, project_id, name, description, key_usage, algorithm, is_disabled, version, created_at, updated_at)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
				SELECT ? || '-' || i, ?, ?, 'seeded-' || i, '', 'encrypt-decrypt', 'aes-256-gcm', FALSE, 1, 0, 0 FROM n`, kms.MaxKeysPerProject-1),
				pid, org, pid); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errc := make(chan error, 12)
			for i := range 12 {
				wg.Go(func() {
					now := time.Now()
					k := kms.Key{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: fmt.Sprintf("racer-%d", i), Usage: "encrypt-decrypt",
						Algorithm: "aes-256-gcm", Version: 1, CreatedAt: now, UpdatedAt: now}
					errc <- db.CreateKMSKey(ctx, k, kms.SealedVersion{KeyID: k.ID, Version: 1, Material: []byte{1}, CreatedAt: now},
						audit.Event{OrgID: org, Type: "t"})
				})
			}
			wg.Wait()
			close(errc)
			ok := 0
			for err := range errc {
				switch {
				case err == nil:
					ok++
				case !errs.Is(err, errs.Invalid):
					t.Fatalf("a create failed otherwise: %v", err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d creates landed at the bound, want 1", ok)
			}
		})
	}
}
