package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// Lists of CAs and certificates (pages, the expiring list, the public CRL's
// revoked list) carry no sealed private key; only reads by id or serial do.
func TestPKIListsCarryNoPrivateKey(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := context.Background()
			pid, _ := seedSecrets(t, db)
			ev := audit.Event{Type: "test", ActorType: "platform", OrgID: orgOf(t, db, pid)}
			now := time.Now().UTC().Truncate(time.Second)
			ca := pki.CA{ID: store.NewID(), OrgID: ev.OrgID, ProjectID: pid, Type: pki.Root, Status: pki.Active, KeyAlgorithm: pki.ECP256,
				NotBefore: now, NotAfter: now.Add(time.Hour), SealedKey: []byte("sealed-ca"), CreatedAt: now, UpdatedAt: now}
			if err := db.CreateCA(ctx, ca, ev); err != nil {
				t.Fatal(err)
			}
			cert := pki.Certificate{ID: store.NewID(), ProjectID: pid, CAID: ca.ID, Status: pki.CertActive, SerialNumber: "0a",
				NotBefore: now, NotAfter: now.Add(time.Hour), SealedKey: []byte("sealed-leaf"), CreatedAt: now, UpdatedAt: now}
			if err := db.CreateCertificate(ctx, cert, pki.Basis{}, ev); err != nil {
				t.Fatal(err)
			}
			if got, err := db.CA(ctx, ca.ID); err != nil || string(got.SealedKey) != "sealed-ca" {
				t.Fatalf("CA by id: %q %v", got.SealedKey, err)
			}
			if got, err := db.CertificateBySerial(ctx, "0a"); err != nil || string(got.SealedKey) != "sealed-leaf" {
				t.Fatalf("certificate by serial: %q %v", got.SealedKey, err)
			}
			cas, err := db.CAs(ctx, pid)
			if err != nil || len(cas) != 1 || cas[0].SealedKey != nil || cas[0].ID != ca.ID {
				t.Fatalf("CA list: %d CAs, key %q, %v", len(cas), cas[0].SealedKey, err)
			}
			page, _, err := db.Certificates(ctx, pid, 0, 10)
			if err != nil || len(page) != 1 || page[0].SealedKey != nil || page[0].SerialNumber != "0a" {
				t.Fatalf("certificate page: %+v %v", page, err)
			}
			soon, err := db.ExpiringCertificates(ctx, pid, now, now.Add(2*time.Hour), 10)
			if err != nil || len(soon) != 1 || soon[0].SealedKey != nil {
				t.Fatalf("expiring: %d, %v", len(soon), err)
			}
			if err := db.RevokeCertificate(ctx, cert.ID, ca.ID, now, 1, ev); err != nil {
				t.Fatal(err)
			}
			revoked, err := db.RevokedEntries(ctx, ca.ID, now.Add(time.Hour-time.Second))
			if err != nil || len(revoked) != 1 || revoked[0].SerialNumber != "0a" || !revoked[0].At.Equal(now) || revoked[0].Reason != 1 {
				t.Fatalf("revoked: %+v, %v", revoked, err)
			}
			// Once it has expired (before the given time), it is left out.
			if revoked, err := db.RevokedEntries(ctx, ca.ID, now.Add(time.Hour)); err != nil || len(revoked) != 0 {
				t.Fatalf("revoked and expired: %+v, %v", revoked, err)
			}
		})
	}
}
