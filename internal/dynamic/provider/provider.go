// Package provider defines what a dynamic-secret target must do and keeps the
// registry of built-in targets, by the type names Infisical uses.
package provider

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// Provider creates and removes short-lived credentials in one target system.
type Provider interface {
	// Validate checks the target is reachable with the configured admin credentials.
	Validate(ctx context.Context) error
	// Create makes the credential described by req. A lease only ever
	// creates a principal that does not exist: when one named req.Username
	// exists, Create changes nothing and returns an error wrapping ErrExists.
	Create(ctx context.Context, req CreateRequest) (CreateResponse, error)
	// Revoke removes the credential. Revoking one that no longer exists is
	// success; one the provider can tell it did not create is refused with an
	// error wrapping ErrNotOwned.
	Revoke(ctx context.Context, req RevokeRequest) error
}

// ErrExists reports that Create found a principal of the requested name.
var ErrExists = errors.New("a principal with this name already exists in the target; it was left untouched")

// ErrNotOwned reports that Revoke found a principal lockbox did not create.
var ErrNotOwned = errors.New("the principal was not created by lockbox; it was left untouched")

// ErrUnreachable marks a failure to reach or log in to the target (refused,
// timed out, TLS, the admin credentials refused, something else answering on
// the port), as opposed to the target's own answer to a statement or command
// once logged in. Its detail would tell a member what answers where on the
// network (a port scanner): callers show a fixed message and log the detail.
var ErrUnreachable = errors.New("the target could not be reached or did not accept the configured credentials")

// Unreachable marks err as ErrUnreachable, keeping its text (nil stays nil).
func Unreachable(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) {
		return err
	}
	return &unreachable{err}
}

type unreachable struct{ err error }

func (u *unreachable) Error() string   { return u.err.Error() }
func (u *unreachable) Unwrap() []error { return []error{u.err, ErrUnreachable} }

// Renewer is implemented by providers whose credentials carry their own expiry.
type Renewer interface {
	Renew(ctx context.Context, req RenewRequest) error
}

// Targeter is implemented by providers that connect to hosts: Targets
// returns each host name or IP address they would connect to, so that the
// server's target policy can be applied before any connection.
type Targeter interface {
	Targets() []string
}

// BatchRevoker is implemented by providers that can remove many credentials
// in one round trip. Users that no longer exist are skipped.
type BatchRevoker interface {
	RevokeMany(ctx context.Context, usernames []string) error
}

// Disabler is implemented by providers that can make credentials unusable
// at once, cheaply, and remove them later (two-phase revocation): after
// DisableMany no listed credential can log in and none of their sessions
// remains, but the principals still exist; BatchRevoker.RevokeMany removes
// them. Disables reports whether this configuration takes that path (a
// custom revocation statement does not: it is run as written, in one phase).
// Users that no longer exist are skipped; disabling one twice is success.
type Disabler interface {
	BatchRevoker
	Disables() bool
	DisableMany(ctx context.Context, usernames []string) error
}

// CreateRequest describes a credential to make.
type CreateRequest struct {
	Username   string
	Password   string
	Expiration time.Time
}

// CreateResponse is what the lease hands to the client (Infisical's lease "data").
type CreateResponse struct {
	Data map[string]any
}

// RevokeRequest names a credential to remove.
type RevokeRequest struct {
	Username string
}

// RenewRequest moves a credential's expiry.
type RenewRequest struct {
	Username   string
	Expiration time.Time
}

// Input describes one provider input, so that validation, redaction and
// documentation share one source.
type Input struct {
	Name     string
	Required bool
	Secret   bool // never returned in clear
	// Target marks an input that says where the credentials go (host, port,
	// database, CA, URL) or who makes and removes them (the admin user):
	// changing it requires sending the Secret inputs again, and no lease or
	// cleanup pending (their principals were made there, by that admin: a
	// member swapped in a lessee's own login, which could not drop users,
	// and froze the revocation of every live lease).
	Target bool
	// Statement marks an input run with the admin's rights (creation
	// statements, LDIF, tags): changing it requires create-root-credential.
	Statement bool
	Doc       string
}

// Factory decodes inputs strictly (unknown fields are an error) and validates
// them without contacting the target.
type Factory func(inputs json.RawMessage) (Provider, error)

// Registration is a provider type.
type Registration struct {
	Type   string
	New    Factory
	Inputs []Input
}

var (
	mu       sync.RWMutex
	registry = map[string]Registration{}
)

// Register adds a provider type; it panics on an empty or duplicate name, like sql.Register.
func Register(r Registration) {
	mu.Lock()
	defer mu.Unlock()
	if r.Type == "" || r.New == nil {
		panic("provider: Register with empty type or nil factory")
	}
	if _, dup := registry[r.Type]; dup {
		panic(fmt.Sprintf("provider: Register called twice for %q", r.Type))
	}
	registry[r.Type] = r
}

// Lookup finds a provider type.
func Lookup(typ string) (Registration, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[typ]
	return r, ok
}

// Types lists the registered provider types.
func Types() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Redact returns inputs with every secret input replaced, for display.
func (r Registration) Redact(inputs map[string]any) map[string]any {
	out := make(map[string]any, len(inputs))
	for k, v := range inputs {
		out[k] = v
	}
	for _, in := range r.Inputs {
		if _, ok := out[in.Name]; ok && in.Secret {
			out[in.Name] = Masked
		}
	}
	return out
}

// Masked is what Redact shows for a secret input. Sent back in an update, it
// means "unchanged".
const Masked = "******"

// Canonical decodes inputs into a map keyed by the declared input names:
// a key that matches a declared name in another case is renamed to it (Go's
// JSON decoding matches field names case-insensitively, so "Password" would
// otherwise authenticate yet escape redaction). Two keys naming one input are
// an error. Unknown keys are kept for the factory's strict decoding to refuse.
func (r Registration) Canonical(inputs json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(inputs, &m); err != nil || m == nil {
		return nil, errors.New("inputs must be an object")
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		name := k
		for _, in := range r.Inputs {
			if strings.EqualFold(in.Name, k) {
				name = in.Name
				break
			}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("input %q is given twice (names are case-insensitive)", name)
		}
		out[name] = v
	}
	return out, nil
}

// Input returns the declared input called name.
func (r Registration) Input(name string) (Input, bool) {
	for _, in := range r.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}

// Decode decodes a provider's inputs strictly: unknown fields are an error,
// numbers stay json.Number.
func Decode(typ string, inputs json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(inputs))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s inputs: %v", typ, err)
	}
	return nil
}

// safeValue is what a provider may substitute into a statement or template:
// the server generates usernames and passwords from this alphabet, so no
// quoting context of the target's language can be broken.
var safeValue = lazyre.New(`^[a-zA-Z0-9_.\-]{1,128}$`)

// CheckSafe refuses any value outside the generated-credential alphabet; every
// provider calls it before a value reaches a target's language.
func CheckSafe(vals ...string) error {
	for _, v := range vals {
		if !safeValue().MatchString(v) {
			return errors.New("username and password must use letters, digits, '_', '.' and '-' only")
		}
	}
	return nil
}

// TLSConfig is a client TLS configuration that trusts only the PEM CA
// certificates in caPEM and checks the server's name.
func TLSConfig(caPEM, serverName string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("ca is not a PEM certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

// Port parses a port number input.
func Port(n json.Number) (int, error) {
	p, err := strconv.Atoi(n.String())
	if err != nil || p < 1 || p > 65535 {
		return 0, errors.New("port must be a number from 1 to 65535")
	}
	return p, nil
}
