package api_test

import (
	"slices"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type templateOut struct {
	ID, Name, Description, Type, OrgID, CreatedAt, UpdatedAt string
	Roles                                                    []struct {
		Name, Slug  string
		Permissions []map[string]any
	}
	Environments []struct {
		Name, Slug string
		Position   int
	}
	Users, Groups []any
	Identities    []struct {
		IdentityID, IdentityName string
		Roles                    []string
	}
}

func (t templateOut) roleSlugs() []string {
	var out []string
	for _, r := range t.Roles {
		out = append(out, r.Slug)
	}
	return out
}

// TestProjectTemplates: the template routes with the Terraform provider's
// shapes, and a project created from a template starts with its
// environments and roles.
func TestProjectTemplates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		bot, botTok := e.NewIdentity(t, "ci-bot", "member")
		idents := []map[string]any{{"identityId": bot, "roles": []string{"auditor"}}}
		body := map[string]any{"name": "backend", "description": "for services", "type": "secret-manager",
			"environments": []map[string]any{{"name": "Alpha", "slug": "alpha", "position": 1}, {"name": "Beta", "slug": "beta", "position": 2}},
			"roles": []map[string]any{{"name": "Auditor", "slug": "auditor", "permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"read", "describeSecret"}}}}},
			"identities": idents, "users": []any{}, "groups": []any{}}
		var out struct{ ProjectTemplate templateOut }
		e.Must(t, 200, "POST", "/api/v1/project-templates", e.Token, body).Decode(t, &out)
		tp := out.ProjectTemplate
		if tp.ID == "" || tp.Name != "backend" || tp.Type != "secret-manager" || tp.OrgID != e.OrgID || tp.Description != "for services" ||
			len(tp.Environments) != 2 || tp.Environments[1].Slug != "beta" || tp.Environments[1].Position != 2 ||
			!slices.Equal(tp.roleSlugs(), []string{"admin", "member", "viewer", "no-access", "auditor"}) ||
			len(tp.Roles[4].Permissions) != 1 || tp.Users == nil || tp.CreatedAt == "" || len(tp.Identities) != 1 ||
			tp.Identities[0].IdentityID != bot || tp.Identities[0].IdentityName != "ci-bot" || !slices.Equal(tp.Identities[0].Roles, []string{"auditor"}) {
			t.Fatalf("template %+v", tp)
		}
		e.Must(t, 200, "GET", "/api/v1/project-templates/"+tp.ID, e.Token, nil).Decode(t, &out)
		if out.ProjectTemplate.ID != tp.ID || len(out.ProjectTemplate.Environments) != 2 {
			t.Fatalf("get %+v", out)
		}
		var list struct{ ProjectTemplates []templateOut }
		e.Must(t, 200, "GET", "/api/v1/project-templates?type=secret-manager", e.Token, nil).Decode(t, &list)
		if len(list.ProjectTemplates) != 2 || list.ProjectTemplates[0].Name != "default" || len(list.ProjectTemplates[0].Environments) != 3 ||
			list.ProjectTemplates[1].ID != tp.ID {
			t.Fatalf("list %+v", list)
		}

		// Terraform's update body: every field, members as empty lists.
		e.Must(t, 200, "PATCH", "/api/v1/project-templates/"+tp.ID, e.Token, map[string]any{"id": tp.ID, "name": "backend",
			"description": "changed", "type": "secret-manager", "environments": body["environments"],
			"roles": []map[string]any{{"name": "Auditor", "slug": "auditor", "permissions": []map[string]any{
				{"subject": "secrets", "action": []string{"read", "describeSecret", "readValue"}, "conditions": map[string]any{"environment": "alpha"}}}}},
			"identities": idents, "users": []any{}, "groups": []any{}}).Decode(t, &out)
		if out.ProjectTemplate.Description != "changed" || len(out.ProjectTemplate.Roles) != 5 || len(out.ProjectTemplate.Identities) != 1 {
			t.Fatalf("patched %+v", out)
		}

		// A project from the template: its environments, its role, usable at once.
		p := createProject(t, e, e.Token, map[string]any{"projectName": "from-template", "template": "backend"})
		if len(p.Environments) != 2 || p.Environments[0].Slug != "alpha" || p.Environments[1].Slug != "beta" {
			t.Fatalf("environments of a templated project %+v", p.Environments)
		}
		var role struct {
			Role struct {
				Slug        string
				Permissions []map[string]any
			}
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/roles/slug/auditor", e.Token, nil).Decode(t, &role)
		if role.Role.Slug != "auditor" || len(role.Role.Permissions) != 1 {
			t.Fatalf("template role in the project %+v", role)
		}
		putSecret(t, e, e.Token, p.ID, "alpha", "/", "K", "v")
		putSecret(t, e, e.Token, p.ID, "beta", "/", "K", "v")
		// The template's identity is a member with the template's role.
		auditor := botTok
		var ms struct {
			IdentityMembership struct {
				Roles []struct{ Role, CustomRoleSlug string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/identity-memberships/"+bot, e.Token, nil).Decode(t, &ms)
		if r := ms.IdentityMembership.Roles; len(r) != 1 || r[0].Role != "custom" || r[0].CustomRoleSlug != "auditor" {
			t.Fatalf("templated membership %+v", ms)
		}
		if got := listSecrets(t, e, auditor, secretQ(p.ID, "alpha", "/")); len(got) != 1 || got[0].SecretValue != "v" {
			t.Fatalf("auditor in alpha %+v", got)
		}
		assertError(t, e.Do(t, "GET", "/api/v3/secrets/raw?"+secretQ(p.ID, "beta", "/"), auditor, nil), 403, "PermissionDenied")
		// The built-in template and no template keep the default environments.
		for _, tmpl := range []string{"default", ""} {
			if q := createProject(t, e, e.Token, map[string]any{"projectName": "plain", "template": tmpl}); len(q.Environments) != 3 {
				t.Fatalf("template %q: %+v", tmpl, q.Environments)
			}
		}
		assertError(t, e.Do(t, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "x", "template": "backend", "type": "kms"}), 400, "BadRequest")

		// Bad templates.
		for _, bad := range []map[string]any{
			{"name": "default", "type": "secret-manager"},
			{"name": "Has Spaces", "type": "secret-manager"},
			{"name": "no-type"},
			{"name": "reserved-role", "type": "secret-manager", "roles": []map[string]any{{"name": "Admin2", "slug": "admin", "permissions": []any{}}}},
			{"name": "bad-rule", "type": "secret-manager", "roles": []map[string]any{{"name": "R", "slug": "r", "permissions": []map[string]any{{"subject": "nope", "action": "read"}}}}},
			{"name": "bad-positions", "type": "secret-manager", "environments": []map[string]any{{"name": "A", "slug": "a", "position": 2}}},
			{"name": "dup-envs", "type": "secret-manager", "environments": []map[string]any{{"name": "A", "slug": "a", "position": 1}, {"name": "B", "slug": "a", "position": 2}}},
			{"name": "with-users", "type": "secret-manager", "users": []map[string]any{{"username": "a@b.c", "roles": []string{"admin"}}}},
			{"name": "dup-identities", "type": "secret-manager", "identities": []map[string]any{{"identityId": bot, "roles": []string{"viewer"}},
				{"identityId": bot, "roles": []string{"admin"}}}},
			{"name": "no-roles", "type": "secret-manager", "identities": []map[string]any{{"identityId": bot, "roles": []string{}}}},
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/project-templates", e.Token, bad), 422, "ValidationFailure")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/project-templates", e.Token, map[string]any{"name": "backend", "type": "secret-manager"}), 400, "BadRequest")
		for _, ids := range []map[string]any{
			{"identityId": "00000000-0000-0000-0000-000000000000", "roles": []string{"viewer"}},
			{"identityId": bot, "roles": []string{"auditor"}}, // no such role in this template
		} {
			assertError(t, e.Do(t, "POST", "/api/v1/project-templates", e.Token, map[string]any{"name": "bad-identities", "type": "secret-manager",
				"identities": []map[string]any{ids}}), 400, "BadRequest")
		}
		// An identity deleted after the template was saved is left out.
		gone, _ := e.NewIdentity(t, "gone", "member")
		var t2 struct{ ProjectTemplate templateOut }
		e.Must(t, 200, "POST", "/api/v1/project-templates", e.Token, map[string]any{"name": "with-gone", "type": "secret-manager",
			"identities": []map[string]any{{"identityId": gone, "roles": []string{"viewer"}}}}).Decode(t, &t2)
		e.Must(t, 200, "DELETE", "/api/v1/identities/"+gone, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/project-templates/"+t2.ProjectTemplate.ID, e.Token, nil).Decode(t, &t2)
		if len(t2.ProjectTemplate.Identities) != 0 {
			t.Fatalf("deleted identity still in the template: %+v", t2.ProjectTemplate.Identities)
		}
		createProject(t, e, e.Token, map[string]any{"projectName": "after-gone", "template": "with-gone"})
		assertError(t, e.Do(t, "POST", "/api/v1/project-templates", e.Token, map[string]any{"name": "kms-envs", "type": "kms",
			"environments": body["environments"]}), 400, "BadRequest")

		// Organization members (not admins) can neither manage nor use templates.
		_, member := e.NewIdentity(t, "org-member", "member")
		assertError(t, e.Do(t, "POST", "/api/v1/project-templates", member, map[string]any{"name": "mine", "type": "secret-manager"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/project-templates", member, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "GET", "/api/v1/project-templates/"+tp.ID, member, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "PATCH", "/api/v1/project-templates/"+tp.ID, member, map[string]any{"description": "x"}), 403, "PermissionDenied")
		assertError(t, e.Do(t, "DELETE", "/api/v1/project-templates/"+tp.ID, member, nil), 403, "PermissionDenied")
		assertError(t, e.Do(t, "POST", "/api/v1/projects", member, map[string]any{"projectName": "x", "template": "backend"}), 403, "PermissionDenied")

		e.Must(t, 200, "DELETE", "/api/v1/project-templates/"+tp.ID, e.Token, nil).Decode(t, &out)
		if out.ProjectTemplate.ID != tp.ID {
			t.Fatalf("deleted %+v", out)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/project-templates/"+tp.ID, e.Token, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": "x", "template": "backend"}), 404, "NotFound")
		// The project made from it keeps what the template gave it.
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/roles/slug/auditor", e.Token, nil)
		assertError(t, e.Do(t, "DELETE", "/api/v1/project-templates/"+"b11b49a9-09a9-4443-916a-4246f9ff2c69", e.Token, nil), 400, "BadRequest")
	})
}
