// Package all links in every built-in dynamic-secret provider.
package all

import (
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb" // sql-database
)
