package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/rotation"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestMigrationNormalisesRotationPaths: rotations saved before secretPath was
// normalised (//prod, /prod//) get the path the secrets service names
// (/prod); one that would then equal another rotation's path and name is
// renamed name-<last 8 of its id> (at most 32 characters, as a rotation
// name is) instead of stopping the migration, and normalised rows
// are left alone.
func TestMigrationNormalisesRotationPaths(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, org, conn := seedConnection(t, db)
			type row struct{ path, name, wantPath, wantName string }
			rows := []row{
				{"/prod", "r", "/prod", "r"},
				{"//prod", "r", "/prod", "r-"},
				{"/prod//", "r", "/prod", "r-"},
				{"//a///b/", "s", "/a/b", "s"},
				{"/", "t", "/", "t"},
				{"//", "u", "/", "u"},
				{"/x" + slashes(1000), "v", "/x", "v"},
				{"/a" + slashes(1023) + "b", "w", "/a/b", "w"},
				{"/long", "abcdefghijklmnopqrstuvwxyz012345", "/long", "abcdefghijklmnopqrstuvwxyz012345"},
				{"/long/", "abcdefghijklmnopqrstuvwxyz012345", "/long", "abcdefghijklmnopqrstuvwxyz012345-"},
			}
			ids := make([]string, len(rows))
			for i, r := range rows {
				st := rotation.State{Rotation: rotation.Rotation{ID: store.NewID(), OrgID: org, ProjectID: pid, ConnectionID: conn.ID,
					Type: "postgres-credentials", Name: r.name, Environment: "e", SecretPath: r.path,
					AutoRotate: true, IntervalDays: 1, ActiveIndex: 1, Status: rotation.Pending, CreatedAt: time.Now(), UpdatedAt: time.Now()}}
				if err := db.CreateRotation(ctx, st, audit.Event{OrgID: org, Type: "t"}, nil); err != nil {
					t.Fatal(err)
				}
				ids[i] = st.ID
			}
			if err := db.RedoMigrationForTest(ctx, 34); err != nil {
				t.Fatal(err)
			}
			for i, r := range rows {
				got, err := db.Rotation(ctx, ids[i])
				if err != nil {
					t.Fatal(err)
				}
				wantName := r.wantName
				if wantName == r.name+"-" {
					wantName = r.name[:min(23, len(r.name))] + "-" + ids[i][len(ids[i])-8:]
				}
				if got.SecretPath != r.wantPath || got.Name != wantName {
					t.Errorf("%q %q became %q %q, want %q %q", r.path, r.name, got.SecretPath, got.Name, r.wantPath, wantName)
				}
			}
		})
	}
}

func slashes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '/'
	}
	return string(b)
}

// TestMigrationKeepsOldProjectsHistory: a project made before projects had
// a pitVersionLimit kept every version; migration 00035 gives it 100, the
// most there is, not the new projects' 10, so that its next write does not
// cut its history to 10.
func TestMigrationKeepsOldProjectsHistory(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			if p, err := db.ProjectByID(ctx, pid); err != nil || p.PitVersionLimit != 10 {
				t.Fatalf("a new project keeps %d versions (%v), want 10", p.PitVersionLimit, err)
			}
			if err := db.RedoMigrationForTest(ctx, 35); err != nil {
				t.Fatal(err)
			}
			if p, err := db.ProjectByID(ctx, pid); err != nil || p.PitVersionLimit != 100 {
				t.Fatalf("a project older than the setting keeps %d versions (%v), want 100", p.PitVersionLimit, err)
			}
		})
	}
}
