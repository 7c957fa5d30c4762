package dynamic_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// TestALesseeCannotKeepItsRoleOrAnothers: what a PostgreSQL lessee can do
// with its own credential does not keep its role, or another lease's, past
// the lease:
//   - one lessee changes its own password in a transaction it leaves open,
//     holding its role's row: the disable ended its session first and went
//     through (it waited the whole provider timeout, then failed, retried,
//     for as long as the lessee liked, the session going on);
//   - one runs ALTER DEFAULT PRIVILEGES, which needs no right, in another
//     database of the server: its role is dropped there too (DROP OWNED
//     acted in the configured database only, so DROP ROLE failed);
//   - a role that cannot be dropped (here it owns a database, which DROP
//     OWNED leaves) holds back no other role dropped in its batch, and its
//     own cleanup stays pending with the reason.
func TestALesseeCannotKeepItsRoleOrAnothers(t *testing.T) {
	dbs, prefix, admin := pgTargets(t, 2)
	a := apptest.Bootstrapped(t, store.SQLite, apptest.Options{NoWorker: true})
	s := newProject(t, a)
	s.addPG(t, "pg", "127.0.0.1:5432", dbs[0], prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids, users := make([]string, 4), make([]string, 4)
	for i := range ids {
		ids[i], users[i] = s.lease(t, "pg", "2s")
	}

	holder, closeHolder, err := connectAs(ctx, users[0], dbs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer closeHolder()
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // before closeHolder: a Conn closes once its transaction ends
	if _, err := tx.ExecContext(ctx, `ALTER ROLE CURRENT_USER PASSWORD 'lessee-chosen'`); err != nil {
		t.Fatal(err)
	}

	elsewhere, closeElsewhere, err := connectAs(ctx, users[1], dbs[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.ExecContext(ctx, `ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	closeElsewhere()

	owned := strings.TrimSuffix(prefix, "_") + "_owned"
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS "` + owned + `" WITH (FORCE)`) })
	if _, err := admin.Exec(`CREATE DATABASE "` + owned + `" OWNER "` + users[2] + `"`); err != nil {
		t.Fatal(err)
	}

	time.Sleep(2100 * time.Millisecond)
	if n, err := a.App.Worker.Tick(ctx); err != nil || n != len(ids) {
		t.Fatalf("tick: %d leases revoked, %v", n, err)
	}
	for i, id := range ids {
		if got := s.status(t, id); got.Status != dynamic.Revoked {
			t.Fatalf("lease %d: %s (%s), want revoked", i, got.Status, got.StatusDetails)
		}
		if canLogin(t, admin, users[i]) {
			t.Fatalf("lease %d's role can still log in", i)
		}
	}
	if _, err := tx.ExecContext(ctx, "SELECT 1"); err == nil {
		t.Fatal("the session holding its role's row is still open")
	}

	secretID := leasesSecret(t, s, ids[0])
	waitUntil(t, "the droppable roles dropped", func() bool {
		a.App.Worker.Tick(ctx)
		return !roleExists(t, admin, users[0]) && !roleExists(t, admin, users[1]) && !roleExists(t, admin, users[3])
	})
	if !roleExists(t, admin, users[2]) {
		t.Fatal("the role that owns a database was dropped")
	}
	cs, err := a.DB.Cleanups(ctx, secretID)
	if err != nil || len(cs) != 1 || cs[0].Username != users[2] || !strings.Contains(cs[0].LastError, "depend") {
		t.Fatalf("cleanups left %+v (%v), want only the undroppable role's, with its reason", cs, err)
	}
}
