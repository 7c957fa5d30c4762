package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	goredis "github.com/redis/go-redis/v9"

	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// slowProxy forwards a loopback port to target, holding every reply from the
// target for delay: creations take long enough to be caught by a kill.
func slowProxy(t *testing.T, target string, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(up, c); up.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func redisUsers(t *testing.T, prefix string) []string {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
	defer c.Close()
	all, err := c.ACLUsers(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range all {
		if strings.HasPrefix(u, prefix) {
			out = append(out, u)
		}
	}
	return out
}

func ldapUsers(t *testing.T, srv *testsvc.LDAP) []string {
	t.Helper()
	c, err := srv.Bind(srv.BindDN, srv.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest(srv.People, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range res.Entries {
		out = append(out, e.DN)
	}
	return out
}

// The lease engine's crash guarantee holds for the Redis and LDAP providers:
// the server is SIGKILLed with Redis creations in flight and with Redis and
// LDAP leases that then expire while it is down; after a restart every one of
// those credentials is removed.
func TestCrashWithRedisAndLDAPLeases(t *testing.T) {
	testsvc.Redis(t)
	srv := testsvc.StartLDAP(t)
	b := make([]byte, 4)
	rand.Read(b)
	prefix := "lbx" + hex.EncodeToString(b)
	t.Cleanup(func() {
		if left := redisUsers(t, prefix); len(left) > 0 {
			c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
			for _, u := range left {
				c.ACLDelUser(context.Background(), u)
			}
			c.Close()
		}
	})
	dir := t.TempDir()
	addr, cmd, _, _ := startServer(t, dir, nil, "--lease-creating-timeout", "2s")
	ctx := context.Background()
	c, slug := bootstrapProject(t, addr, "crash-providers")
	slow := slowProxy(t, "127.0.0.1:6379", 300*time.Millisecond)
	host, port, _ := net.SplitHostPort(slow)
	for name, prov := range map[string]map[string]any{
		"cache": {"type": "redis", "inputs": map[string]any{"host": host, "port": port, "username": "default"}},
		"directory": {"type": "ldap", "inputs": map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass,
			"creationLdif":   "dn: uid={{Username}}," + srv.People + "\nobjectClass: inetOrgPerson\ncn: x\nsn: x\nuserPassword: {{Password}}\n",
			"revocationLdif": "dn: uid={{Username}}," + srv.People + "\nchangetype: delete\n"}},
	} {
		if err := c.Do(ctx, "POST", "/api/v1/dynamic-secrets", map[string]any{"projectSlug": slug, "environmentSlug": "dev",
			"path": "/", "name": name, "defaultTTL": "1h", "usernameTemplate": prefix + "{{randomUsername}}", "provider": prov}, nil); err != nil {
			t.Fatal(err)
		}
	}
	lease := func(ctx context.Context, name, ttl string) error {
		return c.Do(ctx, "POST", "/api/v1/dynamic-secrets/leases", map[string]any{"dynamicSecretName": name, "projectSlug": slug,
			"environmentSlug": "dev", "path": "/", "ttl": ttl}, nil)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	for range 4 {
		wg.Go(func() {
			for cctx.Err() == nil {
				if lease(cctx, "cache", "2s") == nil {
					ok.Add(1)
				}
			}
		})
	}
	for ok.Load() < 8 {
		time.Sleep(5 * time.Millisecond)
	}
	// The LDAP leases are made now, just before the kill, so that none has
	// expired (and been revoked) before it however slow the machine is;
	// the Redis creations go on meanwhile.
	for range 5 {
		if err := lease(ctx, "directory", "2s"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // inside the next creations' 300 ms
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cancel()
	wg.Wait()
	killedAt := time.Now()
	time.Sleep(500 * time.Millisecond) // let creations the proxy still holds reach Redis
	redisAtKill, ldapAtKill := len(redisUsers(t, prefix)), len(ldapUsers(t, srv))
	t.Logf("killed after %d acknowledged Redis leases: %d Redis users and %d LDAP entries exist", ok.Load(), redisAtKill, ldapAtKill)
	if ldapAtKill != 5 || int64(redisAtKill) < ok.Load() {
		t.Fatalf("at the kill: %d LDAP entries (want 5), %d Redis users for %d acknowledged leases", ldapAtKill, redisAtKill, ok.Load())
	}
	// Every lease has expired while nobody was running: the credentials are still there.
	time.Sleep(time.Until(killedAt.Add(2500 * time.Millisecond)))
	if n := len(redisUsers(t, prefix)); n != redisAtKill {
		t.Fatalf("Redis users changed while the server was down: %d -> %d", redisAtKill, n)
	}

	restarted := time.Now()
	startServer(t, dir, nil, "--lease-creating-timeout", "2s")
	deadline := time.Now().Add(30 * time.Second)
	for len(redisUsers(t, prefix))+len(ldapUsers(t, srv)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after restart, still there: Redis %v, LDAP %v", redisUsers(t, prefix), ldapUsers(t, srv))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d Redis users and %d LDAP entries removed %v after the restart", redisAtKill, ldapAtKill, time.Since(restarted).Round(time.Millisecond))
}
