package sqldb

import (
	"context"

	"database/sql"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// Pools is the shared pool cache, for eviction tests.
var Pools = pools

// Open acquires p's connection pool.
func Open(p provider.Provider) (*sql.DB, func(), error) { return p.(*SQL).open(context.Background()) }

// RevokeManyStmt is the statement RevokeMany would run for users.
func RevokeManyStmt(p provider.Provider, users []string) (string, error) {
	db, release, err := Open(p)
	if err != nil {
		return "", err
	}
	defer release()
	return p.(*SQL).revokeManyStmt(context.Background(), db, users)
}
