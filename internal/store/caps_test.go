package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestCapsHoldUnderConcurrentCreates: a project one short of its bound of
// custom roles, service tokens, environments, folders (of an environment),
// dynamic secrets (of a folder), tags, projects (of an organization), PKI CAs, certificate
// templates, collections or alerts, SSH CAs, templates, hosts or host
// groups, a collection one short of its items and an organization one short
// of its custom roles get exactly one more from twelve creates at once.
// Counted without a lock (roles, service tokens: on PostgreSQL concurrent
// transactions counted the same rows and all inserted) or by the service
// outside the insert's transaction (the rest, on both engines), 3 to 12
// landed. KMS keys were the first found (the service's count ran outside
// the insert's transaction: 12 creates took a project of 999 keys to 1,004).
func TestCapsHoldUnderConcurrentCreates(t *testing.T) {
	const racers = 12
	envOf := map[string]string{}  // project → the environment seedProject made; written before each race
	rootOf := map[string]string{} // project → that environment's root folder
	cases := []struct {
		name   string
		max    int
		seed   string // inserts max-1 rows; ? is the project (or org) id, n the recursive counter
		create func(ctx context.Context, db *store.DB, pid, org string, i int) error
	}{
		{"KMS keys", kms.MaxKeysPerProject,
			`INSERT INTO kms_keys (id, org_id, project_id, name, description, key_usage, algorithm, is_disabled, version, created_at, updated_at)
				SELECT 'k-' || i || '-' || ?, ?, '{p}', 'seeded-' || i, '', 'encrypt-decrypt', 'aes-256-gcm', FALSE, 1, 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				k := kms.Key{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: fmt.Sprintf("racer-%d", i), Usage: "encrypt-decrypt",
					Algorithm: "aes-256-gcm", Version: 1, CreatedAt: now, UpdatedAt: now}
				return db.CreateKMSKey(ctx, k, kms.SealedVersion{KeyID: k.ID, Version: 1, Material: []byte{1}, CreatedAt: now},
					audit.Event{OrgID: org, Type: "t"})
			}},
		{"PKI CAs", pki.MaxCAsPerProject,
			`INSERT INTO pki_cas (id, org_id, project_id, ca_type, status, dn, key_algorithm, private_key, created_at, updated_at)
				SELECT 'ca-' || i || '-' || ?, ?, ` + "'" + `{p}', 'root', 'active', 'CN=x', 'RSA_2048', ?, 0, 0 FROM n WHERE i < ` + fmt.Sprint(pki.MaxCAsPerProject-(racers+1)), /* seedIssuers made racers+1 */
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateCA(ctx, pki.CA{ID: store.NewID(), OrgID: org, ProjectID: pid, Type: "root", Status: "active", DN: "CN=r",
					KeyAlgorithm: "RSA_2048", SealedKey: []byte{1}, CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"PKI templates", pki.MaxTemplates,
			`INSERT INTO pki_certificate_templates (id, project_id, ca_id, name, common_name, subject_alternative_name, ttl, created_at, updated_at)
				SELECT 't-' || i || '-' || ?, ?, '{ca}', 'tpl-' || i, '*', '*', '1h', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateTemplate(ctx, pki.Template{ID: store.NewID(), ProjectID: pid, CAID: caOf(pid), Name: fmt.Sprintf("racer-%d", i),
					CommonName: "*", SubjectAlternativeName: "*", TTL: "1h", CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"PKI collections", pki.MaxCollections,
			`INSERT INTO pki_collections (id, project_id, name, created_at, updated_at) SELECT 'c-' || i || '-' || ?, ?, 'col-' || i, 0, 0 FROM n WHERE i < ` + fmt.Sprint(pki.MaxCollections-1), /* seedIssuers made one */
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateCollection(ctx, pki.Collection{ID: store.NewID(), ProjectID: pid, Name: fmt.Sprintf("racer-%d", i),
					CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"PKI collection items", pki.MaxItemsPerCollection,
			// Seeded items name nothing (both NULL), so that they need no CAs.
			`INSERT INTO pki_collection_items (id, collection_id, ca_id, cert_id, created_at, updated_at)
				SELECT 'i-' || i || '-' || ?, '{col}', NULL, NULL, 0, 0 FROM n WHERE ? <> ''`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.AddCollectionItem(ctx, pki.CollectionItem{ID: store.NewID(), CollectionID: colOf(pid), Type: pki.ItemCA,
					ItemID: fmt.Sprintf("%s-racer-%d", caOf(pid), i), CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"PKI alerts", pki.MaxAlerts,
			`INSERT INTO pki_alerts (id, project_id, collection_id, name, alert_before_days, recipient_emails, due_at, created_at, updated_at)
				SELECT 'a-' || i || '-' || ?, ?, '{col}', 'alert-' || i, 1, 'a@example.com', 0, 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateAlert(ctx, pki.Alert{ID: store.NewID(), ProjectID: pid, CollectionID: colOf(pid), Name: fmt.Sprintf("racer-%d", i),
					AlertBeforeDays: 1, Emails: []string{"a@example.com"}, DueAt: now, CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"SSH CAs", sshca.MaxCAsPerProject,
			`INSERT INTO ssh_cas (id, org_id, project_id, friendly_name, key_algorithm, status, public_key, private_key, created_at, updated_at)
				SELECT 'sca-' || i || '-' || ?, ?, '{p}', 'ca-' || i, 'ED25519', 'active', 'k', ?, 0, 0 FROM n WHERE i < ` + fmt.Sprint(sshca.MaxCAsPerProject-1), /* seedIssuers made one */
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateSSHCA(ctx, sshca.CA{ID: store.NewID(), OrgID: org, ProjectID: pid, FriendlyName: fmt.Sprintf("racer-%d", i),
					KeyAlgorithm: "ED25519", Status: "active", PublicKey: "k", CreatedAt: now, UpdatedAt: now}, []byte{1}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"SSH templates", sshca.MaxTemplatesPerProject,
			`INSERT INTO ssh_certificate_templates (id, project_id, ssh_ca_id, name, status, ttl, max_ttl, allowed_users, allowed_hosts,
				allow_user_certs, allow_host_certs, allow_custom_key_ids, extensions, critical_options, created_at, updated_at)
				SELECT 'st-' || i || '-' || ?, ?, '{sca}', 'tpl-' || i, 'active', '1h', '1h', '[]', '[]', TRUE, FALSE, FALSE, '{}', '{}', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateSSHTemplate(ctx, sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: sshCAOf(pid), Name: fmt.Sprintf("racer-%d", i),
					Status: "active", TTL: "1h", MaxTTL: "1h", AllowUserCerts: true, CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"SSH hosts", sshca.MaxHostsPerProject,
			`INSERT INTO ssh_hosts (id, org_id, project_id, hostname, user_cert_ttl, host_cert_ttl, user_ssh_ca_id, host_ssh_ca_id, login_mappings, created_at, updated_at)
				SELECT 'h-' || i || '-' || ?, ?, '{p}', 'host-' || i || '.example', '1h', '1h', '{sca}', '{sca}', '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateSSHHost(ctx, sshca.Host{ID: store.NewID(), OrgID: org, ProjectID: pid, Hostname: fmt.Sprintf("racer-%d.example", i),
					UserCertTTL: "1h", HostCertTTL: "1h", UserCAID: sshCAOf(pid), HostCAID: sshCAOf(pid), CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"SSH host groups", sshca.MaxHostGroupsPerProject,
			`INSERT INTO ssh_host_groups (id, org_id, project_id, name, login_mappings, created_at, updated_at)
				SELECT 'g-' || i || '-' || ?, ?, '{p}', 'group-' || i, '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateSSHHostGroup(ctx, sshca.HostGroup{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: fmt.Sprintf("racer-%d", i),
					CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"project roles", project.MaxRoles,
			`INSERT INTO project_roles (id, project_id, slug, name, description, permissions, created_at, updated_at)
				SELECT 'r-' || i || '-' || ?, ?, 'role-' || i, 'r', '', '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateProjectRole(ctx, project.Role{ID: store.NewID(), ProjectID: pid, Slug: fmt.Sprintf("racer-%d", i), Name: "x",
					CreatedAt: now, UpdatedAt: now}, `[]`, audit.Event{OrgID: pid, Type: "t"})
			}},
		{"service tokens", identity.MaxServiceTokens,
			`INSERT INTO service_tokens (id, project_id, name, scopes, permissions, secret_hash, created_by, created_by_type, expires_at,
				last_used, created_at, updated_at) SELECT 's-' || i || '-' || ?, ?, 't', '[]', '[]', 'h' || i, 'x', 'identity', NULL, NULL, 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateServiceToken(ctx, identity.ServiceToken{ID: store.NewID(), ProjectID: pid, Name: "racer", CreatedBy: "x",
					CreatedByType: "identity", CreatedAt: now, UpdatedAt: now}, fmt.Sprintf("hash-%d", i), audit.Event{OrgID: pid, Type: "t"})
			}},
		{"environments", project.MaxEnvironments,
			// seedProject made one environment: max-2 more.
			`INSERT INTO environments (id, project_id, name, slug, position, created_at, updated_at)
				SELECT 'e-' || i || '-' || ?, ?, 'e', 'env-' || i, i + 1, 0, 0 FROM n WHERE i < ` + fmt.Sprint(project.MaxEnvironments-1),
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				now := time.Now()
				return db.CreateEnvironment(ctx, project.Environment{ID: store.NewID(), ProjectID: pid, Name: "racer", Slug: fmt.Sprintf("racer-%d", i),
					Position: 1000 + i, CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: pid, Type: "t"})
			}},
		{"folders", project.MaxFoldersPerEnvironment,
			// seedProject made the environment's root: max-2 more, under it.
			`INSERT INTO folders (id, env_id, parent_id, name, version, created_at, updated_at)
				SELECT 'f-' || i || '-' || ?, '{e}', '{root}', 'f-' || i, 1, 0, 0 FROM n WHERE ? <> '' AND i < ` + fmt.Sprint(project.MaxFoldersPerEnvironment-1),
			func(ctx context.Context, db *store.DB, pid, _ string, i int) error {
				env := envOf[pid]
				_, err := db.CreateFolder(ctx, env, "/", newFolder(env, fmt.Sprintf("racer-%d", i)), audit.Event{OrgID: pid, Type: "t"})
				return err
			}},
		{"dynamic secrets (of a folder)", dynamic.MaxPerFolder,
			`INSERT INTO dynamic_secrets (id, project_id, folder_id, name, type, inputs, default_ttl, created_at, updated_at)
				SELECT 'd-' || i || '-' || ?, ?, '{root}', 'ds-' || i, 'totp', ?, '1h', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateDynamicSecret(ctx, dynamic.SealedSecret{Secret: dynamic.Secret{ID: store.NewID(), ProjectID: pid, FolderID: rootOf[pid],
					Name: fmt.Sprintf("racer-%d", i), Type: "totp", DefaultTTL: "1h", CreatedAt: now, UpdatedAt: now}, SealedInputs: []byte{1}},
					audit.Event{OrgID: org, Type: "t"})
			}},
		{"tags", secret.MaxTagsPerProject,
			`INSERT INTO secret_tags (id, project_id, slug, name, color, created_by, created_by_actor_type, created_at, updated_at)
				SELECT 'tg-' || i || '-' || ?, ?, 'tag-' || i, 't', '', 'x', 'user', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, pid, org string, i int) error {
				now := time.Now()
				return db.CreateTag(ctx, secret.Tag{ID: store.NewID(), ProjectID: pid, Slug: fmt.Sprintf("racer-%d", i), Name: "t",
					CreatedBy: "x", CreatedByActorType: "user", CreatedAt: now, UpdatedAt: now}, audit.Event{OrgID: org, Type: "t"})
			}},
		{"projects (of an organization)", project.MaxProjectsPerOrg,
			// seedProject made one project: max-2 more.
			`INSERT INTO projects (id, org_id, name, slug, type, created_at, updated_at)
				SELECT 'pr-' || i || '-' || ?, '{p}', 'p', 'sl-' || i || '-' || ?, 'secret-manager', 0, 0 FROM n WHERE i < ` + fmt.Sprint(project.MaxProjectsPerOrg-1),
			func(ctx context.Context, db *store.DB, _, org string, i int) error {
				creator := authz.Actor{Kind: authz.ActorIdentity, ID: org + "-creator", OrgID: org}
				if err := db.ExecForTest(ctx, `INSERT INTO identities (id, org_id, name, created_at, updated_at) VALUES (?, ?, 'c', 0, 0)
					ON CONFLICT DO NOTHING`, creator.ID, org); err != nil {
					return err
				}
				now := time.Now()
				id := store.NewID()
				return db.CreateProject(ctx, project.Project{ID: id, OrgID: org, Name: "racer", Slug: id, Type: "secret-manager",
					CreatedAt: now, UpdatedAt: now}, []byte{1}, "root", creator, audit.Event{OrgID: org, Type: "t"})
			}},
		{"organization roles", org.MaxRoles,
			`INSERT INTO org_roles (id, org_id, slug, name, description, permissions, created_at, updated_at)
				SELECT 'o-' || i || '-' || ?, ?, 'role-' || i, 'r', '', '[]', 0, 0 FROM n`,
			func(ctx context.Context, db *store.DB, _, orgID string, i int) error {
				now := time.Now()
				return db.CreateOrgRole(ctx, org.Role{ID: store.NewID(), OrgID: orgID, Slug: fmt.Sprintf("racer-%d", i), Name: "x",
					CreatedAt: now, UpdatedAt: now}, `[]`, audit.Event{OrgID: orgID, Type: "t"})
			}},
	}
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				pid, env, root := seedProject(t, db) // the org has the project's id
				owner := pid
				envOf[pid], rootOf[pid] = env, root
				seedIssuers(t, db, pid, racers)
				seed := strings.NewReplacer("{p}", pid, "{e}", env, "{root}", root, "{ca}", caOf(pid), "{col}", colOf(pid), "{sca}", sshCAOf(pid)).Replace(c.seed)
				q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, c.max-1) + seed
				args := []any{owner, owner}
				if strings.Count(seed, "?") == 3 {
					args = append(args, []byte{0}) // a private key
				}
				if err := db.ExecForTest(ctx, q, args...); err != nil {
					t.Fatal(err)
				}
				ok := landed(t, racers, func(i int) error { return c.create(ctx, db, pid, owner, i) },
					func(err error) bool { return errs.Is(err, errs.Invalid) })
				if ok != 1 {
					t.Fatalf("%d creates landed at the bound, want 1", ok)
				}
			})
		}
	})
}

// landed runs create(0..racers-1) at once and returns how many succeeded;
// an error refused does not accept fails the test.
func landed(t *testing.T, racers int, create func(i int) error, refused func(error) bool) int {
	t.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, racers)
	for i := range racers {
		wg.Go(func() { errc <- create(i) })
	}
	wg.Wait()
	close(errc)
	ok := 0
	for err := range errc {
		switch {
		case err == nil:
			ok++
		case !refused(err):
			t.Fatalf("a create failed otherwise: %v", err)
		}
	}
	return ok
}

// The PKI CA, collection and SSH CA that seedIssuers makes in a project
// (the project id is unique per test).
func caOf(pid string) string    { return pid + "-ca" }
func colOf(pid string) string   { return pid + "-col" }
func sshCAOf(pid string) string { return pid + "-sca" }

// seedIssuers makes a PKI CA (and n more, caOf(pid)-racer-i, one for each
// racing collection item), a collection and an SSH CA in project pid, whose
// organization has its id. They count towards no bound but their own: the
// PKI and SSH CA cases seed from them on.
func seedIssuers(t *testing.T, db *store.DB, pid string, n int) {
	t.Helper()
	ctx := context.Background()
	ca := `INSERT INTO pki_cas (id, org_id, project_id, ca_type, status, dn, key_algorithm, private_key, created_at, updated_at)
		VALUES (?, ?, ?, 'root', 'active', 'CN=x', 'RSA_2048', '', 0, 0)`
	ids := []string{caOf(pid)}
	for i := range n {
		ids = append(ids, fmt.Sprintf("%s-racer-%d", caOf(pid), i))
	}
	for _, id := range ids {
		if err := db.ExecForTest(ctx, ca, id, pid, pid); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO pki_collections (id, project_id, name, created_at, updated_at) VALUES ('` + colOf(pid) + `', ?, 'seeded', 0, 0)`,
		`INSERT INTO ssh_cas (id, org_id, project_id, friendly_name, key_algorithm, status, public_key, private_key, created_at, updated_at)
			VALUES ('` + sshCAOf(pid) + `', ?, ?, 'seeded', 'ED25519', 'active', 'k', '', 0, 0)`,
	} {
		args := []any{pid}
		if strings.Count(q, "?") == 2 {
			args = append(args, pid)
		}
		if err := db.ExecForTest(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFoldersCountTheParentsTheyCreate: a folder created under a path that
// does not exist yet creates its missing parents too, and every one of them
// counts toward project.MaxFoldersPerEnvironment: two short of the bound,
// /a/b/c (three folders) is refused whole, /a/b (two) lands, and then
// nothing more does.
func TestFoldersCountTheParentsTheyCreate(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, env, root := seedProject(t, db)
		q := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO folders (id, env_id, parent_id, name, version, created_at, updated_at)
			SELECT 'f-' || i || '-' || ?, ?, ?, 'f-' || i, 1, 0, 0 FROM n`, project.MaxFoldersPerEnvironment-3)
		if err := db.ExecForTest(ctx, q, pid, env, root); err != nil {
			t.Fatal(err)
		}
		create := func(parent, name string) error {
			_, err := db.CreateFolder(ctx, env, parent, newFolder(env, name), audit.Event{OrgID: pid, Type: "t"})
			return err
		}
		if err := create("/a/b", "c"); !errs.Is(err, errs.Invalid) {
			t.Fatalf("three folders two short of the bound: %v, want a refusal", err)
		}
		if _, err := db.FolderByPath(ctx, env, "/a"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("a refused create left its parent behind: %v", err)
		}
		if err := create("/a", "b"); err != nil {
			t.Fatalf("two folders two short of the bound: %v", err)
		}
		if err := create("/a", "c"); !errs.Is(err, errs.Invalid) {
			t.Fatalf("a folder at the bound: %v, want a refusal", err)
		}
	})
}
