package secret_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// counting is the real store, counting reads of folders' rows and of
// secrets' tag links.
type counting struct {
	*store.DB
	rowReads, linkReads atomic.Int64
}

func (c *counting) FolderSecrets(ctx context.Context, folderID, userID string) ([]secret.Sealed, error) {
	c.rowReads.Add(1)
	return c.DB.FolderSecrets(ctx, folderID, userID)
}

func (c *counting) FoldersSecrets(ctx context.Context, folderIDs []string, userID string) (map[string][]secret.Sealed, error) {
	c.rowReads.Add(1)
	return c.DB.FoldersSecrets(ctx, folderIDs, userID)
}

func (c *counting) SecretTags(ctx context.Context, ids []string) (map[string][]secret.Tag, error) {
	c.linkReads.Add(1)
	return c.DB.SecretTags(ctx, ids)
}

// newCounted returns a secret service without caches over a counting store,
// and the bootstrap admin as its actor.
func newCounted(e *apptest.Env) (*secret.Service, *counting, authz.Actor) {
	st := &counting{DB: e.DB}
	az := authz.NewResolver(e.DB, nil)
	svc := secret.NewService(st, project.NewService(e.DB, az, e.Keyring, nil), az, e.Keyring, nil)
	return svc, st, authz.Actor{Kind: authz.ActorIdentity, ID: e.IdentityID, OrgID: e.OrgID, Name: "admin"}
}

// A listing reads the tag links only when the project has a tag, and a
// secret given a tag is listed with it.
func TestListReadsTagLinksOnlyWhenTheProjectHasTags(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "tags", 10)
			svc, st, actor := newCounted(e)
			sc := secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}
			ctx := context.Background()
			tagsOf := func() map[string][]string {
				t.Helper()
				res, err := svc.List(ctx, actor, sc, secret.ReadOptions{})
				if err != nil {
					t.Fatal(err)
				}
				out := map[string][]string{}
				for _, s := range res.Secrets {
					for _, tg := range s.Tags {
						out[s.Key] = append(out[s.Key], tg.Slug)
					}
				}
				return out
			}

			if got := tagsOf(); len(got) != 0 || st.linkReads.Load() != 0 {
				t.Fatalf("project without tags: tags %v, %d reads of tag links (want none)", got, st.linkReads.Load())
			}
			slug := "prod"
			tag, err := svc.CreateTag(ctx, actor, pid, secret.TagChange{Slug: &slug})
			if err != nil {
				t.Fatal(err)
			}
			if got := tagsOf(); len(got) != 0 || st.linkReads.Load() != 1 {
				t.Fatalf("project with an unused tag: tags %v, %d reads of tag links (want 1)", got, st.linkReads.Load())
			}
			if _, err := svc.Update(ctx, actor, sc, "K001", secret.Change{TagIDs: &[]string{tag.ID}}); err != nil {
				t.Fatal(err)
			}
			if got := tagsOf(); len(got) != 1 || !slices.Equal(got["K001"], []string{"prod"}) {
				t.Fatalf("K001 tagged prod: listed tags %v", got)
			}
		})
	}
}

// An expanding listing resolves references into the folder it lists from
// the rows it has read, without reading the folder again.
func TestExpandingListReadsTheFolderOnce(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "refs", 10) // K000 = ${K001}-${K002}, K005 = ${K006}-${K007}
			svc, st, actor := newCounted(e)
			res, err := svc.List(context.Background(), actor, secret.Scope{ProjectID: pid, Env: "dev", Path: "/"},
				secret.ReadOptions{Expand: true})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range res.Secrets {
				got[s.Key] = s.Value
			}
			if got["K000"] != "value-001-value-002" || got["K005"] != "value-006-value-007" || got["K001"] != "value-001" {
				t.Fatalf("expanded values %v", got)
			}
			if n := st.rowReads.Load(); n != 1 {
				t.Fatalf("the folder's rows were read %d times, want 1", n)
			}
		})
	}
}

// A batch update whose items hold references checks each against what the
// request has written so far, reading only the rows it wrote again, not
// the whole folder once per item (10,000 items in a folder of 10,000
// secrets read and decrypted the folder 10,000 times: tens of minutes of
// CPU for one request). What the batch wrote is what later items expand,
// so the request's budget counts it.
func TestABatchUpdateReadsTheFolderOnce(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "batch", 60)
			svc, st, actor := newCounted(e)
			sc := secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}
			ctx := context.Background()
			item := func(key, value string) secret.BatchItem {
				return secret.BatchItem{Key: key, Change: secret.Change{Value: &value}}
			}
			items := []secret.BatchItem{item("K001", "new-001")}
			for i := 40; i < 60; i++ {
				items = append(items, item(fmt.Sprintf("K%03d", i), "x${K001}"))
			}
			if _, err := svc.UpdateMany(ctx, actor, sc, "", items); err != nil {
				t.Fatal(err)
			}
			if n := st.rowReads.Load(); n != 1 {
				t.Fatalf("a batch of %d items read the folder's rows %d times, want 1", len(items), n)
			}

			// What the batch wrote is what later items expand: K002, looked
			// up by a first item, then made 400 KiB, 41 items referring to it
			// pass the request's 16 MiB.
			items = []secret.BatchItem{item("K009", "z${K002}"), item("K002", strings.Repeat("v", 400<<10))}
			for i := 10; i < 51; i++ {
				items = append(items, item(fmt.Sprintf("K%03d", i), "y${K002}"))
			}
			_, err := svc.UpdateMany(ctx, actor, sc, "", items)
			if err == nil || !strings.Contains(err.Error(), "would expand beyond") {
				t.Fatalf("41 references to a 400 KiB value the batch wrote: %v, want beyond the budget", err)
			}
		})
	}
}

// A recursive listing reads the rows of a whole subtree in one query, not
// one a folder (21,000 folders made one recursive read 2.7 s on SQLite), and
// answers each folder's secrets under its own path.
func TestRecursiveListReadsTheSubtreeAtOnce(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "tree", 1)
			svc, st, actor := newCounted(e)
			ctx := context.Background()
			ps := project.NewService(e.DB, authz.NewResolver(e.DB, nil), e.Keyring, nil)
			for _, f := range [][2]string{{"/", "a"}, {"/a", "b"}, {"/a/b", "c"}, {"/", "z"}, {"/", "m"}, {"/m", "n"}} {
				if _, err := ps.CreateFolder(ctx, actor, project.FolderRef{ProjectID: pid, Env: "dev", Path: f[0]}, f[1], ""); err != nil {
					t.Fatal(err)
				}
			}
			for _, path := range []string{"/a", "/a/b", "/a/b/c", "/z", "/m/n"} {
				sc := secret.Scope{ProjectID: pid, Env: "dev", Path: path}
				if _, err := svc.Create(ctx, actor, sc, []secret.New{{Key: "K", Value: "v" + path}}); err != nil {
					t.Fatal(err)
				}
			}
			st.rowReads.Store(0)
			res, err := svc.List(ctx, actor, secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}, secret.ReadOptions{Recursive: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := st.rowReads.Load(); n != 1 {
				t.Fatalf("a recursive listing of 8 folders read rows %d times; want once", n)
			}
			got := map[string]string{}
			for _, sec := range res.Secrets {
				if sec.Key == "K" {
					got[sec.Path] = sec.Value
				}
			}
			for _, path := range []string{"/a", "/a/b", "/a/b/c", "/z", "/m/n"} {
				if got[path] != "v"+path {
					t.Fatalf("K at %s: %q; all %v", path, got[path], got)
				}
			}
			// Same-named keys at one depth come in the database's order of
			// the folders' names (on PostgreSQL its collation's, as the walk
			// folder by folder had): a client keeps the last.
			for _, name := range []string{"B", "_c", "Z2"} {
				if _, err := ps.CreateFolder(ctx, actor, project.FolderRef{ProjectID: pid, Env: "dev", Path: "/"}, name, ""); err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Create(ctx, actor, secret.Scope{ProjectID: pid, Env: "dev", Path: "/" + name}, []secret.New{{Key: "K", Value: name}}); err != nil {
					t.Fatal(err)
				}
			}
			root, _, err := ps.ResolveFolder(ctx, pid, "dev", "/")
			if err != nil {
				t.Fatal(err)
			}
			kids, err := e.DB.ChildFolders(ctx, root.ID)
			if err != nil {
				t.Fatal(err)
			}
			var want, order []string
			for _, k := range kids {
				if k.Name != "m" { // holds no K itself
					want = append(want, "/"+k.Name)
				}
			}
			res, err = svc.List(ctx, actor, secret.Scope{ProjectID: pid, Env: "dev", Path: "/"}, secret.ReadOptions{Recursive: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, sec := range res.Secrets {
				if sec.Key == "K" && strings.Count(sec.Path, "/") == 1 {
					order = append(order, sec.Path)
				}
			}
			if !slices.Equal(order, want) {
				t.Fatalf("K at depth 1 in the order %v; want the folders' order %v", order, want)
			}
		})
	}
}
