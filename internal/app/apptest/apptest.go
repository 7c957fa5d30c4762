// Package apptest starts a real lockbox API (real store, real keyring) on a
// loopback httptest server for end-to-end tests, and bootstraps it.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app"
	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/org"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// Env is a running server.
type Env struct {
	URL     string
	DB      *store.DB
	Keyring *keyring.Keyring
	Server  *httptest.Server
	App     *app.App
	// Set by Bootstrap:
	Token      string // the admin identity's token
	OrgID      string
	IdentityID string
	UserEmail  string
	Password   string

	opts store.Options
	root []byte
}

// Options tune Start.
type Options struct {
	AuthRateLimit int   // default: high enough not to interfere
	MaxBodyBytes  int64 // default 1 MiB
	// PasswordHasher replaces the server's (a test can hold its slots).
	PasswordHasher *identity.PasswordHasher
	Log            io.Writer
	LogLevel       slog.Level // of the server's log; default info
	// Share starts the server on another Env's database and root key, as a
	// second node of the same instance.
	Share *Env
	// TargetsAllow and TargetsDeny set the dynamic-secret target policy.
	TargetsAllow, TargetsDeny string
	// TrustedProxies are the peers whose client IP header is believed; the
	// test client's peer is 127.0.0.1.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is app.Options.ClientIPHeader.
	ClientIPHeader string
	// CertHeader is the header a trusted proxy forwards a client certificate
	// in (api.Options.CertHeader).
	CertHeader string
	// ClientCAs, when set, makes the server serve TLS as lockbox server does
	// with LOCKBOX_TLS_CLIENT_CA_FILE: TLS 1.2+, a client certificate
	// optional but verified against these CAs (VerifyClientCertIfGiven).
	// Do then speaks TLS without a client certificate; TLSClient presents one.
	ClientCAs *x509.CertPool
	// MetricsToken and SeparateMetrics: see api.Options.
	MetricsToken    string
	SeparateMetrics bool
	// WorkerBatch, when set, is how many leases the lease worker claims at
	// once, bursts included.
	WorkerBatch int
	// WorkerClaim, when set, is how long the lease worker's claims last
	// (dynamic.Worker.Claim).
	WorkerClaim time.Duration
	// MaxLeases is app.Options.MaxLeases (zero: dynamic.DefaultMaxLeases).
	MaxLeases int
	// AuditLogRetentionDays is app.Options.AuditLogRetentionDays.
	AuditLogRetentionDays int
	// NoWorker leaves the lease worker stopped: the test drives it (Tick),
	// or another node sharing the database does the work.
	NoWorker bool
	// AuthResolve and AuthRootCAs let login methods reach a public name
	// (sts.us-east-1.amazonaws.com) served by a local TLS server of the test.
	AuthResolve map[string]netip.AddrPort
	AuthRootCAs *x509.CertPool
	// Clock is app.Options.Clock: the time permissions are resolved at and
	// memberships, privileges and invitations are stamped with; nil: time.Now.
	Clock func() time.Time
	// Mailer sends invitation links and PKI alerts (app.Options.Mailer).
	// SessionIdleTimeout and SessionAbsoluteTimeout are the dashboard's
	// (app.Options); zero: the defaults.
	SessionIdleTimeout, SessionAbsoluteTimeout time.Duration
	// Mailer sends invitation links (app.Options.Mailer).
	Mailer org.Mailer
	// SelfSiteURL makes the server's own address its public URL
	// (app.Options.SiteURL): issued certificates then name its CRL route.
	SelfSiteURL bool
}

// Start runs a server on a fresh database of engine d, closed at cleanup.
func Start(t testing.TB, d store.Dialect, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.AuthRateLimit == 0 {
		o.AuthRateLimit = 100000
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var db *store.DB
	root := make([]byte, keyring.KeySize)
	if o.Share != nil {
		var err error
		db, err = store.Open(context.Background(), o.Share.opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		copy(root, o.Share.root)
	} else {
		opts := storetest.Options(t, d)
		var err error
		db, err = store.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		rand.Read(root)
		o.Share = &Env{opts: opts, root: root}
	}
	kr, err := keyring.New(root, db)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := dynamic.ParseTargetPolicy(o.TargetsAllow, o.TargetsDeny)
	if err != nil {
		t.Fatal(err)
	}
	var siteURL string
	var lis net.Listener
	if o.SelfSiteURL && o.ClientCAs == nil {
		if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		siteURL = "http://" + lis.Addr().String()
	}
	srv := app.New(db, kr, app.Options{SiteURL: siteURL, TargetPolicy: targets, Version: "test", MaxBodyBytes: o.MaxBodyBytes, AuthRateLimit: o.AuthRateLimit,
		PasswordHasher: o.PasswordHasher, Logger: slog.New(slog.NewJSONHandler(o.Log, &slog.HandlerOptions{Level: o.LogLevel})), TrustedProxies: o.TrustedProxies, ClientIPHeader: o.ClientIPHeader,
		MetricsToken: o.MetricsToken, SeparateMetrics: o.SeparateMetrics, AuthFetchLoopback: true,
		AuthFetchResolve: o.AuthResolve, AuthFetchRootCAs: o.AuthRootCAs, CertHeader: o.CertHeader, Clock: o.Clock, Mailer: o.Mailer,
		SessionIdleTimeout: o.SessionIdleTimeout, SessionAbsoluteTimeout: o.SessionAbsoluteTimeout, MaxLeases: o.MaxLeases, AuditLogRetentionDays: o.AuditLogRetentionDays})
	if o.WorkerBatch > 0 {
		srv.Worker.Batch, srv.Worker.BurstBatch = o.WorkerBatch, o.WorkerBatch
	}
	if o.WorkerClaim > 0 {
		srv.Worker.Claim = o.WorkerClaim
	}
	hs := httptest.NewUnstartedServer(srv)
	if lis != nil {
		hs.Listener.Close()
		hs.Listener = lis
	}
	if o.ClientCAs != nil {
		hs.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ClientCAs: o.ClientCAs, ClientAuth: tls.VerifyClientCertIfGiven}
		hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
		hs.StartTLS()
	} else {
		hs.Start()
	}
	wctx, stop := context.WithCancel(context.Background())
	done, evDone := make(chan struct{}), make(chan struct{})
	go func() {
		if !o.NoWorker {
			srv.Worker.Run(wctx)
		}
		close(done)
	}()
	go func() { srv.Events.Run(wctx); close(evDone) }()
	useDone := make(chan struct{})
	go func() { srv.TokenUse.Run(wctx); close(useDone) }()
	t.Cleanup(func() {
		srv.CloseStreams()
		stop()
		<-done
		<-evDone
		<-useDone
		hs.Close()
	})
	select {
	case <-srv.Events.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("event feed did not connect")
	}
	e := &Env{URL: hs.URL, DB: db, Keyring: kr, Server: hs, App: srv, opts: o.Share.opts, root: root}
	if o.Share.Token != "" {
		e.Token, e.OrgID, e.IdentityID = o.Share.Token, o.Share.OrgID, o.Share.IdentityID
		e.UserEmail, e.Password = o.Share.UserEmail, o.Share.Password
	}
	return e
}

// Bootstrapped starts a server and bootstraps it.
func Bootstrapped(t testing.TB, d store.Dialect, opts ...Options) *Env {
	t.Helper()
	e := Start(t, d, opts...)
	e.UserEmail, e.Password = "admin@example.com", "correct horse battery staple"
	res, err := e.Client("").Bootstrap(context.Background(), e.UserEmail, e.Password, "Acme")
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e.Token, e.OrgID, e.IdentityID = res.Identity.Credentials.Token, res.Organization.ID, res.Identity.ID
	return e
}

// DBURL is the PostgreSQL URL of the server's database ("" on SQLite).
func (e *Env) DBURL() string { return e.opts.URL }

// Client returns an API client using token.
func (e *Env) Client(token string) *client.Client {
	c := client.New(e.URL, token)
	if e.Server.TLS != nil {
		c.HTTP = e.Server.Client()
	}
	return c
}

// Response is a raw HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map (fails the test if it is not an object).
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response: %v\n%s", err, r.Body)
	}
}

// Do sends a raw request. body may be nil, a string/[]byte (sent as is) or a
// value (JSON-encoded). token may be empty.
func (e *Env) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := http.DefaultClient
	if e.Server.TLS != nil {
		cl = e.Server.Client()
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TLSClient is a client of a server started with ClientCAs that trusts its
// certificate and presents cert (always, whatever CAs the server names).
func (e *Env) TLSClient(cert tls.Certificate) *http.Client {
	cl := e.Server.Client()
	tr := cl.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return &http.Client{Transport: tr, Timeout: cl.Timeout}
}

// Must sends a request and fails the test unless the status is want.
func (e *Env) Must(t testing.TB, want int, method, path, token string, body any) Response {
	t.Helper()
	r := e.Do(t, method, path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, want, r.Body)
	}
	return r
}

// NewIdentity creates an identity with an organization role through the API
// (as the bootstrap admin), gives it Token Auth and returns its id and a token.
func (e *Env) NewIdentity(t testing.TB, name, orgRole string) (id, token string) {
	t.Helper()
	var created struct {
		Identity struct{ ID string } `json:"identity"`
	}
	e.Must(t, 200, "POST", "/api/v1/identities", e.Token, map[string]any{"name": name, "organizationId": e.OrgID, "role": orgRole}).Decode(t, &created)
	id = created.Identity.ID
	e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+id, e.Token, map[string]any{})
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	e.Must(t, 200, "POST", "/api/v1/auth/token-auth/identities/"+id+"/tokens", e.Token, map[string]any{"name": "test"}).Decode(t, &tok)
	return id, tok.AccessToken
}

// SeedFolder creates a project (as the bootstrap admin) whose dev root
// folder holds n secrets K000, K001, …; every fifth value refers to the next
// two keys, the read-path benchmarks' shape. It returns the project id.
func (e *Env) SeedFolder(t testing.TB, name string, n int) string {
	t.Helper()
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	e.Must(t, 200, "POST", "/api/v1/projects", e.Token, map[string]any{"projectName": name}).Decode(t, &p)
	batch := make([]map[string]any, n)
	for i := range batch {
		v := fmt.Sprintf("value-%03d", i)
		if i%5 == 0 {
			v = fmt.Sprintf("${K%03d}-${K%03d}", (i+1)%n, (i+2)%n)
		}
		batch[i] = map[string]any{"secretKey": fmt.Sprintf("K%03d", i), "secretValue": v}
	}
	e.Must(t, 200, "POST", "/api/v3/secrets/batch/raw", e.Token, map[string]any{"workspaceId": p.Project.ID,
		"environment": "dev", "secretPath": "/", "secrets": batch})
	return p.Project.ID
}
