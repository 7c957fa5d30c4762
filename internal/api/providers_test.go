package api_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	amqp "github.com/rabbitmq/amqp091-go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/totp"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// anyLease is a lease as the API returns it, with data of any shape.
type anyLease struct {
	Lease struct {
		ID, ExternalEntityID, ExpireAt, Status string
		StatusDetails                          *string
	}
	Data map[string]any
}

// dynScope is the project/environment/path triple of a test's dynamic secrets.
type dynScope struct {
	e      *apptest.Env
	slug   string
	viewer string // a project viewer's token: it sees secret inputs masked
}

func newDynScope(t *testing.T, d store.Dialect) dynScope {
	e := apptest.Bootstrapped(t, d)
	p := createProject(t, e, e.Token, map[string]any{"projectName": "providers"})
	_, viewer := projectMember(t, e, p.ID, "viewer", "viewer")
	return dynScope{e: e, slug: p.Slug, viewer: viewer}
}

func (s dynScope) q() string { return "?projectSlug=" + s.slug + "&environmentSlug=dev&path=/" }

func (s dynScope) body(extra map[string]any) map[string]any {
	b := map[string]any{"projectSlug": s.slug, "environmentSlug": "dev", "path": "/"}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func (s dynScope) create(t *testing.T, name, typ string, inputs map[string]any) {
	t.Helper()
	s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets", s.e.Token, s.body(map[string]any{"name": name, "defaultTTL": "1h",
		"maxTTL": "2h", "provider": map[string]any{"type": typ, "inputs": inputs}}))
}

// inputs reads the dynamic secret back as a viewer, who may not read the
// root credential: secret inputs must be masked. (The admin reads them in
// clear, as Infisical's callers with read-root-credential do.)
func (s dynScope) inputs(t *testing.T, name string) map[string]any {
	t.Helper()
	got := s.e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/"+name+s.q(), s.viewer, nil).JSON(t)
	return got["dynamicSecret"].(map[string]any)["inputs"].(map[string]any)
}

func (s dynScope) lease(t *testing.T, name, ttl string) anyLease {
	t.Helper()
	var l anyLease
	s.e.Must(t, 200, "POST", "/api/v1/dynamic-secrets/leases", s.e.Token, s.body(map[string]any{"dynamicSecretName": name, "ttl": ttl})).Decode(t, &l)
	if l.Lease.Status != "active" {
		t.Fatalf("lease %+v", l)
	}
	return l
}

func (s dynScope) leaseStatus(t *testing.T, id string) string {
	var got anyLease
	s.e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+id+s.q(), s.e.Token, nil).Decode(t, &got)
	return got.Lease.Status
}

func redisAuth(addr, user, pass string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, Username: user, Password: pass, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

func TestRedisLeases(t *testing.T) {
	host, port := testsvc.Redis(t)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		s := newDynScope(t, d)
		// The machine's default user has no password, so any admin password is accepted.
		s.create(t, "cache", "redis", map[string]any{"host": host, "port": port, "username": "default", "password": "planted-redis-admin"})
		if in := s.inputs(t, "cache"); in["password"] != "******" || in["username"] != "default" {
			t.Fatalf("inputs %v", in)
		}
		l := s.lease(t, "cache", "2s")
		user, pass := l.Data["DB_USERNAME"].(string), l.Data["DB_PASSWORD"].(string)
		if user != l.Lease.ExternalEntityID || len(pass) < 32 {
			t.Fatalf("lease %+v", l)
		}
		if err := redisAuth(addr, user, pass); err != nil {
			t.Fatalf("lease credentials cannot AUTH: %v", err)
		}
		exp, _ := time.Parse(time.RFC3339, l.Lease.ExpireAt)
		waitFor(t, 15*time.Second, func() bool { return redisAuth(addr, user, pass) != nil })
		t.Logf("AUTH refused %v after expireAt", time.Since(exp).Round(time.Millisecond))
		// The user is deleted before its lease row is marked: give the worker its commit.
		waitFor(t, 5*time.Second, func() bool { return s.leaseStatus(t, l.Lease.ID) == "revoked" })
		// Manual revoke.
		l = s.lease(t, "cache", "")
		s.e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, s.e.Token, s.body(nil))
		if err := redisAuth(addr, l.Data["DB_USERNAME"].(string), l.Data["DB_PASSWORD"].(string)); err == nil {
			t.Fatal("revoked credentials still AUTH")
		}
		// Bad inputs are a 400 and nothing is stored.
		assertError(t, s.e.Do(t, "POST", "/api/v1/dynamic-secrets", s.e.Token, s.body(map[string]any{"name": "bad", "defaultTTL": "1h",
			"provider": map[string]any{"type": "redis", "inputs": map[string]any{"host": host, "port": port, "username": "default",
				"creationStatement": "ACL SETUSER {{user}} on"}}})), 400, "BadRequest")
		assertError(t, s.e.Do(t, "GET", "/api/v1/dynamic-secrets/bad"+s.q(), s.e.Token, nil), 404, "NotFound")
	})
}

func TestRabbitMQLeases(t *testing.T) {
	amqpAddr, _ := testsvc.RabbitMQ(t)
	s := newDynScope(t, store.SQLite)
	s.create(t, "mq", "rabbit-mq", map[string]any{"host": "http://127.0.0.1", "port": 15672, "username": "guest", "password": "guest",
		"tags": []string{}, "virtualHost": map[string]any{"name": "/", "permissions": map[string]any{"configure": ".*", "write": ".*", "read": ".*"}}})
	in := s.inputs(t, "mq")
	if in["password"] != "******" || in["virtualHost"].(map[string]any)["name"] != "/" {
		t.Fatalf("inputs %v", in)
	}
	dial := func(l anyLease) error {
		u := url.URL{Scheme: "amqp", User: url.UserPassword(l.Data["DB_USERNAME"].(string), l.Data["DB_PASSWORD"].(string)), Host: amqpAddr, Path: "/"}
		c, err := amqp.DialConfig(u.String(), amqp.Config{Dial: amqp.DefaultDial(3 * time.Second)})
		if err == nil {
			c.Close()
		}
		return err
	}
	l := s.lease(t, "mq", "")
	if err := dial(l); err != nil {
		t.Fatalf("lease credentials do not open an AMQP connection: %v", err)
	}
	s.e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, s.e.Token, s.body(nil))
	if err := dial(l); err == nil {
		t.Fatal("revoked credentials still connect")
	}
	// Expiry too.
	l = s.lease(t, "mq", "1s")
	waitFor(t, 20*time.Second, func() bool { return s.leaseStatus(t, l.Lease.ID) == "revoked" })
	if err := dial(l); err == nil {
		t.Fatal("expired credentials still connect")
	}
	// A wrong admin password is refused when the dynamic secret is saved, without repeating it.
	m := assertError(t, s.e.Do(t, "POST", "/api/v1/dynamic-secrets", s.e.Token, s.body(map[string]any{"name": "wrong", "defaultTTL": "1h",
		"provider": map[string]any{"type": "rabbit-mq", "inputs": map[string]any{"host": "http://127.0.0.1", "port": 15672, "username": "guest",
			"password": "planted-wrong-pw", "virtualHost": map[string]any{"name": "/", "permissions": map[string]any{"configure": ".*", "write": ".*", "read": ".*"}}}}})), 400, "BadRequest")
	if strings.Contains(m["message"].(string), "planted-wrong-pw") {
		t.Fatalf("message repeats the password: %v", m["message"])
	}
}

func TestTOTPLeases(t *testing.T) {
	key := []byte("lockbox-totp-test-key-20b")
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key)
	s := newDynScope(t, store.SQLite)
	s.create(t, "otp", "totp", map[string]any{"configType": "manual", "secret": secret, "algorithm": "sha256", "digits": 8, "period": 30})
	s.create(t, "otp-url", "totp", map[string]any{"configType": "url", "url": "otpauth://totp/lockbox:ci?secret=" + secret + "&issuer=lockbox"})
	for name, want := range map[string][3]any{"otp": {"sha256", 8, 30}, "otp-url": {"sha1", 6, 30}} {
		in := s.inputs(t, name)
		if in["secret"] != nil && in["secret"] != "******" || in["url"] != nil && in["url"] != "******" {
			t.Fatalf("inputs %v", in)
		}
		before := time.Now()
		l := s.lease(t, name, "")
		after := time.Now()
		code, rem := l.Data["TOTP"], l.Data["TIME_REMAINING"]
		// The code is the one of a moment between the request and the answer.
		var valid []any
		for at := before.Truncate(time.Second); !at.After(after); at = at.Add(time.Second) {
			c, _ := totp.Code(key, want[0].(string), want[1].(int), want[2].(int), at)
			valid = append(valid, c)
		}
		if !slices.Contains(valid, code) || len(code.(string)) != want[1].(int) {
			t.Fatalf("%s: code %v, want one of %v", name, code, valid)
		}
		if r, ok := rem.(float64); !ok || r < 1 || r > 30 {
			t.Fatalf("%s: TIME_REMAINING %v", name, rem)
		}
		// Nothing to revoke in a target: revocation succeeds.
		s.e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, s.e.Token, s.body(nil))
	}
	assertError(t, s.e.Do(t, "POST", "/api/v1/dynamic-secrets", s.e.Token, s.body(map[string]any{"name": "bad", "defaultTTL": "1h",
		"provider": map[string]any{"type": "totp", "inputs": map[string]any{"configType": "manual", "secret": "not base32!"}}})), 400, "BadRequest")
}

func TestLDAPLeases(t *testing.T) {
	srv := testsvc.StartLDAP(t)
	s := newDynScope(t, store.Postgres)
	s.create(t, "directory", "ldap", map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass,
		"creationLdif":   "dn: uid={{Username}}," + srv.People + "\nobjectClass: inetOrgPerson\ncn: {{Username}}\nsn: lease\nuserPassword: {{Password}}\n",
		"revocationLdif": "dn: uid={{Username}}," + srv.People + "\nchangetype: delete\n"})
	if in := s.inputs(t, "directory"); in["bindpass"] != "******" || in["binddn"] != srv.BindDN {
		t.Fatalf("inputs %v", in)
	}
	l := s.lease(t, "directory", "2s")
	dn := "uid=" + l.Data["USERNAME"].(string) + "," + srv.People
	if arr, ok := l.Data["DN_ARRAY"].([]any); !ok || len(arr) != 1 || arr[0] != dn {
		t.Fatalf("DN_ARRAY %v", l.Data["DN_ARRAY"])
	}
	c, err := srv.Bind(dn, l.Data["PASSWORD"].(string))
	if err != nil {
		t.Fatalf("lease credentials do not bind: %v", err)
	}
	c.Close()
	waitFor(t, 15*time.Second, func() bool { return !srv.Exists(t, dn) })
	if _, err := srv.Bind(dn, l.Data["PASSWORD"].(string)); !goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		t.Fatalf("bind after expiry: %v", err)
	}
	// A wrong bind password is a 400 on save.
	assertError(t, s.e.Do(t, "POST", "/api/v1/dynamic-secrets", s.e.Token, s.body(map[string]any{"name": "bad", "defaultTTL": "1h",
		"provider": map[string]any{"type": "ldap", "inputs": map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": "wrong",
			"creationLdif": "dn: uid={{Username}},dc=x\nobjectClass: top\n", "revocationLdif": "dn: uid={{Username}},dc=x\nchangetype: delete\n"}}})), 400, "BadRequest")
}

// Provider inputs and lease credentials of the new providers are sealed in
// the database file like every other secret.
func TestProviderSecretsAreSealedAtRest(t *testing.T) {
	host, port := testsvc.Redis(t)
	s := newDynScope(t, store.SQLite)
	const adminPass = "planted-redis-admin-7c41"
	const totpSecret = "PLANTEDTOTPSECRETQ4ZA"
	s.create(t, "cache", "redis", map[string]any{"host": host, "port": port, "username": "default", "password": adminPass})
	s.create(t, "otp", "totp", map[string]any{"configType": "manual", "secret": totpSecret})
	l := s.lease(t, "cache", "")
	leasePass := l.Data["DB_PASSWORD"].(string)
	t.Cleanup(func() { s.e.Do(t, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, s.e.Token, s.body(nil)) })
	var all []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(s.e.DB.Path() + suffix)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(l.Lease.ID)) {
		t.Fatal("the database file does not hold the lease at all: wrong file?")
	}
	for _, v := range []string{adminPass, totpSecret, leasePass} {
		if bytes.Contains(all, []byte(v)) {
			t.Fatalf("%q is in the database file in clear", v)
		}
	}
}

// The outage guarantee with the Redis provider: a lease that expires while
// Redis is unreachable is marked, retried, and revoked once Redis is back.
func TestRedisLeaseRevocationSurvivesOutage(t *testing.T) {
	host, port := testsvc.Redis(t)
	direct := net.JoinHostPort(host, strconv.Itoa(port))
	s := newDynScope(t, store.SQLite)
	px := newProxy(t, direct)
	phost, pport, _ := net.SplitHostPort(px.addr)
	s.create(t, "flaky", "redis", map[string]any{"host": phost, "port": pport, "username": "default"})
	l := s.lease(t, "flaky", "1s")
	user, pass := l.Data["DB_USERNAME"].(string), l.Data["DB_PASSWORD"].(string)
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: direct, DisableIdentity: true})
		c.ACLDelUser(context.Background(), user)
		c.Close()
	})
	px.cut()
	var got anyLease
	waitFor(t, 15*time.Second, func() bool {
		s.e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID+s.q(), s.e.Token, nil).Decode(t, &got)
		return got.Lease.Status == "revoke_failed"
	})
	if got.Lease.StatusDetails == nil || !strings.Contains(*got.Lease.StatusDetails, "retrying") {
		t.Fatalf("statusDetails %v", got.Lease.StatusDetails)
	}
	if d := *got.Lease.StatusDetails; !strings.Contains(d, "could not be reached") || strings.Contains(d, pport) {
		t.Fatalf("statusDetails of an unreachable target: %q", d)
	}
	if err := redisAuth(direct, user, pass); err != nil {
		t.Fatalf("the user should still exist while Redis is unreachable: %v", err)
	}
	px.restore(t)
	waitFor(t, 30*time.Second, func() bool { return redisAuth(direct, user, pass) != nil })
	waitFor(t, 5*time.Second, func() bool { return s.leaseStatus(t, l.Lease.ID) == "revoked" })
}

// A target that quotes the failing statement back must not carry the generated
// password into the answer or the lease's status.
func TestFailedCreationDoesNotEchoThePassword(t *testing.T) {
	host, port := testsvc.Redis(t)
	_, db := mariaDB(t)
	s := newDynScope(t, store.SQLite)
	// Redis answers "Error in ACL SETUSER modifier '<the password>'"; MariaDB "... near 'USERX ... BY '<password>''".
	s.create(t, "redis-bad", "redis", map[string]any{"host": host, "port": port, "username": "default",
		"creationStatement": "ACL SETUSER {{username}} on {{password}}"})
	createDynamic(t, s.e, s.slug, "maria-bad", "127.0.0.1", "3306", db, map[string]any{"provider": map[string]any{"type": "sql-database",
		"inputs": map[string]any{"client": "mysql2", "host": "127.0.0.1", "port": 3306, "database": db, "username": "root", "password": "",
			"creationStatement": "CREATE USERX '{{username}}'@'%' IDENTIFIED BY '{{password}}';"}}})
	for name, want := range map[string]string{"redis-bad": "modifier '******'", "maria-bad": "IDENTIFIED BY '******"} {
		m := assertError(t, s.e.Do(t, "POST", "/api/v1/dynamic-secrets/leases", s.e.Token, s.body(map[string]any{"dynamicSecretName": name})), 400, "BadRequest")
		msg := m["message"].(string)
		if !strings.Contains(msg, want) {
			t.Fatalf("%s: the password the target quoted back is not masked: %s", name, msg)
		}
		var list struct {
			Leases []struct{ StatusDetails *string }
		}
		s.e.Must(t, 200, "GET", "/api/v1/dynamic-secrets/"+name+"/leases"+s.q(), s.e.Token, nil).Decode(t, &list)
		for _, l := range list.Leases {
			// The status holds the same (masked) text, cut shorter.
			if l.StatusDetails == nil {
				continue
			}
			if d, ok := strings.CutPrefix(*l.StatusDetails, "creation failed: "); ok && !strings.HasPrefix(strings.TrimPrefix(msg, "Failed to create lease: "), d) {
				t.Fatalf("%s: lease status details %q are not the masked message %q", name, *l.StatusDetails, msg)
			}
		}
	}
}

// TestRetargetingWaitsForLeasesToBeRevoked: a change of where a dynamic
// secret connects is refused while a lease is live, since its user is in the
// current target and revocation goes through the secret's inputs as they are
// then; once the lease is revoked the change goes through. A change that
// does not move the target (the TTL) is not held up.
func TestRetargetingWaitsForLeasesToBeRevoked(t *testing.T) {
	host, port := testsvc.Redis(t)
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		s := newDynScope(t, d)
		s.create(t, "cache", "redis", map[string]any{"host": host, "port": port, "username": "default", "password": "planted-redis-admin"})
		l := s.lease(t, "cache", "")
		user, pass := l.Data["DB_USERNAME"].(string), l.Data["DB_PASSWORD"].(string)
		retarget := s.body(map[string]any{"data": map[string]any{"inputs": map[string]any{"host": "localhost", "password": "planted-redis-admin"}}})
		m := assertError(t, s.e.Do(t, "PATCH", "/api/v1/dynamic-secrets/cache", s.e.Token, retarget), 400, "BadRequest")
		if msg, _ := m["message"].(string); !strings.Contains(msg, "Revoke the dynamic secret's leases") {
			t.Fatalf("refusal %q", msg)
		}
		if in := s.inputs(t, "cache"); in["host"] != host {
			t.Fatalf("the refused change was written: host %v", in["host"])
		}
		s.e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/cache", s.e.Token, s.body(map[string]any{"data": map[string]any{"defaultTTL": "30m"}}))
		s.e.Must(t, 200, "DELETE", "/api/v1/dynamic-secrets/leases/"+l.Lease.ID, s.e.Token, s.body(nil))
		if err := redisAuth(addr, user, pass); err == nil {
			t.Fatal("the revoked lease's user still logs in")
		}
		s.e.Must(t, 200, "PATCH", "/api/v1/dynamic-secrets/cache", s.e.Token, retarget)
		if in := s.inputs(t, "cache"); in["host"] != "localhost" {
			t.Fatalf("after the leases were revoked: host %v", in["host"])
		}
	})
}
