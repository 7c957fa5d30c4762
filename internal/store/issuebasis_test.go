package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestAnIssuanceIsStoredOnlyAsChecked: a certificate is stored only if
// what its issuance was checked against still holds in the transaction
// that stores it: a bare-caId issuance needs the CA still not to require a
// template, one through a template (PKI or SSH) the template as read, one
// for an SSH host the host as read, its host groups' mappings included. Otherwise project.ErrStale and nothing
// stored. A CA signing an intermediate (no basis) is not held to the rule.
func TestAnIssuanceIsStoredOnlyAsChecked(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			ev := audit.Event{Type: "test", ActorType: "platform", OrgID: orgOf(t, db, pid)}
			now := time.Now().UTC().Truncate(time.Second)
			later := now.Add(time.Second)

			ca := pki.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Type: pki.Root, Status: pki.Active, KeyAlgorithm: pki.ECP256,
				NotBefore: now, NotAfter: now.Add(time.Hour), SealedKey: []byte("sealed"), CreatedAt: now, UpdatedAt: now}
			if err := db.CreateCA(ctx, ca, ev); err != nil {
				t.Fatal(err)
			}
			tpl := pki.Template{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Name: "web", CommonName: "*", SubjectAlternativeName: "*",
				TTL: "1h", KeyUsages: []string{}, ExtendedKeyUsages: []string{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateTemplate(ctx, tpl, ev); err != nil {
				t.Fatal(err)
			}
			serial := 0
			cert := func(templateID string) pki.Certificate {
				serial++
				return pki.Certificate{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, TemplateID: templateID, Status: pki.CertActive,
					SerialNumber: string(rune('a'+serial)) + "0", CommonName: "x", NotBefore: now, NotAfter: now.Add(time.Hour),
					CreatedAt: now, UpdatedAt: now}
			}
			stored := func(want int) {
				t.Helper()
				if _, n, err := db.Certificates(ctx, pid, 0, 100); err != nil || n != want {
					t.Fatalf("%d certificates stored, want %d (%v)", n, want, err)
				}
			}
			bare, through := pki.Basis{BareCA: true}, pki.Basis{TemplateAt: tpl.UpdatedAt}
			if err := db.CreateCertificate(ctx, cert(""), bare, ev); err != nil {
				t.Fatalf("bare, as checked: %v", err)
			}
			if err := db.CreateCertificate(ctx, cert(tpl.ID), through, ev); err != nil {
				t.Fatalf("through the template, as checked: %v", err)
			}
			stored(2)

			// The CA now requires a template.
			ca.RequireTemplate, ca.UpdatedAt = true, later
			if err := db.UpdateCASettings(ctx, ca, pki.Active, now, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateCertificate(ctx, cert(""), bare, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("bare after the CA began to require a template: %v, want ErrStale", err)
			}
			if err := db.CreateCertificate(ctx, cert(""), pki.Basis{}, ev); err != nil {
				t.Fatalf("an intermediate's record: %v", err)
			}
			stored(3)

			// The template changes, then goes.
			tpl.CommonName, tpl.UpdatedAt = "*.example.com", later
			if err := db.UpdateTemplate(ctx, tpl, now, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateCertificate(ctx, cert(tpl.ID), through, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("through a template changed since: %v, want ErrStale", err)
			}
			if err := db.CreateCertificate(ctx, cert(tpl.ID), pki.Basis{TemplateAt: later}, ev); err != nil {
				t.Fatalf("through the template as it is: %v", err)
			}
			stored(4)
			tmpl2 := tpl
			tmpl2.ID, tmpl2.Name = store.NewID(), "gone"
			if err := db.CreateTemplate(ctx, tmpl2, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteTemplate(ctx, tmpl2.ID, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateCertificate(ctx, cert(tmpl2.ID), pki.Basis{TemplateAt: later}, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("through a deleted template: %v, want ErrStale", err)
			}
			stored(4)

			// SSH: a template disabled, a host changed.
			sca := sshca.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, FriendlyName: "ssh", KeyAlgorithm: sshca.ED25519,
				Status: sshca.Active, PublicKey: "ssh-ed25519 AAAA", CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHCA(ctx, sca, []byte("sealed"), ev); err != nil {
				t.Fatal(err)
			}
			stpl := sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: sca.ID, Name: "t", Status: sshca.Active, TTL: "1h", MaxTTL: "2h",
				AllowedUsers: []string{"*"}, AllowedHosts: []string{}, AllowUserCerts: true, Extensions: sshca.DefaultExtensions(),
				CriticalOptions: map[string]string{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHTemplate(ctx, stpl, ev); err != nil {
				t.Fatal(err)
			}
			host := sshca.Host{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Hostname: "web.example.com", UserCertTTL: "8h",
				HostCertTTL: "8h", UserCAID: sca.ID, HostCAID: sca.ID, LoginMappings: []sshca.LoginMapping{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHHost(ctx, host, ev); err != nil {
				t.Fatal(err)
			}
			n := 100
			record := func(templateID, hostID string, b sshca.Basis) error {
				n++
				return db.RecordSSHCert(ctx, sshca.Cert{ID: store.NewID(), ProjectID: pid, CAID: sca.ID, TemplateID: templateID, HostID: hostID,
					Serial: string(rune('0'+n%10)) + string(rune('0'+n/10%10)) + "1", Type: sshca.UserCert, Principals: []string{"a"},
					KeyID: "k", NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now}, b, ev)
			}
			if err := record(stpl.ID, "", sshca.Basis{TemplateAt: now}); err != nil {
				t.Fatalf("SSH through the template, as checked: %v", err)
			}
			if err := record("", host.ID, sshca.Basis{HostAt: now}); err != nil {
				t.Fatalf("SSH for the host, as checked: %v", err)
			}
			stpl.Status, stpl.UpdatedAt = sshca.Disabled, later
			if err := db.UpdateSSHTemplate(ctx, stpl, now, ev); err != nil {
				t.Fatal(err)
			}
			if err := record(stpl.ID, "", sshca.Basis{TemplateAt: now}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("SSH through a template disabled since: %v, want ErrStale", err)
			}
			host.LoginMappings, host.UpdatedAt = []sshca.LoginMapping{{LoginUser: "root", Principals: []string{"x"}}}, later
			if err := db.UpdateSSHHost(ctx, host, now, ev); err != nil {
				t.Fatal(err)
			}
			if err := record("", host.ID, sshca.Basis{HostAt: now}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("SSH for a host changed since: %v, want ErrStale", err)
			}
			// The host's inherited mappings: a group's change, or its
			// deletion, moves its hosts' stamp.
			host, err := db.SSHHost(ctx, host.ID)
			if err != nil {
				t.Fatal(err)
			}
			g := sshca.HostGroup{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Name: "g", LoginMappings: []sshca.LoginMapping{
				{LoginUser: "deploy", Principals: []string{"a"}}}, CreatedAt: later, UpdatedAt: later}
			if err := db.CreateSSHHostGroup(ctx, g, ev); err != nil {
				t.Fatal(err)
			}
			joined := later.Add(time.Second)
			if err := db.AddSSHHostGroupMember(ctx, sshca.Membership{GroupID: g.ID, HostID: host.ID, GroupPrev: later, HostPrev: host.UpdatedAt,
				At: joined}, ev); err != nil {
				t.Fatal(err)
			}
			// A rename leaves the hosts alone.
			g.Name, g.UpdatedAt = "renamed", joined.Add(time.Second)
			if err := db.UpdateSSHHostGroup(ctx, g, joined, ev); err != nil {
				t.Fatal(err)
			}
			if err := record("", host.ID, sshca.Basis{HostAt: joined}); err != nil {
				t.Fatalf("SSH for a host whose group was only renamed: %v", err)
			}
			g.LoginMappings, g.UpdatedAt = []sshca.LoginMapping{}, joined.Add(2*time.Second)
			if err := db.UpdateSSHHostGroup(ctx, g, joined.Add(time.Second), ev); err != nil {
				t.Fatal(err)
			}
			if err := record("", host.ID, sshca.Basis{HostAt: joined}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("SSH for a host whose group's mappings changed since: %v, want ErrStale", err)
			}
			h2, err := db.SSHHost(ctx, host.ID)
			if err != nil || !h2.UpdatedAt.After(joined) {
				t.Fatalf("the host's stamp after its group changed: %v (was %v), %v", h2.UpdatedAt, joined, err)
			}
			if err := db.DeleteSSHHostGroup(ctx, g.ID, ev); err != nil {
				t.Fatal(err)
			}
			if err := record("", host.ID, sshca.Basis{HostAt: h2.UpdatedAt}); !errors.Is(err, project.ErrStale) {
				t.Fatalf("SSH for a host whose group was deleted since: %v, want ErrStale", err)
			}
			if _, total, err := db.SSHCerts(ctx, pid, 0, 100); err != nil || total != 3 {
				t.Fatalf("%d SSH certificates stored, want 3 (%v)", total, err)
			}
		})
	}
}

// TestDeletingACAWhileItIssues: an issuance's transaction holds the CA, then
// the template; deleting the CA (PKI or SSH) took the templates first, then
// the CA, and
// on PostgreSQL the two deadlocked (found by review; storetest fails a test
// whose database saw a deadlock). Each round either stores the certificate
// before the CA goes or refuses it, and the delete always succeeds.
func TestDeletingACAWhileItIssues(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _ := seedSecrets(t, db)
		ev := audit.Event{Type: "test", ActorType: "platform", OrgID: orgOf(t, db, pid)}
		now := time.Now().UTC().Truncate(time.Second)
		for round := range 40 {
			ca := pki.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Type: pki.Root, Status: pki.Active, KeyAlgorithm: pki.ECP256,
				NotBefore: now, NotAfter: now.Add(time.Hour), SealedKey: []byte("sealed"), CreatedAt: now, UpdatedAt: now}
			tpl := pki.Template{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Name: fmt.Sprint("t", round), CommonName: "*",
				SubjectAlternativeName: "*", TTL: "1h", KeyUsages: []string{}, ExtendedKeyUsages: []string{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateCA(ctx, ca, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTemplate(ctx, tpl, ev); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var issued, deleted error
			wg.Go(func() {
				issued = db.CreateCertificate(ctx, pki.Certificate{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, TemplateID: tpl.ID,
					Status: pki.CertActive, SerialNumber: fmt.Sprintf("%x", round+1), CommonName: "x", NotBefore: now,
					NotAfter: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}, pki.Basis{TemplateAt: now}, ev)
			})
			wg.Go(func() { deleted = db.DeleteCA(ctx, ca.ID, ev) })
			wg.Wait()
			if deleted != nil {
				t.Fatalf("round %d: the delete: %v", round, deleted)
			}
			if issued != nil && !errs.Is(issued, errs.Invalid) && !errors.Is(issued, project.ErrStale) {
				t.Fatalf("round %d: the issuance: %v", round, issued)
			}

			// The same for an SSH CA.
			sca := sshca.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, FriendlyName: "ssh", KeyAlgorithm: sshca.ED25519,
				Status: sshca.Active, PublicKey: "ssh-ed25519 AAAA", CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHCA(ctx, sca, []byte("sealed"), ev); err != nil {
				t.Fatal(err)
			}
			stpl := sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: sca.ID, Name: fmt.Sprint("s", round), Status: sshca.Active,
				TTL: "1h", MaxTTL: "2h", AllowedUsers: []string{"*"}, AllowedHosts: []string{}, AllowUserCerts: true,
				Extensions: map[string]string{}, CriticalOptions: map[string]string{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHTemplate(ctx, stpl, ev); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				issued = db.RecordSSHCert(ctx, sshca.Cert{ID: store.NewID(), ProjectID: pid, CAID: sca.ID, TemplateID: stpl.ID,
					Serial: fmt.Sprint(round + 1), Type: sshca.UserCert, Principals: []string{"a"}, KeyID: "k", NotBefore: now,
					NotAfter: now.Add(time.Hour), CreatedAt: now}, sshca.Basis{TemplateAt: now}, ev)
			})
			wg.Go(func() { deleted = db.DeleteSSHCA(ctx, sca.ID, ev) })
			wg.Wait()
			if deleted != nil {
				t.Fatalf("round %d: the SSH CA's delete: %v", round, deleted)
			}
			if issued != nil && !errs.Is(issued, errs.Invalid) && !errors.Is(issued, project.ErrStale) {
				t.Fatalf("round %d: the SSH issuance: %v", round, issued)
			}
		}
	})
}

// TestGroupChangesSharingHostsDoNotDeadlock: a group's mapping change moves
// its hosts' stamps. One UPDATE locked them in its plan's order (the
// membership index for a small group, the table's order for a large one),
// so on PostgreSQL a large group's change and a small one's sharing hosts
// deadlocked (found by review: 26 in 60 rounds); the hosts are now locked
// in id order first. storetest fails the test on any deadlock.
func TestGroupChangesSharingHostsDoNotDeadlock(t *testing.T) {
	const hosts, rounds = 3000, 30
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db) // the org has the project's id
		seedIssuers(t, db, pid, 0)
		ev := audit.Event{Type: "test", ActorType: "platform", OrgID: pid}
		seed := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO ssh_hosts (id, org_id, project_id, hostname, alias, user_cert_ttl, host_cert_ttl, user_ssh_ca_id, host_ssh_ca_id,
				login_mappings, created_at, updated_at)
			SELECT 'h-' || i, ?, ?, 'host-' || i || '.example.com', '', '8h', '8h', ?, ?, '[]', 1, 1 FROM n`, hosts)
		if err := db.ExecForTest(ctx, seed, pid, pid, sshCAOf(pid), sshCAOf(pid)); err != nil {
			t.Fatal(err)
		}
		groups := []string{"big", "small-a", "small-b"}
		for _, g := range groups {
			if err := db.ExecForTest(ctx, `INSERT INTO ssh_host_groups (id, org_id, project_id, name, login_mappings, created_at, updated_at)
				VALUES (? || ?, ?, ?, ?, '[]', 1, 1)`, pid, g, pid, pid, g); err != nil {
				t.Fatal(err)
			}
		}
		member := `INSERT INTO ssh_host_group_members (ssh_host_group_id, ssh_host_id, created_at) SELECT ? || ?, id, 1 FROM ssh_hosts WHERE `
		for _, m := range []struct{ group, where string }{
			{"big", "project_id = ?"},
			{"small-a", "project_id = ? AND id IN ('h-7', 'h-1500', 'h-2999', 'h-42')"},
			{"small-b", "project_id = ? AND id IN ('h-2999', 'h-42', 'h-7', 'h-2000')"},
		} {
			if err := db.ExecForTest(ctx, member+m.where, pid, m.group, pid); err != nil {
				t.Fatal(err)
			}
		}
		if db.Dialect() == store.Postgres {
			if err := db.ExecForTest(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		at := time.Now().UTC().Truncate(time.Microsecond)
		for round := range rounds {
			var wg sync.WaitGroup
			for gi, name := range groups {
				wg.Go(func() {
					prev := time.UnixMicro(1).UTC()
					if round > 0 {
						prev = at.Add(time.Duration((round-1)*len(groups)+gi) * time.Microsecond)
					}
					g := sshca.HostGroup{ID: pid + name, OrgID: pid, ProjectID: pid, Name: name,
						LoginMappings: []sshca.LoginMapping{{LoginUser: fmt.Sprint("u", round), Principals: []string{"p"}}},
						UpdatedAt:     at.Add(time.Duration(round*len(groups)+gi) * time.Microsecond)}
					if err := db.UpdateSSHHostGroup(ctx, g, prev, ev); err != nil {
						t.Errorf("round %d, group %s: %v", round, name, err)
					}
				})
			}
			wg.Wait()
		}
	})
}

// TestDeletingAProjectWhileItsRowsChange: deleting a project locks
// it, then its rows as its cascades delete them (hosts before host groups,
// CAs before the certificates and settings that name them). On PostgreSQL,
// writes that took those rows the other way round deadlocked with it: a
// host group's change (the group, then its hosts), the record of an issued
// certificate (its CA and host held, then the project, by the insert's
// foreign key), a change of the project's SSH settings (the settings row,
// then a CA), an import's creation (its folder, then its source
// environment, by the insert's foreign keys; the deletion takes
// environments first), a certificate's revocation (the certificate, then its
// CA) and a group membership's removal (the membership, then its roles, which
// the deletion takes first); found by review, reproduced in psql. Then, by a
// second review: a KMS key's deletion (its versions, then the key), a
// collection item's addition (the collection, then a CA), a template moved
// to another CA, an alert to another collection, an import to another
// environment, and an organization member's removal (its project
// memberships, then their roles); and by a third, a change of SSH settings
// against the deletion of the CA it names (the settings row, then the CA). The deletion now locks the project's host
// groups and then its hosts before the cascades; a revocation takes the CA
// first, a key deletion the key, a member's removal the roles, a settings
// change the CAs it names; the others
// hold the project first (holdProject; a create's move guard). storetest
// fails the test on any deadlock.
func TestDeletingAProjectWhileItsRowsChange(t *testing.T) {
	const hosts, rounds = 1000, 24
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for round := range rounds {
			pid, env, root := seedProject(t, db) // the org has the project's id
			seedIssuers(t, db, pid, 0)
			ev := audit.Event{Type: "test", ActorType: "platform", OrgID: pid}
			for _, q := range []string{
				fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
					INSERT INTO ssh_hosts (id, org_id, project_id, hostname, alias, user_cert_ttl, host_cert_ttl, user_ssh_ca_id, host_ssh_ca_id,
						login_mappings, created_at, updated_at)
					SELECT ?1 || '-h-' || i, ?1, ?1, 'host-' || i || '.example.com', '', '8h', '8h', ?1 || '-sca', ?1 || '-sca', '[]', 1, 1 FROM n`, hosts),
				`INSERT INTO ssh_host_groups (id, org_id, project_id, name, login_mappings, created_at, updated_at)
					VALUES (?1 || '-g', ?1, ?1, 'g', '[]', 1, 1)`,
				`INSERT INTO ssh_host_group_members (ssh_host_group_id, ssh_host_id, created_at) SELECT ?1 || '-g', id, 1 FROM ssh_hosts WHERE project_id = ?1`,
				`INSERT INTO ssh_cas (id, org_id, project_id, friendly_name, key_algorithm, status, public_key, private_key, created_at, updated_at)
					VALUES (?1 || '-sca2', ?1, ?1, 'second', 'ED25519', 'active', 'k', '', 0, 0)`,
				`INSERT INTO project_ssh_configs (id, project_id, default_user_ssh_ca_id, default_host_ssh_ca_id, created_at, updated_at)
					VALUES (?1 || '-cfg', ?1, ?1 || '-sca', ?1 || '-sca', 0, 0)`,
				`INSERT INTO pki_certificates (id, project_id, ca_id, status, serial_number, common_name, not_before, not_after, certificate, created_at, updated_at)
					VALUES (?1 || '-cert', ?1, ?1 || '-ca', 'active', ?1 || '-02', 'c', 0, 0, '', 0, 0)`,
				`INSERT INTO org_groups (id, org_id, name, slug, role, created_at, updated_at) VALUES (?1 || '-og', ?1, 'og', 'og', 'no-access', 0, 0)`,
				`INSERT INTO project_group_memberships (id, project_id, group_id, created_at, updated_at) VALUES (?1 || '-pgm', ?1, ?1 || '-og', 0, 0)`,
				`INSERT INTO project_group_membership_roles (id, membership_id, role, created_at, updated_at) VALUES (?1 || '-pgr', ?1 || '-pgm', 'viewer', 0, 0)`,
				`INSERT INTO kms_keys (id, org_id, project_id, name, description, key_usage, algorithm, is_disabled, version, created_at, updated_at)
					VALUES (?1 || '-key', ?1, ?1, 'k', '', 'encrypt-decrypt', 'aes-256-gcm', FALSE, 1, 0, 0)`,
				`INSERT INTO kms_key_versions (key_id, version, material, created_at) VALUES (?1 || '-key', 1, 'm', 0)`,
				`INSERT INTO pki_cas (id, org_id, project_id, ca_type, status, dn, key_algorithm, private_key, created_at, updated_at)
					VALUES (?1 || '-ca2', ?1, ?1, 'root', 'active', 'CN=y', 'RSA_2048', '', 0, 0)`,
				`INSERT INTO pki_certificate_templates (id, project_id, ca_id, name, common_name, subject_alternative_name, ttl, created_at, updated_at)
					VALUES (?1 || '-tpl', ?1, ?1 || '-ca', 'tpl', '*', '*', '1h', 0, 0)`,
				`INSERT INTO pki_collections (id, project_id, name, created_at, updated_at) VALUES (?1 || '-col2', ?1, 'second', 0, 0)`,
				`INSERT INTO pki_alerts (id, project_id, collection_id, name, alert_before_days, recipient_emails, due_at, created_at, updated_at)
					VALUES (?1 || '-alert', ?1, ?1 || '-col', 'alert', 1, 'a@example.com', 0, 0, 0)`,
				`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-env2', ?1, 'e2', 'e2', 2, 0, 0)`,
				`INSERT INTO secret_imports (id, folder_id, import_env_id, import_path, position, version, created_at, updated_at)
					VALUES (?1 || '-imp', '{root}', '{env}', '/', 1, 1, 0, 0)`,
				`INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?1 || '-u', ?1 || '@example.com', ?1, 'x', 0, 0)`,
				`INSERT INTO org_memberships (id, org_id, user_id, role, created_at, updated_at) VALUES (?1 || '-om', ?1, ?1 || '-u', 'member', 0, 0)`,
				`INSERT INTO project_memberships (id, project_id, user_id, created_at, updated_at) VALUES (?1 || '-pm', ?1, ?1 || '-u', 0, 0)`,
				`INSERT INTO project_membership_roles (id, membership_id, role, created_at, updated_at) VALUES (?1 || '-pmr', ?1 || '-pm', 'viewer', 0, 0)`,
			} {
				if err := db.ExecForTest(ctx, strings.NewReplacer("?1", "'"+pid+"'", "{root}", root, "{env}", env).Replace(q)); err != nil { // pid: an id we made
					t.Fatal(err)
				}
			}
			at := time.UnixMicro(1).UTC()
			now := time.Now().UTC().Truncate(time.Microsecond)
			gone := func(err error) bool {
				return err == nil || errs.Is(err, errs.NotFound) || errors.Is(err, project.ErrStale) || errs.Is(err, errs.Invalid)
			}
			// The others start within the deletion's cascades: a little
			// later each round.
			wait := func() { time.Sleep(time.Duration(round%8) * time.Millisecond) }
			var wg sync.WaitGroup
			// during runs write once the deletion is under way; it may land
			// or find its rows gone, but not fail otherwise.
			during := func(name string, write func() error) {
				wg.Go(func() {
					wait()
					if err := write(); !gone(err) {
						t.Errorf("round %d: %s: %v", round, name, err)
					}
				})
			}
			wg.Go(func() {
				if err := db.DeleteProject(ctx, pid, ev); err != nil {
					t.Errorf("round %d: DeleteProject: %v", round, err)
				}
			})
			during("UpdateSSHHostGroup", func() error {
				g := sshca.HostGroup{ID: pid + "-g", OrgID: pid, ProjectID: pid, Name: "g",
					LoginMappings: []sshca.LoginMapping{{LoginUser: "u", Principals: []string{"p"}}}, UpdatedAt: now}
				return db.UpdateSSHHostGroup(ctx, g, at, ev)
			})
			during("RecordSSHCert", func() error {
				c := sshca.Cert{ID: store.NewID(), ProjectID: pid, CAID: sshCAOf(pid), HostID: pid + "-h-" + fmt.Sprint(hosts), Serial: "1",
					Type: sshca.UserCert, Principals: []string{"u"}, KeyID: "k", NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now}
				return db.RecordSSHCert(ctx, c, sshca.Basis{HostAt: at}, ev)
			})
			during("CreateCertificate", func() error {
				c := pki.Certificate{ID: store.NewID(), ProjectID: pid, CAID: caOf(pid), Status: "active", SerialNumber: pid + "-01",
					CommonName: "a", NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
				return db.CreateCertificate(ctx, c, pki.Basis{}, ev)
			})
			during("PutSSHConfig", func() error {
				c := sshca.Config{ID: pid + "-cfg", ProjectID: pid, DefaultUserCAID: pid + "-sca2", DefaultHostCAID: pid + "-sca2",
					CreatedAt: now, UpdatedAt: now}
				return db.PutSSHConfig(ctx, c, ev)
			})
			during("CreateImport", func() error {
				// An import references its folder, then its source
				// environment; the deletion takes environments first.
				place := project.WithMoveGuard(ctx, project.MoveGuard{ProjectID: pid, Place: true})
				im := secret.Import{ID: store.NewID(), FolderID: root, EnvID: env, Path: "/x", Position: 1, Version: 1, CreatedAt: now, UpdatedAt: now}
				return db.CreateImport(place, im, ev)
			})
			during("RevokeCertificate", func() error {
				if err := db.RevokeCertificate(ctx, pid+"-cert", caOf(pid), now, 0, ev); !errs.Is(err, errs.Conflict) { // revoked already: it landed first
					return err
				}
				return nil
			})
			during("DeleteProjectGroup", func() error {
				return db.DeleteProjectGroup(ctx, pid+"-pgm", []string{pid + "-pgr"}, ev)
			})
			during("DeleteSSHCA", func() error {
				// The CA the settings change names: it clears settings
				// that name it, after locking itself.
				return db.DeleteSSHCA(ctx, pid+"-sca2", ev)
			})
			during("DeleteCA", func() error {
				return db.DeleteCA(ctx, pid+"-ca2", ev)
			})
			during("DeleteKMSKey", func() error {
				return db.DeleteKMSKey(ctx, pid+"-key", ev)
			})
			during("AddCollectionItem", func() error {
				it := pki.CollectionItem{ID: store.NewID(), CollectionID: colOf(pid), Type: pki.ItemCA, ItemID: caOf(pid), CreatedAt: now, UpdatedAt: now}
				return db.AddCollectionItem(ctx, it, ev)
			})
			during("UpdateTemplate", func() error {
				tp := pki.Template{ID: pid + "-tpl", ProjectID: pid, CAID: pid + "-ca2", Name: "tpl", CommonName: "*", SubjectAlternativeName: "*",
					TTL: "1h", UpdatedAt: now}
				return db.UpdateTemplate(ctx, tp, time.UnixMicro(0), ev)
			})
			during("UpdateAlert", func() error {
				a := pki.Alert{ID: pid + "-alert", ProjectID: pid, CollectionID: pid + "-col2", Name: "alert", AlertBeforeDays: 1,
					Emails: []string{"a@example.com"}, UpdatedAt: now}
				return db.UpdateAlert(ctx, a, ev)
			})
			during("UpdateImport", func() error {
				im := secret.Import{ID: pid + "-imp", FolderID: root, EnvID: pid + "-env2", Path: "/", Position: 1, Version: 2, UpdatedAt: now}
				return db.UpdateImport(ctx, im, ev)
			})
			during("DeleteOrgMember", func() error {
				m := org.Member{ID: pid + "-om", OrgID: pid, UserID: pid + "-u", UpdatedAt: time.UnixMicro(0)}
				return db.DeleteOrgMember(ctx, m, ev)
			})
			wg.Wait()
		}
	})
}

// TestSSHSettingsChangeWhileTheirCAIsDeleted: changing a project's SSH
// settings that name a CA (to name it as the other default) while that CA
// is deleted. The change locked the
// settings row and then (its foreign key check) the CA; the deletion locks
// the CA and then clears the settings that name it: deadlocks on PostgreSQL
// (found by review, reproduced in psql). The change now takes the CAs it
// names first. storetest fails the test on any deadlock.
func TestSSHSettingsChangeWhileTheirCAIsDeleted(t *testing.T) {
	const rounds = 150
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _, _ := seedProject(t, db) // the org has the project's id
		seedIssuers(t, db, pid, 0)
		ev := audit.Event{Type: "test", ActorType: "platform", OrgID: pid}
		now := time.Now().UTC().Truncate(time.Microsecond)
		put := func(user, host string) error {
			return db.PutSSHConfig(ctx, sshca.Config{ID: pid + "-cfg", ProjectID: pid, DefaultUserCAID: user, DefaultHostCAID: host,
				CreatedAt: now, UpdatedAt: now}, ev)
		}
		if err := put(sshCAOf(pid), sshCAOf(pid)); err != nil {
			t.Fatal(err)
		}
		for round := range rounds {
			ca := fmt.Sprintf("%s-x%d", pid, round)
			if err := db.ExecForTest(ctx, `INSERT INTO ssh_cas (id, org_id, project_id, friendly_name, key_algorithm, status, public_key,
				private_key, created_at, updated_at) VALUES (?, ?, ?, ?, 'ED25519', 'active', 'k', '', 0, 0)`, ca, pid, pid, ca); err != nil {
				t.Fatal(err)
			}
			if err := put(ca, sshCAOf(pid)); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				time.Sleep(time.Duration(round%10) * 100 * time.Microsecond) // into the deletion's statements
				// Still naming the CA, in the other column.
				if err := put(sshCAOf(pid), ca); err != nil && !errs.Is(err, errs.Invalid) {
					t.Errorf("round %d: PutSSHConfig: %v", round, err)
				}
			})
			wg.Go(func() {
				if err := db.DeleteSSHCA(ctx, ca, ev); err != nil {
					t.Errorf("round %d: DeleteSSHCA: %v", round, err)
				}
			})
			wg.Wait()
		}
	})
}

// TestUpdateImportAnswersWhatWentMissing: the service checks an import and
// the environment it is moved to before the store writes it; either may be
// deleted in between. The store answers as the foreign key would for the
// environment (400, the import unchanged) and 404 for the import, and
// writes no audit event for a change it did not make.
func TestUpdateImportAnswersWhatWentMissing(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, env, root := seedProject(t, db)
		env2, gone := pid+"-env2", pid+"-env3"
		for _, q := range []string{
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-env2', ?1, 'e2', 'e2', 2, 0, 0)`,
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at) VALUES (?1 || '-env3', ?1, 'e3', 'e3', 3, 0, 0)`,
			`INSERT INTO secret_imports (id, folder_id, import_env_id, import_path, position, version, created_at, updated_at)
				VALUES (?1 || '-imp', '{root}', '{env}', '/', 1, 1, 0, 0)`,
			`DELETE FROM environments WHERE id = ?1 || '-env3'`, // checked, then deleted
		} {
			if err := db.ExecForTest(ctx, strings.NewReplacer("?1", "'"+pid+"'", "{root}", root, "{env}", env).Replace(q)); err != nil { // pid: an id we made
				t.Fatal(err)
			}
		}
		events := func() int {
			return len(db.IDsForTest(t, `SELECT id FROM audit_logs WHERE org_id = ?`, pid))
		}
		ev := audit.Event{Type: "update-secret-import", ActorType: "platform", OrgID: pid}
		now := time.Now().UTC().Truncate(time.Microsecond)
		move := func(id, to string) error {
			return db.UpdateImport(ctx, secret.Import{ID: id, FolderID: root, EnvID: to, Path: "/", Position: 1, Version: 2, UpdatedAt: now}, ev)
		}

		if err := move(pid+"-imp", gone); !errs.Is(err, errs.Invalid) {
			t.Fatalf("to an environment deleted meanwhile: %v, want a 400", err)
		}
		if got := db.IDsForTest(t, `SELECT import_env_id FROM secret_imports WHERE id = ?`, pid+"-imp"); len(got) != 1 || got[0] != env {
			t.Fatalf("import after a refused move names %v, want [%s]", got, env)
		}
		if err := move(pid+"-gone", env2); !errs.Is(err, errs.NotFound) {
			t.Fatalf("an import deleted meanwhile: %v, want a 404", err)
		}
		if n := events(); n != 0 {
			t.Fatalf("%d audit events for changes not made", n)
		}

		if err := move(pid+"-imp", env2); err != nil {
			t.Fatal(err)
		}
		if got := db.IDsForTest(t, `SELECT import_env_id FROM secret_imports WHERE id = ?`, pid+"-imp"); len(got) != 1 || got[0] != env2 {
			t.Fatalf("import after a move names %v, want [%s]", got, env2)
		}
		if n := events(); n != 1 {
			t.Fatalf("%d audit events after one move, want 1", n)
		}
	})
}
