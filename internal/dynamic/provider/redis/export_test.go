package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// Clients is the shared client cache, for eviction tests.
var Clients = clients

// Client acquires p's client.
func Client(p provider.Provider) (*goredis.Client, func(), error) {
	return p.(*Redis).client(context.Background())
}
