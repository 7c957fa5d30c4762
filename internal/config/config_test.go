package config_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "./lockbox-data" || c.Postgres() || c.MaxBodyBytes != 1<<20 ||
		c.PasswordHashConcurrency != 4 {
		t.Fatalf("defaults %+v", c)
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	c, err := config.Load(env(map[string]string{"LOCKBOX_LISTEN": "127.0.0.1:1", "LOCKBOX_DATA_DIR": "/env"}),
		[]string{"--listen", "127.0.0.1:2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2" || c.DataDir != "/env" {
		t.Fatalf("got %+v", c)
	}
}

func TestPasswordHashConcurrency(t *testing.T) {
	c, err := config.Load(env(map[string]string{"LOCKBOX_PASSWORD_HASH_CONCURRENCY": "2"}), nil, nil)
	if err != nil || c.PasswordHashConcurrency != 2 {
		t.Fatalf("env: %v %d", err, c.PasswordHashConcurrency)
	}
	c, err = config.Load(env(nil), []string{"--password-hash-concurrency", "8"}, nil)
	if err != nil || c.PasswordHashConcurrency != 8 {
		t.Fatalf("flag: %v %d", err, c.PasswordHashConcurrency)
	}
}

func TestFileVariant(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	read := func(p string) ([]byte, error) {
		if p == "/run/key" {
			return []byte(key + "\n"), nil
		}
		return nil, errors.New("no such file")
	}
	c, err := config.Load(env(map[string]string{"LOCKBOX_ROOT_KEY_FILE": "/run/key"}), nil, read)
	if err != nil || len(c.RootKeyBytes()) != 32 {
		t.Fatalf("root key from file: %v", err)
	}
	if _, err := config.Load(env(map[string]string{"LOCKBOX_ROOT_KEY_FILE": "/missing"}), nil, read); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestInvalidSettings(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"short root key", map[string]string{"LOCKBOX_ROOT_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))}, nil, "LOCKBOX_ROOT_KEY"},
		{"root key not base64", map[string]string{"LOCKBOX_ROOT_KEY": "%%%"}, nil, "LOCKBOX_ROOT_KEY"},
		{"bad listen", nil, []string{"--listen", "nope"}, "listen"},
		{"mysql url", map[string]string{"LOCKBOX_DATABASE_URL": "mysql://x", "LOCKBOX_ROOT_KEY": good}, nil, "database url"},
		{"postgres without root key", map[string]string{"LOCKBOX_DATABASE_URL": "postgres://u:p@h/db"}, nil, "required with PostgreSQL"},
		{"bad int", map[string]string{"LOCKBOX_MAX_BODY_BYTES": "lots"}, nil, "LOCKBOX_MAX_BODY_BYTES"},
		{"bad duration", nil, []string{"--shutdown-timeout", "soon"}, "shutdown-timeout"},
		{"unknown flag", nil, []string{"--nope"}, "nope"},
		{"no password hash slot", map[string]string{"LOCKBOX_PASSWORD_HASH_CONCURRENCY": "0"}, nil, "password hash concurrency"},
		{"bad trusted proxy", map[string]string{"LOCKBOX_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example"}, nil, "LOCKBOX_TRUSTED_PROXIES"},
		{"bad metrics listen", nil, []string{"--metrics-listen", "9090"}, "metrics listen"},
		{"metrics on the api address", map[string]string{"LOCKBOX_METRICS_LISTEN": "127.0.0.1:8080"}, nil, "must differ"},
		{"trusted proxy with zone", nil, []string{"--trusted-proxies", "fe80::1%eth0"}, "trusted-proxies"},
		{"bad client cert header", map[string]string{"LOCKBOX_TLS_CLIENT_CERT_HEADER": "x-cert: evil"}, nil, "LOCKBOX_TLS_CLIENT_CERT_HEADER"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Load(env(c.env), c.args, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, err := config.Load(env(map[string]string{"LOCKBOX_DATABASE_URL": "postgres://u:hunter2@h/db",
		"LOCKBOX_ROOT_KEY": base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	c.MetricsToken = "metrics-hunter3"
	slog.New(slog.NewJSONHandler(&b, nil)).Info("cfg", "url", c.DatabaseURL, "key", c.RootKey, "metrics", c.MetricsToken)
	out := fmt.Sprintf("%v %+v %#v %s", c, c, c, b.String())
	for _, s := range []string{"hunter2", "MDEyMzQ1", "hunter3"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q printed: %s", s, out)
		}
	}
	_, err = config.Load(env(map[string]string{"LOCKBOX_DATABASE_URL": "mysql://u:hunter2@h/db", "LOCKBOX_ROOT_KEY": "x"}), nil, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the url: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := config.Load(env(nil), nil, nil)
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("default trusts %v (%v), want none", c.TrustedProxies, err)
	}
	c, err = config.Load(env(map[string]string{"LOCKBOX_TRUSTED_PROXIES": "192.0.2.7"}),
		[]string{"--trusted-proxies", " 10.1.2.3/8, 127.0.0.1 ,::ffff:198.51.100.0/120,2001:db8::/32,"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "127.0.0.1/32", "198.51.100.0/24", "2001:db8::/32"}
	if fmt.Sprint(c.TrustedProxies) != fmt.Sprint(want) {
		t.Fatalf("trusted proxies %v, want %v (the flag replaces the variable)", c.TrustedProxies, want)
	}
}

func TestMetricsSettings(t *testing.T) {
	read := func(p string) ([]byte, error) { return []byte("s3cret\n"), nil }
	c, err := config.Load(env(map[string]string{"LOCKBOX_METRICS_TOKEN_FILE": "/run/metrics", "LOCKBOX_METRICS_LISTEN": "127.0.0.1:9090"}), nil, read)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsToken != "s3cret" || c.MetricsListen != "127.0.0.1:9090" {
		t.Fatalf("metrics settings %q %q", string(c.MetricsToken), c.MetricsListen)
	}
}

func TestClientCertHeader(t *testing.T) {
	c, err := config.Load(env(nil), nil, nil)
	if err != nil || c.TLSClientCertHeader != "" { // opt-in: no header is read by default
		t.Fatalf("default %q, %v", c.TLSClientCertHeader, err)
	}
	c, err = config.Load(env(map[string]string{"LOCKBOX_TLS_CLIENT_CERT_HEADER": "X-SSL-Client-Cert"}), nil, nil)
	if err != nil || c.TLSClientCertHeader != "X-SSL-Client-Cert" {
		t.Fatalf("set %q, %v", c.TLSClientCertHeader, err)
	}
}

func TestSessionTimeouts(t *testing.T) {
	c, err := config.Load(env(nil), nil, nil)
	if err != nil || c.SessionIdleTimeout != 30*time.Minute || c.SessionAbsoluteTimeout != 12*time.Hour {
		t.Fatalf("defaults %v %v (%v)", c.SessionIdleTimeout, c.SessionAbsoluteTimeout, err)
	}
	c, err = config.Load(env(map[string]string{"LOCKBOX_SESSION_IDLE_TIMEOUT": "15m"}), []string{"--session-absolute-timeout", "8h"}, nil)
	if err != nil || c.SessionIdleTimeout != 15*time.Minute || c.SessionAbsoluteTimeout != 8*time.Hour {
		t.Fatalf("set %v %v (%v)", c.SessionIdleTimeout, c.SessionAbsoluteTimeout, err)
	}
	for _, bad := range []map[string]string{
		{"LOCKBOX_SESSION_IDLE_TIMEOUT": "30s"},
		{"LOCKBOX_SESSION_IDLE_TIMEOUT": "2h", "LOCKBOX_SESSION_ABSOLUTE_TIMEOUT": "1h"},
		{"LOCKBOX_SESSION_ABSOLUTE_TIMEOUT": "soon"},
	} {
		if _, err := config.Load(env(bad), nil, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
