package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	infisical "github.com/infisical/go-sdk"
	sdkerrors "github.com/infisical/go-sdk/packages/errors"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

func addImport(t *testing.T, e *apptest.Env, projectID, env, path, fromEnv, fromPath string) string {
	t.Helper()
	var out struct{ SecretImport struct{ ID string } }
	e.Must(t, 200, "POST", "/api/v1/secret-imports", e.Token, map[string]any{"workspaceId": projectID, "environment": env, "path": path,
		"import": map[string]any{"environment": fromEnv, "path": fromPath}}).Decode(t, &out)
	return out.SecretImport.ID
}

func TestSecretImportsMergedIntoReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "imports"})
		putSecret(t, e, e.Token, p.ID, "staging", "/", "SHARED", "from-staging")
		putSecret(t, e, e.Token, p.ID, "staging", "/", "ONLY_STAGING", "s")
		putSecret(t, e, e.Token, p.ID, "prod", "/", "SHARED", "from-prod")
		putSecret(t, e, e.Token, p.ID, "prod", "/", "NESTED_SOURCE", "${SHARED}")
		putSecret(t, e, e.Token, p.ID, "dev", "/", "OWN", "own")
		first := addImport(t, e, p.ID, "dev", "/", "staging", "/")
		addImport(t, e, p.ID, "dev", "/", "prod", "/")
		// prod imports staging too (nested, and a cycle back is ignored).
		addImport(t, e, p.ID, "prod", "/", "staging", "/")
		addImport(t, e, p.ID, "staging", "/", "dev", "/")
		assertError(t, e.Do(t, "POST", "/api/v1/secret-imports", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
			"import": map[string]any{"environment": "staging", "path": "/"}}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/secret-imports", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
			"import": map[string]any{"environment": "nope", "path": "/"}}), 404, "NotFound")

		var list struct {
			Secrets []secretOut
			Imports []struct {
				Environment, SecretPath string
				Secrets                 []secretOut
			}
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&include_imports=true&expandSecretReferences=true", e.Token, nil).Decode(t, &list)
		if len(list.Secrets) != 1 || len(list.Imports) < 2 || list.Imports[0].Environment != "staging" || list.Imports[1].Environment != "prod" {
			t.Fatalf("list with imports %+v", list)
		}
		for _, s := range list.Imports[1].Secrets {
			if s.SecretKey == "NESTED_SOURCE" && s.SecretValue != "from-prod" {
				t.Fatalf("imported secret expanded in its own folder: %q", s.SecretValue)
			}
		}
		// Without the flag, no imports.
		var plain map[string]any
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev", e.Token, nil).Decode(t, &plain)
		if _, ok := plain["imports"]; ok {
			t.Fatalf("imports without include_imports: %v", plain)
		}
		// Get by name: own first, then the last import wins.
		var got struct{ Secret secretOut }
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/SHARED?workspaceId="+p.ID+"&environment=dev&include_imports=true", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "from-prod" {
			t.Fatalf("precedence: got %q, want the last import's value", got.Secret.SecretValue)
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/ONLY_STAGING?workspaceId="+p.ID+"&environment=dev&includeImports=true", e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/ONLY_STAGING?workspaceId="+p.ID+"&environment=dev", e.Token, nil), 404, "NotFound")
		// Reorder, list, delete.
		e.Must(t, 200, "PATCH", "/api/v1/secret-imports/"+first, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
			"import": map[string]any{"position": 9}})
		e.Must(t, 200, "GET", "/api/v3/secrets/raw/SHARED?workspaceId="+p.ID+"&environment=dev&include_imports=true", e.Token, nil).Decode(t, &got)
		if got.Secret.SecretValue != "from-staging" {
			t.Fatalf("after moving staging last: %q", got.Secret.SecretValue)
		}
		var imps struct{ SecretImports []struct{ ID string } }
		e.Must(t, 200, "GET", "/api/v1/secret-imports?workspaceId="+p.ID+"&environment=dev&path=/", e.Token, nil).Decode(t, &imps)
		if len(imps.SecretImports) != 2 || imps.SecretImports[1].ID != first {
			t.Fatalf("imports list %+v", imps)
		}
		e.Must(t, 200, "DELETE", "/api/v1/secret-imports/"+first, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"})
		assertError(t, e.Do(t, "DELETE", "/api/v1/secret-imports/"+first, e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"}), 404, "NotFound")
	})
}

func TestTagsAndTagFilter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "tags"})
		base := "/api/v1/projects/" + p.ID + "/tags"
		assertError(t, e.Do(t, "GET", base+"/slug/db", e.Token, nil), 404, "NotFound") // what the CLI checks before creating
		var tag struct {
			Tag struct{ ID, Slug, Name string }
		}
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"slug": "db", "color": ""}).Decode(t, &tag)
		if tag.Tag.Slug != "db" || tag.Tag.Name != "db" {
			t.Fatalf("tag %+v", tag)
		}
		assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"slug": "db"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"slug": "Not A Slug"}), 422, "ValidationFailure")
		e.Must(t, 200, "GET", base+"/slug/db", e.Token, nil)
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/TAGGED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "x", "tagIds": []string{tag.Tag.ID}})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "PLAIN", "y")
		assertError(t, e.Do(t, "POST", "/api/v3/secrets/raw/BADTAG", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev",
			"secretValue": "x", "tagIds": []string{"00000000-0000-0000-0000-000000000000"}}), 404, "NotFound")
		var list struct {
			Secrets []struct {
				SecretKey string
				Tags      []struct{ ID, Slug string }
			}
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&tagSlugs=db", e.Token, nil).Decode(t, &list)
		if len(list.Secrets) != 1 || list.Secrets[0].SecretKey != "TAGGED" || list.Secrets[0].Tags[0].Slug != "db" {
			t.Fatalf("tag filter %+v", list)
		}
		// The filter names at most secret.MaxTagSlugs distinct slugs of at most
		// 64 characters (they key the cached read); repeats count once.
		slugs := func(n, distinct int, extra string) string {
			ss := []string{"db"}
			for i := range n {
				ss = append(ss, fmt.Sprintf("t%d", i%distinct))
			}
			return "/api/v3/secrets/raw?workspaceId=" + p.ID + "&environment=dev&tagSlugs=" + strings.Join(append(ss, extra), ",")
		}
		e.Must(t, 200, "GET", slugs(secret.MaxTagSlugs-1, secret.MaxTagSlugs-1, ""), e.Token, nil).Decode(t, &list)
		if len(list.Secrets) != 1 || list.Secrets[0].SecretKey != "TAGGED" {
			t.Fatalf("tag filter of %d slugs %+v", secret.MaxTagSlugs, list)
		}
		e.Must(t, 200, "GET", slugs(40000, 10, ""), e.Token, nil)
		assertError(t, e.Do(t, "GET", slugs(secret.MaxTagSlugs, secret.MaxTagSlugs, ""), e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "GET", slugs(1, 1, strings.Repeat("x", 65)), e.Token, nil), 422, "ValidationFailure")
		// Untag through PATCH with an empty list, then delete the tag.
		e.Must(t, 200, "PATCH", "/api/v3/secrets/raw/TAGGED", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "tagIds": []string{}})
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&tagSlugs=db", e.Token, nil).Decode(t, &list)
		if len(list.Secrets) != 0 {
			t.Fatalf("untagged secret still matches: %+v", list)
		}
		e.Must(t, 200, "PATCH", base+"/"+tag.Tag.ID, e.Token, map[string]any{"slug": "database"})
		var tags struct{ Tags []struct{ Slug string } }
		e.Must(t, 200, "GET", base, e.Token, nil).Decode(t, &tags)
		if len(tags.Tags) != 1 || tags.Tags[0].Slug != "database" {
			t.Fatalf("tags %+v", tags)
		}
		e.Must(t, 200, "DELETE", base+"/"+tag.Tag.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", base+"/"+tag.Tag.ID, e.Token, nil), 404, "NotFound")
	})
}

func TestListETagAndReadAudit(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "etag"})
	putSecret(t, e, e.Token, p.ID, "dev", "/", "A", "1")
	path := "/api/v3/secrets/raw?workspaceId=" + p.ID + "&environment=dev"
	r := e.Must(t, 200, "GET", path, e.Token, nil)
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest("GET", e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("If-None-Match", etag)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	putSecret(t, e, e.Token, p.ID, "dev", "/", "B", "2")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a change: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	// The Go SDK turns the 304 into NotModifiedError.
	clientID := uaSetup(t, e, map[string]any{})
	clientSecret, _ := newSecret(t, e, map[string]any{})
	sdk := newSDK(t, e)
	if _, err := sdk.Auth().UniversalAuthLogin(clientID, clientSecret); err != nil {
		t.Fatal(err)
	}
	res, err := sdk.Secrets().ListSecrets(infisical.ListSecretsOptions{ProjectID: p.ID, Environment: "dev"})
	if err != nil || res.ETag == "" {
		t.Fatalf("SDK list: %+v %v", res, err)
	}
	_, err = sdk.Secrets().ListSecrets(infisical.ListSecretsOptions{ProjectID: p.ID, Environment: "dev", IfNoneMatch: res.ETag})
	var nm *sdkerrors.NotModifiedError
	if !errors.As(err, &nm) {
		t.Fatalf("SDK list with If-None-Match: %v (%T), want NotModifiedError", err, err)
	}

	var evs struct {
		AuditLogs []struct {
			Event struct{ Metadata map[string]any }
		}
	}
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=get-secrets&projectId="+p.ID, e.Token, nil).Decode(t, &evs)
	if len(evs.AuditLogs) < 4 {
		t.Fatalf("get-secrets events %d", len(evs.AuditLogs))
	}
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/A?workspaceId="+p.ID+"&environment=dev", e.Token, nil)
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=get-secret&projectId="+p.ID, e.Token, nil).Decode(t, &evs)
	if len(evs.AuditLogs) != 1 || evs.AuditLogs[0].Event.Metadata["secretKey"] != "A" {
		t.Fatalf("get-secret events %+v", evs)
	}

	// A listing with imports names the imported folders it answered from.
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", "payments"))
	putSecret(t, e, e.Token, p.ID, "prod", "/payments", "DB", "x")
	addImport(t, e, p.ID, "dev", "/", "prod", "/payments")
	e.Must(t, 200, "GET", path+"&include_imports=true", e.Token, nil)
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=get-secrets&projectId="+p.ID+"&limit=1", e.Token, nil).Decode(t, &evs)
	imps := fmt.Sprint(evs.AuditLogs[0].Event.Metadata["imports"])
	if !strings.Contains(imps, "environment:prod") || !strings.Contains(imps, "secretPath:/payments") || !strings.Contains(imps, "numberOfSecrets:1") {
		t.Fatalf("the read through the import is not recorded: %+v", evs.AuditLogs[0].Event.Metadata)
	}
	// At most secret.MaxAuditedImports of them are named; the rest counted.
	for i := range secret.MaxAuditedImports + 2 {
		name := fmt.Sprintf("f%02d", i)
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", name))
		putSecret(t, e, e.Token, p.ID, "prod", "/"+name, "K", "v")
		addImport(t, e, p.ID, "dev", "/", "prod", "/"+name)
	}
	e.Must(t, 200, "GET", path+"&include_imports=true", e.Token, nil)
	var capped struct {
		AuditLogs []struct {
			Event struct {
				Metadata struct {
					Imports        []map[string]any
					ImportsOmitted int
				}
			}
		}
	}
	e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=get-secrets&projectId="+p.ID+"&limit=1", e.Token, nil).Decode(t, &capped)
	if md := capped.AuditLogs[0].Event.Metadata; len(md.Imports) != secret.MaxAuditedImports || md.ImportsOmitted != 3 {
		t.Fatalf("%d imports named, %d omitted; want %d and 3", len(md.Imports), md.ImportsOmitted, secret.MaxAuditedImports)
	}
}

// Terraform's tag resource uses the /workspace/ routes and reads the tag
// under workspaceTag(s); the /projects/ routes keep tag(s) alone.
func TestWorkspaceTagKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "tags"})
		ws := "/api/v1/workspace/" + p.ID + "/tags"
		type tag struct{ ID, Slug, Name, Color, ProjectID string }
		type one struct{ Tag, WorkspaceTag tag }
		var c one
		e.Must(t, 200, "POST", ws, e.Token, map[string]any{"name": "Database", "slug": "db", "color": "#f00", "projectId": p.ID}).Decode(t, &c)
		if c.WorkspaceTag.ID == "" || c.WorkspaceTag != c.Tag || c.WorkspaceTag.Slug != "db" || c.WorkspaceTag.ProjectID != p.ID {
			t.Fatalf("create %+v", c)
		}
		id := c.WorkspaceTag.ID
		for _, path := range []string{ws + "/" + id, ws + "/slug/db"} {
			var got one
			e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &got)
			if got.WorkspaceTag.ID != id || got.Tag.ID != id {
				t.Fatalf("%s: %+v", path, got)
			}
		}
		var list struct{ Tags, WorkspaceTags []tag }
		e.Must(t, 200, "GET", ws, e.Token, nil).Decode(t, &list)
		if len(list.WorkspaceTags) != 1 || list.WorkspaceTags[0].ID != id || len(list.Tags) != 1 {
			t.Fatalf("list %+v", list)
		}
		var up one
		e.Must(t, 200, "PATCH", ws+"/"+id, e.Token, map[string]any{"name": "DB", "color": "#0f0", "projectId": p.ID, "tagId": id}).Decode(t, &up)
		if up.WorkspaceTag.Name != "DB" || up.WorkspaceTag.Color != "#0f0" {
			t.Fatalf("update %+v", up)
		}
		// The /projects/ routes answer with tag(s) only.
		pm := e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/tags/"+id, e.Token, nil).JSON(t)
		if _, ok := pm["workspaceTag"]; ok || pm["tag"] == nil {
			t.Fatalf("/projects/ tag keys: %v", pm)
		}
		// A viewer reads but cannot write; a member of another project reads nothing.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		e.Must(t, 200, "GET", ws+"/"+id, viewer, nil)
		assertError(t, e.Do(t, "POST", ws, viewer, map[string]any{"slug": "x", "color": "#fff"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", ws+"/"+id, viewer, map[string]any{"name": "hijacked"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", ws+"/"+id, viewer, nil), 403, "PermissionDenied")
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		_, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", ws, outsider, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", ws+"/"+id, outsider, nil), 403, "PermissionDenied")
		// Another project's tag id is not found through this project's routes.
		assertError(t, e.Do(t, "GET", "/api/v1/workspace/"+other.ID+"/tags/"+id, e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "DELETE", ws+"/"+id, e.Token, nil)
		assertError(t, e.Do(t, "GET", ws+"/"+id, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", ws+"/slug/db", e.Token, nil), 404, "NotFound")
	})
}

// Terraform reads a secret import in state by id alone, and where it lives.
func TestSecretImportByID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "import-by-id"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
		id := addImport(t, e, p.ID, "dev", "/app", "prod", "/")
		type env struct{ ID, Name, Slug string }
		type detail struct {
			SecretImport struct {
				ID, SecretPath, ImportPath, ProjectID string
				IsReplication                         bool
				ImportEnv, Environment                env
			}
		}
		for _, v := range []string{"v1", "v2"} {
			var got detail
			e.Must(t, 200, "GET", "/api/"+v+"/secret-imports/"+id, e.Token, nil).Decode(t, &got)
			si := got.SecretImport
			if si.ID != id || si.SecretPath != "/app" || si.ImportPath != "/" || si.ProjectID != p.ID || si.IsReplication ||
				si.ImportEnv.Slug != "prod" || si.ImportEnv.Name != "Production" || si.ImportEnv.ID == "" ||
				si.Environment.Slug != "dev" || si.Environment.Name != "Development" || si.Environment.ID == "" {
				t.Fatalf("%s import by id: %+v", v, si)
			}
		}
		// A viewer reads it but cannot change it; a member of another project does not find it.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		e.Must(t, 200, "GET", "/api/v1/secret-imports/"+id, viewer, nil)
		scope := map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/app"}
		assertError(t, e.Do(t, "PATCH", "/api/v1/secret-imports/"+id, viewer, mergeMaps(scope, map[string]any{"import": map[string]any{"environment": "staging"}})), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/secret-imports/"+id, viewer, scope), 403, "PermissionDenied")
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		_, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", "/api/v1/secret-imports/"+id, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", "/api/v2/secret-imports/"+id, outsider, nil), 404, "NotFound")
		var got detail
		e.Must(t, 200, "GET", "/api/v1/secret-imports/"+id, e.Token, nil).Decode(t, &got)
		if got.SecretImport.ImportEnv.Slug != "prod" {
			t.Fatalf("denied writes changed the import: %+v", got.SecretImport)
		}
		// Unknown, malformed and deleted ids: 404.
		for _, bad := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
			assertError(t, e.Do(t, "GET", "/api/v1/secret-imports/"+bad, e.Token, nil), 404, "NotFound")
		}
		e.Must(t, 200, "DELETE", "/api/v1/secret-imports/"+id, e.Token, scope)
		assertError(t, e.Do(t, "GET", "/api/v1/secret-imports/"+id, e.Token, nil), 404, "NotFound")
	})
}

// TestServiceTokenChangesAnImport: a write service token names no project
// (its own is implied): changing an import's target resolved the target in
// no project (404), and the events of its import changes named none.
func TestServiceTokenChangesAnImport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "token-imports"})
		id := addImport(t, e, p.ID, "dev", "/", "staging", "/")
		var st struct{ ServiceToken string }
		e.Must(t, 200, "POST", "/api/v2/service-token", e.Token, map[string]any{"name": "w", "workspaceId": p.ID,
			"scopes":      []map[string]any{{"environment": "dev", "secretPath": "/"}, {"environment": "prod", "secretPath": "/"}},
			"permissions": []string{"read", "write"}}).Decode(t, &st)
		e.Must(t, 200, "PATCH", "/api/v1/secret-imports/"+id, st.ServiceToken, map[string]any{"environment": "dev", "path": "/",
			"import": map[string]any{"environment": "prod", "path": "/"}})
		var imps struct {
			SecretImports []struct {
				ImportEnv struct{ Slug string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/secret-imports?workspaceId="+p.ID+"&environment=dev&path=/", e.Token, nil).Decode(t, &imps)
		if len(imps.SecretImports) != 1 || imps.SecretImports[0].ImportEnv.Slug != "prod" {
			t.Fatalf("imports after the token's change: %+v", imps)
		}
		e.Must(t, 200, "DELETE", "/api/v1/secret-imports/"+id, st.ServiceToken, map[string]any{"environment": "dev", "path": "/"})
		for _, typ := range []string{"update-secret-import", "delete-secret-import"} {
			var evs struct{ AuditLogs []struct{ ProjectID *string } }
			e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType="+typ, e.Token, nil).Decode(t, &evs)
			if len(evs.AuditLogs) != 1 || evs.AuditLogs[0].ProjectID == nil || *evs.AuditLogs[0].ProjectID != p.ID {
				t.Fatalf("%s events: %+v", typ, evs.AuditLogs)
			}
		}
	})
}

// TestAnImportReadsOnlyWhereItsMakerMaySee: creating an import, or pointing
// one elsewhere, needs the caller to be allowed to see secrets at the
// source (as in Infisical), checked before the source is looked up, so
// whether a folder exists where one may read nothing is not told by a 404;
// an update cannot point a folder at itself, as a create cannot.
func TestAnImportReadsOnlyWhereItsMakerMaySee(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "import-sources"})
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "prod", "/", "payments"))
		tok := customRole(t, e, p.ID, "dev-only", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret"}, "conditions": map[string]any{"environment": "dev"}},
			{"subject": "secret-imports", "action": []string{"read", "create", "edit"}},
		})
		create := func(env, path string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/secret-imports", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
				"import": map[string]any{"environment": env, "path": path}})
		}
		// A folder that exists and one that does not answer alike.
		assertError(t, create("prod", "/payments"), 403, "PermissionDenied")
		assertError(t, create("prod", "/nothere"), 403, "PermissionDenied")
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "shared"))
		var out struct{ SecretImport struct{ ID string } }
		e.Must(t, 200, "POST", "/api/v1/secret-imports", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
			"import": map[string]any{"environment": "dev", "path": "/shared"}}).Decode(t, &out)
		scope := map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/"}
		assertError(t, e.Do(t, "PATCH", "/api/v1/secret-imports/"+out.SecretImport.ID, tok,
			mergeMaps(scope, map[string]any{"import": map[string]any{"environment": "prod", "path": "/payments"}})), 403, "PermissionDenied")
		r := e.Do(t, "PATCH", "/api/v1/secret-imports/"+out.SecretImport.ID, tok, mergeMaps(scope, map[string]any{"import": map[string]any{"path": "/"}}))
		assertError(t, r, 400, "BadRequest")
		if !strings.Contains(string(r.Body), "cannot import itself") {
			t.Fatalf("an import of its own folder: %s", r.Body)
		}
		// A position past the bound is refused: at 2^31-1 every later
		// import of the folder overflowed PostgreSQL's column (a 500).
		for _, pos := range []int{2147483647, secret.MaxImportPosition + 1} {
			assertError(t, e.Do(t, "PATCH", "/api/v1/secret-imports/"+out.SecretImport.ID, tok,
				mergeMaps(scope, map[string]any{"import": map[string]any{"position": pos}})), 422, "ValidationFailure")
		}
		e.Must(t, 200, "PATCH", "/api/v1/secret-imports/"+out.SecretImport.ID, tok,
			mergeMaps(scope, map[string]any{"import": map[string]any{"position": secret.MaxImportPosition}}))
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "more"))
		e.Must(t, 200, "POST", "/api/v1/secret-imports", tok, map[string]any{"workspaceId": p.ID, "environment": "dev", "path": "/",
			"import": map[string]any{"environment": "dev", "path": "/more"}})

		// Describing a folder's secrets is not enough to import them: their
		// values would reach whoever reads the importing folder with imports.
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "staging", "/", "app"))
		putSecret(t, e, e.Token, p.ID, "prod", "/payments", "DB_PASSWORD", "prod-secret")
		describer := customRole(t, e, p.ID, "describer", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret", "create", "edit"}, "conditions": map[string]any{"environment": "staging"}},
			{"subject": "secrets", "action": []string{"describeSecret"}, "conditions": map[string]any{"environment": "prod"}},
			{"subject": "secret-imports", "action": []string{"read", "create", "edit"}},
		})
		assertError(t, e.Do(t, "POST", "/api/v1/secret-imports", describer, map[string]any{"workspaceId": p.ID, "environment": "staging",
			"path": "/app", "import": map[string]any{"environment": "prod", "path": "/payments"}}), 403, "PermissionDenied")
		// Nor is reading all but some names there: the import brings those too.
		allButDB := customRole(t, e, p.ID, "all-but-db", []map[string]any{
			{"subject": "secrets", "action": []string{"read", "readValue", "describeSecret", "create", "edit"}},
			{"subject": "secrets", "action": []string{"read", "readValue"}, "inverted": true, "conditions": map[string]any{"secretName": "DB_PASSWORD"}},
			{"subject": "secret-imports", "action": []string{"read", "create", "edit"}},
		})
		assertError(t, e.Do(t, "POST", "/api/v1/secret-imports", allButDB, map[string]any{"workspaceId": p.ID, "environment": "staging",
			"path": "/app", "import": map[string]any{"environment": "prod", "path": "/payments"}}), 403, "PermissionDenied")

		// A reader of dev alone, listing with imports, is not told where an
		// import it may read nothing of leads.
		addImport(t, e, p.ID, "dev", "/shared", "prod", "/payments")
		var list struct {
			Imports []struct {
				Environment, SecretPath, FolderID string
			}
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&secretPath=/shared&include_imports=true", tok, nil).Decode(t, &list)
		if len(list.Imports) != 0 {
			t.Fatalf("the dev reader is shown the prod import: %+v", list.Imports)
		}
		e.Must(t, 200, "GET", "/api/v3/secrets/raw?workspaceId="+p.ID+"&environment=dev&secretPath=/shared&include_imports=true", e.Token, nil).Decode(t, &list)
		if len(list.Imports) != 1 || list.Imports[0].Environment != "prod" {
			t.Fatalf("the admin's imports: %+v", list.Imports)
		}
	})
}

// TestImportsFollowedByOneReadAreBounded: a read follows at most
// secret.MaxImportFolders imported folders (each costs a folder lookup,
// its rows, tags and imports; a member adds them cheaply and every reader
// pays); one secret looked up through imports opens only the rows of its
// name there, not every imported value (a 404 allocated 592 MiB).
func TestImportsFollowedByOneReadAreBounded(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "fanout"})
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "app"))
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "big"))
	// 40 MiB of values in one imported folder, and the key looked up.
	big := strings.Repeat("v", secret.MaxValueBytes)
	for i := 0; i < 80; i++ {
		putSecret(t, e, e.Token, p.ID, "dev", "/big", fmt.Sprintf("BIG%02d", i), big)
	}
	putSecret(t, e, e.Token, p.ID, "dev", "/big", "WANTED", "found")
	addImport(t, e, p.ID, "dev", "/app", "dev", "/big")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var got struct{ Secret struct{ SecretValue string } }
	e.Must(t, 200, "GET", "/api/v3/secrets/raw/WANTED?"+secretQ(p.ID, "dev", "/app")+"&include_imports=true", e.Token, nil).Decode(t, &got)
	assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw/NOPE?"+secretQ(p.ID, "dev", "/app")+"&include_imports=true", e.Token, nil), 404, "NotFound")
	runtime.ReadMemStats(&after)
	if got.Secret.SecretValue != "found" {
		t.Fatalf("WANTED through the import: %q", got.Secret.SecretValue)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
		t.Fatalf("two lookups of one key through imports allocated %d MiB", n>>20)
	}

	// MaxImportFolders imported folders are read; one more is refused.
	for i := 0; i < secret.MaxImportFolders-1; i++ {
		name := fmt.Sprintf("f%03d", i)
		e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", name))
		addImport(t, e, p.ID, "dev", "/app", "dev", "/"+name)
	}
	list := "/api/v3/secrets/raw?" + secretQ(p.ID, "dev", "/app") + "&include_imports=true&include_personal=false"
	r := e.Must(t, 200, "GET", list+"&viewSecretValue=false", e.Token, nil)
	var imps struct{ Imports []any }
	r.Decode(t, &imps)
	if len(imps.Imports) != secret.MaxImportFolders {
		t.Fatalf("%d imports answered, want %d", len(imps.Imports), secret.MaxImportFolders)
	}
	e.Must(t, 200, "POST", "/api/v1/folders", e.Token, folder(p.ID, "dev", "/", "one-more"))
	addImport(t, e, p.ID, "dev", "/app", "dev", "/one-more")
	r = e.Do(t, "GET", list+"&viewSecretValue=false", e.Token, nil)
	assertError(t, r, 400, "BadRequest")
	if !strings.Contains(string(r.Body), "more than 100 folders") {
		t.Fatalf("refusal: %s", r.Body)
	}
	// Without imports the folder reads as before.
	e.Must(t, 200, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "dev", "/app"), e.Token, nil)
}
