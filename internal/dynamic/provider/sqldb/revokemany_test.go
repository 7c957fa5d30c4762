package sqldb_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestRevokeManyPostgres: a batch with the default statements revokes each
// object's privileges from all its users in one REVOKE (not one per user,
// as DROP OWNED alone does), and still leaves no role, nothing owned and no
// privilege: a user that owns a table, one with a column privilege and one
// with EXECUTE on a function are dropped with the rest.
func TestRevokeManyPostgres(t *testing.T) {
	tg := postgresTarget(t)
	db := tg.inputs["database"].(string)
	target, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/"+db+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if _, err := target.Exec(`CREATE TABLE t1 (a int, b int); CREATE TABLE "T 2" (a int); CREATE SEQUENCE s1;
		CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS 'SELECT 1'`); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, tg.inputs)
	ctx := context.Background()
	users := make([]string, 4)
	pass := map[string]string{}
	for i := range users {
		users[i] = "lbx_m" + testsvc.Suffix()
		pass[users[i]] = "Pw" + testsvc.Suffix() + testsvc.Suffix()
		t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: users[i]}) })
		if _, err := p.Create(ctx, provider.CreateRequest{Username: users[i], Password: pass[users[i]], Expiration: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	u0, u1, u2 := `"`+users[0]+`"`, `"`+users[1]+`"`, `"`+users[2]+`"`
	if _, err := target.Exec(`CREATE TABLE owned (a int); ALTER TABLE owned OWNER TO ` + u0 + `;
		GRANT UPDATE (b) ON t1 TO ` + u1 + `; GRANT USAGE ON SEQUENCE s1 TO ` + u1 + `;
		GRANT EXECUTE ON FUNCTION f1() TO ` + u2); err != nil {
		t.Fatal(err)
	}
	batch := append(users[:len(users):len(users)], "lbx_missing"+testsvc.Suffix())
	stmt, err := sqldb.RevokeManyStmt(p, batch)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(users))
	all := `"` + strings.Join(sorted, `", "`) + `"`
	for _, want := range []string{
		`REVOKE ALL ON DATABASE ` + db + ` FROM ` + all + `;`,
		`REVOKE ALL ON SCHEMA public FROM ` + all + `;`,
		`REVOKE ALL ON TABLE t1 FROM ` + all + `;`,
		`REVOKE ALL ON TABLE "T 2" FROM ` + all + `;`,
		`REVOKE ALL ON SEQUENCE s1 FROM ` + u1 + `;`,
		`DROP OWNED BY ` + all + `; DROP ROLE IF EXISTS ` + all + `;`,
	} {
		if !strings.Contains(stmt, want) {
			t.Errorf("statement lacks %q:\n%s", want, stmt)
		}
	}
	if strings.Contains(stmt, "lbx_missing") {
		t.Errorf("statement names a user that does not exist:\n%s", stmt)
	}
	if err := p.(provider.BatchRevoker).RevokeMany(ctx, batch); err != nil {
		t.Fatalf("revoke many: %v", err)
	}
	for _, u := range users {
		var n int
		if err := tg.admin.QueryRow(`SELECT COUNT(*) FROM pg_roles WHERE rolname = $1`, u).Scan(&n); err != nil || n != 0 {
			t.Errorf("role %s: %d left (%v)", u, n, err)
		}
		if err := tg.canLogin(t, u, pass[u]); err == nil {
			t.Errorf("revoked user %s still logs in", u)
		}
	}
	var owned int
	if err := target.QueryRow(`SELECT COUNT(*) FROM pg_class WHERE relname = 'owned'`).Scan(&owned); err != nil || owned != 0 {
		t.Errorf("the table a revoked user owned is still there: %d (%v)", owned, err)
	}
	if err := p.(provider.BatchRevoker).RevokeMany(ctx, batch); err != nil {
		t.Fatalf("revoking users that are gone must succeed: %v", err)
	}
}
