package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type envOut struct {
	ID, Name, Slug, ProjectID string
	Position                  int
}

// Terraform reads an environment in state by id alone, and a data source by
// project and slug (the bare object).
func TestEnvironmentByIDAndSlug(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "envs"})
		var c struct{ Environment envOut }
		e.Must(t, 200, "POST", "/api/v1/workspace/"+p.ID+"/environments", e.Token, map[string]any{"name": "QA", "slug": "qa"}).Decode(t, &c)

		var byID struct{ Environment envOut }
		e.Must(t, 200, "GET", "/api/v1/workspace/environments/"+c.Environment.ID, e.Token, nil).Decode(t, &byID)
		if byID.Environment != c.Environment || byID.Environment.ProjectID != p.ID || byID.Environment.Position != 4 {
			t.Fatalf("by id %+v, created %+v", byID.Environment, c.Environment)
		}
		var bySlug struct {
			envOut
			Environment envOut
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/environments/slug/qa", e.Token, nil).Decode(t, &bySlug)
		if bySlug.envOut != c.Environment || bySlug.Environment != c.Environment {
			t.Fatalf("by slug %+v", bySlug)
		}
		// The lists moved behind one wildcard route still answer.
		for _, path := range []string{"/api/v1/workspace/" + p.ID + "/environments", "/api/v1/projects/" + p.ID + "/environments"} {
			var list struct{ Environments []envOut }
			e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &list)
			if len(list.Environments) != 4 {
				t.Fatalf("%s: %+v", path, list)
			}
		}
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/"+p.ID+"/nothing", e.Token, nil), 404, "NotFound")

		// A viewer reads both; a member of another project finds neither.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		e.Must(t, 200, "GET", "/api/v1/workspace/environments/"+c.Environment.ID, viewer, nil)
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/environments/slug/qa", viewer, nil)
		assertError(t, e.Do(t, "PATCH", "/api/v1/workspace/"+p.ID+"/environments/"+c.Environment.ID, viewer, map[string]any{"name": "x"}), 403, "PermissionDenied")
		// A position past the bound is refused, not a database overflow.
		for _, pos := range []int64{10_001, 1 << 31} {
			if r := e.Do(t, "PATCH", "/api/v1/workspace/"+p.ID+"/environments/"+c.Environment.ID, e.Token, map[string]any{"position": pos}); r.Status < 400 || r.Status >= 500 {
				t.Errorf("position %d: %d", pos, r.Status)
			}
		}
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		_, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/environments/"+c.Environment.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+p.ID+"/environments/slug/qa", outsider, nil), 403, "PermissionDenied")
		// A role without environment read is refused by id too.
		_, noAccess := projectMember(t, e, p.ID, "no-access", "no-access")
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/environments/"+c.Environment.ID, noAccess, nil), 403, "PermissionDenied")

		// Unknown and deleted: 404.
		for _, path := range []string{"/api/v1/workspace/environments/00000000-0000-0000-0000-000000000000", "/api/v1/workspace/environments/nope",
			"/api/v1/projects/" + p.ID + "/environments/slug/nope", "/api/v1/projects/00000000-0000-0000-0000-000000000000/environments/slug/qa"} {
			assertError(t, e.Do(t, "GET", path, e.Token, nil), 404, "NotFound")
		}
		e.Must(t, 200, "DELETE", "/api/v1/workspace/"+p.ID+"/environments/"+c.Environment.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/environments/"+c.Environment.ID, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+p.ID+"/environments/slug/qa", e.Token, nil), 404, "NotFound")
	})
}

// TestEnvironmentsAreBounded: every read of a project loads all its
// environments, so a member who may create them cannot add them without
// end: project.MaxEnvironments, then 400.
func TestEnvironmentsAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "many-envs"})
	base := "/api/v1/projects/" + p.ID + "/environments"
	for i := len(p.Environments); i < project.MaxEnvironments; i++ {
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"name": fmt.Sprintf("E%d", i), "slug": fmt.Sprintf("e%d", i)})
	}
	r := assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"name": "one-more", "slug": "one-more"}), 400, "BadRequest")
	if !strings.Contains(fmt.Sprint(r["message"]), "at most") {
		t.Fatalf("the refusal: %v", r)
	}
}
