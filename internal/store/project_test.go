package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestProjectWritesCheckWhatTheyRead: a settings write from a read that
// another change has overtaken is refused (project.ErrStale), and a
// deletion re-reads delete protection in its own transaction.
func TestProjectWritesCheckWhatTheyRead(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := t.Context()
			pid, _, _ := seedProject(t, db)
			read, err := db.ProjectByID(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			first := read
			first.HasDeleteProtection, first.UpdatedAt = true, read.UpdatedAt.Add(time.Second)
			if err := db.UpdateProject(ctx, first, read.UpdatedAt, audit.Event{Type: "protect", OrgID: pid}); err != nil {
				t.Fatal(err)
			}
			stale := read
			stale.Description, stale.UpdatedAt = "later", read.UpdatedAt.Add(2*time.Second)
			if err := db.UpdateProject(ctx, stale, read.UpdatedAt, audit.Event{Type: "describe", OrgID: pid}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("a write from an overtaken read: %v, want ErrStale", err)
			}
			if err := db.DeleteProject(ctx, pid, audit.Event{Type: "delete", OrgID: pid}); !errors.Is(err, project.ErrDeleteProtected) {
				t.Fatalf("deleting a protected project: %v", err)
			}
			if got, err := db.ProjectByID(ctx, pid); err != nil || !got.HasDeleteProtection || got.Description == "later" {
				t.Fatalf("after the refusals: %+v %v", got, err)
			}
		})
	}
}
