package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestFolderPathsResolveAtAnyDepth: a path of one segment is read step by
// step and a deeper one in one statement (qWalk); both find the folder at
// the path, in its environment only, and nothing where a segment is
// missing, whichever segment that is. Creating a folder under a partly
// missing parent path makes only the missing folders.
func TestFolderPathsResolveAtAnyDepth(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, envID, _ := seedProject(t, db)
		_, otherEnv, _ := seedProject(t, db)
		ids := map[string]string{} // path → id, in envID
		mk := func(env, parent, name string) project.Folder {
			t.Helper()
			f, err := db.CreateFolder(ctx, env, parent, newFolder(env, name), audit.Event{Type: "create-folder"})
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		// /a/b/c/d made at once (its parents by CreateFolder), then
		// siblings at each level, and the same names in another
		// environment, made in another order.
		mk(otherEnv, "/a/b/c", "d")
		mk(otherEnv, "/a/b", "x")
		ids["/a/b/c/d"] = mk(envID, "/a/b/c", "d").ID
		ids["/a/b/x"] = mk(envID, "/a/b", "x").ID
		ids["/a/b/c/y"] = mk(envID, "/a/b/c", "y").ID
		ids["/a/b/c/d/e"] = mk(envID, "/a/b/c/d", "e").ID
		deep := "/" + strings.Repeat("z/", 31) + "z"
		ids[deep] = mk(envID, strings.TrimSuffix(deep, "/z"), "z").ID
		for _, p := range []string{"/a", "/a/b", "/a/b/c"} {
			f, err := db.FolderByPath(ctx, envID, p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			ids[p] = f.ID
		}
		seen := map[string]bool{}
		for p, id := range ids {
			f, err := db.FolderByPath(ctx, envID, p)
			if err != nil || f.ID != id || f.Path != p || f.EnvID != envID {
				t.Errorf("FolderByPath(%s) = %s %q in %s, %v; want %s", p, f.ID, f.Path, f.EnvID, err, id)
			}
			if seen[f.ID] {
				t.Errorf("%s: a folder made twice or found at two paths", p)
			}
			seen[f.ID] = true
			if o, err := db.FolderByPath(ctx, otherEnv, p); err == nil && o.ID == id {
				t.Errorf("%s found in the other environment", p)
			}
		}
		if f, err := db.FolderByPath(ctx, otherEnv, "/a/b/c/d"); err != nil || f.Path != "/a/b/c/d" {
			t.Errorf("other environment's /a/b/c/d: %+v %v", f, err)
		}
		for _, p := range []string{"/q", "/a/q", "/q/b/c", "/a/q/c", "/a/b/q", "/a/b/c/q", "/a/b/c/d/e/q",
			"/a/b/x/d", "/a/b/c/d/y", strings.Replace(deep, "z", "q", 1), deep[:len(deep)-1] + "q"} {
			if f, err := db.FolderByPath(ctx, envID, p); !errs.Is(err, errs.NotFound) {
				t.Errorf("FolderByPath(%s) = %+v, %v; want NotFound", p, f, err)
			}
		}
		// Under a parent path missing from its third segment on, only the
		// missing folders are made.
		f := mk(envID, "/a/b/q/r", "s")
		if got, err := db.FolderByPath(ctx, envID, "/a/b/q/r/s"); err != nil || got.ID != f.ID {
			t.Fatalf("/a/b/q/r/s: %+v %v", got, err)
		}
		q, err := db.FolderByPath(ctx, envID, "/a/b/q")
		if err != nil || q.ParentID != ids["/a/b"] {
			t.Errorf("/a/b/q: %+v %v; want a child of /a/b", q, err)
		}
		if kids, err := db.ChildFolders(ctx, ids["/a"]); err != nil || len(kids) != 1 {
			t.Errorf("/a has %d children (%v); want 1", len(kids), err)
		}
	})
}
