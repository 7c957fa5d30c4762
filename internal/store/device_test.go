package store_test

import (
	"crypto/rand"
	"fmt"
	"sync"
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
			sess := func() *identity.Session {
				return &identity.Session{ID: identity.NewID(), UserID: res.User.ID, OrgID: res.Org.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			}
			mine := sess()
			if err := db.TakeDeviceLogin(ctx, "h-mine", identity.DeviceApproved, mine); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("the approval collected after the sessions ended: %v; want not found", err)
			}
			if _, err := db.SessionByID(ctx, mine.ID); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("a refused collect stored its session: %v", err)
			}
			if got, err := db.DeviceLoginByCode(ctx, "h-mine", now); err != nil || got.Status != identity.DeviceDenied {
				t.Fatalf("the approval after the sessions ended: %+v, %v; want denied", got, err)
			}
			if got, err := db.DeviceLoginByCode(ctx, "h-pending", now); err != nil || got.Status != identity.DevicePending {
				t.Fatalf("a pending login: %+v, %v", got, err)
			}
			// Approved again afterwards, it is collected with its session, once.
			put("h-later", "CCCC-CCCC", res.User.ID)
			later := sess()
			if err := db.TakeDeviceLogin(ctx, "h-later", identity.DeviceApproved, later); err != nil {
				t.Fatalf("an approval after the end: %v", err)
			}
			if got, err := db.SessionByID(ctx, later.ID); err != nil || got.Revoked {
				t.Fatalf("the collected session: %+v, %v", got, err)
			}
			if err := db.TakeDeviceLogin(ctx, "h-later", identity.DeviceApproved, sess()); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("collected twice: %v", err)
			}
			if _, err := db.DeviceLoginByCode(ctx, "h-later", now); errs.KindOf(err) != errs.NotFound {
				t.Fatalf("a collected login is still there: %v", err)
			}
			// Collected while the sessions end: either the collect is refused
			// or its session is ended with the others, never a session that
			// outlives the end.
			for i := range 20 {
				code := fmt.Sprintf("DDDD-%04d", i)
				hash := "h-race-" + code
				put(hash, code, res.User.ID)
				s := sess()
				var took, ended error
				var wg sync.WaitGroup
				wg.Go(func() { took = db.TakeDeviceLogin(ctx, hash, identity.DeviceApproved, s) })
				wg.Go(func() { ended = db.EnableUserTOTP(ctx, res.User.ID, "", int64(2+i), nil) })
				wg.Wait()
				if ended != nil || (took != nil && errs.KindOf(took) != errs.NotFound) {
					t.Fatalf("round %d: collect %v, end %v", i, took, ended)
				}
				if took == nil {
					if got, err := db.SessionByID(ctx, s.ID); err != nil || !got.Revoked {
						t.Fatalf("round %d: a session collected while the sessions ended outlived them: %+v, %v", i, got, err)
					}
				}
			}
		})
	}
}
