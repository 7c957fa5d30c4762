package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
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
					Type: sshca.UserCert, Principals: []string{"alice"}, KeyID: "k", NotBefore: at, NotAfter: at.Add(time.Hour), CreatedAt: at}, sshca.Basis{TemplateAt: tpl.UpdatedAt}, ev)
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

// Default-CA settings, host groups and revocation on both engines: a second
// bootstrap stores nothing; a host inherits its groups' mappings; revoked
// serials still valid make the KRL list, and a second revocation conflicts.
func TestSSHStoreConfigGroupsRevocation(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			org := orgOf(t, db, pid)
			ev := audit.Event{Type: "test", ActorType: "platform", OrgID: org}
			now := time.Now().UTC().Truncate(time.Microsecond)
			newCA := func(name string) sshca.NewSealedCA {
				return sshca.NewSealedCA{CA: sshca.CA{ID: store.NewID(), OrgID: org, ProjectID: pid, FriendlyName: name, KeyAlgorithm: sshca.ED25519,
					Status: sshca.Active, PublicKey: "ssh-ed25519 AAAA", CreatedAt: now, UpdatedAt: now}, SealedKey: []byte("sealed")}
			}
			if _, err := db.SSHConfig(ctx, pid); !errs.Is(err, errs.NotFound) {
				t.Fatalf("config before bootstrap: %v", err)
			}
			u, h := newCA("User CA"), newCA("Host CA")
			cfg := sshca.Config{ID: store.NewID(), ProjectID: pid, DefaultUserCAID: u.CA.ID, DefaultHostCAID: h.CA.ID, CreatedAt: now, UpdatedAt: now}
			if err := db.BootstrapSSHConfig(ctx, cfg, []sshca.NewSealedCA{u, h}, []audit.Event{ev, ev}); err != nil {
				t.Fatal(err)
			}
			u2, h2 := newCA("User CA"), newCA("Host CA")
			if err := db.BootstrapSSHConfig(ctx, sshca.Config{ID: store.NewID(), ProjectID: pid, DefaultUserCAID: u2.CA.ID, DefaultHostCAID: h2.CA.ID,
				CreatedAt: now, UpdatedAt: now}, []sshca.NewSealedCA{u2, h2}, []audit.Event{ev}); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a second bootstrap: %v", err)
			}
			if cas, err := db.SSHCAs(ctx, pid); err != nil || len(cas) != 2 {
				t.Fatalf("CAs after a lost bootstrap race: %d %v", len(cas), err)
			}
			cfg.DefaultHostCAID, cfg.UpdatedAt = u.CA.ID, now.Add(time.Second)
			if err := db.PutSSHConfig(ctx, cfg, ev); err != nil {
				t.Fatal(err)
			}
			if got, err := db.SSHConfig(ctx, pid); err != nil || got.DefaultHostCAID != u.CA.ID || got.DefaultUserCAID != u.CA.ID || got.ID != cfg.ID {
				t.Fatalf("config %+v %v", got, err)
			}

			host := sshca.Host{ID: store.NewID(), OrgID: org, ProjectID: pid, Hostname: "h.example.com", UserCertTTL: "8h", HostCertTTL: "1y",
				UserCAID: u.CA.ID, HostCAID: h.CA.ID, LoginMappings: []sshca.LoginMapping{}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHHost(ctx, host, ev); err != nil {
				t.Fatal(err)
			}
			g := sshca.HostGroup{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: "web",
				LoginMappings: []sshca.LoginMapping{{LoginUser: "deploy", Principals: []string{"alice"}}}, CreatedAt: now, UpdatedAt: now}
			if err := db.CreateSSHHostGroup(ctx, g, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateSSHHostGroup(ctx, sshca.HostGroup{ID: store.NewID(), OrgID: org, ProjectID: pid, Name: "web",
				LoginMappings: []sshca.LoginMapping{}, CreatedAt: now, UpdatedAt: now}, ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a second group named web: %v", err)
			}
			joined := now.Add(time.Second)
			join := sshca.Membership{GroupID: g.ID, HostID: host.ID, GroupPrev: now, HostPrev: now, At: joined}
			if err := db.AddSSHHostGroupMember(ctx, join, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.AddSSHHostGroupMember(ctx, join, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("a host added from an overtaken read: %v, want ErrStale", err)
			}
			again := sshca.Membership{GroupID: g.ID, HostID: host.ID, GroupPrev: joined, HostPrev: joined, At: joined.Add(time.Second)}
			if err := db.AddSSHHostGroupMember(ctx, again, ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a host added twice: %v", err)
			}
			got, err := db.SSHHost(ctx, host.ID)
			if err != nil || len(got.Inherited) != 1 || got.Inherited[0].Principals[0] != "alice" || !got.UpdatedAt.Equal(joined) {
				t.Fatalf("host with its group's mappings %+v %v", got, err)
			}
			if got, err := db.SSHHostGroup(ctx, g.ID); err != nil || !got.UpdatedAt.Equal(joined) {
				t.Fatalf("group stamped by the join: %+v %v", got, err)
			}
			if hs, err := db.SSHHosts(ctx, org, "", 10); err != nil || len(hs) != 1 || len(hs[0].Inherited) != 1 {
				t.Fatalf("org hosts %+v %v", hs, err)
			}
			if gh, err := db.SSHHostGroupHosts(ctx, g.ID, pid); err != nil || len(gh) != 1 || !gh[0].InGroup || !gh[0].JoinedAt.Equal(joined) {
				t.Fatalf("group hosts %+v %v", gh, err)
			}
			stale := g
			stale.LoginMappings, stale.UpdatedAt = []sshca.LoginMapping{{LoginUser: "root", Principals: []string{"mallory"}}}, joined.Add(time.Second)
			if err := db.UpdateSSHHostGroup(ctx, stale, now, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("new mappings checked against the members before the join: %v, want ErrStale", err)
			}
			left := again
			if err := db.RemoveSSHHostGroupMember(ctx, sshca.Membership{GroupID: g.ID, HostID: host.ID, GroupPrev: joined, HostPrev: now,
				At: left.At}, ev); !errors.Is(err, project.ErrStale) {
				t.Fatalf("a host removed as read before it joined: %v, want ErrStale", err)
			}
			if err := db.RemoveSSHHostGroupMember(ctx, left, ev); err != nil {
				t.Fatal(err)
			}
			left.GroupPrev, left.HostPrev, left.At = left.At, left.At, left.At.Add(time.Second)
			if err := db.RemoveSSHHostGroupMember(ctx, left, ev); !errs.Is(err, errs.NotFound) {
				t.Fatalf("a second removal: %v", err)
			}
			if got, _ := db.SSHHost(ctx, host.ID); len(got.Inherited) != 0 {
				t.Fatalf("mappings after leaving the group %+v", got.Inherited)
			}

			rec := func(serial string, notAfter time.Time) sshca.Cert {
				c := sshca.Cert{ID: store.NewID(), ProjectID: pid, CAID: u.CA.ID, Serial: serial, Type: sshca.UserCert, Principals: []string{"a"},
					KeyID: "k", NotBefore: now.Add(-2 * time.Hour), NotAfter: notAfter, CreatedAt: now}
				if err := db.RecordSSHCert(ctx, c, sshca.Basis{}, ev); err != nil {
					t.Fatal(err)
				}
				return c
			}
			live, expired, kept := rec("11", now.Add(time.Hour)), rec("12", now.Add(-time.Hour)), rec("13", now.Add(time.Hour))
			for _, c := range []sshca.Cert{live, expired} {
				if err := db.RevokeSSHCert(ctx, c.ID, now, ev); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.RevokeSSHCert(ctx, live.ID, now.Add(time.Second), ev); !errs.Is(err, errs.Conflict) {
				t.Fatalf("a second revocation: %v", err)
			}
			if err := db.RevokeSSHCert(ctx, store.NewID(), now, ev); !errs.Is(err, errs.NotFound) {
				t.Fatalf("revoking no certificate: %v", err)
			}
			serials, last, err := db.RevokedSSHSerials(ctx, u.CA.ID, now)
			if err != nil || len(serials) != 1 || serials[0] != "11" || !last.Equal(now) {
				t.Fatalf("revoked serials %v %v %v", serials, last, err)
			}
			if c, err := db.SSHCert(ctx, live.ID); err != nil || !c.RevokedAt.Equal(now) {
				t.Fatalf("revoked record %+v %v", c, err)
			}
			if cs, err := db.SSHCertsBySerial(ctx, "13"); err != nil || len(cs) != 1 || cs[0].ID != kept.ID || !cs[0].RevokedAt.IsZero() {
				t.Fatalf("by serial %+v %v", cs, err)
			}
			// A deleted default CA leaves the setting empty.
			if err := db.DeleteSSHHost(ctx, host.ID, ev); err != nil {
				t.Fatal(err)
			}
			cfg.DefaultHostCAID = h.CA.ID
			if err := db.PutSSHConfig(ctx, cfg, ev); err != nil {
				t.Fatal(err)
			}
			if err := db.DeleteSSHCA(ctx, h.CA.ID, ev); err != nil {
				t.Fatal(err)
			}
			if got, err := db.SSHConfig(ctx, pid); err != nil || got.DefaultHostCAID != "" || got.DefaultUserCAID != u.CA.ID {
				t.Fatalf("config after its host CA's deletion %+v %v", got, err)
			}
			if err := db.DeleteSSHHostGroup(ctx, g.ID, ev); err != nil {
				t.Fatal(err)
			}
		})
	}
}
