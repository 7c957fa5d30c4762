package api

import (
	"net/http"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/appconn"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/pki"
	"github.com/lockbox-dev/lockbox/internal/project"
	"github.com/lockbox-dev/lockbox/internal/rotation"
	"github.com/lockbox-dev/lockbox/internal/secret"
	"github.com/lockbox-dev/lockbox/internal/sshca"
	"github.com/lockbox-dev/lockbox/internal/sso"
)

// Services are the domain services the API calls.
type Services struct {
	SSO *sso.Service
	// Devices serves the CLI's device logins (approved in the dashboard);
	// nil: none.
	Devices       *identity.Web
	Identity      *identity.Service
	Tokens        *identity.Tokens
	UniversalAuth *identity.UA
	Identities    *identity.Admin
	ServiceTokens *identity.ServiceTokens
	// AuthMethods serves the registered login methods (JWT, OIDC, ...); nil: none.
	AuthMethods *identity.Methods
	Projects    *project.Service
	Memberships *project.Memberships
	Roles       *project.Roles
	Secrets     *secret.Service
	Dynamic     *dynamic.Service
	Audit       *audit.Service
	KMS         *kms.Service
	// Privileges serves identity-specific (additional) privileges.
	Privileges *project.Privileges
	// Templates serves project templates.
	Templates *project.Templates
	// AppConnections and Rotations serve app connections and secret rotations; nil: not served.
	AppConnections *appconn.Service
	Rotations      *rotation.Service
	PKI            *pki.Service
	SSH            *sshca.Service
	// OrgMembers, OrgRoles and ProjectUsers serve people in organizations
	// and projects; nil OrgMembers: those routes are not served.
	OrgMembers   *org.Members
	OrgRoles     *org.Roles
	ProjectUsers *project.Users
	// Groups and ProjectGroups serve an organization's groups and their
	// roles in projects; nil: those routes are not served.
	Groups        *org.Groups
	ProjectGroups *project.Groups
}

// routes is the whole API surface. Trailing slashes are stripped before
// matching, so each route also answers with one.
func (s *Server) routes() {
	m := &routeMux{s.mux, &s.patterns}
	m.Handle("GET /api/status", s.handle(s.status))
	if !s.separateMetrics {
		m.Handle("GET /metrics", s.metricsHandler())
	}

	// Bootstrap and human login.
	m.Handle("POST /api/v1/admin/bootstrap", s.limited(s.handle(s.bootstrap)))
	m.Handle("POST /api/v3/auth/login", s.limited(s.handle(s.userLogin)))
	if s.web != nil {
		// The dashboard's sign-in, second-factor and invitation forms are
		// logins too: rate limited per client as the API's are (each
		// password tried takes a hashing slot, unknown emails included).
		for _, route := range []string{"POST /login", "POST /mfa", "GET /signupinvite", "POST /signupinvite"} {
			m.ServeMux.Handle(route, s.limited(s.web)) // dashboard pages: not in Patterns (the API's routes)
		}
	}
	if s.svc.Devices != nil {
		m.Handle("POST /api/v1/auth/device", s.limited(s.handle(s.deviceStart)))
		m.Handle("POST /api/v1/auth/device/token", s.limited(s.handle(s.deviceToken)))
	}
	m.Handle("POST /api/v3/auth/select-organization", s.authed(s.selectOrganization))
	m.Handle("GET /api/v1/organization", s.authed(s.orgList))

	s.projectRoutes(m)
	s.identityRoutes(m)
	s.membershipRoutes(m)
	s.universalRoutes(m)
	s.authMethodRoutes(m)
	s.tokenRoutes(m)
	s.serviceTokenRoutes(m)
	s.secretRoutes(m)
	s.importTagRoutes(m)
	s.secretHistoryRoutes(m)
	s.dynamicRoutes(m)
	s.eventRoutes(m)
	s.kmsRoutes(m)
	s.privilegeRoutes(m)
	s.userPrivilegeRoutes(m)
	s.ssoRoutes(m)
	s.templateRoutes(m)
	if s.svc.AppConnections != nil {
		s.appConnRoutes(m)
	}
	if s.svc.Rotations != nil {
		s.rotationRoutes(m)
	}
	s.pkiRoutes(m)
	s.pkiCollectionRoutes(m)
	s.sshRoutes(m)
	s.peopleRoutes(m)
	s.groupRoutes(m)

	// Audit log.
	m.Handle("GET /api/v1/organization/audit-logs", s.authed(s.auditLogs))
}

// routeMux records every pattern it registers, so tests can walk the whole
// API surface (Patterns).
type routeMux struct {
	*http.ServeMux
	patterns *[]string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	*m.patterns = append(*m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleSub serves pattern, whose last segment is a literal, through a
// wildcard route that looks the segment up in subs (ServeMux rejects some
// overlapping patterns: see projectSubGet). Patterns lists it like any route.
func (m *routeMux) HandleSub(subs map[string]func(http.ResponseWriter, *http.Request) error, pattern string,
	h func(http.ResponseWriter, *http.Request) error) {
	*m.patterns = append(*m.patterns, pattern)
	subs[pattern[strings.LastIndexByte(pattern, '/')+1:]] = h
}

// Patterns lists every route, as "METHOD /path/{param}".
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }
