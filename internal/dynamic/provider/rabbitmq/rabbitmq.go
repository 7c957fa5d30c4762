// Package rabbitmq is the "rabbit-mq" dynamic-secret provider: RabbitMQ users
// created and deleted through the management plugin's HTTP API, with tags and
// permissions on one virtual host.
package rabbitmq

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

func init() {
	provider.Register(provider.Registration{Type: "rabbit-mq", New: New, Inputs: Inputs})
}

// Tag marks every user this provider creates, next to the configured tags.
const Tag = "lockbox-user"

// Inputs are the provider's inputs, as Infisical names them.
var Inputs = []provider.Input{
	{Name: "host", Target: true, Required: true, Doc: "management API base, with scheme and without port: http://rabbit.internal or https://..."},
	{Name: "port", Target: true, Required: true, Doc: "management API port (15672; 15671 for TLS)"},
	{Name: "username", Target: true, Required: true, Doc: "admin user (needs the administrator tag)"},
	{Name: "password", Required: true, Secret: true, Doc: "admin password"},
	{Name: "tags", Statement: true, Doc: "user tags, e.g. [\"monitoring\"]; " + Tag + " is always added"},
	{Name: "virtualHost", Statement: true, Required: true, Doc: `{"name": "/", "permissions": {"configure": "regex", "write": "regex", "read": "regex"}}`},
	{Name: "ca", Target: true, Doc: "PEM CA certificate for an https host; the server is verified against it"},
}

// Permissions are RabbitMQ's three permission patterns.
type Permissions struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// VirtualHost is where the user gets its permissions.
type VirtualHost struct {
	Name        string       `json:"name"`
	Permissions *Permissions `json:"permissions"`
}

// Config is the decoded inputs.
type Config struct {
	Host        string       `json:"host"`
	Port        json.Number  `json:"port"`
	Username    string       `json:"username"`
	Password    string       `json:"password"`
	Tags        []string     `json:"tags"`
	VirtualHost *VirtualHost `json:"virtualHost"`
	CA          string       `json:"ca"`
}

// RabbitMQ is a configured provider.
type RabbitMQ struct {
	cfg  Config
	base string      // scheme://host:port/api
	host string      // host name the CA is checked against
	tls  *tls.Config // nil: the system roots
}

var _ provider.Provider = (*RabbitMQ)(nil)

// New decodes and validates the inputs without connecting.
func New(inputs json.RawMessage) (provider.Provider, error) {
	var c Config
	if err := provider.Decode("rabbit-mq", inputs, &c); err != nil {
		return nil, err
	}
	var problems []string
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(c.Host), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() != "" || u.Path != "" || u.User != nil || u.RawQuery != "" {
		problems = append(problems, "host must be an http:// or https:// URL with no port, path or credentials (the port is its own input)")
	}
	port, err := provider.Port(c.Port)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if strings.TrimSpace(c.Username) == "" {
		problems = append(problems, "username is required")
	}
	for _, tag := range c.Tags {
		if tag == "" || strings.ContainsAny(tag, ", ") {
			problems = append(problems, "tags must be non-empty and hold no comma or space")
			break
		}
	}
	if c.VirtualHost == nil || strings.TrimSpace(c.VirtualHost.Name) == "" {
		problems = append(problems, "virtualHost.name is required")
	} else if p := c.VirtualHost.Permissions; p == nil || p.Configure == "" || p.Write == "" || p.Read == "" {
		problems = append(problems, `virtualHost.permissions needs configure, write and read patterns (".*" for all, "^$" for none)`)
	}
	var tlsConf *tls.Config
	if c.CA != "" {
		if u == nil || u.Scheme != "https" {
			problems = append(problems, "ca needs an https:// host")
		} else if tlsConf, err = provider.TLSConfig(c.CA, u.Hostname()); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, errors.New("rabbit-mq inputs: " + strings.Join(problems, "; "))
	}
	return &RabbitMQ{cfg: c, base: u.Scheme + "://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(port)) + "/api",
		host: u.Hostname(), tls: tlsConf}, nil
}

// clients keeps one HTTP client (and its idle connections) per trust
// configuration: the lease engine builds a provider for every operation, and
// a transport per operation would never reuse a connection. A client unused
// for provider.DefaultIdle is dropped and its connections closed.
var clients = provider.NewIdlePool(func(c *http.Client) { c.CloseIdleConnections() })

// client returns the HTTP client for r's trust configuration and the func to
// call when done with it.
func (r *RabbitMQ) client(ctx context.Context) (*http.Client, func(), error) {
	checker := provider.CheckerFrom(ctx)
	key := sha256.Sum256([]byte(r.cfg.CA + "\x00" + r.host + "\x00" + provider.PoolKey(checker)))
	return clients.Acquire(ctx, key, func() (*http.Client, error) {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = r.tls
		transport.DialContext = provider.DialFunc(checker) // the target policy, on the address dialled
		// Never through a proxy from the environment (HTTPS_PROXY): the dial
		// hook would see the proxy's address, and the proxy would connect to
		// the target, or to whatever its name resolves to then, unchecked.
		transport.Proxy = nil
		transport.MaxIdleConnsPerHost = 4
		transport.IdleConnTimeout = time.Minute
		return &http.Client{Timeout: 10 * time.Second, Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
	})
}

// call makes one management API request; a status outside ok is an error
// carrying RabbitMQ's reason (never the request body, which may hold a password).
func (r *RabbitMQ) call(ctx context.Context, method, path string, body any, ok ...int) (int, error) {
	return r.callInto(ctx, method, path, body, nil, ok...)
}

// callInto is call, decoding a 200 answer into out when out is not nil.
func (r *RabbitMQ) callInto(ctx context.Context, method, path string, body, out any, ok ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
	req.Header.Set("Content-Type", "application/json")
	hc, release, err := r.client(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	res, err := hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is known; keep the cause
		}
		return 0, provider.Unreachable(fmt.Errorf("%s %s: %v", method, path, err))
	}
	defer res.Body.Close()
	// What another HTTP server says there (a 200 page, a 404, a JSON
	// error) is no member's business, nor a yes or no to act on: only the
	// management API's own answers count (JSON, and its error shape).
	notAPI := func() (int, error) {
		return res.StatusCode, provider.Unreachable(fmt.Errorf("%s %s: %s, not an answer of the management API", method, path, res.Status))
	}
	isJSON := strings.HasPrefix(res.Header.Get("Content-Type"), "application/json")
	var e struct{ Error, Reason string }
	for _, s := range ok {
		if res.StatusCode != s {
			continue
		}
		switch {
		case s == http.StatusOK && !isJSON:
			return notAPI()
		case s == http.StatusOK && out != nil:
			if err := json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(out); err != nil {
				return s, provider.Unreachable(fmt.Errorf("%s %s: %v", method, path, err))
			}
		case s == http.StatusNotFound:
			if json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&e); !isJSON || e.Error != "Object Not Found" {
				return notAPI()
			}
		}
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
		return res.StatusCode, nil
	}
	json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&e)
	if !isJSON || e.Error == "" || e.Reason == "" || res.StatusCode == http.StatusUnauthorized {
		// Not the management API's answer (or its refusal of the admin).
		return notAPI()
	}
	return res.StatusCode, fmt.Errorf("%s %s: %s %s: %s", method, path, res.Status, e.Error, e.Reason)
}

// Validate checks the admin credentials and that the virtual host exists.
func (r *RabbitMQ) Validate(ctx context.Context) error {
	if _, err := r.call(ctx, http.MethodGet, "/whoami", nil, 200); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := r.call(ctx, http.MethodGet, "/vhosts/"+url.PathEscape(r.cfg.VirtualHost.Name), nil, 200); err != nil {
		return fmt.Errorf("virtual host %q: %w", r.cfg.VirtualHost.Name, err)
	}
	return nil
}

// Create makes the user and grants its permissions.
func (r *RabbitMQ) Create(ctx context.Context, req provider.CreateRequest) (provider.CreateResponse, error) {
	if err := provider.CheckSafe(req.Username, req.Password); err != nil {
		return provider.CreateResponse{}, err
	}
	tags := append(append([]string{}, r.cfg.Tags...), Tag)
	user := "/users/" + url.PathEscape(req.Username)
	// A PUT of an existing user overwrites it: refuse instead.
	if st, err := r.call(ctx, http.MethodGet, user, nil, 200, 404); err != nil {
		return provider.CreateResponse{}, fmt.Errorf("look up user: %w", err)
	} else if st == 200 {
		return provider.CreateResponse{}, fmt.Errorf("user %s: %w", req.Username, provider.ErrExists)
	}
	if _, err := r.call(ctx, http.MethodPut, user, map[string]any{"password": req.Password, "tags": strings.Join(tags, ",")}, 201, 204); err != nil {
		return provider.CreateResponse{}, fmt.Errorf("create user: %w", err)
	}
	perm := "/permissions/" + url.PathEscape(r.cfg.VirtualHost.Name) + "/" + url.PathEscape(req.Username)
	if _, err := r.call(ctx, http.MethodPut, perm, r.cfg.VirtualHost.Permissions, 201, 204); err != nil {
		return provider.CreateResponse{}, fmt.Errorf("set permissions: %w", err)
	}
	return provider.CreateResponse{Data: map[string]any{"DB_USERNAME": req.Username, "DB_PASSWORD": req.Password}}, nil
}

// Revoke deletes the user; RabbitMQ closes the connections it still has open.
// A user that does not exist is success. (The API's bulk delete refuses a list
// naming a missing user, so users are deleted one by one.)
func (r *RabbitMQ) Revoke(ctx context.Context, req provider.RevokeRequest) error {
	if err := provider.CheckSafe(req.Username); err != nil {
		return err
	}
	user := "/users/" + url.PathEscape(req.Username)
	tags, found, err := r.userTags(ctx, user)
	if err != nil || !found {
		return err
	}
	if !slices.Contains(tags, Tag) {
		return fmt.Errorf("user %s: %w", req.Username, provider.ErrNotOwned)
	}
	_, err = r.call(ctx, http.MethodDelete, user, nil, 204, 404)
	return err
}

// userTags reads a user's tags (an array, or a comma-separated string on
// older servers).
func (r *RabbitMQ) userTags(ctx context.Context, user string) ([]string, bool, error) {
	var u struct{ Tags json.RawMessage }
	st, err := r.callInto(ctx, http.MethodGet, user, nil, &u, http.StatusOK, http.StatusNotFound)
	if err != nil || st == http.StatusNotFound {
		return nil, false, err
	}
	var tags []string
	if json.Unmarshal(u.Tags, &tags) != nil {
		var s string
		json.Unmarshal(u.Tags, &s)
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags, true, nil
}

// Targets is the management API's host.
func (r *RabbitMQ) Targets() []string { return []string{r.host} }
