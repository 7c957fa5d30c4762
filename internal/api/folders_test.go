package api_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func folderNames(t *testing.T, e *apptest.Env, token, projectID, env, path string) []string {
	t.Helper()
	var out struct{ Folders []struct{ Name string } }
	e.Must(t, 200, "GET", "/api/v1/folders?workspaceId="+projectID+"&environment="+env+"&path="+url.QueryEscape(path), token, nil).Decode(t, &out)
	names := []string{}
	for _, f := range out.Folders {
		names = append(names, f.Name)
	}
	return names
}

func TestFoldersNestedRenameDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "folders"})
		var c struct {
			Folder struct{ ID, Name, ParentID, EnvID, CreatedAt string }
		}
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "name": "c", "path": "/a/b"}).Decode(t, &c)
		if c.Folder.Name != "c" || c.Folder.ParentID == "" || c.Folder.EnvID == "" {
			t.Fatalf("created %+v", c)
		}
		for path, want := range map[string][]string{"/": {"a"}, "/a": {"b"}, "/a/b": {"c"}, "/a/b/c": {}} {
			if got := folderNames(t, e, e.Token, p.ID, "dev", path); !slices.Equal(got, want) {
				t.Fatalf("%s lists %v, want %v", path, got, want)
			}
		}
		// The CLI spells the path "directory"; trailing and double slashes normalise.
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "name": "d", "directory": "/a//b/"})
		if got := folderNames(t, e, e.Token, p.ID, "dev", "/a/b"); !slices.Equal(got, []string{"c", "d"}) {
			t.Fatalf("after directory create: %v", got)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/folders", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "name": "c", "path": "/a/b"}), 400, "BadRequest")
		// Rename by id.
		e.Must(t, 200, "PATCH", "/api/v1/folders/"+c.Folder.ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "name": "renamed", "path": "/a/b"})
		if got := folderNames(t, e, e.Token, p.ID, "dev", "/a/b"); !slices.Equal(got, []string{"d", "renamed"}) {
			t.Fatalf("after rename: %v", got)
		}
		// Delete by name with directory (the CLI), then the subtree by id (the SDK).
		e.Must(t, 200, "DELETE", "/api/v1/folders/d", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "directory": "/a/b"})
		var a struct{ Folders []struct{ ID, Name string } }
		e.Must(t, 200, "GET", "/api/v1/folders?workspaceId="+p.ID+"&environment=dev", e.Token, nil).Decode(t, &a)
		e.Must(t, 200, "DELETE", "/api/v1/folders/"+a.Folders[0].ID, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
		if got := folderNames(t, e, e.Token, p.ID, "dev", "/"); len(got) != 0 {
			t.Fatalf("subtree not deleted: %v", got)
		}
		// A path that no longer exists lists as empty, as in Infisical.
		if got := folderNames(t, e, e.Token, p.ID, "dev", "/a/b"); len(got) != 0 {
			t.Fatalf("deleted path lists %v", got)
		}
		// Other environments are separate trees.
		if got := folderNames(t, e, e.Token, p.ID, "prod", "/"); len(got) != 0 {
			t.Fatalf("prod has %v", got)
		}
		var evs struct{ AuditLogs []any }
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=create-folder,update-folder,delete-folder", e.Token, nil).Decode(t, &evs)
		if len(evs.AuditLogs) != 5 {
			t.Fatalf("folder audit events %d, want 5", len(evs.AuditLogs))
		}
	})
}

func TestFolderBadInput(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "bad"})
	base := map[string]any{"workspaceId": p.ID, "environment": "dev"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		body map[string]any
		code int
		err  string
	}{
		{"dot dot in path", with("name", "x", "path", "/a/../b"), 422, "ValidationFailure"},
		{"relative path", with("name", "x", "path", "a"), 422, "ValidationFailure"},
		{"space in name", with("name", "has space"), 422, "ValidationFailure"},
		{"slash in name", with("name", "a/b"), 422, "ValidationFailure"},
		{"dot name", with("name", ".."), 422, "ValidationFailure"},
		{"no name", with(), 422, "ValidationFailure"},
		{"unknown environment", with("name", "x", "environment", "nope"), 404, "NotFound"},
		{"unknown project", map[string]any{"workspaceId": "00000000-0000-0000-0000-000000000000", "environment": "dev", "name": "x"}, 404, "NotFound"},
		{"no project", map[string]any{"environment": "dev", "name": "x"}, 422, "ValidationFailure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertError(t, e.Do(t, "POST", "/api/v1/folders", e.Token, c.body), c.code, c.err)
		})
	}
	assertError(t, e.Do(t, "DELETE", "/api/v1/folders/nope", e.Token, with("path", "/")), 404, "NotFound")
	if got := folderNames(t, e, e.Token, p.ID, "dev", "/"); len(got) != 0 {
		t.Fatalf("bad input created folders: %v", got)
	}
}

// Terraform reads a folder in state by id (GET /api/v1/folders/{id}); the v2
// routes take projectId and answer the same shapes.
func TestFolderByIDAndV2Routes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "folders-v2"})
		var c struct{ Folder struct{ ID, Name string } }
		e.Must(t, 200, "POST", "/api/v2/folders", e.Token, map[string]any{"projectId": p.ID, "environment": "staging", "name": "svc",
			"path": "/apps", "description": "the service"}).Decode(t, &c)
		type detail struct {
			Folder struct {
				ID, Name, EnvID, ProjectID, Path, Description string
				Environment                                   struct{ EnvID, EnvName, EnvSlug string }
			}
		}
		for _, v := range []string{"v1", "v2"} {
			var got detail
			e.Must(t, 200, "GET", "/api/"+v+"/folders/"+c.Folder.ID, e.Token, nil).Decode(t, &got)
			f := got.Folder
			if f.ID != c.Folder.ID || f.Name != "svc" || f.ProjectID != p.ID || f.Path != "/apps/svc" || f.Description != "the service" ||
				f.EnvID == "" || f.Environment.EnvID != f.EnvID || f.Environment.EnvSlug != "staging" || f.Environment.EnvName != "Staging" {
				t.Fatalf("%s folder by id: %+v", v, f)
			}
		}
		var list struct{ Folders []struct{ ID, Name string } }
		e.Must(t, 200, "GET", "/api/v2/folders?projectId="+p.ID+"&environment=staging&path=/apps", e.Token, nil).Decode(t, &list)
		if len(list.Folders) != 1 || list.Folders[0].ID != c.Folder.ID {
			t.Fatalf("v2 list %+v", list)
		}
		var up struct{ Folder struct{ ID, Name string } }
		e.Must(t, 200, "PATCH", "/api/v2/folders/"+c.Folder.ID, e.Token, map[string]any{"projectId": p.ID, "environment": "staging",
			"name": "renamed", "path": "/apps"}).Decode(t, &up)
		if up.Folder.ID != c.Folder.ID || up.Folder.Name != "renamed" {
			t.Fatalf("v2 update %+v", up)
		}
		var got detail
		e.Must(t, 200, "GET", "/api/v1/folders/"+c.Folder.ID, e.Token, nil).Decode(t, &got)
		if got.Folder.Path != "/apps/renamed" {
			t.Fatalf("path after rename %q", got.Folder.Path)
		}

		// A viewer reads by id but cannot write through v2; a member of another
		// project does not find the folder at all.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		e.Must(t, 200, "GET", "/api/v1/folders/"+c.Folder.ID, viewer, nil)
		assertError(t, e.Do(t, "POST", "/api/v2/folders", viewer, map[string]any{"projectId": p.ID, "environment": "staging", "name": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v2/folders/"+c.Folder.ID, viewer, map[string]any{"projectId": p.ID, "environment": "staging",
			"name": "hijack", "path": "/apps"}), 403, "PermissionDenied")
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		_, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", "/api/v1/folders/"+c.Folder.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/folders/"+c.Folder.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/folders?projectId="+p.ID+"&environment=staging", outsider, nil), 403, "PermissionDenied")
		e.Must(t, 200, "GET", "/api/v1/folders/"+c.Folder.ID, e.Token, nil).Decode(t, &got)
		if got.Folder.Name != "renamed" {
			t.Fatalf("denied writes changed the folder: %+v", got.Folder)
		}

		// Unknown, malformed and deleted ids are 404 (Terraform then drops the state).
		for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
			assertError(t, e.Do(t, "GET", "/api/v1/folders/"+id, e.Token, nil), 404, "NotFound")
		}
		e.Must(t, 200, "DELETE", "/api/v2/folders/"+c.Folder.ID, e.Token, map[string]any{"projectId": p.ID, "environment": "staging", "path": "/apps"})
		assertError(t, e.Do(t, "GET", "/api/v1/folders/"+c.Folder.ID, e.Token, nil), 404, "NotFound")
	})
}
