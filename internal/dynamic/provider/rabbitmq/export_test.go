package rabbitmq

import (
	"context"

	"net/http"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

// Clients is the shared client cache, for eviction tests.
var Clients = clients

// Client acquires p's HTTP client.
func Client(p provider.Provider) (*http.Client, func(), error) {
	return p.(*RabbitMQ).client(context.Background())
}

// Base is p's management API base URL.
func Base(p provider.Provider) string { return p.(*RabbitMQ).base }
