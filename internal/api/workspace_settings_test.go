package api_test

import (
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The by-id workspace update and delete Infisical serves, and the audit log
// retention setting Terraform writes: a viewer can do none of them.
func TestWorkspaceUpdateDeleteAndAuditLogsRetention(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "settings", "slug": "settings-proj"})
		_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
		ws := "/api/v1/workspace/" + p.ID
		retention := "/api/v1/workspace/" + p.Slug + "/audit-logs-retention"

		type wsOut struct {
			ID, Name, Slug, Description string
			AuditLogsRetentionDays      *int
		}
		read := func() wsOut {
			t.Helper()
			var out struct{ Workspace wsOut }
			e.Must(t, 200, "GET", ws, e.Token, nil).Decode(t, &out)
			return out.Workspace
		}
		if got := read(); got.AuditLogsRetentionDays != nil {
			t.Fatalf("retention before it is set %v", *got.AuditLogsRetentionDays)
		}

		assertError(t, e.Do(t, "PATCH", ws, viewer, map[string]any{"name": "hijacked"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PUT", retention, viewer, map[string]any{"auditLogsRetentionDays": 1}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", ws, viewer, nil), 403, "PermissionDenied")
		if got := read(); got.Name != "settings" || got.AuditLogsRetentionDays != nil {
			t.Fatalf("a viewer changed the project: %+v", got)
		}

		// What Terraform's update sends.
		var upd struct {
			Message   string
			Workspace wsOut
		}
		e.Must(t, 200, "PATCH", ws, e.Token, map[string]any{"projectId": p.ID, "name": "renamed", "description": "d",
			"slug": "", "hasDeleteProtection": false}).Decode(t, &upd)
		if upd.Message == "" || upd.Workspace.ID != p.ID || upd.Workspace.Name != "renamed" || upd.Workspace.Slug != p.Slug {
			t.Fatalf("update %+v", upd)
		}

		for _, bad := range []any{map[string]any{}, map[string]any{"auditLogsRetentionDays": -1},
			map[string]any{"auditLogsRetentionDays": 3651}, map[string]any{"auditLogsRetentionDays": "30"}} {
			r := e.Do(t, "PUT", retention, e.Token, bad)
			if r.Status != 422 && r.Status != 400 {
				t.Fatalf("retention %v: status %d %s", bad, r.Status, r.Body)
			}
		}
		assertError(t, e.Do(t, "PUT", retention, e.Token, map[string]any{"auditLogsRetentionDays": 3651}), 422, "ValidationFailure")
		assertError(t, e.Do(t, "PUT", "/api/v1/workspace/no-such-project/audit-logs-retention", e.Token,
			map[string]any{"auditLogsRetentionDays": 30}), 404, "NotFound")

		var set struct {
			Message   string
			Workspace wsOut
		}
		e.Must(t, 200, "PUT", retention, e.Token, map[string]any{"auditLogsRetentionDays": 30}).Decode(t, &set)
		if set.Workspace.AuditLogsRetentionDays == nil || *set.Workspace.AuditLogsRetentionDays != 30 {
			t.Fatalf("retention answer %+v", set)
		}
		if got := read(); got.AuditLogsRetentionDays == nil || *got.AuditLogsRetentionDays != 30 || got.Name != "renamed" {
			t.Fatalf("after retention %+v", got)
		}
		// The other project reads answer it too; a later update keeps it.
		var byID struct{ Project wsOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID, e.Token, nil).Decode(t, &byID)
		var bySlug wsOut
		e.Must(t, 200, "GET", "/api/v2/workspace/"+p.Slug, e.Token, nil).Decode(t, &bySlug)
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+p.ID, e.Token, map[string]any{"description": "again"})
		for where, w := range map[string]wsOut{"by id": byID.Project, "by slug": bySlug, "after update": read()} {
			if w.AuditLogsRetentionDays == nil || *w.AuditLogsRetentionDays != 30 {
				t.Fatalf("%s: retention %v", where, w.AuditLogsRetentionDays)
			}
		}

		var del struct{ Workspace wsOut }
		e.Must(t, 200, "DELETE", ws, e.Token, nil).Decode(t, &del)
		if del.Workspace.ID != p.ID {
			t.Fatalf("delete %+v", del)
		}
		assertError(t, e.Do(t, "GET", ws, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "DELETE", ws, e.Token, nil), 404, "NotFound")
	})
}

// TestAuditRetentionCappedByTheServer: with a server retention set, a
// project's may not exceed it (400, as Infisical refuses more than the
// plan's); up to it is accepted.
func TestAuditRetentionCappedByTheServer(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{AuditLogRetentionDays: 30})
	p := createProject(t, e, e.Token, map[string]any{"projectName": "capped", "slug": "capped-proj"})
	retention := "/api/v1/workspace/" + p.Slug + "/audit-logs-retention"
	assertError(t, e.Do(t, "PUT", retention, e.Token, map[string]any{"auditLogsRetentionDays": 31}), 400, "BadRequest")
	e.Must(t, 200, "PUT", retention, e.Token, map[string]any{"auditLogsRetentionDays": 30})
	// Checked after the caller's rights: a viewer learns nothing of the cap.
	_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
	assertError(t, e.Do(t, "PUT", retention, viewer, map[string]any{"auditLogsRetentionDays": 31}), 403, "PermissionDenied")
}
