package rabbitmq_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/providertest"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider/rabbitmq"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// connServer is a loopback HTTP server that signals when a client connection closes.
func connServer(t *testing.T) (*httptest.Server, chan struct{}) {
	closed := make(chan struct{}, 10)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, closed
}

func TestIdleClientIsDroppedUsedClientKept(t *testing.T) {
	clock := providertest.NewClock(time.Now())
	rabbitmq.Clients.SetClock(clock.Now, time.Minute)
	t.Cleanup(func() { rabbitmq.Clients.SetClock(time.Now, provider.DefaultIdle) })

	used := newProvider(t, inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"}))
	in := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	in["host"] = "http://localhost" // another key; never dialled by name
	idle := newProvider(t, in)
	usedSrv, usedClosed := connServer(t)
	idleSrv, idleClosed := connServer(t)

	get := func(p provider.Provider, url string) *http.Client {
		t.Helper()
		c, rel, err := rabbitmq.Client(p)
		if err != nil {
			t.Fatal(err)
		}
		defer rel()
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return c
	}
	usedC := get(used, usedSrv.URL)
	idleC := get(idle, idleSrv.URL)

	clock.Add(40 * time.Second)
	get(used, usedSrv.URL)
	clock.Add(30 * time.Second)
	rabbitmq.Clients.Sweep()
	select {
	case <-idleClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle client's connection was not closed")
	}
	select {
	case <-usedClosed:
		t.Fatal("the used client's connection was closed")
	case <-time.After(100 * time.Millisecond):
	}
	if c := get(used, usedSrv.URL); c != usedC {
		t.Fatal("the used client was replaced")
	}
	if c := get(idle, idleSrv.URL); c == idleC {
		t.Fatal("the evicted client was handed out again")
	}
}

// TestNoProxyFromEnvironment: the management API is reached directly, never
// through a proxy named by HTTPS_PROXY / HTTP_PROXY. Through one, the target
// policy's check at dial time would see only the proxy's address, and the
// proxy would connect to the target (or to whatever its name then resolves
// to) unchecked, with the admin's credentials.
func TestNoProxyFromEnvironment(t *testing.T) {
	c, rel, err := rabbitmq.Client(newProvider(t, inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})))
	if err != nil {
		t.Fatal(err)
	}
	defer rel()
	if tr, ok := c.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatalf("the management API's transport %T may use a proxy from the environment", c.Transport)
	}
}

// TestUnreachableIsMarked: a closed port, or an HTTP server that is not the
// management API, is marked provider.ErrUnreachable (members are shown a
// fixed text, not what answered).
func TestUnreachableIsMarked(t *testing.T) {
	closedPort := testsvc.FreePort(t)
	serve := func(status int, contentType, body string) int {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().(*net.TCPAddr).Port
	}
	for name, port := range map[string]int{
		"closed port":          closedPort,
		"a page not found":     serve(404, "text/html", "<html>internal wiki</html>"),
		"a page for anything":  serve(200, "text/html", "<html>app</html>"),
		"another JSON API":     serve(403, "application/json", `{"kind":"Status","reason":"Forbidden"}`),
		"another JSON API 404": serve(404, "application/json", `{"error":"not here","reason":"gone"}`),
	} {
		in := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
		in["port"] = port
		p := newProvider(t, in)
		_, err := p.Create(context.Background(), provider.CreateRequest{Username: "lbxunreach", Password: "Pw0123456789"})
		if !errors.Is(err, provider.ErrUnreachable) {
			t.Errorf("%s: create: %v, want it marked unreachable", name, err)
		}
		if err := p.Revoke(context.Background(), provider.RevokeRequest{Username: "lbxunreach"}); !errors.Is(err, provider.ErrUnreachable) {
			t.Errorf("%s: revoke: %v, want it marked unreachable (not revoked, not refused as not ours)", name, err)
		}
	}
}

// TestIPv6Host: an IPv6 address as the host makes a URL that parses.
func TestIPv6Host(t *testing.T) {
	in := inputs(map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	in["host"] = "http://[::1]"
	if got := rabbitmq.Base(newProvider(t, in)); got != "http://[::1]:15672/api" {
		t.Fatalf("base %q", got)
	}
}
