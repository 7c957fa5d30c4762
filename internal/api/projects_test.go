package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type projectOut struct {
	ID, LegacyID, Name, Slug, OrgID, Type, CreatedAt, UpdatedAt string
	HasDeleteProtection                                         bool
	Environments                                                []struct{ ID, Name, Slug string }
}

func createProject(t testing.TB, e *apptest.Env, token string, body map[string]any) projectOut {
	t.Helper()
	var out struct{ Project projectOut }
	e.Must(t, 200, "POST", "/api/v1/projects", token, body).Decode(t, &out)
	return out.Project
}

func TestProjectLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "Payments API"})
		if p.OrgID != e.OrgID || p.Type != "secret-manager" || !strings.HasPrefix(p.Slug, "payments-api-") {
			t.Fatalf("project %+v", p)
		}
		if len(p.Environments) != 3 || p.Environments[0].Slug != "dev" || p.Environments[2].Slug != "prod" {
			t.Fatalf("default envs %+v", p.Environments)
		}
		for _, ts := range []string{p.CreatedAt, p.UpdatedAt} {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Fatalf("timestamp %q: %v", ts, err)
			}
		}
		raw := e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID, e.Token, nil).JSON(t)["project"].(map[string]any)
		if raw["_id"] != p.ID || raw["slug"] != p.Slug {
			t.Fatalf("get %v", raw)
		}
		ws := e.Must(t, 200, "GET", "/api/v1/workspace/"+p.ID, e.Token, nil).JSON(t)["workspace"].(map[string]any)
		if ws["slug"] != p.Slug {
			t.Fatalf("workspace %v", ws)
		}
		for _, path := range []string{"/api/v1/projects/slug/" + p.Slug, "/api/v2/workspace/" + p.Slug} {
			if m := e.Must(t, 200, "GET", path, e.Token, nil).JSON(t); m["id"] != p.ID {
				t.Fatalf("%s: not the bare project: %v", path, m)
			}
		}
		// Terraform's v2 create with only a name, and an explicit slug without default envs.
		var v2 struct{ Project projectOut }
		e.Must(t, 200, "POST", "/api/v2/workspace", e.Token, map[string]any{"projectName": "tf", "organizationSlug": ""}).Decode(t, &v2)
		bare := createProject(t, e, e.Token, map[string]any{"projectName": "bare", "slug": "bare-project", "shouldCreateDefaultEnvs": false})
		if bare.Slug != "bare-project" || len(bare.Environments) != 0 {
			t.Fatalf("bare %+v", bare)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "x", "slug": "bare-project"}), 400, "BadRequest")
		var list struct{ Projects []projectOut }
		e.Must(t, 200, "GET", "/api/v1/projects", e.Token, nil).Decode(t, &list)
		if len(list.Projects) != 3 {
			t.Fatalf("list has %d projects", len(list.Projects))
		}
		// Update (Terraform sends every field, empty ones included).
		var up struct{ Project projectOut }
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID, e.Token, map[string]any{"projectId": p.ID, "slug": "", "name": "Payments",
			"description": "d", "hasDeleteProtection": true}).Decode(t, &up)
		if up.Project.Name != "Payments" || up.Project.Slug != p.Slug || !up.Project.HasDeleteProtection {
			t.Fatalf("update %+v", up.Project)
		}
		m := assertError(t, e.Do(t, "DELETE", "/api/v2/workspace/"+p.Slug, e.Token, nil), 400, "BadRequest")
		if !strings.Contains(m["message"].(string), "delete protection") {
			t.Fatalf("message %v", m["message"])
		}
		e.Must(t, 200, "PATCH", "/api/v2/workspace/"+p.Slug, e.Token, map[string]any{"hasDeleteProtection": false})
		e.Must(t, 200, "DELETE", "/api/v2/workspace/"+p.Slug, e.Token, nil)
		e.Must(t, 200, "DELETE", "/api/v1/projects/"+bare.ID, e.Token, nil)
		// Gone: 404 on the routes Terraform reads to drop state.
		for _, path := range []string{"/api/v1/workspace/" + p.ID, "/api/v2/workspace/" + p.Slug, "/api/v1/projects/" + p.ID,
			"/api/v1/projects/not-a-uuid", "/api/v1/projects/00000000-0000-0000-0000-000000000000"} {
			assertError(t, e.Do(t, "GET", path, e.Token, nil), 404, "NotFound")
		}
		var audit struct{ AuditLogs []struct{ ProjectID string } }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-project,delete-project", e.Token, nil).Decode(t, &audit)
		if len(audit.AuditLogs) != 5 {
			t.Fatalf("audit events %d, want 3 creates + 2 deletes", len(audit.AuditLogs))
		}
	})
}

func TestProjectValidation(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	cases := []struct {
		name string
		body any
		code int
	}{
		{"no name", map[string]any{}, 422},
		{"short slug", map[string]any{"projectName": "a", "slug": "ab"}, 422},
		{"bad slug", map[string]any{"projectName": "a", "slug": "Has Spaces"}, 422},
		{"bad type", map[string]any{"projectName": "a", "type": "rocket"}, 422},
		{"name wrong type", `{"projectName": 42}`, 422},
		{"long name", map[string]any{"projectName": strings.Repeat("n", 65)}, 422},
		{"long description", map[string]any{"projectName": "a", "projectDescription": strings.Repeat("d", 1025)}, 422},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Do(t, "POST", "/api/v1/projects", e.Token, c.body)
			if r.Status != c.code {
				t.Fatalf("status %d, want %d: %s", r.Status, c.code, r.Body)
			}
		})
	}
	// Descriptions are answered in every list: each is at most 1 KiB, on
	// create and update, for projects, folders and roles (before, a member
	// made 40 projects of 1 MB and every project list 40 MB).
	p := createProject(t, e, e.Token, map[string]any{"projectName": "described", "projectDescription": strings.Repeat("d", 1024)})
	long := strings.Repeat("d", 1025)
	assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+p.ID, e.Token, map[string]any{"description": long}), 422, "ValidationFailure")
	assertError(t, e.Do(t, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"path": "/", "name": "f", "description": long}), 422, "ValidationFailure")
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "f"})
	assertError(t, e.Do(t, "PATCH", "/api/v1/folders/f", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
		"path": "/", "name": "f", "description": long}), 422, "ValidationFailure")
	for _, path := range []string{"/api/v1/folders", "/api/v2/workspace/" + p.ID + "/roles"} {
		body := map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/", "name": "g", "slug": "r", "permissions": []any{}}
		e.Must(t, 200, "POST", path, e.Token, body)
		body["description"], body["name"], body["slug"] = long, "h", "s"
		if m := assertError(t, e.Do(t, "POST", path, e.Token, body), 422, "ValidationFailure"); !strings.Contains(fmt.Sprint(m["message"]), "1024 bytes") {
			t.Fatalf("POST %s with a long description: %v", path, m["message"])
		}
	}
}

func TestEnvironments(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "envs"})
		for _, base := range []string{"/api/v1/projects/" + p.ID + "/environments", "/api/v1/workspace/" + p.ID + "/environments"} {
			slug := "qa" + strings.ReplaceAll(base[8:16], "/", "")
			var created struct {
				Message, ProjectID string
				Environment        struct {
					ID, Name, Slug, ProjectID string
					Position                  int
				}
			}
			e.Must(t, 200, "POST", base, e.Token, map[string]any{"name": "QA", "slug": slug}).Decode(t, &created)
			if created.ProjectID != p.ID || created.Environment.Slug != slug || created.Environment.Position < 4 {
				t.Fatalf("created %+v", created)
			}
			assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"name": "QA", "slug": slug}), 400, "BadRequest")
			assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"name": "QA", "slug": "Bad Slug"}), 422, "ValidationFailure")
			envURL := base + "/" + created.Environment.ID
			got := e.Must(t, 200, "GET", envURL, e.Token, nil).JSON(t)["environment"].(map[string]any)
			if got["slug"] != slug {
				t.Fatalf("get %v", got)
			}
			upd := e.Must(t, 200, "PATCH", envURL, e.Token, map[string]any{"name": "Quality"}).JSON(t)["environment"].(map[string]any)
			if upd["name"] != "Quality" || upd["slug"] != slug {
				t.Fatalf("patch %v", upd)
			}
			assertError(t, e.Do(t, "PATCH", envURL, e.Token, map[string]any{"slug": "dev"}), 400, "BadRequest")
			// The new environment has a root folder: folders can be made in it.
			e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": slug, "name": "x"})
			e.Must(t, 200, "DELETE", envURL, e.Token, nil)
			assertError(t, e.Do(t, "GET", envURL, e.Token, nil), 404, "NotFound")
		}
		var evs struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=update-environment&projectId="+p.ID, e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 2 {
			t.Fatalf("update-environment events %d", len(evs.AuditLogs))
		}
	})
}

// Concurrent changes of different settings of a project all stay: each
// request writes only if the project is as it read it, else reads again.
// Before, each wrote the whole row it had read, and a description change
// could turn delete protection back off.
func TestConcurrentProjectUpdatesLoseNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "contended"})
		for round := range 6 {
			protect := round%2 == 0
			var wg sync.WaitGroup
			status := make(chan int, 6)
			for i := range 6 {
				body := map[string]any{"description": fmt.Sprintf("round %d writer %d", round, i)}
				if i == 0 {
					body = map[string]any{"hasDeleteProtection": protect}
				}
				wg.Go(func() { status <- e.Do(t, "PATCH", "/api/v1/projects/"+p.ID, e.Token, body).Status })
			}
			wg.Wait()
			close(status)
			for s := range status {
				if s != 200 {
					t.Fatalf("round %d: a PATCH answered %d", round, s)
				}
			}
			var got struct{ Project projectOut }
			e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID, e.Token, nil).Decode(t, &got)
			if got.Project.HasDeleteProtection != protect {
				t.Fatalf("round %d: delete protection %v, want %v: a concurrent description change undid it", round, got.Project.HasDeleteProtection, protect)
			}
		}
	})
}
