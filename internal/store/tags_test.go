package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// SecretTags finds each secret's tags, by slug, among any number of ids
// (they are bound as one JSON array).
func TestSecretTagsOfManySecrets(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			e := apptest.Bootstrapped(t, d)
			pid := e.SeedFolder(t, "tags", 3)
			var ids []string
			for _, slug := range []string{"zeta", "alpha", "mid"} {
				var tag struct{ Tag struct{ ID string } }
				e.Must(t, 200, "POST", "/api/v1/projects/"+pid+"/tags", e.Token, map[string]any{"slug": slug}).Decode(t, &tag)
				ids = append(ids, tag.Tag.ID)
			}
			e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/K001", e.Token, map[string]any{"workspaceId": pid, "environment": "dev", "tagIds": ids})
			e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/K002", e.Token, map[string]any{"workspaceId": pid, "environment": "dev", "tagIds": ids[1:2]})
			ctx := context.Background()
			p, err := e.DB.ProjectByID(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			f, err := e.DB.FolderByPath(ctx, p.Environments[0].ID, "/")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := e.DB.FolderSecrets(ctx, f.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{rows[1].ID: {"alpha", "mid", "zeta"}, rows[2].ID: {"alpha"}}
			secretIDs := []string{rows[0].ID, rows[1].ID}
			for i := range 1200 { // more than the 500 placeholders per query it used to take
				secretIDs = append(secretIDs, fmt.Sprintf("no-such-secret-%d", i))
			}
			secretIDs = append(secretIDs, rows[2].ID)
			got, err := e.DB.SecretTags(ctx, secretIDs)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("tags of %d secrets, want %d: %v", len(got), len(want), got)
			}
			for id, slugs := range want {
				var have []string
				for _, tg := range got[id] {
					have = append(have, tg.Slug)
				}
				if !slices.Equal(have, slugs) {
					t.Errorf("secret %s: tags %v, want %v", id, have, slugs)
				}
			}
		})
	}
}
