package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
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
			g.LoginMappings, g.UpdatedAt = []sshca.LoginMapping{}, joined.Add(time.Second)
			if err := db.UpdateSSHHostGroup(ctx, g, joined, ev); err != nil {
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
			if _, total, err := db.SSHCerts(ctx, pid, 0, 100); err != nil || total != 2 {
				t.Fatalf("%d SSH certificates stored, want 2 (%v)", total, err)
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
