package api_test

import (
	"fmt"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestSecretVersionsAreKeptToTheProjectsLimit: a project keeps its
// pitVersionLimit newest versions of each secret (10 unless set, as
// Infisical), so writing one secret again and again does not grow its
// history without end; lowering the limit prunes at once, raising it keeps
// what is left, and only who may edit the project's settings may change it.
func TestSecretVersionsAreKeptToTheProjectsLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "kept", "slug": "kept-proj"})
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other", "slug": "other-proj"})
		limitURL := "/api/v1/workspace/" + p.Slug + "/version-limit"
		write := func(projectID, key string, n int) string {
			t.Helper()
			s := putSecret(t, e, e.Token, projectID, "dev", "/", key, "v1")
			for v := 2; v <= n; v++ {
				e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/"+key, e.Token, map[string]any{"workspaceId": projectID,
					"environment": "dev", "secretValue": fmt.Sprintf("v%d", v)})
			}
			return s.ID
		}
		versions := func(id string) []int {
			t.Helper()
			var hist struct{ SecretVersions []secretOut }
			e.Must(t, 200, "GET", "/api/v1/secret/"+id+"/secret-versions?limit=100", e.Token, nil).Decode(t, &hist)
			var out []int
			for _, h := range hist.SecretVersions {
				if h.SecretValue != fmt.Sprintf("v%d", h.Version) {
					t.Fatalf("version %d holds %q", h.Version, h.SecretValue)
				}
				out = append(out, h.Version)
			}
			return out
		}
		span := func(hi, lo int) []int {
			var out []int
			for v := hi; v >= lo; v-- {
				out = append(out, v)
			}
			return out
		}
		same := func(what string, got, want []int) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: versions %v, want %v", what, got, want)
			}
		}

		var ws struct{ Workspace struct{ PitVersionLimit int } }
		e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID, e.Token, nil).Decode(t, &ws)
		if ws.Workspace.PitVersionLimit != 10 {
			t.Fatalf("default limit %d", ws.Workspace.PitVersionLimit)
		}
		id := write(p.ID, "HOT", 13)
		same("default", versions(id), span(13, 4))
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/HOT?workspaceId="+p.ID+"&environment=dev&version=3", e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/secret/"+id+"/secret-versions/3/rollback", e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/HOT?workspaceId="+p.ID+"&environment=dev&version=4", e.Token, nil)

		// Only who may edit the settings; bad limits are refused.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		_, member := projectMember(t, e, p.ID, "member", "member")
		for _, tok := range []string{viewer, member} {
			assertError(t, e.Do(t, "PUT", limitURL, tok, map[string]any{"pitVersionLimit": 1}), 403, "PermissionDenied")
		}
		for _, bad := range []any{map[string]any{}, map[string]any{"pitVersionLimit": 0},
			map[string]any{"pitVersionLimit": 101}, map[string]any{"pitVersionLimit": "5"}} {
			if r := e.Do(t, "PUT", limitURL, e.Token, bad); r.Status != 400 && r.Status != 422 {
				t.Fatalf("limit %v: status %d %s", bad, r.Status, r.Body)
			}
		}
		assertError(t, e.Do(t, "PUT", "/api/v1/workspace/no-such-project/version-limit", e.Token,
			map[string]any{"pitVersionLimit": 5}), 404, "NotFound")
		same("after refusals", versions(id), span(13, 4))

		// Lowering prunes every secret of the project at once, not another project's.
		otherID := write(other.ID, "HOT", 12)
		two := write(p.ID, "TWO", 2)
		var set struct {
			Message   string
			Workspace struct {
				ID              string
				PitVersionLimit int
			}
		}
		e.Must(t, 200, "PUT", limitURL, e.Token, map[string]any{"pitVersionLimit": 3}).Decode(t, &set)
		if set.Message == "" || set.Workspace.ID != p.ID || set.Workspace.PitVersionLimit != 3 {
			t.Fatalf("answer %+v", set)
		}
		same("lowered", versions(id), span(13, 11))
		same("lowered, short history", versions(two), span(2, 1))
		same("other project", versions(otherID), span(12, 3))

		// Raising it keeps what is left and lets history grow to it again.
		e.Must(t, 200, "PUT", limitURL, e.Token, map[string]any{"pitVersionLimit": 5})
		same("raised", versions(id), span(13, 11))
		for v := 14; v <= 20; v++ {
			e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/HOT", e.Token, map[string]any{"workspaceId": p.ID,
				"environment": "dev", "secretValue": fmt.Sprintf("v%d", v)})
		}
		same("raised, written", versions(id), span(20, 16))

		// A rollback is a write too; the limit is kept across other settings updates.
		e.Must(t, 200, "POST", "/api/v1/secret/"+id+"/secret-versions/16/rollback", e.Token, nil)
		var hist struct{ SecretVersions []secretOut }
		e.Must(t, 200, "GET", "/api/v1/secret/"+id+"/secret-versions?limit=100", e.Token, nil).Decode(t, &hist)
		if len(hist.SecretVersions) != 5 || hist.SecretVersions[0].Version != 21 || hist.SecretVersions[0].SecretValue != "v16" {
			t.Fatalf("after rollback %+v", hist.SecretVersions)
		}
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID, e.Token, map[string]any{"description": "d"})
		e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID, e.Token, nil).Decode(t, &ws)
		if ws.Workspace.PitVersionLimit != 5 {
			t.Fatalf("limit after an update %d", ws.Workspace.PitVersionLimit)
		}
	})
}
