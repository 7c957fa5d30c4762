package store_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// TestEndingAUsersSessionsDeniesItsWaitingDeviceLogins: a device login the
// user approved but the CLI has not collected is a session in waiting; when
// the user's sessions end (deactivated, removed, a second factor turned on)
// it is denied with them. A pending login is left alone, and one approved
// afterwards is collected, once.
func TestEndingAUsersSessionsDeniesItsWaitingDeviceLogins(t *testing.T) {
	for _, d := range storetest.Engines {
		t.Run(string(d), func(t *testing.T) {
			db := storetest.Open(t, d)
			ctx := t.Context()
			root := make([]byte, keyring.KeySize)
			rand.Read(root)
			kr, _ := keyring.New(root, db)
			res, err := identity.NewService(db, kr, nil).Bootstrap(ctx, "a@b.co", "pw", "Acme", "127.0.0.1", "test")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			put := func(hash, code, userID string) {
				t.Helper()
				if err := db.PutDeviceLogin(ctx, identity.DeviceLogin{CodeHash: hash, UserCode: code, Status: identity.DevicePending,
					ExpiresAt: now.Add(10 * time.Minute), CreatedAt: now}, now); err != nil {
					t.Fatal(err)
				}
				if userID != "" {
					if err := db.DecideDeviceLogin(ctx, code, identity.DeviceApproved, userID, res.Org.ID, now,
						audit.Event{Type: "approve-cli-login", OrgID: res.Org.ID}); err != nil {
						t.Fatal(err)
					}
				}
			}
			put("h-mine", "AAAA-AAAA", res.User.ID)
			put("h-pending", "BBBB-BBBB", "")
			if err := db.EnableUserTOTP(ctx, res.User.ID, "", 1, nil); err != nil {
				t.Fatal(err)
			}
			got, err := db.TakeDeviceLogin(ctx, "h-mine", now)
			if err != nil || got.Status != identity.DeviceDenied {
				t.Fatalf("the approval after the sessions ended: %+v, %v; want denied", got, err)
			}
			if got, err := db.TakeDeviceLogin(ctx, "h-pending", now); err != nil || got.Status != identity.DevicePending {
				t.Fatalf("a pending login: %+v, %v", got, err)
			}
			// Approved again afterwards, it is collected.
			put("h-later", "CCCC-CCCC", res.User.ID)
			if got, err := db.TakeDeviceLogin(ctx, "h-later", now); err != nil || got.Status != identity.DeviceApproved {
				t.Fatalf("an approval after the end: %+v, %v", got, err)
			}
			if _, err := db.TakeDeviceLogin(ctx, "h-later", now); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("collected twice: %v", err)
			}
		})
	}
}
