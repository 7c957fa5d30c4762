package sqldb_test

import (
	"context"
	"database/sql"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestALesseeCannotHoldUpTheTarget: a lease's own role, logged in, takes
// the advisory lock lockbox used to run every statement under (any role
// may take any advisory lock, and pg_locks shows which). Other leases are
// still created and renewed, and its own is revoked (before, each waited
// for the lock until the provider's timeout: no lease on the database could
// be made, and the lessee's outlived its TTL).
func TestALesseeCannotHoldUpTheTarget(t *testing.T) {
	tg := postgresTarget(t)
	p := newProvider(t, tg.inputs)
	user, pass := "lbx_l"+testsvc.Suffix(), "Pw"+testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
	if _, err := p.Create(context.Background(), provider.CreateRequest{Username: user, Password: pass, Expiration: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	lessee, err := sql.Open("pgx", "postgres://"+user+":"+pass+"@127.0.0.1:5432/"+tg.inputs["database"].(string)+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer lessee.Close()
	conn, err := lessee.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, key := range []int64{7435108, 0, 1} {
		if _, err := conn.ExecContext(context.Background(), `SELECT pg_advisory_lock($1)`, key); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	other := "lbx_o" + testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: other}) })
	if _, err := p.Create(ctx, provider.CreateRequest{Username: other, Password: "Pw" + testsvc.Suffix(), Expiration: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("a lease created while a lessee holds an advisory lock: %v", err)
	}
	if err := p.(provider.Renewer).Renew(ctx, provider.RenewRequest{Username: other, Expiration: time.Now().Add(2 * time.Hour)}); err != nil {
		t.Fatalf("renewed: %v", err)
	}
	if err := p.(provider.BatchRevoker).RevokeMany(ctx, []string{user}); err != nil {
		t.Fatalf("the lessee's own lease revoked: %v", err)
	}
	var n int
	if err := tg.admin.QueryRow(`SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`, user).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the lessee's role is still there (%d, %v)", n, err)
	}
}

// TestConcurrentCreatesFromTwoNodes: statement runs that are not
// serialised on one node (as two nodes' are not) collide on the database's
// catalog row ("tuple concurrently updated"); each is tried again and all
// succeed.
func TestConcurrentCreatesFromTwoNodes(t *testing.T) {
	tg := postgresTarget(t)
	p := newProvider(t, tg.inputs)
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		node := sqldb.Unserialised(newProvider(t, tg.inputs))
		user := "lbx_n" + testsvc.Suffix()
		t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
		wg.Go(func() {
			_, err := node.Create(context.Background(), provider.CreateRequest{Username: user, Password: "Pw" + testsvc.Suffix(),
				Expiration: time.Now().Add(time.Hour)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent create from unserialised providers: %v", err)
		}
	}
}

// TestATemplatesOwnMistakeIsTriedOnce: a statement that names a role that
// does not exist (a mistake in the template, 42704) fails at once; only a
// run that reads its roles again (a batch drop) tries again on it. A
// sequence, which a rollback does not undo, counts the tries.
func TestATemplatesOwnMistakeIsTriedOnce(t *testing.T) {
	tg := postgresTarget(t)
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+tg.inputs["database"].(string)+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SEQUENCE lbx_tries`); err != nil {
		t.Fatal(err)
	}
	inputs := maps.Clone(tg.inputs)
	inputs["creationStatement"] = `SELECT nextval('lbx_tries'); CREATE ROLE "{{username}}" LOGIN PASSWORD '{{password}}'; GRANT "lbx_no_such_role" TO "{{username}}";`
	p := newProvider(t, inputs)
	user := "lbx_m" + testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
	if _, err := p.Create(context.Background(), provider.CreateRequest{Username: user, Password: "Pw" + testsvc.Suffix(), Expiration: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("a template granting a missing role succeeded")
	}
	var tries int
	if err := admin.QueryRow(`SELECT last_value FROM lbx_tries`).Scan(&tries); err != nil {
		t.Fatal(err)
	}
	if tries != 1 {
		t.Fatalf("the template ran %d times, want 1", tries)
	}
}
