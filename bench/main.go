// Command bench is lockbox's load generator: it starts a server (or targets
// one), prepares a scenario and reports throughput and latency percentiles.
//
//	go run ./bench -scenario login -secrets 1000 -c 16 -d 10s -db sqlite
//	go run ./bench -scenario mixed -c 64 -d 60s -rounds 2 -restart term -db postgres
//	go run ./bench -scenario secret-get -url http://127.0.0.1:8080 -token "$TOKEN"
//	go run ./bench -scenario ceiling -secrets 100 -c 16 -d 5s -expand=false -imports=false
//	go run ./bench -scenario kms-encrypt -c 16 -d 10s -db postgres
//	go run ./bench -scenario pki-issue -c 8 -d 10s -db sqlite
//	go run ./bench -scenario ssh-sign -ssh-ca RSA_2048 -c 16 -d 10s -db sqlite
//	go run ./bench -scenario dashboard -secrets 1000 -c 4 -d 10s -db postgres
//	go run ./bench -scenario flush -d 5s -dir /var/lib/lockbox   # what a durable commit costs on that disk
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/lockbox-dev/lockbox/internal/app"
	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

type result struct {
	Scenario    string  `json:"scenario"`
	Database    string  `json:"database"`
	Secrets     int     `json:"secrets"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	PerSecond   float64 `json:"perSecond"`
	P50ms       float64 `json:"p50ms"`
	P95ms       float64 `json:"p95ms"`
	P99ms       float64 `json:"p99ms"`
	// DroppedS (revoke-lag): seconds from the expiry until the last role
	// was gone from the target (after the revocations, in the background).
	DroppedS float64 `json:"droppedSeconds,omitempty"`
}

// flushResult is what one way of making 4 KiB durable costs.
type flushResult struct {
	Mode      string  `json:"mode"`
	Flushes   int     `json:"flushes"`
	PerSecond float64 `json:"perSecond"`
	P50us     float64 `json:"p50us"`
	P99us     float64 `json:"p99us"`
	CPUus     float64 `json:"cpuPerFlushUs"` // the machine's: every process and the kernel
}

// The bootstrap user of a server the bench starts or sets up.
const (
	benchEmail    = "bench@example.com"
	benchPassword = "bench-password"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	scenario := flag.String("scenario", "login", "login, jwt-login, secrets-list, secret-get, ceiling, secret-create, kms-encrypt, kms-decrypt, kms-sign, kms-verify, pki-issue, ssh-sign, dashboard, mixed, lease-create, revoke-lag, delete-leases, startup or flush")
	sshCA := flag.String("ssh-ca", "ED25519", "ssh-sign: the CA's key algorithm (ED25519, EC_prime256v1, EC_secp384r1, RSA_2048, RSA_4096)")
	kmsRSA := flag.Bool("rsa", false, "kms-sign, kms-verify: an RSA_4096 key (RSASSA_PSS_SHA_256) instead of ECC_NIST_P256 (ECDSA_SHA_256)")
	leases := flag.Int("leases", 10000, "lease rows (revoke-lag, startup)")
	history := flag.Int("history", 0, "revoke-lag: revoked leases of the first dynamic secret kept beside the due ones, as a long-lived secret has")
	parallel := flag.Int("parallel", 0, "revoke-lag: dynamic secrets the worker revokes at once (0: its default)")
	batch := flag.Int("batch", 0, "revoke-lag: leases per claim (0: the worker's default)")
	burst := flag.Int("burst", 0, "revoke-lag: leases per claim while a dynamic secret's backlog lasts (0: the worker's default; -burst equal to -batch: no bursts)")
	grant := flag.String("grant", "connect", "revoke-lag: connect (each role is granted CONNECT on its database, as the default creation statement does) or group (roles are members of one role per database that holds CONNECT)")
	targets := flag.Int("targets", 1, "revoke-lag: dynamic secrets the leases are spread over, each on its own database of the local PostgreSQL")
	secrets := flag.Int("secrets", 1, "client secrets on the identity (login), secrets in the folder (secrets-list, secret-get, ceiling) or in each of the three environments (dashboard)")
	expand := flag.Bool("expand", true, "secrets-list, secret-get, ceiling: ask for secret references expanded")
	imports := flag.Bool("imports", true, "secrets-list, secret-get, ceiling: ask for imported secrets included")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration of the measured run")
	db := flag.String("db", "sqlite", "sqlite or postgres (own server only)")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	target := flag.String("url", "", "target this server instead of starting one (login, secrets-list, secret-get, ceiling, secret-create, mixed)")
	token := flag.String("token", "", "admin token for -url (default: bootstrap the server)")
	flushDir := flag.String("dir", os.TempDir(), "flush: a directory on the disk to measure (that of the data dir)")
	rounds := flag.Int("rounds", 1, "mixed: rounds of -d each; server goroutines and memory are read after each")
	restart := flag.String("restart", "", "mixed: restart the server half-way through round 1 with SIGTERM (term) or SIGKILL (kill)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the measured run to this file (login, secrets-list, secret-get, ceiling, secret-create: "+
		"client and in-process server together)")
	flag.Parse()
	if *restart != "" && *restart != "term" && *restart != "kill" {
		return errors.New("-restart is term or kill")
	}
	if *dur > 10*time.Minute || *conc < 1 || *conc > 1024 {
		return errors.New("-d at most 10m, -c between 1 and 1024")
	}
	switch *scenario {
	case "lease-create":
		res, err := runLeaseCreate(*conc, *dur, *db)
		if err != nil {
			return err
		}
		return report(res, *asJSON)
	case "revoke-lag", "delete-leases":
		res, err := runRevokeLag(*leases, *history, *targets, *parallel, *batch, *burst, *grant, *db, *scenario == "delete-leases")
		if err != nil {
			return err
		}
		if *asJSON {
			return report([]result{res}, true)
		}
		fmt.Printf("%-12s %-8s %7s %7s %9s %9s %9s %9s %9s %10s\n", "scenario", "db", "targets", "leases", "revoked/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "dropped ms")
		fmt.Printf("%-12s %-8s %7d %7d %9.0f %9.1f %9.1f %9.1f %9.1f %10.1f\n", res.Scenario, res.Database, res.Secrets, res.Requests,
			res.PerSecond, res.P50ms, res.P95ms, res.P99ms, res.Seconds*1000, res.DroppedS*1000)
		return nil
	case "flush":
		rs, err := runFlush(*flushDir, *dur)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(os.Stdout).Encode(rs)
		}
		fmt.Printf("%-10s %8s %10s %9s %9s %12s\n", "flush", "flushes", "flushes/s", "p50 µs", "p99 µs", "cpu µs/flush")
		for _, r := range rs {
			fmt.Printf("%-10s %8d %10.0f %9.0f %9.0f %12.0f\n", r.Mode, r.Flushes, r.PerSecond, r.P50us, r.P99us, r.CPUus)
		}
		return nil
	case "startup":
		res, err := runStartup(*leases, *db)
		if err != nil {
			return err
		}
		return report([]result{res}, *asJSON)
	case "mixed":
		if *rounds < 1 || *rounds > 10 {
			return errors.New("-rounds from 1 to 10")
		}
		rs, err := runMixed(*db, *target, *token, *conc, *dur, *rounds, *restart)
		if err != nil {
			return err
		}
		return reportMixed(rs, *asJSON)
	}
	url := *target
	stop := func() {}
	defer func() { stop() }() // the ceiling stops lockbox early
	if url == "" {
		var err error
		_, url, stop, err = start(store.Dialect(*db), true)
		if err != nil {
			return err
		}
	} else {
		*db = "url"
	}
	ctx := context.Background()
	c := client.New(url, *token)
	if *token == "" {
		boot, err := c.Bootstrap(ctx, benchEmail, benchPassword, "Bench")
		if err != nil {
			return fmt.Errorf("bootstrap (give -token for a server already set up): %w", err)
		}
		c.Token = boot.Identity.Credentials.Token
	}
	var op func(*http.Client) error
	var err error
	switch *scenario {
	case "login":
		op, err = prepareLogin(ctx, c, url, *secrets)
	case "jwt-login":
		op, err = prepareJWTLogin(ctx, c, url)
	case "secret-create":
		op, err = prepareSecretCreate(ctx, c, url)
	case "kms-encrypt", "kms-decrypt", "kms-sign", "kms-verify":
		op, err = prepareKMS(ctx, c, url, *scenario, *kmsRSA)
	case "pki-issue":
		op, err = preparePKIIssue(ctx, c, url)
	case "ssh-sign":
		op, err = prepareSSHSign(ctx, c, url, *sshCA)
	case "dashboard":
		if *token != "" {
			return errors.New("dashboard logs in as the bootstrap user: run it on its own server (no -url/-token)")
		}
		op, err = prepareDashboard(ctx, c, url, benchEmail, benchPassword, *secrets)
	case "secrets-list", "secret-get", "ceiling":
		get := ""
		if *scenario == "secret-get" {
			get = "KEY_4"
		}
		var rq listRequest
		rq, err = prepareSecretsList(ctx, c, url, *secrets, listQuery{get: get, expand: *expand, imports: *imports})
		if err != nil {
			break
		}
		op = rq.op
		if *scenario == "ceiling" {
			var stopCeiling func()
			op, stopCeiling, err = prepareCeiling(rq)
			if err != nil {
				break
			}
			defer stopCeiling()
			stop() // lockbox's part is done: the measured run is the ceiling's alone
			stop = func() {}
		}
	default:
		err = fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		return err
	}
	res := drive(op, *conc, *dur)
	res.Scenario, res.Database, res.Secrets = *scenario, *db, *secrets
	if *kmsRSA && (*scenario == "kms-sign" || *scenario == "kms-verify") {
		res.Scenario += " -rsa"
	}
	if *scenario == "ssh-sign" {
		res.Scenario += " " + *sshCA
	}
	if *scenario == "secrets-list" || *scenario == "secret-get" || *scenario == "ceiling" {
		if !*expand {
			res.Scenario += " -expand=false"
		}
		if !*imports {
			res.Scenario += " -imports=false"
		}
	}
	return report([]result{res}, *asJSON)
}

func report(rs []result, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(rs)
	}
	fmt.Printf("%-42s %-8s %8s %4s %9s %7s %10s %9s %9s %9s\n", "scenario", "db", "secrets", "c", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")
	for _, r := range rs {
		fmt.Printf("%-42s %-8s %8d %4d %9d %7d %10.0f %9.2f %9.2f %9.2f\n", r.Scenario, r.Database, r.Secrets, r.Concurrency,
			r.Requests, r.Errors, r.PerSecond, r.P50ms, r.P95ms, r.P99ms)
	}
	return nil
}

// benchApp is a lockbox node running in this process.
type benchApp struct {
	app *app.App
	db  *store.DB
	raw *sql.DB // direct access for seeding, on the same database
}

// start runs lockbox in this process on a loopback port, on a fresh database;
// with worker, the lease worker runs too.
func start(d store.Dialect, worker bool) (*benchApp, string, func(), error) {
	opts := store.Options{MaxConns: 20}
	var cleanup []func()
	driver, dsn := "", ""
	switch d {
	case store.SQLite:
		dir, err := os.MkdirTemp("", "lockbox-bench-")
		if err != nil {
			return nil, "", nil, err
		}
		opts.Dir = dir
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	case store.Postgres:
		u, drop, err := storetest.CreateDatabase(context.Background(), storetest.PGAdminURL())
		if err != nil {
			return nil, "", nil, err
		}
		opts.URL = u
		driver, dsn = "pgx", u
		cleanup = append(cleanup, func() { drop() })
	default:
		return nil, "", nil, fmt.Errorf("unknown database %q", d)
	}
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		return nil, "", nil, err
	}
	if d == store.SQLite {
		driver, dsn = "sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(10000)"
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, "", nil, err
	}
	root := make([]byte, keyring.KeySize)
	rand.Read(root)
	kr, _ := keyring.New(root, db)
	a := app.New(db, kr, app.Options{Version: "bench", AuthRateLimit: 1 << 30, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	hs := &http.Server{Handler: a}
	go hs.Serve(ln)
	wctx, stopWorker := context.WithCancel(context.Background())
	if worker {
		go a.Worker.Run(wctx)
	}
	return &benchApp{app: a, db: db, raw: raw}, "http://" + ln.Addr().String(), func() {
		stopWorker()
		hs.Close()
		raw.Close()
		db.Close()
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}, nil
}

// rebind turns ? placeholders into $n on PostgreSQL.
func rebind(db *store.DB, q string) string {
	if db.Dialect() != store.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func auditEvent() audit.Event {
	return audit.Event{OrgID: "bench", ActorType: "platform", ActorID: "bench", Type: "bench-seed"}
}

// loginIdentity makes a no-access machine identity with Universal Auth
// (lockout off) and n client secrets; it returns the client ID and the last secret.
func loginIdentity(ctx context.Context, c *client.Client, name string, n int) (clientID, secret string, err error) {
	org, err := c.IdentityOrgID(ctx)
	if err != nil {
		return "", "", err
	}
	var id struct {
		Identity struct{ ID string } `json:"identity"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/identities", map[string]any{"name": name, "organizationId": org, "role": "no-access"}, &id); err != nil {
		return "", "", err
	}
	var ua struct {
		IdentityUniversalAuth struct{ ClientID string } `json:"identityUniversalAuth"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/auth/universal-auth/identities/"+id.Identity.ID, map[string]any{"lockoutEnabled": false}, &ua); err != nil {
		return "", "", err
	}
	for range n {
		var cs struct{ ClientSecret string }
		if err := c.Do(ctx, "POST", "/api/v1/auth/universal-auth/identities/"+id.Identity.ID+"/client-secrets", map[string]any{}, &cs); err != nil {
			return "", "", err
		}
		secret = cs.ClientSecret
	}
	return ua.IdentityUniversalAuth.ClientID, secret, nil
}

func prepareLogin(ctx context.Context, c *client.Client, url string, n int) (func(*http.Client) error, error) {
	clientID, secret, err := loginIdentity(ctx, c, "bench-login", n)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"clientId": clientID, "clientSecret": secret})
	return func(hc *http.Client) error {
		return send(hc, "POST", url+"/api/v1/auth/universal-auth/login", "", string(body))
	}, nil
}

// send makes one request (a JSON body unless empty, a bearer token unless
// empty) and fails unless it answers 200.
func send(hc *http.Client, method, url, token, body string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// listQuery is what the secrets-list, secret-get and ceiling scenarios ask:
// one secret by name (get) or the whole folder, with references expanded
// and imports included or not.
type listQuery struct {
	get             string
	expand, imports bool
}

// listRequest is the read those scenarios repeat.
type listRequest struct{ url, token string }

func (rq listRequest) op(hc *http.Client) error { return send(hc, "GET", rq.url, rq.token, "") }

// prepareSecretsList makes a project whose dev root holds n secrets, a fifth of
// them with two references each, and one import of staging (10 secrets); the
// request lists dev (or reads q.get from it) as q asks.
func prepareSecretsList(ctx context.Context, c *client.Client, url string, n int, q listQuery) (listRequest, error) {
	if q.get != "" && n < 5 {
		n = 5 // KEY_4 is the first secret with references
	}
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench"}, &p); err != nil {
		return listRequest{}, err
	}
	id := p.Project.ID
	batch := func(env string, items []map[string]any) error {
		return c.Do(ctx, "POST", "/api/v3/secrets/batch/raw", map[string]any{"workspaceId": id, "environment": env, "secretPath": "/", "secrets": items}, nil)
	}
	var dev, staging []map[string]any
	for i := range n {
		v := fmt.Sprintf("value-%d-%s", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
		if i%5 == 4 {
			v = fmt.Sprintf("postgres://${KEY_%d}:${staging.IMPORTED_%d}@db/%d", i-1, i%10, i)
		}
		dev = append(dev, map[string]any{"secretKey": fmt.Sprintf("KEY_%d", i), "secretValue": v})
	}
	for i := range 10 {
		staging = append(staging, map[string]any{"secretKey": fmt.Sprintf("IMPORTED_%d", i), "secretValue": fmt.Sprintf("imp-%d", i)})
	}
	if err := batch("dev", dev); err != nil {
		return listRequest{}, err
	}
	if err := batch("staging", staging); err != nil {
		return listRequest{}, err
	}
	if err := c.Do(ctx, "POST", "/api/v1/secret-imports", map[string]any{"workspaceId": id, "environment": "dev", "path": "/",
		"import": map[string]any{"environment": "staging", "path": "/"}}, nil); err != nil {
		return listRequest{}, err
	}
	path := "/api/v3/secrets/raw"
	if q.get != "" {
		path += "/" + q.get
	}
	target := fmt.Sprintf("%s%s?workspaceId=%s&environment=dev&secretPath=/&expandSecretReferences=%t&include_imports=%t",
		url, path, id, q.expand, q.imports)
	return listRequest{url: target, token: c.Token}, nil
}

// prepareCeiling fetches rq's answer from lockbox once and serves it from
// memory on a loopback port through the same HTTP stack (net/http), with
// lockbox's headers; the operation asks it what rq asks lockbox (same path,
// query and token), so client and server do the same HTTP work with none of
// lockbox's.
func prepareCeiling(rq listRequest) (op func(*http.Client) error, stop func(), err error) {
	req, err := http.NewRequest("GET", rq.url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+rq.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		return nil, nil, fmt.Errorf("ceiling: lockbox answered %d", resp.StatusCode)
	}
	header := resp.Header.Clone()
	header.Del("Date")
	header.Del("Content-Length")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Write(body)
	})}
	go hs.Serve(ln)
	u := req.URL
	u.Host = ln.Addr().String()
	ceiling := listRequest{url: u.String(), token: rq.token}
	return ceiling.op, func() { hs.Close() }, nil
}

// prepareSecretCreate makes an empty project; the operation creates a new
// secret in its dev root, each under a key of its own.
func prepareSecretCreate(ctx context.Context, c *client.Client, url string) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench-writes"}, &p); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"workspaceId": p.Project.ID, "environment": "dev", "secretPath": "/",
		"secretValue": "value-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
	token := c.Token
	var n atomic.Int64
	return func(hc *http.Client) error {
		return send(hc, "POST", fmt.Sprintf("%s/api/v3/secrets/raw/NEW_%d", url, n.Add(1)), token, string(body))
	}, nil
}

// cpuProfile is -cpuprofile: where drive writes a CPU profile of its measured run.
var cpuProfile string

// drive runs op from conc goroutines for d after a one-second warm-up.
func drive(op func(*http.Client) error, conc int, d time.Duration) result {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	warm := time.Now().Add(time.Second)
	for time.Now().Before(warm) {
		op(hc)
	}
	if cpuProfile != "" {
		if f, err := os.Create(cpuProfile); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
			f.Close()
		} else {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	var mu sync.Mutex
	var lat []time.Duration
	errCount := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(hc); err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errCount += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return summarize(lat, conc, time.Since(start), errCount)
}

// summarize turns latencies into a result: throughput and p50/p95/p99 in ms.
func summarize(lat []time.Duration, conc int, el time.Duration, errCount int) result {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
	return result{Concurrency: conc, Seconds: el.Seconds(), Requests: len(lat), Errors: errCount,
		PerSecond: float64(len(lat)) / el.Seconds(), P50ms: pct(.50), P95ms: pct(.95), P99ms: pct(.99)}
}
