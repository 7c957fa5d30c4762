package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/redis"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

func newProvider(t *testing.T, inputs map[string]any) provider.Provider {
	t.Helper()
	b, _ := json.Marshal(inputs)
	p, err := redis.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// auth tries the credentials on a fresh connection.
func auth(addr, user, pass string, opts ...func(*goredis.Options)) error {
	o := &goredis.Options{Addr: addr, Username: user, Password: pass, MaxRetries: -1, DisableIdentity: true}
	for _, f := range opts {
		f(o)
	}
	c := goredis.NewClient(o)
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

func aclUsers(t *testing.T, prefix string) []string {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
	defer c.Close()
	users, err := c.ACLUsers(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range users {
		if strings.HasPrefix(u, prefix) {
			out = append(out, u)
		}
	}
	return out
}

func TestCreateAuthRevoke(t *testing.T) {
	host, port := testsvc.Redis(t)
	addr := host + ":" + strconv.Itoa(port)
	ctx := context.Background()
	p := newProvider(t, map[string]any{"host": host, "port": port, "username": "default", "password": ""})
	if err := p.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	prefix := "lbx" + testsvc.Suffix()
	t.Cleanup(func() {
		if left := aclUsers(t, prefix); len(left) > 0 {
			p.(provider.BatchRevoker).RevokeMany(ctx, left)
			t.Errorf("users left behind: %v", left)
		}
	})
	user, pass := prefix+"a", "Pw"+testsvc.Suffix()+testsvc.Suffix()
	res, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass, Expiration: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["DB_USERNAME"] != user || res.Data["DB_PASSWORD"] != pass {
		t.Fatalf("data %v", res.Data)
	}
	if err := auth(addr, user, pass); err != nil {
		t.Fatalf("new user cannot AUTH: %v", err)
	}
	if err := auth(addr, user, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatal(err)
	}
	if err := auth(addr, user, pass); err == nil {
		t.Fatal("revoked user can still AUTH")
	}
	// Revoking again, or a user that never existed, is success.
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatal(err)
	}

	// A batch: three users in one MULTI, one of which is already gone.
	var names []string
	for i := range 3 {
		n := prefix + "b" + strconv.Itoa(i)
		names = append(names, n)
		if _, err := p.Create(ctx, provider.CreateRequest{Username: n, Password: pass}); err != nil {
			t.Fatal(err)
		}
	}
	if got := aclUsers(t, prefix); len(got) != 3 {
		t.Fatalf("users %v", got)
	}
	if err := p.(provider.BatchRevoker).RevokeMany(ctx, append(names, prefix+"missing")); err != nil {
		t.Fatal(err)
	}
	if got := aclUsers(t, prefix); len(got) != 0 {
		t.Fatalf("after batch revoke: %v", got)
	}
}

// Custom statements with a read-only key pattern; a renew statement runs.
func TestCustomStatementsAndRenew(t *testing.T) {
	host, port := testsvc.Redis(t)
	addr := host + ":" + strconv.Itoa(port)
	ctx := context.Background()
	prefix := "lbx" + testsvc.Suffix()
	p := newProvider(t, map[string]any{"host": host, "port": strconv.Itoa(port), "username": "default",
		"creationStatement":   "ACL SETUSER {{username}} on >{{password}} ~" + prefix + ":* +get;\nACL SETUSER {{username}} +ping",
		"revocationStatement": "ACL DELUSER {{username}}",
		"renewStatement":      "ACL SETUSER {{username}} ~renewed:*"})
	user, pass := prefix+"c", "Pw"+testsvc.Suffix()
	t.Cleanup(func() { p.Revoke(ctx, provider.RevokeRequest{Username: user}) })
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, Username: user, Password: pass, DisableIdentity: true})
	defer c.Close()
	if err := c.Get(ctx, prefix+":x").Err(); err != goredis.Nil {
		t.Fatalf("GET in the pattern: %v", err)
	}
	if err := c.Set(ctx, prefix+":x", "1", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET should be refused: %v", err)
	}
	if err := p.(provider.Renewer).Renew(ctx, provider.RenewRequest{Username: user, Expiration: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, "renewed:x").Err(); err != goredis.Nil {
		t.Fatalf("renew statement did not run: %v", err)
	}
}

func TestTLS(t *testing.T) {
	cert := testsvc.NewCert(t)
	port := testsvc.StartRedisTLS(t, cert)
	ctx := context.Background()
	p := newProvider(t, map[string]any{"host": "127.0.0.1", "port": port, "username": "default", "ca": cert.CAPEM})
	if err := p.Validate(ctx); err != nil {
		t.Fatalf("TLS with the CA: %v", err)
	}
	user, pass := "lbx"+testsvc.Suffix(), "Pw"+testsvc.Suffix()
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	tlsConf, _ := provider.TLSConfig(cert.CAPEM, "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := auth(addr, user, pass, func(o *goredis.Options) { o.TLSConfig = tlsConf }); err != nil {
		t.Fatalf("lease user over TLS: %v", err)
	}
	// Without the CA the server's certificate is not trusted; without TLS the server does not answer.
	for _, in := range []map[string]any{
		{"host": "127.0.0.1", "port": port, "username": "default", "tlsEnabled": true},
		{"host": "127.0.0.1", "port": port, "username": "default"},
	} {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := newProvider(t, in).Validate(cctx)
		cancel()
		if err == nil {
			t.Fatalf("%v connected", in)
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	for _, in := range []string{
		`{}`,
		`{"host":"127.0.0.1","port":6379}`,
		`{"host":"127.0.0.1","port":0,"username":"default"}`,
		`{"host":"127.0.0.1","port":"x","username":"default"}`,
		`{"host":"","port":6379,"username":"default"}`,
		`{"host":"127.0.0.1","port":6379,"username":"default","ca":"not pem"}`,
		`{"host":"127.0.0.1","port":6379,"username":"default","creationStatement":"ACL SETUSER {{username}} on >{{password}} ~{{database}}"}`,
		`{"host":"127.0.0.1","port":6379,"username":"default","revocationStatement":"ACL DELUSER {{password}}"}`,
		`{"host":"127.0.0.1","port":6379,"username":"default","creationStatement":" ; "}`,
		`{"host":"127.0.0.1","port":6379,"username":"default","sslEnabled":true}`,
	} {
		if _, err := redis.New(json.RawMessage(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
	// Generated values that could break out of an argument are refused before any command is sent.
	p := newProvider(t, map[string]any{"host": "127.0.0.1", "port": 1, "username": "default"})
	for _, u := range []string{"a b", "a;FLUSHALL", "", "x\nFLUSHALL"} {
		if _, err := p.Create(context.Background(), provider.CreateRequest{Username: u, Password: "pw"}); err == nil ||
			!strings.Contains(err.Error(), "letters, digits") {
			t.Errorf("username %q: %v", u, err)
		}
	}
}

func TestUnreachableTargetFailsQuickly(t *testing.T) {
	p := newProvider(t, map[string]any{"host": "127.0.0.1", "port": testsvc.FreePort(t), "username": "default", "password": "s3cret-admin"})
	err := p.Revoke(context.Background(), provider.RevokeRequest{Username: "someone"})
	if err == nil {
		t.Fatal("revoke against nothing succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-admin") {
		t.Fatalf("error leaks the admin password: %v", err)
	}
}

// TestNeverWidensAnExistingUser: ACL SETUSER on an existing user would add
// the lease's rules to it; Create refuses instead.
func TestNeverWidensAnExistingUser(t *testing.T) {
	host, port := testsvc.Redis(t)
	ctx := context.Background()
	p := newProvider(t, map[string]any{"host": host, "port": port, "username": "default", "password": ""})
	user := "someone" + testsvc.Suffix()
	c := goredis.NewClient(&goredis.Options{Addr: host + ":" + strconv.Itoa(port), DisableIdentity: true})
	t.Cleanup(func() { c.Do(context.Background(), "ACL", "DELUSER", user); c.Close() })
	if err := c.Do(ctx, "ACL", "SETUSER", user, "on", ">theirs", "~app:*", "+get").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: "mine" + testsvc.Suffix()}); !errors.Is(err, provider.ErrExists) {
		t.Fatalf("create over an existing user: %v", err)
	}
	got, err := c.Do(ctx, "ACL", "GETUSER", user).Result()
	if err != nil || strings.Contains(fmt.Sprint(got), "+@all") {
		t.Fatalf("the user after the attempt: %v, %v", got, err)
	}
}

// TestDefaultRulesExcludeAdminCommands: a lease made with the default
// statement cannot create users or reconfigure the server.
func TestDefaultRulesExcludeAdminCommands(t *testing.T) {
	host, port := testsvc.Redis(t)
	ctx := context.Background()
	addr := host + ":" + strconv.Itoa(port)
	p := newProvider(t, map[string]any{"host": host, "port": port, "username": "default", "password": ""})
	user, pass := "lbx"+testsvc.Suffix(), "Pw"+testsvc.Suffix()+testsvc.Suffix()
	if _, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass, Expiration: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Revoke(context.Background(), provider.RevokeRequest{Username: user}) })
	c := goredis.NewClient(&goredis.Options{Addr: addr, Username: user, Password: pass, DisableIdentity: true})
	defer c.Close()
	if err := c.Set(ctx, "lbx-test-"+user, "v", time.Minute).Err(); err != nil {
		t.Fatalf("an ordinary command: %v", err)
	}
	c.Del(ctx, "lbx-test-"+user)
	// Nor may it load, replace or delete functions, which run with the
	// rights of whoever calls them (harmless forms: each fails otherwise).
	for _, cmd := range [][]any{{"ACL", "SETUSER", user + "x", "on", ">p", "+@all"}, {"CONFIG", "GET", "maxmemory"}, {"KEYS", "lbx-nothing-*"},
		{"FUNCTION", "LOAD", "REPLACE", "not a library"}, {"FUNCTION", "DELETE", "lbx_no_such_library"}, {"SCRIPT", "KILL"}} {
		if err := c.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("%v: %v, want NOPERM", cmd[0], err)
		}
	}
}

// TestUnreachableIsMarked: what fails while a connection opens is marked
// provider.ErrUnreachable (members are shown a fixed text), even an error
// reply there that is no refused-login reply (an old Redis answers AUTH
// with a username "ERR wrong number of arguments"); a command's error reply
// on a logged-in connection is not.
func TestUnreachableIsMarked(t *testing.T) {
	ctx := context.Background()
	req := provider.CreateRequest{Username: "lbxunreach" + testsvc.Suffix()[:6], Password: "Pw0123456789"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // answers every command with the same error reply
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					io.WriteString(c, "-ERR wrong number of arguments for 'auth' command\r\n")
				}
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host, realPort := testsvc.Redis(t)
	for name, in := range map[string]map[string]any{
		"closed port":     {"host": "127.0.0.1", "port": testsvc.FreePort(t), "username": "default"},
		"an old login":    {"host": "127.0.0.1", "port": port, "username": "default", "password": "x"},
		"a refused login": {"host": host, "port": realPort, "username": "lockbox_nobody", "password": "wrong"},
	} {
		if _, err := newProvider(t, in).Create(ctx, req); !errors.Is(err, provider.ErrUnreachable) {
			t.Errorf("%s: %v, want it marked unreachable", name, err)
		}
	}
	_, err = newProvider(t, map[string]any{"host": host, "port": realPort, "username": "default",
		"creationStatement": "ACL SETUSER {{username}} on >{{password}} +nosuchcommand"}).Create(ctx, req)
	if err == nil || errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("a command's error reply: %v, want an error not marked unreachable", err)
	}
}
