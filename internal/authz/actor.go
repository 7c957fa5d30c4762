package authz

// ActorKind says what sort of principal is acting.
type ActorKind string

const (
	ActorUser     ActorKind = "user"
	ActorIdentity ActorKind = "identity"
	// ActorServiceToken is a legacy Infisical service token ("st.<id>.<secret>"):
	// it acts in one project only, with the rules its scopes grant.
	ActorServiceToken ActorKind = "service"
	// ActorPlatform is the server itself acting in a project (a scheduled
	// secret rotation writing the secrets it maps). No request ever carries
	// it: only code on the server builds it.
	ActorPlatform ActorKind = "platform"
)

// Actor is an authenticated principal together with where the request came from.
// Domain functions receive it explicitly; nothing reads it from a context.
type Actor struct {
	Kind  ActorKind
	ID    string // user id or identity id
	OrgID string // the organization the actor acts in
	Name  string // identity name or user email, for audit metadata

	// TokenID is the access-token or session id the request presented.
	TokenID string
	// AuthMethod is how the token was obtained ("token-auth", "universal-auth", "email").
	AuthMethod string

	IP        string
	UserAgent string

	// Service is what a service token may reach; set only for ActorServiceToken.
	Service *ServiceScope
}

// ServiceScope is the reach of a service token: one project and, in it,
// the rules built from the token's scopes (ServiceTokenRules).
type ServiceScope struct {
	ProjectID string
	Rules     []Rule
	// Scopes are the token's (environment, secretPath) pairs as created.
	Scopes []TokenScope
	// CreatorKind and CreatorID name who made the token, for limits that
	// count a principal's tokens as the principal.
	CreatorKind ActorKind
	CreatorID   string
}

// TokenScope is one environment and secret path a service token reaches.
type TokenScope struct {
	Environment string
	SecretPath  string
}
