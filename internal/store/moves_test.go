package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// seedFolder makes a project (seedProject) and a folder /a in it; it
// returns the project's and environment's ids and /a.
func seedFolder(t testing.TB, db *store.DB) (projectID, envID string, a project.Folder) {
	t.Helper()
	projectID, envID, root := seedProject(t, db)
	a = newFolder(envID, "a")
	a.ParentID, a.Path = root, "/a"
	if err := db.ExecForTest(context.Background(), `INSERT INTO folders (id, env_id, parent_id, name, version, created_at, updated_at)
		VALUES (?, ?, ?, 'a', 1, 0, 0)`, a.ID, envID, root); err != nil {
		t.Fatal(err)
	}
	return projectID, envID, a
}

func newFolder(envID, name string) project.Folder {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return project.Folder{ID: store.NewID(), EnvID: envID, Name: name, Version: 1, CreatedAt: now, UpdatedAt: now}
}

func heldIDs(held []project.Held) []string {
	var ids []string
	for _, h := range held {
		ids = append(ids, h.ID)
	}
	return ids
}

// TestCreatesAndMovesSeeEachOther: a create (a Place guard) on the project's
// current count of moves lands without counting; a move's check is given
// what the move carries as committed (here the move is refused by its check
// and changes nothing); a create on a count a move has passed since is
// refused with project.ErrMoved and writes nothing. That the check runs
// under the move's lock, after every create in flight, is
// TestPGCreatesAndMovesWaitForEachOther's (SQLite has one writer).
func TestCreatesAndMovesSeeEachOther(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, envID, a := seedFolder(t, db)
		seen, err := db.ProjectMoves(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		place := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen, Place: true})
		b, err := db.CreateFolder(place, envID, "/a", newFolder(envID, "b"), audit.Event{Type: "create-folder"})
		if err != nil {
			t.Fatalf("a create on the current count: %v", err)
		}
		if n, _ := db.ProjectMoves(ctx, pid); n != seen {
			t.Fatalf("moves %d after a create, want %d", n, seen)
		}

		refused := errors.New("refused by the check")
		var held []project.Held
		move := func(check error) error {
			renamed := a
			renamed.Name, renamed.Version = "a2", a.Version+1
			return db.UpdateFolder(project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen,
				Check: func(ctx context.Context, c project.Contents) (err error) {
					if held, err = c.FolderContents(ctx, a); err != nil {
						return err
					}
					return check
				}}), renamed, audit.Event{Type: "update-folder"})
		}
		if err := move(refused); !errors.Is(err, refused) {
			t.Fatalf("a move its check refuses: %v", err)
		}
		if !slices.Contains(heldIDs(held), b.ID) {
			t.Fatalf("the move's check saw %v, not the folder created after its count was read (%s)", heldIDs(held), b.ID)
		}
		if n, _ := db.ProjectMoves(ctx, pid); n != seen {
			t.Fatalf("moves %d after a refused move, want %d", n, seen)
		}
		if f, err := db.FolderByPath(ctx, envID, "/a"); err != nil || f.ID != a.ID {
			t.Fatalf("/a after the refused move: %+v (%v)", f, err)
		}

		if err := move(nil); err != nil {
			t.Fatalf("the move its check allows: %v", err)
		}
		if _, err := db.CreateFolder(place, envID, "/a2", newFolder(envID, "c"), audit.Event{Type: "create-folder"}); !errors.Is(err, project.ErrMoved) {
			t.Fatalf("a create on the count before a move: %v, want ErrMoved", err)
		}
		if _, err := db.FolderByPath(ctx, envID, "/a2/c"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("the refused create wrote /a2/c (%v)", err)
		}
	})
}

// TestPGCreatesAndMovesWaitForEachOther: on PostgreSQL (SQLite has one
// writer) a move waits for a create in flight and its check then sees what
// the create wrote; a create waits for a move in flight and is then
// refused; a create that comes while a move waits queues behind it. The
// create is held in flight by a lock on the folder it writes under (its
// foreign key waits for it), the move by its own check.
func TestPGCreatesAndMovesWaitForEachOther(t *testing.T) {
	url := storetest.RequirePG(t)
	db, err := store.Open(context.Background(), store.Options{URL: url, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	pid, envID, a := seedFolder(t, db)

	// waiting returns once n backends of this database wait for a lock; it
	// fails if a write in done returns first.
	waiting := func(t *testing.T, n int, done ...<-chan error) {
		t.Helper()
		for range 1000 {
			for _, d := range done {
				select {
				case err := <-d:
					t.Fatalf("a write returned (%v) while the one it should wait for was in flight", err)
				default:
				}
			}
			var got int
			if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(pid)) > 0`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("fewer than %d writes waited", n)
	}
	rename := func(ctx context.Context, seen int64, name string, check func(context.Context, project.Contents) error) error {
		renamed := a
		renamed.Name, renamed.Version = name, a.Version+1
		return db.UpdateFolder(project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen, Check: check}),
			renamed, audit.Event{Type: "update-folder"})
	}

	t.Run("a move waits for a create", func(t *testing.T) {
		seen, err := db.ProjectMoves(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		hold, err := raw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Rollback()
		if _, err := hold.ExecContext(ctx, `SELECT 1 FROM folders WHERE id = $1 FOR UPDATE`, a.ID); err != nil {
			t.Fatal(err)
		}
		late := newFolder(envID, "late")
		created := make(chan error, 1)
		go func() {
			place := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen, Place: true})
			_, err := db.CreateFolder(place, envID, a.Path, late, audit.Event{Type: "create-folder"})
			created <- err
		}()
		waiting(t, 1, created) // the create, at its insert under /a
		var held []project.Held
		moved := make(chan error, 1)
		go func() {
			moved <- rename(ctx, seen, "moved", func(ctx context.Context, c project.Contents) (err error) {
				held, err = c.FolderContents(ctx, a)
				return err
			})
		}()
		waiting(t, 2, created, moved) // and the move
		// A create that comes after the waiting move (in another folder, so
		// the held lock is not in its way) queues behind it rather than
		// starving it, and is then refused: the move committed first.
		behind := make(chan error, 1)
		go func() {
			place := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen, Place: true})
			_, err := db.CreateFolder(place, envID, "/", newFolder(envID, "behind"), audit.Event{Type: "create-folder"})
			behind <- err
		}()
		waiting(t, 3, created, moved, behind)
		if err := hold.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := <-created; err != nil {
			t.Fatalf("the create: %v", err)
		}
		if err := <-moved; err != nil {
			t.Fatalf("the move: %v", err)
		}
		if err := <-behind; !errors.Is(err, project.ErrMoved) {
			t.Fatalf("the create behind the move: %v, want ErrMoved", err)
		}
		if !slices.Contains(heldIDs(held), late.ID) {
			t.Fatalf("the move's check saw %v, not the create in flight before it (%s)", heldIDs(held), late.ID)
		}
		a.Name, a.Version, a.Path = "moved", a.Version+1, "/moved"
	})

	t.Run("a create waits for a move", func(t *testing.T) {
		seen, err := db.ProjectMoves(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		inCheck, release := make(chan struct{}), make(chan struct{})
		let := sync.OnceFunc(func() { close(release) })
		t.Cleanup(let) // a failure below must not leave the move holding the lock
		moved := make(chan error, 1)
		go func() {
			moved <- rename(ctx, seen, "again", func(context.Context, project.Contents) error {
				close(inCheck)
				<-release
				return nil
			})
		}()
		select {
		case <-inCheck:
		case err := <-moved:
			t.Fatalf("the move returned before its check: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("the move never reached its check")
		}
		created := make(chan error, 1)
		go func() {
			place := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen, Place: true})
			_, err := db.CreateFolder(place, envID, a.Path, newFolder(envID, "after"), audit.Event{Type: "create-folder"})
			created <- err
		}()
		waiting(t, 1, created)
		let()
		if err := <-moved; err != nil {
			t.Fatalf("the move: %v", err)
		}
		if err := <-created; !errors.Is(err, project.ErrMoved) {
			t.Fatalf("the create after the move: %v, want ErrMoved", err)
		}
		if _, err := db.FolderByPath(ctx, envID, "/again/after"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("the refused create wrote /again/after (%v)", err)
		}
	})
}

// BenchmarkMoveCheck is a checked move of a folder holding n secrets, up to
// its check (which refuses it, so each round starts alike): the project's
// lock, the count, and the contents read inside the transaction, during
// which creates in the project wait.
func BenchmarkMoveCheck(b *testing.B) {
	for _, d := range storetest.Engines {
		for _, n := range []int{100, 10000} {
			b.Run(fmt.Sprintf("%s/%d", d, n), func(b *testing.B) {
				db := storetest.Open(b, d)
				ctx := context.Background()
				pid, _, a := seedFolder(b, db)
				if err := db.ExecForTest(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
					INSERT INTO secrets (id, project_id, folder_id, key, type, version, value, comment, created_at, updated_at)
					SELECT ? || '-' || CAST(i AS TEXT), ?, ?, 'K' || CAST(i AS TEXT), 'shared', 1, ?, ?, 0, 0 FROM n`,
					n, a.ID, pid, a.ID, []byte{0}, []byte{}); err != nil {
					b.Fatal(err)
				}
				refused := errors.New("refused")
				renamed := a
				renamed.Name = "b"
				for b.Loop() {
					seen, err := db.ProjectMoves(ctx, pid)
					if err != nil {
						b.Fatal(err)
					}
					err = db.UpdateFolder(project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Seen: seen,
						Check: func(ctx context.Context, c project.Contents) error {
							held, err := c.FolderContents(ctx, a)
							if err != nil {
								return err
							}
							if len(held) != n {
								return fmt.Errorf("%d held, want %d", len(held), n)
							}
							return refused
						}}), renamed, audit.Event{Type: "update-folder"})
					if !errors.Is(err, refused) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
