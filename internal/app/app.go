// Package app wires lockbox together: the store, the keyring, the domain
// services, the HTTP API and the lease worker. The server command and
// end-to-end tests share it.
package app

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-dev/lockbox/internal/api"
	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/appconn/target"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authmethod"
	_ "github.com/lockbox-dev/lockbox/internal/authmethod/all" // the built-in login methods
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/all" // built-in providers
	"github.com/lockbox-dev/lockbox/internal/events"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/rotation"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/sso"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/web"
)

// Options tune the API built by New.
type Options struct {
	Version       string
	MaxBodyBytes  int64
	AuthRateLimit int
	// PasswordHashConcurrency caps concurrent argon2id hashes; 0 means
	// identity.DefaultPasswordHashConcurrency.
	PasswordHashConcurrency int
	// PasswordHasher, when set, is used instead of one built from
	// PasswordHashConcurrency (tests hold its slots).
	PasswordHasher *identity.PasswordHasher
	Logger         *slog.Logger
	// LeaseCreatingTimeout overrides dynamic.DefaultCreatingTimeout when set.
	LeaseCreatingTimeout time.Duration
	// MaxLeases overrides dynamic.DefaultMaxLeases when set.
	MaxLeases int
	// AuditLogRetentionDays is the server's audit log retention (0: none),
	// which caps the projects' (project.Service.AuditRetentionCap).
	AuditLogRetentionDays int
	// RotationClaimTimeout overrides the rotation service's ClaimTTL when set.
	RotationClaimTimeout time.Duration
	// SessionIdleTimeout and SessionAbsoluteTimeout are the dashboard's
	// session timeouts; zero: identity.DefaultWebIdleTimeout and
	// DefaultWebAbsoluteTimeout.
	SessionIdleTimeout, SessionAbsoluteTimeout time.Duration
	// TargetPolicy limits the hosts dynamic secrets connect to; nil denies
	// dynamic.DefaultDeny only.
	TargetPolicy *dynamic.TargetPolicy
	// AuthFetchLoopback lets login methods fetch keys from loopback
	// addresses (tests only; a server never does).
	AuthFetchLoopback bool
	// AuthFetchResolve and AuthFetchRootCAs are authmethod.Env's test hooks
	// (Resolve, RootCAs): a public name served by a local server.
	AuthFetchResolve map[string]netip.AddrPort
	AuthFetchRootCAs *x509.CertPool
	// TrustedProxies are the reverse proxies whose forwarded-for headers are
	// believed (api.Options.TrustedProxies).
	TrustedProxies []netip.Prefix
	// ClientIPHeader is api.Options.ClientIPHeader.
	ClientIPHeader string
	// CertHeader is api.Options.CertHeader.
	CertHeader string
	// MetricsToken and SeparateMetrics: see api.Options.
	MetricsToken    string
	SeparateMetrics bool
	// Clock, when set, is the time permissions are resolved at, that the
	// caches built on them (secret reads, KMS keys) are checked against, and
	// that memberships, privileges and templates are stamped with (tests
	// move it to see temporary access end), and the time of PKI and SSH
	// certificates and of the KRLs' refresh; nil means time.Now. Tokens and
	// leases keep the real time.
	Clock func() time.Time
	// Mailer sends invitation links (LOCKBOX_SMTP_URL); nil: none sent.
	Mailer org.Mailer
	// SiteURL is where invitation links point (LOCKBOX_SITE_URL); empty:
	// the address the inviting request reached. Issued certificates name
	// their CA's CRL and certificate under it; empty, they name none.
	SiteURL string
}

// App is a wired lockbox node.
type App struct {
	*api.Server
	// Worker revokes due leases; run it with Run(ctx) for the life of the node.
	Worker *dynamic.Worker
	// Rotations runs due secret rotations; run it with Run(ctx) for the life of the node.
	Rotations *rotation.Worker
	// PKIAlerts mails due PKI expiry alerts; run it with Run(ctx) for the
	// life of the node (with no Mailer, Run returns at once).
	PKIAlerts *pki.AlertWorker
	// RotationService is the rotations' service (tests set its Hook and clock).
	RotationService *rotation.Service
	// Events carries secret events between nodes; run it with Run(ctx) for
	// the life of the node (on SQLite Run returns at once).
	Events *store.EventFeed
	// Cache is the node's cache generation (package cache).
	Cache *cache.Gen
	// TokenUse records the last use of access tokens and service tokens;
	// run it with Run(ctx) for the life of the node (tests call Flush).
	TokenUse *identity.LastUse
	// ServiceTokens authenticates service tokens (tests read what it caches).
	ServiceTokens *identity.ServiceTokens
	// Groups is the organization's group service; sign-in code maps an
	// identity provider's groups claim with Groups.SyncUserGroups.
	Groups *org.Groups
}

// New builds the API server and lease worker over an open database and keyring.
func New(db *store.DB, kr *keyring.Keyring, o Options) *App {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	gen := cache.New(db)
	db.SetOnChange(gen.Changed)
	az := authz.NewResolver(db, o.Clock)
	az.SetCache(gen)
	idsvc := identity.NewService(db, kr, nil)
	idsvc.LastUse.SetLogger(o.Logger)
	idsvc.SetCache(gen)
	switch {
	case o.PasswordHasher != nil:
		idsvc.Hasher = o.PasswordHasher
	case o.PasswordHashConcurrency > 0:
		idsvc.Hasher = identity.NewPasswordHasher(o.PasswordHashConcurrency)
	}
	projects := project.NewService(db, az, kr, o.Clock)
	projects.AuditRetentionCap = o.AuditLogRetentionDays
	templates := project.NewTemplates(db, az, o.Clock)
	projects.SetTemplates(templates)
	dyn := dynamic.NewService(db, projects, az, kr, nil)
	if o.LeaseCreatingTimeout > 0 {
		dyn.CreatingTimeout = o.LeaseCreatingTimeout
	}
	if o.MaxLeases > 0 {
		dyn.MaxLeases = o.MaxLeases
	}
	dyn.SetTargetPolicy(o.TargetPolicy)
	dyn.SetLogger(o.Logger)
	idsvc.ServiceTokens = identity.NewServiceTokens(db, az, projects, idsvc)
	idsvc.ServiceTokens.SetCache(gen)
	feed := store.NewEventFeed(db, events.NewBroker(0), o.Logger)
	secrets := secret.NewService(db, projects, az, kr, o.Clock)
	secrets.SetCache(gen)
	secrets.SetFeed(feed)
	keys := kms.NewService(db, az, kr, o.Clock)
	keys.SetCache(gen)
	systems := target.Systems{Policy: o.TargetPolicy}
	conns := appconn.NewService(db, az, kr, systems, nil)
	rots := rotation.NewService(db, az, kr, conns, systems, secrets, nil, o.Logger)
	if o.RotationClaimTimeout > 0 {
		rots.ClaimTTL = o.RotationClaimTimeout
	}
	pkis := pki.NewService(db, az, kr, o.Clock)
	pkis.SetPublicURL(o.SiteURL)
	sshCAs := sshca.NewService(db, az, kr, o.Clock)
	sshCAs.SetCache(gen)
	admin := identity.NewAdmin(db, az, idsvc)
	svc := api.Services{
		Identity:      idsvc,
		Tokens:        identity.NewTokens(db, idsvc),
		UniversalAuth: identity.NewUA(db, az, idsvc),
		Identities:    admin,
		AuthMethods: identity.NewMethods(db, admin, idsvc, authmethod.Env{Policy: o.TargetPolicy,
			Loopback: o.AuthFetchLoopback, Resolve: o.AuthFetchResolve, RootCAs: o.AuthFetchRootCAs}),
		ServiceTokens: idsvc.ServiceTokens,
		Projects:      projects,
		Secrets:       secrets,
		Dynamic:       dyn,
		Memberships:   project.NewMemberships(db, az, o.Clock),
		Privileges:    project.NewPrivileges(db, az, o.Clock),
		Templates:     templates,

		AppConnections: conns,
		Rotations:      rots,
		PKI:            pkis,
		SSH:            sshCAs,
		Roles:          project.NewRoles(db, az, o.Clock),
		Audit:          audit.NewService(db, az, nil),
		KMS:            keys,
		OrgRoles:       org.NewRoles(db, az, o.Clock),
		ProjectUsers:   project.NewUsers(db, az, o.Clock),
		Groups:         org.NewGroups(db, az, o.Clock),
		ProjectGroups:  project.NewGroups(db, az, o.Clock),
	}
	authEnv := authmethod.Env{Policy: o.TargetPolicy, Loopback: o.AuthFetchLoopback, Resolve: o.AuthFetchResolve, RootCAs: o.AuthFetchRootCAs}
	svc.SSO = sso.New(db, az, kr, authEnv, nil)
	svc.SSO.Groups = svc.Groups
	svc.OrgMembers = org.NewMembers(db, az, kr, idsvc.Hasher, o.Clock)
	if o.Mailer != nil {
		svc.OrgMembers.Mailer = o.Mailer
	}
	svc.OrgMembers.SiteURL = o.SiteURL
	svc.OrgMembers.Passwords = idsvc
	svc.OrgMembers.Projects = svc.ProjectUsers
	sessions := identity.NewWeb(idsvc, db, o.Clock)
	if o.SessionIdleTimeout > 0 {
		sessions.Idle = o.SessionIdleTimeout
	}
	if o.SessionAbsoluteTimeout > 0 {
		sessions.Absolute = o.SessionAbsoluteTimeout
	}
	dash := web.New(web.Options{Logger: o.Logger, ClientIP: api.ClientIP, OverTLS: api.OverTLS, Cache: gen, Services: web.Services{
		Sessions: sessions, Identities: admin, UniversalAuth: svc.UniversalAuth,
		Authz: az, Projects: projects, Memberships: svc.Memberships, Roles: svc.Roles, Secrets: secrets,
		Dynamic: dyn, KMS: keys, Audit: svc.Audit, SSO: svc.SSO, OrgMembers: svc.OrgMembers, OrgRoles: svc.OrgRoles,
		ProjectUsers: svc.ProjectUsers, Groups: svc.Groups, ProjectGroups: svc.ProjectGroups, AuthMethods: svc.AuthMethods}, SiteURL: o.SiteURL})
	svc.Devices = sessions
	srv := api.New(api.Options{
		SiteURL:         o.SiteURL,
		Web:             dash,
		Version:         o.Version,
		MaxBodyBytes:    o.MaxBodyBytes,
		AuthRateLimit:   o.AuthRateLimit,
		Logger:          o.Logger,
		Health:          db,
		Auth:            svc.Identity,
		Services:        svc,
		TrustedProxies:  o.TrustedProxies,
		ClientIPHeader:  o.ClientIPHeader,
		CertHeader:      o.CertHeader,
		MetricsToken:    o.MetricsToken,
		SeparateMetrics: o.SeparateMetrics,
		Cache:           gen,
	})
	dyn.SetMetrics(newLeaseMetrics(srv.Registry(), db))
	srv.Registry().MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lockbox_cache_hits_total",
			Help: "Read-path lookups answered from the node's caches (docs/architecture.md)."},
			func() float64 { h, _ := gen.Stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "lockbox_cache_misses_total",
			Help: "Read-path lookups that read the database."},
			func() float64 { _, m := gen.Stats(); return float64(m) }))
	var alertMailer pki.Mailer
	if o.Mailer != nil {
		alertMailer = o.Mailer
	}
	return &App{Server: srv, Worker: dynamic.NewWorker(dyn, o.Logger), Rotations: rotation.NewWorker(rots, o.Logger),
		PKIAlerts:       pki.NewAlertWorker(pkis, alertMailer, o.Logger),
		RotationService: rots, Events: feed, Cache: gen, Groups: svc.Groups, TokenUse: idsvc.LastUse,
		ServiceTokens: idsvc.ServiceTokens}
}

// leaseMetrics exposes the lease engine to Prometheus.
type leaseMetrics struct {
	revocations *prometheus.CounterVec
	lag         prometheus.Histogram
}

func newLeaseMetrics(reg *prometheus.Registry, db *store.DB) *leaseMetrics {
	m := &leaseMetrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockbox_lease_revocations_total",
			Help: "Lease revocations by outcome."}, []string{"outcome"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lockbox_lease_revocation_lag_seconds",
			Help:    "Time from a lease's expiry to its successful revocation by the worker.",
			Buckets: []float64{.01, .05, .1, .25, .5, .75, 1, 2, 5, 10, 30, 60}}),
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lockbox_leases_active", Help: "Leases currently active."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := db.CountLeases(ctx, dynamic.Active)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	reg.MustRegister(m.revocations, m.lag, active)
	return m
}

// Revoked implements dynamic.Metrics.
func (m *leaseMetrics) Revoked(ok bool, lag time.Duration) {
	if !ok {
		m.revocations.WithLabelValues("failed").Inc()
		return
	}
	m.revocations.WithLabelValues("ok").Inc()
	if lag > 0 {
		m.lag.Observe(lag.Seconds())
	}
}
