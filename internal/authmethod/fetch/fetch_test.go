package fetch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// denyAtDial passes every host name and refuses every address: what a name
// that resolves to a denied address at connection time (DNS rebinding) meets.
type denyAtDial struct{}

func (denyAtDial) CheckHost(context.Context, string) error { return nil }
func (denyAtDial) CheckAddr(a netip.Addr) error            { return errors.New("denied " + a.String()) }

// unresolvable is a policy whose names never resolve, as the server's
// policy reports it (the resolver's error, naming the resolver).
type unresolvable struct{}

func (unresolvable) CheckHost(_ context.Context, host string) error {
	return fmt.Errorf("resolve %q: %w", host, &net.DNSError{Err: "no such host", Name: host, Server: "10.9.8.7:53", IsNotFound: true})
}
func (unresolvable) CheckAddr(netip.Addr) error { return nil }

// TestUnresolvedNameSaysOnlyThat: whoever configures a login method learns
// that a name did not resolve, not the resolver's answer or address.
func TestUnresolvedNameSaysOnlyThat(t *testing.T) {
	env := authmethod.Env{Policy: unresolvable{}}
	for _, err := range []error{
		fetch.CheckHost(context.Background(), env, "url", "wiki.internal"),
		func() error {
			_, err := fetch.CheckURL(context.Background(), env, "jwksUrl", "https://wiki.internal/keys")
			return err
		}(),
	} {
		if err == nil || !strings.Contains(err.Error(), "could not be resolved") {
			t.Fatalf("an unresolved name: %v", err)
		}
		if e, _ := errors.AsType[*errs.Error](err); e == nil || strings.Contains(e.Message, "10.9.8.7") || strings.Contains(e.Message, "no such host") || !e.LogErr {
			t.Fatalf("the refusal shown: %+v", e)
		}
	}
}

func TestGetJSONLimits(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"keys":[]}`))
		case "/big":
			w.Write([]byte(`{"pad":"` + strings.Repeat("x", fetch.MaxBody) + `"}`))
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	var v map[string]any
	get := func(env authmethod.Env, path string) error {
		c, err := fetch.NewClient(env, "")
		if err != nil {
			t.Fatal(err)
		}
		return c.GetJSON(ctx, srv.URL+path, &v)
	}
	loop := authmethod.Env{Loopback: true}
	if err := get(loop, "/ok"); err != nil {
		t.Fatalf("ok: %v", err)
	}
	if err := get(loop, "/big"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big body: %v", err)
	}
	before := hits.Load()
	if err := get(loop, "/redirect"); err == nil || hits.Load() != before+1 {
		t.Fatalf("redirect followed or accepted: %v (hits %d)", err, hits.Load()-before)
	}

	// Outside tests loopback is never dialed, and the target policy is applied
	// to the name and to every address dialed.
	before = hits.Load()
	if err := get(authmethod.Env{}, "/ok"); err == nil {
		t.Fatal("loopback fetched without Loopback")
	}
	deny, err := dynamic.ParseTargetPolicy("", "127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	if err := get(authmethod.Env{Loopback: true, Policy: deny}, "/ok"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("denied by policy: %v", err)
	}
	if err := get(authmethod.Env{Loopback: true, Policy: denyAtDial{}}, "/ok"); err == nil || !strings.Contains(err.Error(), "denied 127.0.0.1") {
		t.Fatalf("denied at dial: %v", err)
	}
	if hits.Load() != before {
		t.Fatalf("%d refused fetches reached the server", hits.Load()-before)
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	env := authmethod.Env{}
	for _, u := range []string{"ftp://x/keys", "https://user:pw@example.com/keys", "/relative", "https://127.0.0.1/keys",
		"http://169.254.169.254/latest", "http://localhost:8080/keys", "https://[::1]/keys", "http://0.0.0.0/",
		"https://[64:ff9b::7f00:1]/keys", "https://[64:ff9b::a9fe:a9fe]/latest"} { // NAT64 addresses are the IPv4 they reach
		if _, err := fetch.CheckURL(ctx, env, "jwksUrl", u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if _, err := fetch.CheckURL(ctx, env, "jwksUrl", "https://10.1.2.3/keys"); err != nil {
		t.Errorf("a private address is allowed unless the policy denies it: %v", err)
	}
}

func TestDialerAndCheckHost(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := fetch.Dialer(authmethod.Env{}).DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		t.Fatal("the dialer reached loopback without Env.Loopback")
	}
	if _, err := fetch.Dialer(authmethod.Env{Loopback: true, Policy: denyAtDial{}}).DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		t.Fatal("the dialer ignored the policy")
	}
	c, err := fetch.Dialer(authmethod.Env{Loopback: true}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	c.Close()
	for _, h := range []string{"127.0.0.1", "localhost", "169.254.169.254", "::1"} {
		if err := fetch.CheckHost(ctx, authmethod.Env{}, "url", h); err == nil {
			t.Errorf("%s accepted", h)
		}
	}
	if err := fetch.CheckHost(ctx, authmethod.Env{}, "url", "ldap.example.com"); err != nil {
		t.Errorf("a name is for the policy to judge: %v", err)
	}
}

// TestHTTPClientCapsBodies: the client libraries read through (go-oidc,
// oauth2) is bounded as GetJSON is: a body of MaxBody bytes reads whole, a
// longer one fails without being held.
func TestHTTPClientCapsBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := fetch.MaxBody
		if r.URL.Path == "/over" {
			n++
		}
		w.Write([]byte(strings.Repeat("x", n)))
	}))
	defer srv.Close()
	c, err := fetch.NewClient(authmethod.Env{Loopback: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) (int, error) {
		resp, err := c.HTTP().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return len(b), err
	}
	if n, err := read("/exact"); err != nil || n != fetch.MaxBody {
		t.Fatalf("a body of MaxBody bytes: %d, %v", n, err)
	}
	if n, err := read("/over"); err == nil || !strings.Contains(err.Error(), "larger than") || n > fetch.MaxBody {
		t.Fatalf("a body over MaxBody: %d, %v", n, err)
	}
}
