package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/sso"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestPolicyWritesCheckWhatTheyRead: a whole-row write of an object that
// bounds what others may do (an SSH CA's status, an SSH template's allowed
// principals, an SSH host's login mappings, a certificate template's names,
// a KMS key's disabled flag, the organization's OIDC configuration, an app
// connection's rotation principals), made
// from a read that another change has overtaken, is refused
// (project.ErrStale) and leaves the other change in place.
func TestPolicyWritesCheckWhatTheyRead(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _ := seedSecrets(t, db)
		org := orgOf(t, db, pid)
		ev := audit.Event{Type: "test", ActorType: "platform", OrgID: org}
		read := time.Now().UTC().Truncate(time.Microsecond)
		first, second := read.Add(time.Second), read.Add(2*time.Second)

		// Each case creates its object as read at `read`, writes a first
		// change from that read and then a second one from the same read;
		// check tells whether the first change stayed.
		type writeCase struct {
			name  string
			run   func(t *testing.T) (firstErr, staleErr error)
			check func(t *testing.T)
		}
		var cases []writeCase

		ca := sshca.CA{ID: store.NewID(), OrgID: org, ProjectID: pid, FriendlyName: "ca", KeyAlgorithm: sshca.ED25519, Status: sshca.Active,
			PublicKey: "ssh-ed25519 AAAA", CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"ssh CA", func(t *testing.T) (error, error) {
			if err := db.CreateSSHCA(ctx, ca, []byte("sealed"), ev); err != nil {
				t.Fatal(err)
			}
			disabled, renamed := ca, ca
			disabled.Status, disabled.UpdatedAt = sshca.Disabled, first
			renamed.FriendlyName, renamed.UpdatedAt = "renamed", second
			return db.UpdateSSHCA(ctx, disabled, read, ev), db.UpdateSSHCA(ctx, renamed, read, ev)
		}, func(t *testing.T) {
			if got, err := db.SSHCA(ctx, ca.ID); err != nil || got.Status != sshca.Disabled || got.FriendlyName != "ca" {
				t.Fatalf("CA after a stale rename: %+v %v", got, err)
			}
		}})

		tpl := sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Name: "t", Status: sshca.Active, TTL: "1h", MaxTTL: "2h",
			AllowedUsers: []string{"*"}, AllowedHosts: []string{}, AllowUserCerts: true, Extensions: sshca.DefaultExtensions(),
			CriticalOptions: map[string]string{}, CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"ssh template", func(t *testing.T) (error, error) {
			if err := db.CreateSSHTemplate(ctx, tpl, ev); err != nil {
				t.Fatal(err)
			}
			narrowed, renamed := tpl, tpl
			narrowed.AllowedUsers, narrowed.UpdatedAt = []string{"deploy"}, first
			renamed.Name, renamed.UpdatedAt = "renamed", second
			return db.UpdateSSHTemplate(ctx, narrowed, read, ev), db.UpdateSSHTemplate(ctx, renamed, read, ev)
		}, func(t *testing.T) {
			if got, err := db.SSHTemplate(ctx, tpl.ID); err != nil || len(got.AllowedUsers) != 1 || got.AllowedUsers[0] != "deploy" || got.Name != "t" {
				t.Fatalf("template after a stale rename: %+v %v", got, err)
			}
		}})

		host := sshca.Host{ID: store.NewID(), OrgID: org, ProjectID: pid, Hostname: "h.example.com", UserCertTTL: "8h", HostCertTTL: "1y",
			UserCAID: ca.ID, HostCAID: ca.ID, LoginMappings: []sshca.LoginMapping{{LoginUser: "root", Principals: []string{"mallory"}}},
			CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"ssh host", func(t *testing.T) (error, error) {
			if err := db.CreateSSHHost(ctx, host, ev); err != nil {
				t.Fatal(err)
			}
			unmapped, aliased := host, host
			unmapped.LoginMappings, unmapped.UpdatedAt = []sshca.LoginMapping{}, first
			aliased.Alias, aliased.UpdatedAt = "web", second
			return db.UpdateSSHHost(ctx, unmapped, read, ev), db.UpdateSSHHost(ctx, aliased, read, ev)
		}, func(t *testing.T) {
			if got, err := db.SSHHost(ctx, host.ID); err != nil || len(got.LoginMappings) != 0 || got.Alias != "" {
				t.Fatalf("host after a stale alias: %+v %v", got, err)
			}
		}})

		group := sshca.HostGroup{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: "web",
			LoginMappings: []sshca.LoginMapping{{LoginUser: "root", Principals: []string{"mallory"}}}, CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"ssh host group", func(t *testing.T) (error, error) {
			if err := db.CreateSSHHostGroup(ctx, group, ev); err != nil {
				t.Fatal(err)
			}
			unmapped, renamed := group, group
			unmapped.LoginMappings, unmapped.UpdatedAt = []sshca.LoginMapping{}, first
			renamed.Name, renamed.UpdatedAt = "renamed", second
			return db.UpdateSSHHostGroup(ctx, unmapped, read, ev), db.UpdateSSHHostGroup(ctx, renamed, read, ev)
		}, func(t *testing.T) {
			if got, err := db.SSHHostGroup(ctx, group.ID); err != nil || len(got.LoginMappings) != 0 || got.Name != "web" {
				t.Fatalf("group after a stale rename: %+v %v", got, err)
			}
		}})

		pca := pki.CA{ID: store.NewID(), OrgID: org, ProjectID: pid, Type: pki.Root, Status: pki.Active, KeyAlgorithm: pki.ECP256,
			NotBefore: read, NotAfter: read.Add(time.Hour), SealedKey: []byte("sealed-ca"), CreatedAt: read, UpdatedAt: read}
		ptpl := pki.Template{ID: store.NewID(), ProjectID: pid, CAID: pca.ID, Name: "web", CommonName: "*.example.com",
			SubjectAlternativeName: "*.example.com", TTL: "1d", KeyUsages: []string{}, ExtendedKeyUsages: []string{}, CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"certificate template", func(t *testing.T) (error, error) {
			if err := db.CreateCA(ctx, pca, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateTemplate(ctx, ptpl, ev); err != nil {
				t.Fatal(err)
			}
			narrowed, renamed := ptpl, ptpl
			narrowed.CommonName, narrowed.UpdatedAt = "web.example.com", first
			renamed.Name, renamed.UpdatedAt = "renamed", second
			return db.UpdateTemplate(ctx, narrowed, read, ev), db.UpdateTemplate(ctx, renamed, read, ev)
		}, func(t *testing.T) {
			if got, err := db.Template(ctx, ptpl.ID); err != nil || got.CommonName != "web.example.com" || got.Name != "web" {
				t.Fatalf("certificate template after a stale rename: %+v %v", got, err)
			}
		}})

		key := kms.Key{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: "k", Usage: kms.EncryptDecrypt, Algorithm: kms.AES256GCM,
			Version: 1, CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"kms key", func(t *testing.T) (error, error) {
			if err := db.CreateKMSKey(ctx, key, kms.SealedVersion{KeyID: key.ID, Version: 1, Material: []byte("sealed"), CreatedAt: read}, ev); err != nil {
				t.Fatal(err)
			}
			disabled, described := key, key
			disabled.Disabled, disabled.UpdatedAt = true, first
			described.Description, described.UpdatedAt = "later", second
			return db.UpdateKMSKey(ctx, disabled, read, ev), db.UpdateKMSKey(ctx, described, read, ev)
		}, func(t *testing.T) {
			if got, err := db.KMSKey(ctx, key.ID); err != nil || !got.Disabled || got.Description != "" {
				t.Fatalf("key after a stale description: %+v %v", got, err)
			}
		}})

		conn := appconn.Connection{ID: store.NewID(), OrgID: org, App: appconn.Redis, Method: "username-and-password", Name: "cache",
			Credentials: appconn.Credentials{Host: "127.0.0.1", Port: 6379}, RotationPrincipals: []string{"app_*", "ops_*"},
			Version: 1, CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"app connection", func(t *testing.T) (error, error) {
			if err := db.CreateAppConnection(ctx, conn, []byte("sealed"), ev); err != nil {
				t.Fatal(err)
			}
			narrowed, described := conn, conn
			narrowed.RotationPrincipals, narrowed.UpdatedAt = []string{"app_*"}, first
			described.Description, described.UpdatedAt = "later", second
			return db.UpdateAppConnection(ctx, narrowed, read, []byte("sealed"), ev), db.UpdateAppConnection(ctx, described, read, []byte("sealed"), ev)
		}, func(t *testing.T) {
			if got, _, err := db.AppConnection(ctx, conn.ID); err != nil || len(got.RotationPrincipals) != 1 || got.Description != "" {
				t.Fatalf("connection after a stale description: %+v %v", got, err)
			}
		}})

		oidc := sso.Config{ID: store.NewID(), OrgID: org, ConfigurationType: "discovery", DiscoveryURL: "https://idp.example.com",
			ClientID: "c", ClientSecret: []byte("sealed"), AllowedEmailDomains: "", DefaultRole: "member", IsActive: true,
			CreatedAt: read, UpdatedAt: read}
		cases = append(cases, writeCase{"oidc config", func(t *testing.T) (error, error) {
			if err := db.CreateOIDCConfig(ctx, oidc, ev); err != nil {
				t.Fatal(err)
			}
			narrowed, renamed := oidc, oidc
			narrowed.AllowedEmailDomains, narrowed.UpdatedAt = "example.com", first
			renamed.ClientID, renamed.UpdatedAt = "other", second
			return db.UpdateOIDCConfig(ctx, narrowed, read, ev), db.UpdateOIDCConfig(ctx, renamed, read, ev)
		}, func(t *testing.T) {
			if got, err := db.OIDCConfig(ctx, org); err != nil || got.AllowedEmailDomains != "example.com" || got.ClientID != "c" {
				t.Fatalf("OIDC configuration after a stale change: %+v %v", got, err)
			}
		}})

		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				firstErr, staleErr := c.run(t)
				if firstErr != nil {
					t.Fatalf("the first change: %v", firstErr)
				}
				if !errors.Is(staleErr, project.ErrStale) {
					t.Fatalf("a change from an overtaken read: %v, want ErrStale", staleErr)
				}
				c.check(t)
			})
		}
	})
}

// TestCASettingsWriteOnlyTheirs: a CA settings change (status, whether
// templates are required) read before a renewal is refused, and one read
// after it changes those settings only, never the certificate the renewal
// wrote.
func TestCASettingsWriteOnlyTheirs(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		pid, _ := seedSecrets(t, db)
		ev := audit.Event{Type: "test", ActorType: "platform", OrgID: orgOf(t, db, pid)}
		read := time.Now().UTC().Truncate(time.Microsecond)
		ca := pki.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Type: pki.Root, Status: pki.Active, KeyAlgorithm: pki.ECP256,
			SerialNumber: "01", Certificate: "old", NotBefore: read, NotAfter: read.Add(time.Hour), SealedKey: []byte("k"),
			CreatedAt: read, UpdatedAt: read}
		if err := db.CreateCA(ctx, ca, ev); err != nil {
			t.Fatal(err)
		}
		renewed := ca
		renewed.SerialNumber, renewed.Certificate, renewed.UpdatedAt = "02", "new", read.Add(time.Second)
		if err := db.RenewCA(ctx, renewed, pki.Active, pki.CACert{CAID: ca.ID, SerialNumber: "01", Certificate: "old",
			NotBefore: ca.NotBefore, NotAfter: ca.NotAfter, CreatedAt: read}, ev); err != nil {
			t.Fatal(err)
		}
		stale := ca
		stale.RequireTemplate, stale.UpdatedAt = true, read.Add(2*time.Second)
		if err := db.UpdateCASettings(ctx, stale, pki.Active, read, ev); !errs.Is(err, errs.Conflict) {
			t.Fatalf("settings read before the renewal: %v, want a conflict", err)
		}
		fresh := stale // still carries the certificate read before the renewal
		if err := db.UpdateCASettings(ctx, fresh, pki.Active, renewed.UpdatedAt, ev); err != nil {
			t.Fatal(err)
		}
		if got, err := db.CA(ctx, ca.ID); err != nil || !got.RequireTemplate || got.Certificate != "new" || got.SerialNumber != "02" {
			t.Fatalf("CA after its settings changed: %+v %v", got, err)
		}
	})
}
