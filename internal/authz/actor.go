package authz

// ActorKind says what sort of principal is acting.
type ActorKind string

const (
	ActorUser     ActorKind = "user"
	ActorIdentity ActorKind = "identity"
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
}
