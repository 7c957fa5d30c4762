package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
)

type sshConfigOut struct {
	ID, ProjectID                          string
	DefaultUserSshCaID, DefaultHostSshCaID *string
}

// auditCounts counts a project's audit events by type.
func auditCounts(t *testing.T, e *apptest.Env, projectID string) map[string]int {
	t.Helper()
	evs, err := e.DB.AuditEvents(context.Background(), audit.Filter{OrgID: e.OrgID, ProjectID: projectID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, ev := range evs {
		counts[ev.Type]++
	}
	return counts
}

// A host registered without CA ids uses the project's default CAs, made
// (ED25519 "User CA" and "Host CA") on the first such host, as Infisical
// does; the defaults are read and set through ssh-config.
func TestSSHDefaultCAs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-defaults-a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-defaults-b"})
		_, viewer := projectMember(t, e, a.ID, "cfg-viewer", "viewer")
		_, outsider := projectMember(t, e, b.ID, "cfg-outsider", "admin")

		assertError(t, e.Do(t, "GET", "/api/v1/projects/"+a.ID+"/ssh-config", e.Token, nil), 404, "NotFound")
		var h1, h2 sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "one.example.com"}).Decode(t, &h1)
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "two.example.com"}).Decode(t, &h2)
		var cfg sshConfigOut
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-config", e.Token, nil).Decode(t, &cfg)
		if cfg.ProjectID != a.ID || cfg.DefaultUserSshCaID == nil || cfg.DefaultHostSshCaID == nil ||
			*cfg.DefaultUserSshCaID == *cfg.DefaultHostSshCaID || h1.UserSshCaID != *cfg.DefaultUserSshCaID ||
			h1.HostSshCaID != *cfg.DefaultHostSshCaID || h2.UserSshCaID != h1.UserSshCaID || h2.HostSshCaID != h1.HostSshCaID {
			t.Fatalf("config %+v, hosts %+v %+v", cfg, h1, h2)
		}
		var cas struct{ CAs []sshCAOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-cas", e.Token, nil).Decode(t, &cas)
		if len(cas.CAs) != 2 || cas.CAs[0].KeyAlgorithm != "ED25519" || cas.CAs[1].KeyAlgorithm != "ED25519" {
			t.Fatalf("default CAs %+v", cas.CAs)
		}
		names := map[string]string{}
		for _, ca := range cas.CAs {
			names[ca.ID] = ca.FriendlyName
		}
		if names[h1.UserSshCaID] != sshca.DefaultUserCAName || names[h1.HostSshCaID] != sshca.DefaultHostCAName {
			t.Fatalf("default CA names %v", names)
		}
		// The workspace path serves the same settings.
		var same sshConfigOut
		e.Must(t, 200, "GET", "/api/v1/workspace/"+a.ID+"/ssh-config", viewer, nil).Decode(t, &same)
		if same.ID != cfg.ID {
			t.Fatalf("workspace config %+v", same)
		}

		// Setting a default: the next host uses it; a CA of another project is refused.
		other := createSSHCA(t, e, e.Token, a.ID, "EC_prime256v1")
		caB := createSSHCA(t, e, e.Token, b.ID, "ED25519")
		e.Must(t, 200, "PATCH", "/api/v1/projects/"+a.ID+"/ssh-config", e.Token, map[string]any{"defaultHostSshCaId": other.ID}).Decode(t, &cfg)
		if *cfg.DefaultHostSshCaID != other.ID || *cfg.DefaultUserSshCaID != h1.UserSshCaID {
			t.Fatalf("updated config %+v", cfg)
		}
		var h3 sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "three.example.com"}).Decode(t, &h3)
		if h3.HostSshCaID != other.ID || h3.UserSshCaID != h1.UserSshCaID {
			t.Fatalf("host after the new default %+v", h3)
		}
		// A CA given on the request wins over the default.
		var h4 sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "four.example.com",
			"userSshCaId": other.ID}).Decode(t, &h4)
		if h4.UserSshCaID != other.ID || h4.HostSshCaID != other.ID {
			t.Fatalf("host with its own user CA %+v", h4)
		}
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+a.ID+"/ssh-config", e.Token, map[string]any{"defaultUserSshCaId": caB.ID}), 404, "NotFound")
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+a.ID+"/ssh-config", e.Token, map[string]any{"defaultUserSshCaId": "nope"}), 404, "NotFound")

		// Authorization: settings read for viewers, edit for admins; another project's admin neither.
		assertError(t, e.Do(t, "PATCH", "/api/v1/projects/"+a.ID+"/ssh-config", viewer, map[string]any{"defaultUserSshCaId": other.ID}), 403, "PermissionDenied")
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/projects/"+a.ID+"/ssh-config", outsider, nil),
			e.Do(t, "PATCH", "/api/v1/projects/"+a.ID+"/ssh-config", outsider, map[string]any{"defaultUserSshCaId": caB.ID}),
		} {
			if r.Status != 403 && r.Status != 404 {
				t.Fatalf("another project's admin on A's ssh-config: %d %s", r.Status, r.Body)
			}
		}
		// Project B's first host gets B's own defaults, not A's.
		var hb sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": b.ID, "hostname": "b.example.com"}).Decode(t, &hb)
		if hb.UserSshCaID == h1.UserSshCaID || hb.HostSshCaID == h1.HostSshCaID || hb.UserSshCaID == caB.ID {
			t.Fatalf("project B's host %+v", hb)
		}
		if c := auditCounts(t, e, a.ID); c["create-project-ssh-config"] != 1 || c["update-project-ssh-config"] != 1 || c["get-project-ssh-config"] != 2 ||
			c["create-ssh-ca"] != 3 || c["create-ssh-host"] != 4 {
			t.Fatalf("audit counts %v", c)
		}
	})
}

type sshGroupOut struct {
	ID, ProjectID, Name string
	LoginMappings       []struct {
		LoginUser         string
		AllowedPrincipals struct{ Usernames []string }
	}
}

type sshHostWithSources struct {
	ID            string
	LoginMappings []struct {
		LoginUser         string
		Source            string
		AllowedPrincipals struct{ Usernames []string }
	}
}

// Host groups: CRUD, membership, the hosts list with its filter, and the
// group's login mappings applied to its hosts (issue-user-cert) until the
// host leaves the group. Permissions are Infisical's ssh-host-groups.
func TestSSHHostGroups(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-groups-a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-groups-b"})
		_, viewer := projectMember(t, e, a.ID, "grp-viewer", "viewer")
		memberID, member := projectMember(t, e, a.ID, "grp-member", "member")
		_, outsider := projectMember(t, e, b.ID, "grp-outsider", "admin")

		var web, db, hb sshHostOut
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "web.example.com",
			"loginMappings": []map[string]any{{"loginUser": "www", "allowedPrincipals": map[string]any{"usernames": []string{"someone"}}}}}).Decode(t, &web)
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": a.ID, "hostname": "db.example.com"}).Decode(t, &db)
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": b.ID, "hostname": "b.example.com"}).Decode(t, &hb)

		deployers := map[string]any{"loginUser": "deploy", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}
		var g sshGroupOut
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups", e.Token, map[string]any{"projectId": a.ID, "name": "web-servers",
			"loginMappings": []map[string]any{deployers}}).Decode(t, &g)
		if g.ID == "" || g.ProjectID != a.ID || g.Name != "web-servers" || len(g.LoginMappings) != 1 || g.LoginMappings[0].AllowedPrincipals.Usernames[0] != memberID {
			t.Fatalf("group %+v", g)
		}
		// Names are slugs, unique in the organization.
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups", e.Token, map[string]any{"projectId": b.ID, "name": "web-servers"}), 400, "BadRequest")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups", e.Token, map[string]any{"projectId": a.ID, "name": "Web Servers"}), 422, "ValidationFailure")

		// Before joining, the member cannot log in to web; after, it can, as deploy only.
		issue := func(tok, hostID, login string) apptest.Response {
			return e.Do(t, "POST", "/api/v1/ssh/hosts/"+hostID+"/issue-user-cert", tok, map[string]any{"loginUser": login})
		}
		assertError(t, issue(member, web.ID, "deploy"), 403, "ForbiddenError")
		var joined sshHostWithSources
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+web.ID, e.Token, nil).Decode(t, &joined)
		if len(joined.LoginMappings) != 2 || joined.LoginMappings[0].Source != "host" || joined.LoginMappings[1].Source != "hostGroup" ||
			joined.LoginMappings[1].LoginUser != "deploy" {
			t.Fatalf("host in the group %+v", joined)
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+web.ID, e.Token, nil), 400, "BadRequest")
		var creds sshIssuedOut
		issue(member, web.ID, "deploy").Decode(t, &creds)
		if c := parseSSHCert(t, creds.SignedKey, hostUserCA(t, e, web.ID)); strings.Join(c.ValidPrincipals, ",") != "deploy" {
			t.Fatalf("certificate through the group %+v", c)
		}
		assertError(t, issue(member, web.ID, "www"), 403, "ForbiddenError")
		assertError(t, issue(member, db.ID, "deploy"), 403, "ForbiddenError")
		// The org-wide list shows the member the host it may now log in to.
		var mine []sshHostOut
		e.Must(t, 200, "GET", "/api/v1/ssh/hosts", member, nil).Decode(t, &mine)
		if len(mine) != 2 {
			t.Fatalf("member's hosts %+v", mine)
		}
		// A host update leaves the inherited mappings alone, even when the
		// client sends them back.
		var upd sshHostWithSources
		e.Must(t, 200, "PATCH", "/api/v1/ssh/hosts/"+web.ID, e.Token, map[string]any{"loginMappings": []map[string]any{
			{"loginUser": "deploy", "source": "hostGroup", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}).Decode(t, &upd)
		if len(upd.LoginMappings) != 1 || upd.LoginMappings[0].Source != "hostGroup" {
			t.Fatalf("host after update %+v", upd)
		}

		// The group's hosts, with the filter.
		type groupHosts struct {
			Hosts []struct {
				ID, Hostname  string
				IsPartOfGroup bool
				JoinedGroupAt *string
			}
			TotalCount int
		}
		var all, in, out groupHosts
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts", viewer, nil).Decode(t, &all)
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts?filter=group-members", e.Token, nil).Decode(t, &in)
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts?filter=non-group-members", e.Token, nil).Decode(t, &out)
		if all.TotalCount != 2 || in.TotalCount != 1 || in.Hosts[0].ID != web.ID || !in.Hosts[0].IsPartOfGroup || in.Hosts[0].JoinedGroupAt == nil ||
			out.TotalCount != 1 || out.Hosts[0].ID != db.ID || out.Hosts[0].IsPartOfGroup || out.Hosts[0].JoinedGroupAt != nil {
			t.Fatalf("group hosts %+v / %+v / %+v", all, in, out)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts?filter=bogus", e.Token, nil), 422, "ValidationFailure")

		// A host of another project cannot join.
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+hb.ID, e.Token, nil), 400, "BadRequest")

		// Authorization: viewers and members read; they neither create, change nor fill groups.
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+g.ID, viewer, nil)
		var list struct {
			Groups []struct {
				sshGroupOut
				HostCount int
			}
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-host-groups", member, nil).Decode(t, &list)
		if len(list.Groups) != 1 || list.Groups[0].ID != g.ID || list.Groups[0].HostCount != 1 {
			t.Fatalf("project groups %+v", list)
		}
		for _, tok := range []string{viewer, member} {
			assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups", tok, map[string]any{"projectId": a.ID, "name": "mine"}), 403, "PermissionDenied")
			assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/host-groups/"+g.ID, tok, map[string]any{"loginMappings": []map[string]any{
				{"loginUser": "root", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}), 403, "PermissionDenied")
			assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+db.ID, tok, nil), 403, "PermissionDenied")
			assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+web.ID, tok, nil), 403, "PermissionDenied")
			assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/host-groups/"+g.ID, tok, nil), 403, "PermissionDenied")
		}
		// One who manages groups but may edit only web.* hosts cannot pull db
		// into a group (it would take the group's logins), nor change the
		// logins of a group holding a host it may not edit; it does not even
		// see db in the group's host list.
		e.Must(t, 200, "POST", "/api/v1/projects/"+a.ID+"/roles", e.Token, map[string]any{"slug": "web-ops", "name": "w", "permissions": []map[string]any{
			{"subject": "ssh-host-groups", "action": []string{"read", "create", "edit", "delete"}},
			{"subject": "ssh-hosts", "action": []string{"read", "edit"}, "conditions": map[string]any{"hostname": map[string]any{"$glob": "web.*"}}},
			// Login mappings need it (TestLoginMappingsNeedTheRightToEditCAs).
			{"subject": "ssh-certificate-authorities", "action": []string{"read", "edit"}},
		}})
		_, webOps := projectMember(t, e, a.ID, "web-ops", "web-ops")
		var own sshGroupOut
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups", webOps, map[string]any{"projectId": a.ID, "name": "ops-own"}).Decode(t, &own)
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/host-groups/"+own.ID+"/hosts/"+db.ID, webOps, nil), 403, "PermissionDenied")
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+own.ID+"/hosts/"+web.ID, webOps, nil)
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+own.ID+"/hosts/"+db.ID, e.Token, nil)
		assertError(t, e.Do(t, "PATCH", "/api/v1/ssh/host-groups/"+own.ID, webOps, map[string]any{"loginMappings": []map[string]any{
			{"loginUser": "root", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}), 403, "PermissionDenied")
		var seen struct{ Hosts []struct{ Hostname string } }
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+own.ID+"/hosts", webOps, nil).Decode(t, &seen)
		if len(seen.Hosts) != 1 || seen.Hosts[0].Hostname != "web.example.com" {
			t.Fatalf("web-ops sees %+v", seen)
		}
		e.Must(t, 200, "DELETE", "/api/v1/ssh/host-groups/"+own.ID, e.Token, nil)
		// Another project's admin: not found.
		for _, r := range []apptest.Response{
			e.Do(t, "GET", "/api/v1/ssh/host-groups/"+g.ID, outsider, nil),
			e.Do(t, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts", outsider, nil),
			e.Do(t, "PATCH", "/api/v1/ssh/host-groups/"+g.ID, outsider, map[string]any{"name": "taken"}),
			e.Do(t, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+hb.ID, outsider, nil),
			e.Do(t, "DELETE", "/api/v1/ssh/host-groups/"+g.ID, outsider, nil),
		} {
			assertError(t, r, 404, "NotFound")
		}
		if r := e.Do(t, "GET", "/api/v1/projects/"+a.ID+"/ssh-host-groups", outsider, nil); r.Status != 403 && r.Status != 404 {
			t.Fatalf("another project's admin lists A's groups: %d", r.Status)
		}
		if r := e.Do(t, "POST", "/api/v1/ssh/host-groups", outsider, map[string]any{"projectId": a.ID, "name": "x"}); r.Status != 403 && r.Status != 404 {
			t.Fatalf("another project's admin creates a group in A: %d", r.Status)
		}

		// Changing the group's mappings changes what its hosts allow.
		e.Must(t, 200, "PATCH", "/api/v1/ssh/host-groups/"+g.ID, e.Token, map[string]any{"name": "web", "loginMappings": []map[string]any{
			{"loginUser": "ops", "allowedPrincipals": map[string]any{"usernames": []string{memberID}}}}}).Decode(t, &g)
		if g.Name != "web" {
			t.Fatalf("renamed group %+v", g)
		}
		assertError(t, issue(member, web.ID, "deploy"), 403, "ForbiddenError")
		e.Must(t, 200, "POST", "/api/v1/ssh/hosts/"+web.ID+"/issue-user-cert", member, map[string]any{"loginUser": "ops"})
		// Leaving the group ends them; a second removal is not found.
		e.Must(t, 200, "DELETE", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+web.ID, e.Token, nil)
		assertError(t, issue(member, web.ID, "ops"), 403, "ForbiddenError")
		assertError(t, e.Do(t, "DELETE", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+web.ID, e.Token, nil), 404, "NotFound")
		// Deleting a group keeps its hosts; deleting a host drops its membership.
		e.Must(t, 200, "POST", "/api/v1/ssh/host-groups/"+g.ID+"/hosts/"+db.ID, e.Token, nil)
		e.Must(t, 200, "DELETE", "/api/v1/ssh/hosts/"+db.ID, e.Token, nil)
		e.Must(t, 200, "GET", "/api/v1/ssh/host-groups/"+g.ID+"/hosts?filter=group-members", e.Token, nil).Decode(t, &in)
		if in.TotalCount != 0 {
			t.Fatalf("members after the host's deletion %+v", in)
		}
		e.Must(t, 200, "DELETE", "/api/v1/ssh/host-groups/"+g.ID, e.Token, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/host-groups/"+g.ID, e.Token, nil), 404, "NotFound")
		e.Must(t, 200, "GET", "/api/v1/ssh/hosts/"+web.ID, e.Token, nil)

		if c := auditCounts(t, e, a.ID); c["create-ssh-host-group"] != 2 || c["update-ssh-host-group"] != 1 || c["delete-ssh-host-group"] != 2 ||
			c["add-host-to-ssh-host-group"] != 4 || c["remove-host-from-ssh-host-group"] != 1 || c["get-ssh-host-group-hosts"] != 5 {
			t.Fatalf("audit counts %v", c)
		}
	})
}

// hostUserCA reads a host's user CA public key, as a server does.
func hostUserCA(t *testing.T, e *apptest.Env, hostID string) string {
	t.Helper()
	return strings.TrimSpace(string(e.Must(t, 200, "GET", "/api/v1/ssh/hosts/"+hostID+"/user-ca-public-key", "", nil).Body))
}

// Revocation: by id or by serial, by who may delete certificates; the CA's
// KRL (public) lists the revoked serials. OpenSSH's own judgement of the KRL
// is TestOpenSSHHonoursLockboxKRL in internal/sshca.
func TestSSHRevocation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		a := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-revoke-a"})
		b := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-revoke-b"})
		ca := createSSHCA(t, e, e.Token, a.ID, "ED25519")
		tpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": ca.ID, "name": "r", "allowedUsers": []string{"*"}})
		_, viewer := projectMember(t, e, a.ID, "rev-viewer", "viewer")
		_, member := projectMember(t, e, a.ID, "rev-member", "member")
		_, outsider := projectMember(t, e, b.ID, "rev-outsider", "admin")
		pubText, _ := newSSHKey(t)
		sign := func() string {
			var out struct{ SerialNumber string }
			e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", member, map[string]any{"certificateTemplateId": tpl.ID,
				"publicKey": pubText, "principals": []string{"deploy"}}).Decode(t, &out)
			return out.SerialNumber
		}
		s1, s2, s3 := sign(), sign(), sign()
		var certs struct {
			Certificates []struct{ ID, SerialNumber, Status string }
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-certificates", e.Token, nil).Decode(t, &certs)
		idOf := map[string]string{}
		for _, c := range certs.Certificates {
			idOf[c.SerialNumber] = c.ID
			if c.Status != "active" {
				t.Fatalf("a new certificate is %s", c.Status)
			}
		}
		krlFrom := func(n *apptest.Env) []byte {
			r := n.Must(t, 200, "GET", "/api/v1/ssh/ca/"+ca.ID+"/krl", "", nil)
			if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Fatalf("KRL content type %q", ct)
			}
			return r.Body
		}
		krl := func() []byte { return krlFrom(e) }
		if s := parseKRLSerials(t, krl()); len(s) != 0 {
			t.Fatalf("a KRL before any revocation: %v", s)
		}
		// A fleet behind one address polls the KRL: no per-address limit
		// (the other node has the default login limit, 60 a minute); it
		// serves the KRL from its cache until a revocation anywhere.
		other := apptest.Start(t, d, apptest.Options{Share: e, AuthRateLimit: 60})
		for range 100 {
			krlFrom(other)
		}
		if len(parseKRLSerials(t, krlFrom(other))) != 0 {
			t.Fatal("a KRL before any revocation lists serials")
		}
		cached(t, other, func() { krlFrom(other) })

		// Who may revoke: not a viewer, not a member (no delete on
		// ssh-certificates), not another project; an admin may.
		for _, tok := range []string{viewer, member} {
			assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/"+s1+"/revoke", tok, nil), 403, "PermissionDenied")
		}
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/"+s1+"/revoke", outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/"+idOf[s1]+"/revoke", outsider, nil), 404, "NotFound")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/not-a-serial/revoke", e.Token, nil), 422, "ValidationFailure")
		assertError(t, e.Do(t, "POST", "/api/v1/ssh/certificates/12345/revoke", e.Token, nil), 404, "NotFound")

		var rev struct {
			Certificate struct{ ID, SerialNumber, Status, RevokedAt string }
		}
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/"+s1+"/revoke", e.Token, map[string]any{"sshCaId": ca.ID}).Decode(t, &rev)
		if rev.Certificate.SerialNumber != s1 || rev.Certificate.Status != "revoked" || rev.Certificate.RevokedAt == "" {
			t.Fatalf("revoked %+v", rev)
		}
		e.Must(t, 200, "POST", "/api/v1/ssh/certificates/"+idOf[s2]+"/revoke", e.Token, nil).Decode(t, &rev)
		if rev.Certificate.SerialNumber != s2 {
			t.Fatalf("revoked by id %+v", rev)
		}
		// Again: no change, same answer.
		again := e.Must(t, 200, "POST", "/api/v1/ssh/certificates/"+idOf[s2]+"/revoke", e.Token, nil)
		var rev2 struct{ Certificate struct{ RevokedAt string } }
		again.Decode(t, &rev2)
		if rev2.Certificate.RevokedAt != rev.Certificate.RevokedAt {
			t.Fatalf("a second revocation moved the time: %q %q", rev2.Certificate.RevokedAt, rev.Certificate.RevokedAt)
		}

		serials := parseKRLSerials(t, krl())
		if len(serials) != 2 || !serials[s1] || !serials[s2] || serials[s3] {
			t.Fatalf("KRL serials %v (revoked %s %s, not %s)", serials, s1, s2, s3)
		}
		if got := parseKRLSerials(t, krlFrom(other)); len(got) != 2 || !got[s1] || !got[s2] {
			t.Fatalf("the other node's next KRL lists %v after two revocations", got)
		}
		e.Must(t, 200, "GET", "/api/v1/projects/"+a.ID+"/ssh-certificates", e.Token, nil).Decode(t, &certs)
		revoked := 0
		for _, c := range certs.Certificates {
			if c.Status == "revoked" {
				revoked++
			}
		}
		if revoked != 2 {
			t.Fatalf("listed as revoked: %d", revoked)
		}
		assertError(t, e.Do(t, "GET", "/api/v1/ssh/ca/not-a-ca/krl", "", nil), 404, "NotFound")
		if c := auditCounts(t, e, a.ID); c["revoke-ssh-cert"] != 2 {
			t.Fatalf("audit counts %v", c)
		}
	})
}

// TestSSHKRLRefresh: a node serves a CA's KRL from memory while nothing is
// revoked, for at most sshca.KRLRefresh on the server's clock: a
// certificate that expired meanwhile is still listed (harmlessly) and the
// generation date stays; past the refresh the KRL is built again, without
// the expired certificate and with the new date.
func TestSSHKRLRefresh(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
		e := apptest.Bootstrapped(t, d, apptest.Options{Clock: clock.Now})
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-krl-refresh"})
		ca := createSSHCA(t, e, e.Token, p.ID, "ED25519")
		tpl := createSSHTemplate(t, e, e.Token, map[string]any{"sshCaId": ca.ID, "name": "r", "allowedUsers": []string{"*"}})
		pubText, _ := newSSHKey(t)
		revoked := func(ttl string) string {
			var out struct{ SerialNumber string }
			e.Must(t, 200, "POST", "/api/v1/ssh/certificates/sign", e.Token, map[string]any{"certificateTemplateId": tpl.ID,
				"publicKey": pubText, "principals": []string{"deploy"}, "ttl": ttl}).Decode(t, &out)
			e.Must(t, 200, "POST", "/api/v1/ssh/certificates/"+out.SerialNumber+"/revoke", e.Token, nil)
			return out.SerialNumber
		}
		short, long := revoked("30s"), revoked("1h")
		krl := func() ([]byte, map[string]bool, time.Time) {
			b := e.Must(t, 200, "GET", "/api/v1/ssh/ca/"+ca.ID+"/krl", "", nil).Body
			serials := parseKRLSerials(t, b)
			return b, serials, time.Unix(int64(binary.BigEndian.Uint64(b[20:28])), 0).UTC()
		}
		start := clock.Now()
		first, serials, generated := krl()
		if !serials[short] || !serials[long] || !generated.Equal(start) {
			t.Fatalf("first KRL: %v generated %v, want %s and %s at %v", serials, generated, short, long, start)
		}

		clock.Add(45 * time.Second) // the short certificate has expired
		cached(t, e, func() {
			if b, _, _ := krl(); !bytes.Equal(b, first) {
				t.Fatal("within the refresh, with nothing revoked, the KRL was built again")
			}
		})

		clock.Add(sshca.KRLRefresh - 44*time.Second) // the refresh has passed
		_, serials, generated = krl()
		if serials[short] || !serials[long] || !generated.Equal(clock.Now()) {
			t.Fatalf("KRL after the refresh: %v generated %v, want only %s at %v", serials, generated, long, clock.Now())
		}
	})
}

// parseKRLSerials reads the serials of a KRL's certificate sections (serial
// lists only, which is what lockbox writes), as decimal strings.
func parseKRLSerials(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	u32 := func(p []byte) uint32 { return uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]) }
	u64 := func(p []byte) uint64 { return uint64(u32(p))<<32 | uint64(u32(p[4:])) }
	str := func(p []byte) ([]byte, []byte) { n := u32(p); return p[4 : 4+n], p[4+n:] }
	if len(b) < 36 || string(b[:8]) != "SSHKRL\n\x00" || u32(b[8:]) != 1 {
		t.Fatalf("KRL header %q", b)
	}
	p := b[8+4+8+8+8:]
	_, p = str(p) // reserved
	_, p = str(p) // comment
	out := map[string]bool{}
	for len(p) > 0 {
		typ := p[0]
		var sect []byte
		sect, p = str(p[1:])
		if typ != 1 {
			t.Fatalf("KRL section type %d", typ)
		}
		_, sect = str(sect) // CA key
		_, sect = str(sect) // reserved
		for len(sect) > 0 {
			st := sect[0]
			var data []byte
			data, sect = str(sect[1:])
			if st != 0x20 {
				t.Fatalf("KRL certificate subsection %#x", st)
			}
			for ; len(data) >= 8; data = data[8:] {
				out[itoa(u64(data))] = true
			}
		}
	}
	return out
}

// Hosts registered at once in a project without defaults share one set of
// default CAs: the losers of the race store nothing of theirs.
func TestSSHDefaultCAsRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "ssh-defaults-race"})
		const n = 6
		hosts := make([]sshHostOut, n)
		done := make(chan apptest.Response, n)
		for i := range n {
			go func() {
				done <- e.Do(t, "POST", "/api/v1/ssh/hosts", e.Token, map[string]any{"projectId": p.ID, "hostname": "race" + itoa(uint64(i)) + ".example.com"})
			}()
		}
		for i := range n {
			r := <-done
			if r.Status != 200 {
				t.Fatalf("host %d: %d %s", i, r.Status, r.Body)
			}
			r.Decode(t, &hosts[i])
		}
		for _, h := range hosts[1:] {
			if h.UserSshCaID != hosts[0].UserSshCaID || h.HostSshCaID != hosts[0].HostSshCaID {
				t.Fatalf("hosts with different defaults: %+v %+v", hosts[0], h)
			}
		}
		var cas struct{ CAs []sshCAOut }
		e.Must(t, 200, "GET", "/api/v1/projects/"+p.ID+"/ssh-cas", e.Token, nil).Decode(t, &cas)
		if len(cas.CAs) != 2 {
			t.Fatalf("%d CAs after the race", len(cas.CAs))
		}
	})
}
