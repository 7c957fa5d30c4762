package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// The SSH store on both engines: a CA's serials are unique, records page
// newest first, and a CA a host uses cannot be deleted.
func TestSSHStore(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			ev := audit.Event{Type: "test", ActorType: "platform", OrgID: orgOf(t, db, pid)}
			now := time.Now().UTC().Truncate(time.Microsecond)
			ca := sshca.CA{ID: store.NewID(), OrgID: pid, ProjectID: pid, FriendlyName: "ca", KeyAlgorithm: sshca.ED25519, Status: sshca.Active,
				PublicKey: "ssh-ed25519 AAAA", CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHCA(ctx, ca, []byte("sealed"), ev); err != nil {
				t.Fatal(err)
			}
			if k, err := db.SSHCAPrivateKey(ctx, ca.ID); err != nil || string(k) != "sealed" {
				t.Fatalf("private key %q %v", k, err)
			}
			tpl := sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Name: "t", Status: sshca.Active, TTL: "1h", MaxTTL: "2h",
				AllowedUsers: []string{"a*"}, AllowedHosts: []string{}, AllowUserCerts: true, Extensions: sshca.DefaultExtensions(),
				CriticalOptions: map[string]string{"force-command": "true"}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHTemplate(ctx, tpl, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateSSHTemplate(ctx, sshca.Template{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Name: "t", Status: sshca.Active,
				CreatedAt: now, UpdatedAt: now}, ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a second template named t: %v", err)
			}
			got, err := db.SSHTemplate(ctx, tpl.ID)
			if err != nil || got.AllowedUsers[0] != "a*" || got.CriticalOptions["force-command"] != "true" || len(got.Extensions) != 5 || !got.CreatedAt.Equal(now) {
				t.Fatalf("template %+v %v", got, err)
			}
			rec := func(serial string, at time.Time) error {
				return db.RecordSSHCert(ctx, sshca.Cert{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, TemplateID: tpl.ID, Serial: serial,
					Type: sshca.UserCert, Principals: []string{"alice"}, KeyID: "k", NotBefore: at, NotAfter: at.Add(time.Hour), CreatedAt: at}, ev)
			}
			if err := rec("42", now); err != nil {
				t.Fatal(err)
			}
			if err := rec("42", now); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a serial issued twice by one CA: %v", err)
			}
			if err := rec("43", now.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			certs, total, err := db.SSHCerts(ctx, pid, 0, 1)
			if err != nil || total != 2 || len(certs) != 1 || certs[0].Serial != "43" || certs[0].TemplateID != tpl.ID || certs[0].HostID != "" ||
				certs[0].Principals[0] != "alice" {
				t.Fatalf("records %+v %d %v", certs, total, err)
			}
			h := sshca.Host{ID: store.NewID(), OrgID: pid, ProjectID: pid, Hostname: "h.example.com", UserCertTTL: "8h", HostCertTTL: "1y",
				UserCAID: ca.ID, HostCAID: ca.ID, LoginMappings: []sshca.LoginMapping{{LoginUser: "root", Principals: []string{"x"}}},
				CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHHost(ctx, h, ev); err != nil {
				t.Fatal(err)
			}
			if hs, err := db.SSHHosts(ctx, pid, "", 10); err != nil || len(hs) != 1 || hs[0].LoginMappings[0].Principals[0] != "x" {
				t.Fatalf("hosts %+v %v", hs, err)
			}
			if err := db.DeleteSSHCA(ctx, ca.ID, ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("delete of a CA a host uses: %v", err)
			}
			if err := db.DeleteSSHHost(ctx, h.ID, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteSSHCA(ctx, ca.ID, ev); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SSHTemplate(ctx, tpl.ID); !errs.Is(err, errs.NotFound) {
				t.Fatalf("the CA's template outlived it: %v", err)
			}
			if _, total, _ := db.SSHCerts(ctx, pid, 0, 10); total != 0 {
				t.Fatalf("the CA's records outlived it: %d", total)
			}
		})
	}
}
