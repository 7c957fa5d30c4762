// Package authmethod defines what a machine-identity login method that trusts
// a credential from the workload's platform (a JWT, an OIDC token, ...) must
// do, and keeps the registry of built-in methods by the names Infisical uses.
package authmethod

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Method verifies the credential a workload presents at login against one
// identity's configuration. It is built once per stored configuration and
// reused for every login, so it may cache (signing keys, discovery).
type Method interface {
	// Verify checks credential and returns what it proves. A credential that
	// fails a check is refused with an error from Refuse; any other error is
	// internal (logged, never shown).
	Verify(ctx context.Context, credential string) (Verified, error)
}

// Credential is everything a login request presents.
type Credential struct {
	// Token is the request's "jwt" field: the credential of token methods
	// (JWT, OIDC, Kubernetes, GCP, Azure), given to Method.Verify.
	Token string
	// Body is the whole login request body, for methods whose credential is
	// other fields (LDAP's username and password, AWS's signed request).
	Body json.RawMessage
	// PeerCertificates is the client's TLS certificate chain, leaf first, as
	// lockbox's own TLS listener verified it against its client CAs; empty
	// when the client presented none or lockbox does not serve TLS.
	PeerCertificates []*x509.Certificate
	// ProxyCertificate is the client certificate a TLS-terminating proxy
	// forwarded in the server's client-certificate header, as sent (URL-
	// encoded PEM, as nginx's $ssl_client_escaped_cert). The server sets it
	// only when the request's TCP peer is a trusted proxy; it is not verified.
	ProxyCertificate string
}

// RequestVerifier is a Method whose credential is more than a token: it is
// given the whole Credential, and its Verify is not called. Its
// Registration sets NoToken when its login needs no "jwt" field.
type RequestVerifier interface {
	VerifyRequest(ctx context.Context, c Credential) (Verified, error)
}

// VerifyCredential checks c with m: VerifyRequest when m has it, else Verify
// of c.Token.
func VerifyCredential(ctx context.Context, m Method, c Credential) (Verified, error) {
	if rv, ok := m.(RequestVerifier); ok {
		return rv.VerifyRequest(ctx, c)
	}
	return m.Verify(ctx, c.Token)
}

// Verified is what a credential proved.
type Verified struct {
	// Metadata is claim values the configuration maps to names
	// (claimMetadataMapping), recorded with the login.
	Metadata map[string]string
}

// Refusal is a credential that failed a check. Message is safe to show the
// client: it names the check and never contains the credential; Err, if any,
// is for the log.
type Refusal struct {
	Check   string // issuer, audience, claim, subject, expiry, signature, token, keys
	Message string
	Err     error
	// Guess marks a credential that was simply wrong (an unknown user, a bad
	// password): with a Locker method it counts towards the lockout. Other
	// refusals (a malformed request, a check after the password was proven)
	// do not.
	Guess bool
}

func (r *Refusal) Error() string { return r.Message }
func (r *Refusal) Unwrap() error { return r.Err }

// Refuse returns a Refusal for check with a message built from format.
func Refuse(check, format string, args ...any) *Refusal {
	return &Refusal{Check: check, Message: fmt.Sprintf(format, args...)}
}

// Lockout is when repeated wrong guesses lock a subject: Threshold guesses,
// each within CounterReset of the previous one, lock it for Duration.
type Lockout struct {
	Threshold    int
	Duration     time.Duration
	CounterReset time.Duration
}

// Locker is a Method whose credential can be guessed (a password). The server
// counts each attempt on a subject before verifying it and keeps the count of
// those refused as a Guess; once the subject is locked it refuses its logins
// without calling the method, and a success clears the count.
type Locker interface {
	// LockoutOf returns the subject c is counted under (LDAP: the username,
	// normalized) and the policy; ok is false when the configuration has the
	// lockout off or c names no subject.
	LockoutOf(c Credential) (subject string, p Lockout, ok bool)
}

// Policy limits the hosts a method may fetch from (JWKS, discovery); the
// server's dynamic-secret target policy implements it.
type Policy interface {
	// CheckHost refuses a host name or address before any connection.
	CheckHost(ctx context.Context, host string) error
	// CheckAddr refuses an address about to be dialed (after resolution).
	CheckAddr(a netip.Addr) error
}

// Env is what the server gives every method.
type Env struct {
	Policy Policy           // nil: no limit beyond the method's own checks
	Now    func() time.Time // nil: time.Now
	// Loopback lets fetches reach loopback addresses; only tests set it.
	// (Without it a method never dials 127.0.0.0/8 or ::1.)
	Loopback bool
	// Resolve maps host names to the loopback address dialed in their place,
	// whatever the port; only tests set it (and only with Loopback), to serve
	// a public name a client signs for, such as sts.us-east-1.amazonaws.com,
	// from a local server. The host policy is then checked on that address.
	Resolve map[string]netip.AddrPort
	// RootCAs, when set, replaces the system's roots for configurations that
	// name no CA of their own; only tests set it.
	RootCAs *x509.CertPool
}

// Clock returns e.Now, or time.Now.
func (e Env) Clock() func() time.Time {
	if e.Now == nil {
		return time.Now
	}
	return e.Now
}

// Registration is a login method.
type Registration struct {
	Name        string // route and authMethods name: "jwt-auth"
	DisplayName string // "JWT Auth"
	WireKey     string // response object: "identityJwtAuth"
	// NoToken marks a method whose login needs no "jwt" field (its Method is
	// a RequestVerifier); for the others a login without one is a 422.
	NoToken bool
	// Configure validates body, an attach request when old is nil and
	// otherwise an update whose absent fields keep old's values, and returns
	// the configuration to store. body also holds the shared token settings,
	// which it ignores. Its errors are errs values fit for the client.
	Configure func(ctx context.Context, env Env, old, body json.RawMessage) (json.RawMessage, error)
	// New returns the method for a stored configuration.
	New func(env Env, cfg json.RawMessage) (Method, error)
	// Lockout is set when the method is a Locker: the server then serves
	// POST .../identities/{identityId}/clear-lockouts for it.
	Lockout bool
	// Secret names the configuration's top-level fields that are secret (a
	// reviewer token, a bind password). The server seals them with the
	// organization's data key before storing, gives Configure and New their
	// plaintext, and never returns them to a client or writes them to the
	// audit log.
	Secret []string
}

var (
	mu       sync.RWMutex
	registry = map[string]Registration{}
)

// Register adds a method; it panics on an empty or duplicate name, like sql.Register.
func Register(r Registration) {
	mu.Lock()
	defer mu.Unlock()
	if r.Name == "" || r.WireKey == "" || r.Configure == nil || r.New == nil {
		panic("authmethod: Register with an empty name or function")
	}
	if _, dup := registry[r.Name]; dup {
		panic("authmethod: Register called twice for " + r.Name)
	}
	registry[r.Name] = r
}

// Lookup returns the method registered as name.
func Lookup(name string) (Registration, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[name]
	return r, ok
}

// All returns every registered method, by name.
func All() []Registration {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Registration, 0, len(registry))
	for _, r := range registry {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
