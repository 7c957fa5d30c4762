// Package redis is the "redis" dynamic-secret provider: ACL users created and
// removed in Redis (6 or newer) with templated commands.
//
// Templates are tokenised before anything is substituted: commands are
// separated by ';' or new lines, arguments by white space, and each
// placeholder is replaced inside its own argument. A generated value can
// therefore never add an argument or a command.
package redis

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func init() {
	provider.Register(provider.Registration{Type: "redis", New: New, Inputs: Inputs})
	goredis.SetLogger(slogLogger{})
}

// slogLogger sends go-redis's own messages (pool dial failures and such) to
// slog at debug level instead of the standard logger on stderr; failures that
// matter reach the lease as errors anyway.
type slogLogger struct{}

func (slogLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "redis provider: "+fmt.Sprintf(format, v...))
}

// Inputs are the provider's inputs, as Infisical names them.
var Inputs = []provider.Input{
	{Name: "host", Target: true, Required: true, Doc: "Redis host"},
	{Name: "port", Target: true, Required: true, Doc: "Redis port"},
	{Name: "username", Target: true, Required: true, Doc: "admin ACL user (\"default\" on a server without ACL users)"},
	{Name: "password", Secret: true, Doc: "admin password (may be empty)"},
	{Name: "creationStatement", Statement: true, Doc: "commands creating a user; {{username}}, {{password}}, {{expiration}}. Default: " + DefaultCreation},
	{Name: "revocationStatement", Statement: true, Doc: "commands removing a user; {{username}}. Default: " + DefaultRevocation},
	{Name: "renewStatement", Statement: true, Doc: "commands run on renew; {{username}}, {{expiration}}. Default: none"},
	{Name: "ca", Target: true, Doc: "PEM CA certificate; when set the connection uses TLS and verifies the server against it"},
	{Name: "tlsEnabled", Target: true, Doc: "use TLS with the system's CA certificates (implied by ca)"},
}

// Default statements. Unlike Infisical's +@all, a lessee gets no @admin or
// @dangerous command: with ACL SETUSER it could make a user that outlives
// the lease, with CONFIG or DEBUG take over the server.
const (
	DefaultCreation   = "ACL SETUSER {{username}} on >{{password}} ~* &* +@all -@admin -@dangerous -@scripting"
	DefaultRevocation = "ACL DELUSER {{username}}"
)

// Config is the decoded inputs.
type Config struct {
	Host                string      `json:"host"`
	Port                json.Number `json:"port"`
	Username            string      `json:"username"`
	Password            string      `json:"password"`
	CreationStatement   string      `json:"creationStatement"`
	RevocationStatement string      `json:"revocationStatement"`
	RenewStatement      string      `json:"renewStatement"`
	CA                  string      `json:"ca"`
	TLSEnabled          bool        `json:"tlsEnabled"`
}

// Redis is a configured provider.
type Redis struct {
	cfg                     Config
	tls                     *tls.Config
	create, revoke, renewal [][]string
}

var (
	_ provider.Provider     = (*Redis)(nil)
	_ provider.Renewer      = (*Redis)(nil)
	_ provider.BatchRevoker = (*Redis)(nil)
)

var placeholder = lazyre.New(`\{\{\s*([^{}]*?)\s*\}\}`)

// parse tokenises a template and checks it uses only the allowed variables.
func parse(what, tmpl string, allowed ...string) ([][]string, error) {
	var cmds [][]string
	for _, line := range strings.FieldsFunc(tmpl, func(r rune) bool { return r == ';' || r == '\n' }) {
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		for _, a := range args {
			for _, m := range placeholder().FindAllStringSubmatch(a, -1) {
				ok := false
				for _, v := range allowed {
					ok = ok || m[1] == v
				}
				if !ok {
					return nil, fmt.Errorf("%s: {{%s}} is not available (use %s)", what, m[1], "{{"+strings.Join(allowed, "}}, {{")+"}}")
				}
			}
		}
		cmds = append(cmds, args)
	}
	if len(cmds) == 0 && what != "renewStatement" {
		return nil, fmt.Errorf("%s has no command", what)
	}
	return cmds, nil
}

// New decodes and validates the inputs without connecting.
func New(inputs json.RawMessage) (provider.Provider, error) {
	var c Config
	if err := provider.Decode("redis", inputs, &c); err != nil {
		return nil, err
	}
	var problems []string
	if strings.TrimSpace(c.Host) == "" {
		problems = append(problems, "host is required")
	}
	if strings.TrimSpace(c.Username) == "" {
		problems = append(problems, "username is required")
	}
	if _, err := provider.Port(c.Port); err != nil {
		problems = append(problems, err.Error())
	}
	r := &Redis{cfg: c}
	if c.CA != "" {
		t, err := provider.TLSConfig(c.CA, c.Host)
		if err != nil {
			problems = append(problems, err.Error())
		}
		r.tls = t
	} else if c.TLSEnabled {
		r.tls = &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
	}
	if strings.TrimSpace(c.CreationStatement) == "" {
		c.CreationStatement = DefaultCreation
	}
	if strings.TrimSpace(c.RevocationStatement) == "" {
		c.RevocationStatement = DefaultRevocation
	}
	var err error
	if r.create, err = parse("creationStatement", c.CreationStatement, "username", "password", "expiration"); err != nil {
		problems = append(problems, err.Error())
	}
	if r.revoke, err = parse("revocationStatement", c.RevocationStatement, "username"); err != nil {
		problems = append(problems, err.Error())
	}
	if r.renewal, err = parse("renewStatement", c.RenewStatement, "username", "expiration"); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New("redis inputs: " + strings.Join(problems, "; "))
	}
	r.cfg = c
	return r, nil
}

// render substitutes vars into each argument of cmds.
func render(cmds [][]string, vars map[string]string) [][]any {
	out := make([][]any, len(cmds))
	for i, c := range cmds {
		args := make([]any, len(c))
		for j, a := range c {
			args[j] = placeholder().ReplaceAllStringFunc(a, func(m string) string {
				return vars[placeholder().FindStringSubmatch(m)[1]]
			})
		}
		out[i] = args
	}
	return out
}

// clients keeps one client (with its own small pool) per distinct target and
// admin credentials; one unused for provider.DefaultIdle is closed and dropped.
var clients = provider.NewIdlePool(func(c *goredis.Client) { c.Close() })

// client returns the client for r's inputs and the func to call when done with it.
func (r *Redis) client(ctx context.Context) (*goredis.Client, func(), error) {
	checker := provider.CheckerFrom(ctx)
	key := sha256.Sum256([]byte(strings.Join([]string{r.cfg.Host, r.cfg.Port.String(), r.cfg.Username, r.cfg.Password,
		r.cfg.CA, strconv.FormatBool(r.tls != nil), provider.PoolKey(checker)}, "\x00")))
	return clients.Acquire(ctx, key, func() (*goredis.Client, error) {
		return goredis.NewClient(&goredis.Options{
			Addr:     net.JoinHostPort(r.cfg.Host, r.cfg.Port.String()),
			Username: r.cfg.Username, Password: r.cfg.Password, TLSConfig: r.tls,
			Dialer:      r.dialer(checker),
			DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			PoolSize: 4, MinIdleConns: 0, ConnMaxIdleTime: time.Minute, MaxRetries: 1,
			DisableIdentity: true, // no CLIENT SETINFO: older servers reject it
		}), nil
	})
}

// dial connects through provider's dialer, which applies the target policy
// to the address dialled (go-redis's own dialer would not), with TLS when
// configured.
func (r *Redis) dialer(c provider.AddrChecker) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := provider.NetDialer(c)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if r.tls == nil {
			return d.DialContext(ctx, network, addr)
		}
		return (&tls.Dialer{NetDialer: d, Config: r.tls}).DialContext(ctx, network, addr)
	}
}

// run sends cmds as one MULTI/EXEC. Errors are reported without arguments,
// which may hold a password.
func (r *Redis) run(ctx context.Context, op string, cmds [][]any) error {
	if len(cmds) == 0 {
		return nil
	}
	cn, release, err := r.open(ctx)
	if err != nil {
		return provider.Unreachable(fmt.Errorf("%s: %v", op, err))
	}
	defer release()
	return runOn(ctx, cn, op, cmds)
}

// runOn is run on a connection that has logged in.
func runOn(ctx context.Context, cn *goredis.Conn, op string, cmds [][]any) error {
	res, err := cn.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for _, c := range cmds {
			p.Do(ctx, c...)
		}
		return nil
	})
	if err != nil {
		for i, c := range res {
			if c.Err() != nil {
				return mark(c.Err(), fmt.Errorf("%s: command %d (%v): %v", op, i+1, cmds[i][0], c.Err()))
			}
		}
		return mark(err, fmt.Errorf("%s: %v", op, err))
	}
	return nil
}

// conn takes one connection of the pooled client (opened, and logged in, by
// its first command); release gives it back.
func (r *Redis) conn(ctx context.Context) (*goredis.Conn, func(), error) {
	c, release, err := r.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	cn := c.Conn()
	return cn, func() { cn.Close(); release() }, nil
}

// open is conn, pinged: whatever fails there (the dial, TLS, the login,
// something else answering) is the connection's opening, and the commands
// that follow on it are answered by a logged-in Redis.
func (r *Redis) open(ctx context.Context) (*goredis.Conn, func(), error) {
	cn, release, err := r.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := cn.Ping(ctx).Err(); err != nil {
		release()
		return nil, nil, err
	}
	return cn, release, nil
}

// mark returns described, marked provider.ErrUnreachable unless err is
// Redis's answer to a command on a logged-in connection (see open and
// Create): an error reply, other than a refused login.
func mark(err, described error) error {
	if re, ok := err.(goredis.Error); ok {
		msg := re.Error()
		login := false
		for _, p := range []string{"WRONGPASS", "NOAUTH", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
			login = login || strings.HasPrefix(msg, p)
		}
		if !login {
			return described
		}
	}
	return provider.Unreachable(described)
}

// Validate connects with the admin credentials.
func (r *Redis) Validate(ctx context.Context) error {
	c, release, err := r.client(ctx)
	if err != nil {
		return fmt.Errorf("connect: %v", err)
	}
	defer release()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect: %v", err)
	}
	return nil
}

// Create runs the creation commands.
func (r *Redis) Create(ctx context.Context, req provider.CreateRequest) (provider.CreateResponse, error) {
	if err := provider.CheckSafe(req.Username, req.Password); err != nil {
		return provider.CreateResponse{}, err
	}
	// ACL SETUSER on an existing user widens it: refuse instead. The look-up
	// is the connection's first command, so it also opens and logs in: any
	// failure but "no such user" is the connection's (an admin without ACL
	// rights included), and what follows on it is Redis's answer.
	cn, release, err := r.conn(ctx)
	if err != nil {
		return provider.CreateResponse{}, provider.Unreachable(fmt.Errorf("look up user: %v", err))
	}
	defer release()
	err = cn.Do(ctx, "ACL", "GETUSER", req.Username).Err()
	switch {
	case err == nil:
		return provider.CreateResponse{}, fmt.Errorf("user %s: %w", req.Username, provider.ErrExists)
	case !errors.Is(err, goredis.Nil):
		return provider.CreateResponse{}, provider.Unreachable(fmt.Errorf("look up user: %v", err))
	}
	cmds := render(r.create, map[string]string{"username": req.Username, "password": req.Password,
		"expiration": req.Expiration.UTC().Format(time.RFC3339)})
	if err := runOn(ctx, cn, "create user", cmds); err != nil {
		return provider.CreateResponse{}, err
	}
	return provider.CreateResponse{Data: map[string]any{"DB_USERNAME": req.Username, "DB_PASSWORD": req.Password}}, nil
}

// Revoke runs the revocation commands (ACL DELUSER of a missing user is a no-op).
func (r *Redis) Revoke(ctx context.Context, req provider.RevokeRequest) error {
	return r.RevokeMany(ctx, []string{req.Username})
}

// RevokeMany revokes several users in one MULTI/EXEC.
func (r *Redis) RevokeMany(ctx context.Context, usernames []string) error {
	var cmds [][]any
	for _, u := range usernames {
		if err := provider.CheckSafe(u); err != nil {
			return err
		}
		cmds = append(cmds, render(r.revoke, map[string]string{"username": u})...)
	}
	return r.run(ctx, "remove user", cmds)
}

// Renew runs the renew commands, if any.
func (r *Redis) Renew(ctx context.Context, req provider.RenewRequest) error {
	if err := provider.CheckSafe(req.Username); err != nil {
		return err
	}
	return r.run(ctx, "renew user", render(r.renewal, map[string]string{"username": req.Username,
		"expiration": req.Expiration.UTC().Format(time.RFC3339)}))
}

// Targets is the Redis host.
func (r *Redis) Targets() []string { return []string{r.cfg.Host} }
