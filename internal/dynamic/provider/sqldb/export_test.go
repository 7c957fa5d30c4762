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

// Unserialised is p without the node's lock on its target: its statement
// runs meet another's as if they came from another node.
func Unserialised(p provider.Provider) provider.Provider {
	s := *p.(*SQL)
	s.unserialised = true
	return &s
}
