// Package all links in every built-in dynamic-secret provider.
package all

import (
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/ldap"     // ldap
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/rabbitmq" // rabbit-mq
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/redis"    // redis
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/sqldb"    // sql-database
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/totp"     // totp
)
