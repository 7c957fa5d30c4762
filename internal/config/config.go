// Package config turns flags and environment variables into one validated Config.
// Nothing else in lockbox reads the environment after start-up.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/netaddr"
)

// Secret is a string that never prints itself.
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (s Secret) GoString() string             { return s.String() }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is everything the server needs to start.
type Config struct {
	Listen       string     // LOCKBOX_LISTEN / --listen
	DataDir      string     // LOCKBOX_DATA_DIR / --data-dir
	DatabaseURL  Secret     // LOCKBOX_DATABASE_URL / --database-url; empty = embedded SQLite
	RootKey      Secret     // LOCKBOX_ROOT_KEY: base64 of 32 bytes; empty = generated key file in DataDir (SQLite only)
	LogLevel     slog.Level // LOCKBOX_LOG_LEVEL / --log-level
	MaxBodyBytes int64      // LOCKBOX_MAX_BODY_BYTES / --max-body-bytes
	// AuthRateLimit is the number of login and bootstrap requests one IP may make per minute.
	AuthRateLimit   int           // LOCKBOX_AUTH_RATE_LIMIT / --auth-rate-limit
	ShutdownTimeout time.Duration // LOCKBOX_SHUTDOWN_TIMEOUT / --shutdown-timeout
	// PasswordHashConcurrency caps the argon2id hashes (19 MiB each) running at
	// once; password logins finding every slot busy are answered 429.
	PasswordHashConcurrency int // LOCKBOX_PASSWORD_HASH_CONCURRENCY / --password-hash-concurrency
	DBMaxConns              int // LOCKBOX_DB_MAX_CONNS / --db-max-conns (PostgreSQL pool size)
	// LeaseCreatingTimeout is how long a lease may stay 'creating' before the
	// worker revokes it as abandoned (its creator crashed).
	LeaseCreatingTimeout time.Duration // LOCKBOX_LEASE_CREATING_TIMEOUT / --lease-creating-timeout
	// MaxLeaseLimit is how many leases of one dynamic secret may be live at
	// once (Infisical's MAX_LEASE_LIMIT).
	MaxLeaseLimit int // LOCKBOX_MAX_LEASE_LIMIT / --max-lease-limit
	// AuditLogRetentionDays, when set, deletes audit events older than this
	// many days, and caps the projects' own retention; 0 keeps them.
	AuditLogRetentionDays int // LOCKBOX_AUDIT_LOG_RETENTION_DAYS / --audit-log-retention-days
	// RotationClaimTimeout is how long a secret rotation run holds its
	// rotation; a run that dies (a node killed mid-rotation) is finished by
	// another node after it.
	RotationClaimTimeout time.Duration // LOCKBOX_ROTATION_CLAIM_TIMEOUT / --rotation-claim-timeout
	// DynamicTargetsAllow and DynamicTargetsDeny are comma-separated CIDRs,
	// addresses and host names dynamic secrets may (not) connect to.
	DynamicTargetsAllow string // LOCKBOX_DYNAMIC_TARGETS_ALLOW / --dynamic-targets-allow
	DynamicTargetsDeny  string // LOCKBOX_DYNAMIC_TARGETS_DENY / --dynamic-targets-deny
	// TrustedProxies are the peers whose ClientIPHeader is believed; empty
	// trusts none and the client is the TCP peer.
	TrustedProxies []netip.Prefix // LOCKBOX_TRUSTED_PROXIES / --trusted-proxies
	// ClientIPHeader is the one header a trusted proxy names the client in:
	// "x-forwarded-for" (the default) or "x-real-ip". Only one is read: a
	// proxy that sets one passes on whatever the client sent in the other.
	ClientIPHeader string // LOCKBOX_CLIENT_IP_HEADER / --client-ip-header
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken Secret // LOCKBOX_METRICS_TOKEN (no flag: it would show in ps)
	// MetricsListen, when set, is the only address serving /metrics; the
	// API listener then answers 404 for it.
	MetricsListen string // LOCKBOX_METRICS_LISTEN / --metrics-listen
	// TLSCertFile and TLSKeyFile, when set, make the API listener serve TLS
	// (1.2 or later) with that PEM certificate chain and key, re-read on
	// SIGHUP. TLSClientCAFile, when set, verifies client certificates
	// against those CAs when a client presents one (none is still allowed).
	TLSCertFile     string // LOCKBOX_TLS_CERT_FILE / --tls-cert-file
	TLSKeyFile      string // LOCKBOX_TLS_KEY_FILE / --tls-key-file
	TLSClientCAFile string // LOCKBOX_TLS_CLIENT_CA_FILE / --tls-client-ca-file
	// TLSClientCertHeader is the request header in which a trusted proxy
	// (TrustedProxies) forwards the client certificate it verified, for
	// certificate login; from any other peer the header is ignored.
	TLSClientCertHeader string // LOCKBOX_TLS_CLIENT_CERT_HEADER / --tls-client-cert-header
	// SMTPURL, when set, is the server invitation links are mailed through:
	// smtp://[user:pass@]host[:port]?from=addr or smtps://…
	SMTPURL Secret // LOCKBOX_SMTP_URL (no flag: it may hold a password)
	// SiteURL is where invitation links point, e.g. https://lockbox.example.com;
	// empty: the scheme and host the inviting request reached.
	SiteURL string // LOCKBOX_SITE_URL / --site-url
	// SessionIdleTimeout ends a dashboard session after this long without a
	// request; SessionAbsoluteTimeout ends it this long after login,
	// however active.
	SessionIdleTimeout     time.Duration // LOCKBOX_SESSION_IDLE_TIMEOUT / --session-idle-timeout
	SessionAbsoluteTimeout time.Duration // LOCKBOX_SESSION_ABSOLUTE_TIMEOUT / --session-absolute-timeout
}

// DefaultClientCertHeader is Infisical's default header for a forwarded
// client certificate (IDENTITY_TLS_CERT_AUTH_CLIENT_CERTIFICATE_HEADER_KEY).
const DefaultClientCertHeader = "x-identity-tls-cert-auth-client-cert"

// TLS reports whether the API listener serves TLS.
func (c Config) TLS() bool { return c.TLSCertFile != "" }

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:                  "127.0.0.1:8080",
		DataDir:                 "./lockbox-data",
		LogLevel:                slog.LevelInfo,
		MaxBodyBytes:            1 << 20,
		AuthRateLimit:           60,
		PasswordHashConcurrency: 4,
		ShutdownTimeout:         15 * time.Second,
		DBMaxConns:              20,
		LeaseCreatingTimeout:    2 * time.Minute,
		MaxLeaseLimit:           10000,
		RotationClaimTimeout:    2 * time.Minute,
		SessionIdleTimeout:      30 * time.Minute,
		SessionAbsoluteTimeout:  12 * time.Hour,
	}
}

// Postgres reports whether the configuration selects PostgreSQL.
func (c Config) Postgres() bool { return c.DatabaseURL != "" }

// RootKeyBytes decodes RootKey; it is valid after Validate.
func (c Config) RootKeyBytes() []byte {
	if c.RootKey == "" {
		return nil
	}
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(c.RootKey)))
	return b
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var problems []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		problems = append(problems, fmt.Errorf("listen address %q: want host:port", c.Listen))
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			problems = append(problems, fmt.Errorf("metrics listen address %q: want host:port", c.MetricsListen))
		} else if c.MetricsListen == c.Listen {
			problems = append(problems, errors.New("metrics listen address must differ from the listen address"))
		}
	}
	if c.DataDir == "" && !c.Postgres() {
		problems = append(problems, errors.New("data dir must not be empty"))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(string(c.DatabaseURL))
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Never echo the URL: it may hold a password.
			problems = append(problems, errors.New("database url: want postgres://user:pass@host:port/db"))
		}
	}
	if c.RootKey != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(c.RootKey)))
		if err != nil || len(b) != 32 {
			problems = append(problems, errors.New("LOCKBOX_ROOT_KEY: want the base64 encoding of exactly 32 bytes (openssl rand -base64 32)"))
		}
	}
	if c.SiteURL != "" {
		if u, err := url.Parse(c.SiteURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			problems = append(problems, fmt.Errorf("site url %q: want http(s)://host[:port][/path]", c.SiteURL))
		}
	}
	if c.RootKey == "" && c.Postgres() {
		problems = append(problems, errors.New("LOCKBOX_ROOT_KEY is required with PostgreSQL (a generated key file would differ between nodes)"))
	}
	if c.MaxBodyBytes < 1024 {
		problems = append(problems, errors.New("max body bytes must be at least 1024"))
	}
	if c.AuthRateLimit < 1 {
		problems = append(problems, errors.New("auth rate limit must be at least 1 per minute"))
	}
	if c.PasswordHashConcurrency < 1 || c.PasswordHashConcurrency > 1024 {
		problems = append(problems, errors.New("password hash concurrency must be between 1 and 1024"))
	}
	if c.ShutdownTimeout <= 0 {
		problems = append(problems, errors.New("shutdown timeout must be positive"))
	}
	if c.LeaseCreatingTimeout < time.Second {
		// Shorter than the provider timeout (20s) is safe but makes slow creations fail.
		problems = append(problems, errors.New("lease creating timeout must be at least 1s"))
	}
	if c.AuditLogRetentionDays < 0 || c.AuditLogRetentionDays > 3650 {
		problems = append(problems, errors.New("audit log retention days must be 0 (keep) to 3650"))
	}
	if c.MaxLeaseLimit < 1 {
		problems = append(problems, errors.New("max lease limit must be at least 1"))
	}
	if c.RotationClaimTimeout < time.Second {
		// A run longer than the claim could be taken over by another node mid-way
		// (harmless: same password, FinishRotation checks the claim), so short is allowed.
		problems = append(problems, errors.New("rotation claim timeout must be at least 1s"))
	}
	if c.SessionIdleTimeout < time.Minute {
		// Activity is recorded at most once a minute: a shorter idle timeout would end active sessions.
		problems = append(problems, errors.New("session idle timeout must be at least 1m"))
	}
	if c.SessionAbsoluteTimeout < c.SessionIdleTimeout {
		problems = append(problems, errors.New("session absolute timeout must be at least the idle timeout"))
	}
	if c.DBMaxConns < 2 {
		problems = append(problems, errors.New("db max conns must be at least 2"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		problems = append(problems, errors.New("TLS needs both a certificate file and a key file (LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_KEY_FILE)"))
	}
	if c.TLSClientCertHeader != "" && !validHeaderName(c.TLSClientCertHeader) {
		problems = append(problems, errors.New("the TLS client certificate header must be an HTTP header name of letters, digits and dashes (LOCKBOX_TLS_CLIENT_CERT_HEADER)"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		problems = append(problems, errors.New("a TLS client CA file needs the server to serve TLS (LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_KEY_FILE)"))
	}
	return errors.Join(problems...)
}

// variable is one setting: its environment name, flag name, and how to set it.
type variable struct {
	env, flag, usage string
	secret           bool
	set              func(c *Config, v string) error
}

func variables() []variable {
	return []variable{
		{"LOCKBOX_LISTEN", "listen", "address to listen on", false, func(c *Config, v string) error { c.Listen = v; return nil }},
		{"LOCKBOX_DATA_DIR", "data-dir", "directory for the SQLite database and generated root key", false, func(c *Config, v string) error { c.DataDir = v; return nil }},
		{"LOCKBOX_DATABASE_URL", "database-url", "postgres:// URL; empty uses embedded SQLite", true, func(c *Config, v string) error { c.DatabaseURL = Secret(v); return nil }},
		{"LOCKBOX_ROOT_KEY", "", "base64 of the 32-byte root key", true, func(c *Config, v string) error { c.RootKey = Secret(v); return nil }},
		{"LOCKBOX_LOG_LEVEL", "log-level", "debug, info, warn or error", false, func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
		{"LOCKBOX_MAX_BODY_BYTES", "max-body-bytes", "largest accepted request body", false, intSetter(func(c *Config, n int) { c.MaxBodyBytes = int64(n) })},
		{"LOCKBOX_AUTH_RATE_LIMIT", "auth-rate-limit", "login and bootstrap requests per minute per IP", false, intSetter(func(c *Config, n int) { c.AuthRateLimit = n })},
		{"LOCKBOX_PASSWORD_HASH_CONCURRENCY", "password-hash-concurrency", "password hashes (19 MiB each) run at once; excess logins get 429", false, intSetter(func(c *Config, n int) { c.PasswordHashConcurrency = n })},
		{"LOCKBOX_SHUTDOWN_TIMEOUT", "shutdown-timeout", "how long shutdown waits for in-flight requests", false, func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			c.ShutdownTimeout = d
			return err
		}},
		{"LOCKBOX_DB_MAX_CONNS", "db-max-conns", "PostgreSQL connection pool size", false, intSetter(func(c *Config, n int) { c.DBMaxConns = n })},
		{"LOCKBOX_LEASE_CREATING_TIMEOUT", "lease-creating-timeout", "how long a lease may stay 'creating' before it is revoked as abandoned", false, func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			c.LeaseCreatingTimeout = d
			return err
		}},
		{"LOCKBOX_MAX_LEASE_LIMIT", "max-lease-limit", "how many leases of one dynamic secret may be live at once", false, intSetter(func(c *Config, n int) { c.MaxLeaseLimit = n })},
		{"LOCKBOX_AUDIT_LOG_RETENTION_DAYS", "audit-log-retention-days", "delete audit events older than this many days; caps the projects' own retention (0: keep)", false, intSetter(func(c *Config, n int) { c.AuditLogRetentionDays = n })},
		{"LOCKBOX_ROTATION_CLAIM_TIMEOUT", "rotation-claim-timeout", "how long a secret rotation run holds its rotation before another node may finish it", false, func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			c.RotationClaimTimeout = d
			return err
		}},
		{"LOCKBOX_SESSION_IDLE_TIMEOUT", "session-idle-timeout", "a dashboard session ends after this long without a request", false, func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			c.SessionIdleTimeout = d
			return err
		}},
		{"LOCKBOX_SESSION_ABSOLUTE_TIMEOUT", "session-absolute-timeout", "a dashboard session ends this long after login, however active", false, func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			c.SessionAbsoluteTimeout = d
			return err
		}},
		{"LOCKBOX_DYNAMIC_TARGETS_ALLOW", "dynamic-targets-allow", "CIDRs and host names dynamic secrets may connect to (empty: any not denied)", false, func(c *Config, v string) error { c.DynamicTargetsAllow = v; return nil }},
		{"LOCKBOX_DYNAMIC_TARGETS_DENY", "dynamic-targets-deny", "CIDRs and host names dynamic secrets may not connect to, besides link-local and metadata addresses", false, func(c *Config, v string) error { c.DynamicTargetsDeny = v; return nil }},
		{"LOCKBOX_TRUSTED_PROXIES", "trusted-proxies", "CIDRs and addresses of reverse proxies whose client IP header (--client-ip-header) is believed (empty: none)", false, func(c *Config, v string) (err error) {
			c.TrustedProxies, err = ParsePrefixes(v)
			return err
		}},
		{"LOCKBOX_CLIENT_IP_HEADER", "client-ip-header", "the header trusted proxies name the client in: x-forwarded-for (default) or x-real-ip; the other is ignored", false, func(c *Config, v string) error {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case "", "x-forwarded-for", "x-real-ip":
				c.ClientIPHeader = v
				return nil
			}
			return fmt.Errorf("must be x-forwarded-for or x-real-ip")
		}},
		{"LOCKBOX_METRICS_TOKEN", "", "bearer token GET /metrics requires (empty: none)", true, func(c *Config, v string) error { c.MetricsToken = Secret(v); return nil }},
		{"LOCKBOX_TLS_CERT_FILE", "tls-cert-file", "PEM certificate chain: serve the API over TLS (re-read on SIGHUP)", false, func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
		{"LOCKBOX_TLS_KEY_FILE", "tls-key-file", "PEM private key of the TLS certificate", false, func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
		{"LOCKBOX_TLS_CLIENT_CA_FILE", "tls-client-ca-file", "PEM CAs that client certificates are verified against when a client presents one", false, func(c *Config, v string) error { c.TLSClientCAFile = v; return nil }},
		{"LOCKBOX_TLS_CLIENT_CERT_HEADER", "tls-client-cert-header", "header in which a trusted proxy forwards the client certificate for TLS certificate login (empty: none is read; Infisical's is x-identity-tls-cert-auth-client-cert)", false, func(c *Config, v string) error { c.TLSClientCertHeader = v; return nil }},
		{"LOCKBOX_SMTP_URL", "", "smtp://[user:pass@]host[:port]?from=addr: mail invitation links (empty: links are only shown to the inviting admin)", true, func(c *Config, v string) error { c.SMTPURL = Secret(v); return nil }},
		{"LOCKBOX_SITE_URL", "site-url", "public URL invitation links point to, e.g. https://lockbox.example.com (empty: the address the request reached)", false, func(c *Config, v string) error { c.SiteURL = strings.TrimRight(v, "/"); return nil }},
		{"LOCKBOX_METRICS_LISTEN", "metrics-listen", "separate address serving /metrics, e.g. 127.0.0.1:9090 (empty: /metrics on the API listener)", false, func(c *Config, v string) error { c.MetricsListen = v; return nil }},
	}
}

// ParsePrefixes parses a comma-separated list of CIDRs and addresses; an
// address stands for itself alone (/32 or /128). IPv4-mapped IPv6 forms are
// stored as IPv4, so they match the addresses the server compares them with.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netaddr.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func intSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want an integer")
		}
		f(c, n)
		return nil
	}
}

// Load builds a Config from defaults, then the environment (through getenv), then
// args (flags win). It validates the result. A *_FILE variant of each environment
// variable names a file holding the value.
func Load(getenv func(string) string, args []string, readFile func(string) ([]byte, error)) (Config, error) {
	c := Default()
	var problems []error
	for _, v := range variables() {
		val := getenv(v.env)
		if f := getenv(v.env + "_FILE"); val == "" && f != "" && readFile != nil {
			b, err := readFile(f)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s_FILE: %v", v.env, err))
				continue
			}
			val = strings.TrimSpace(string(b))
		}
		if val == "" {
			continue
		}
		if err := v.set(&c, val); err != nil {
			problems = append(problems, describe(v, val, err))
		}
	}
	fs := FlagSet(&c, &problems)
	if err := fs.Parse(args); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return c, errors.Join(problems...)
	}
	return c, c.Validate()
}

func describe(v variable, val string, err error) error {
	if v.secret {
		return fmt.Errorf("%s: %v", v.env, err)
	}
	return fmt.Errorf("%s=%q: %v", v.env, val, err)
}

// FlagSet returns the command-line flags, which write into c; problems collects bad values.
func FlagSet(c *Config, problems *[]error) *flag.FlagSet {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, v := range variables() {
		if v.flag == "" {
			continue
		}
		fs.Func(v.flag, v.usage+" ($"+v.env+")", func(val string) error {
			if err := v.set(c, val); err != nil {
				*problems = append(*problems, fmt.Errorf("--%s: %v", v.flag, err))
			}
			return nil
		})
	}
	return fs
}

// Usage lists the settings for help text.
func Usage() string {
	var b strings.Builder
	for _, v := range variables() {
		fl := ""
		if v.flag != "" {
			fl = "--" + v.flag
		}
		fmt.Fprintf(&b, "  %-26s %-20s %s\n", v.env, fl, v.usage)
	}
	return b.String()
}

// validHeaderName reports whether s is a header name of letters, digits and
// dashes (a subset of RFC 9110's tokens that every proxy can set).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
