// Package app wires lockbox together: the store, the keyring, the domain
// services and the HTTP API. The server command and end-to-end tests share it.
package app

import (
	"log/slog"

	"github.com/lockbox-dev/lockbox/internal/api"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// Options tune the API built by New.
type Options struct {
	Version       string
	MaxBodyBytes  int64
	AuthRateLimit int
	Logger        *slog.Logger
}

// New builds the API server over an open database and keyring.
func New(db *store.DB, kr *keyring.Keyring, o Options) *api.Server {
	az := authz.NewResolver(db, nil)
	idsvc := identity.NewService(db, kr, nil)
	projects := project.NewService(db, az, kr, nil)
	svc := api.Services{
		Identity:      idsvc,
		Tokens:        identity.NewTokens(db, idsvc),
		UniversalAuth: identity.NewUA(db, az, idsvc),
		Identities:    identity.NewAdmin(db, az, idsvc),
		Projects:      projects,
		Secrets:       secret.NewService(db, projects, az, kr, nil),
		Memberships:   project.NewMemberships(db, az, nil),
		Roles:         project.NewRoles(db, az, nil),
		Audit:         audit.NewService(db, az, nil),
	}
	return api.New(api.Options{
		Version:       o.Version,
		MaxBodyBytes:  o.MaxBodyBytes,
		AuthRateLimit: o.AuthRateLimit,
		Logger:        o.Logger,
		Health:        db,
		Auth:          svc.Identity,
		Services:      svc,
	})
}
