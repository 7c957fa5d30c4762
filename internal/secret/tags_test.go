package secret_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// linkCounter is the real store, counting reads of secrets' tag links.
type linkCounter struct {
	*store.DB
	reads atomic.Int64
}

func (c *linkCounter) SecretTags(ctx context.Context, ids []string) (map[string][]secret.Tag, error) {
	c.reads.Add(1)
	return c.DB.SecretTags(ctx, ids)
}

// A listing reads the tag links only when the project has a tag, and a
// secret given a tag is listed with it.
func TestListReadsTagLinksOnlyWhenTheProjectHasTags(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "tags", 10)
			st := &linkCounter{DB: e.DB}
			az := authz.NewResolver(e.DB, nil)
			svc := secret.NewService(st, project.NewService(e.DB, az, e.Keyring, nil), az, e.Keyring, nil)
			actor := authz.Actor{Kind: authz.ActorIdentity, ID: e.IdentityID, OrgID: e.OrgID, Name: "admin"}
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

			if got := tagsOf(); len(got) != 0 || st.reads.Load() != 0 {
				t.Fatalf("project without tags: tags %v, %d reads of tag links (want none)", got, st.reads.Load())
			}
			slug := "prod"
			tag, err := svc.CreateTag(ctx, actor, pid, secret.TagChange{Slug: &slug})
			if err != nil {
				t.Fatal(err)
			}
			if got := tagsOf(); len(got) != 0 || st.reads.Load() != 1 {
				t.Fatalf("project with an unused tag: tags %v, %d reads of tag links (want 1)", got, st.reads.Load())
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
