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
