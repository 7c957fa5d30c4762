package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type roleOut struct {
	ID, Name, Description, Slug, ProjectID string
	Permissions                            []map[string]any
}

// Terraform's project role resource: v2 routes by project id, the legacy
// ones by project slug, and the read by role id alone.
func TestProjectRolesV2LegacyAndByID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "roles"})
		v2 := "/api/v2/workspace/" + p.ID + "/roles"
		var c struct{ Role roleOut }
		e.Must(t, 200, "POST", v2, e.Token, map[string]any{"slug": "deployer", "name": "Deployer", "description": "ships",
			"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read", "edit"}, "conditions": map[string]any{"environment": "prod"}}}}).Decode(t, &c)
		r := c.Role
		if r.ID == "" || r.Slug != "deployer" || r.Name != "Deployer" || r.Description != "ships" || r.ProjectID != p.ID || len(r.Permissions) != 1 {
			t.Fatalf("v2 create %+v", r)
		}
		for _, path := range []string{"/api/v1/projects/roles/" + r.ID, v2 + "/slug/deployer", "/api/v1/workspace/" + p.Slug + "/roles/slug/deployer"} {
			var got struct{ Role roleOut }
			e.Must(t, 200, "GET", path, e.Token, nil).Decode(t, &got)
			if got.Role.ID != r.ID || got.Role.ProjectID != p.ID || len(got.Role.Permissions) != 1 || got.Role.Permissions[0]["subject"] != "secrets" {
				t.Fatalf("%s: %+v", path, got.Role)
			}
		}
		var up struct{ Role roleOut }
		e.Must(t, 200, "PATCH", v2+"/"+r.ID, e.Token, map[string]any{"slug": "deployer", "name": "Deployer 2", "description": "",
			"permissions": []map[string]any{{"subject": "secrets", "action": []string{"read"}}}}).Decode(t, &up)
		if up.Role.Name != "Deployer 2" || up.Role.Slug != "deployer" {
			t.Fatalf("v2 update %+v", up.Role)
		}

		// Legacy: the project by slug, one action per permission (Terraform's older resource).
		legacy := "/api/v1/workspace/" + p.Slug + "/roles"
		var lc struct{ Role roleOut }
		e.Must(t, 200, "POST", legacy, e.Token, map[string]any{"projectSlug": p.Slug, "slug": "reader", "name": "Reader", "description": "",
			"permissions": []map[string]any{{"action": "read", "subject": "secrets"}, {"action": "read", "subject": "secret-folders"}}}).Decode(t, &lc)
		if lc.Role.ProjectID != p.ID || len(lc.Role.Permissions) != 2 {
			t.Fatalf("legacy create %+v", lc.Role)
		}
		var list struct{ Roles []roleOut }
		e.Must(t, 200, "GET", legacy, e.Token, nil).Decode(t, &list)
		e.Must(t, 200, "GET", v2, e.Token, nil)
		if len(list.Roles) != 6 { // four built-in, two custom
			t.Fatalf("legacy list %+v", list.Roles)
		}
		e.Must(t, 200, "PATCH", legacy+"/"+lc.Role.ID, e.Token, map[string]any{"projectSlug": p.Slug, "roleId": lc.Role.ID, "name": "Reader 2"})
		e.Must(t, 200, "DELETE", legacy+"/"+lc.Role.ID, e.Token, map[string]any{"projectSlug": p.Slug, "roleId": lc.Role.ID})
		assertError(t, e.Do(t, "GET", "/api/v1/projects/roles/"+lc.Role.ID, e.Token, nil), 404, "NotFound")

		// A viewer reads but cannot write; a member of another project finds nothing.
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		e.Must(t, 200, "GET", "/api/v1/projects/roles/"+r.ID, viewer, nil)
		e.Must(t, 200, "GET", v2+"/slug/deployer", viewer, nil)
		body := map[string]any{"slug": "mine", "name": "m", "permissions": []any{}}
		assertError(t, e.Do(t, "POST", v2, viewer, body), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", legacy, viewer, body), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", v2+"/"+r.ID, viewer, map[string]any{"name": "hijacked"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", legacy+"/"+r.ID, viewer, map[string]any{"name": "hijacked"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", v2+"/"+r.ID, viewer, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", legacy+"/"+r.ID, viewer, nil), 403, "PermissionDenied")
		other := createProject(t, e, e.Token, map[string]any{"projectName": "other"})
		_, outsider := projectMember(t, e, other.ID, "outsider", "admin")
		assertError(t, e.Do(t, "GET", "/api/v1/projects/roles/"+r.ID, outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "GET", v2+"/slug/deployer", outsider, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", legacy+"/slug/deployer", outsider, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", v2+"/"+r.ID, outsider, nil), 403, "PermissionDenied")
		// A role id of another project is not found through this project's routes.
		var oc struct{ Role roleOut }
		e.Must(t, 200, "POST", "/api/v2/workspace/"+other.ID+"/roles", e.Token, map[string]any{"slug": "theirs", "name": "t"}).Decode(t, &oc)
		assertError(t, e.Do(t, "PATCH", v2+"/"+oc.Role.ID, e.Token, map[string]any{"name": "moved"}), 404, "NotFound")
		var got struct{ Role roleOut }
		e.Must(t, 200, "GET", "/api/v1/projects/roles/"+r.ID, e.Token, nil).Decode(t, &got)
		if got.Role.Name != "Deployer 2" {
			t.Fatalf("denied writes changed the role: %+v", got.Role)
		}

		// Unknown ids, slugs and projects: 404.
		for _, path := range []string{"/api/v1/projects/roles/00000000-0000-0000-0000-000000000000", "/api/v1/projects/roles/admin",
			v2 + "/slug/nope", "/api/v1/workspace/no-such-project/roles/slug/deployer", "/api/v1/workspace/no-such-project/roles"} {
			assertError(t, e.Do(t, "GET", path, e.Token, nil), 404, "NotFound")
		}
		assertError(t, e.Do(t, "PATCH", v2+"/00000000-0000-0000-0000-000000000000", e.Token, map[string]any{"name": "x"}), 404, "NotFound")
		e.Must(t, 200, "DELETE", v2+"/"+r.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/projects/roles/"+r.ID, e.Token, nil), 404, "NotFound")
	})
}
