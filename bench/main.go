// Command bench is lockbox's load generator: it starts a server (or targets
// one), prepares a scenario and reports throughput and latency percentiles.
//
//	go run ./bench -scenario login -secrets 1000 -c 16 -d 10s -db sqlite
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/app"
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
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	scenario := flag.String("scenario", "login", "login or secrets-list")
	secrets := flag.Int("secrets", 1, "client secrets on the identity (login) or secrets in the folder (secrets-list)")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration of the measured run")
	db := flag.String("db", "sqlite", "sqlite or postgres (own server only)")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	flag.Parse()
	if *dur > 10*time.Minute || *conc < 1 || *conc > 1024 {
		return errors.New("-d at most 10m, -c between 1 and 1024")
	}
	url, stop, err := startServer(store.Dialect(*db))
	if err != nil {
		return err
	}
	defer stop()
	ctx := context.Background()
	c := client.New(url, "")
	boot, err := c.Bootstrap(ctx, "bench@example.com", "bench-password", "Bench")
	if err != nil {
		return err
	}
	c.Token = boot.Identity.Credentials.Token
	var op func(*http.Client) error
	switch *scenario {
	case "login":
		op, err = prepareLogin(ctx, c, url, boot.Identity.ID, *secrets)
	case "secrets-list":
		op, err = prepareSecretsList(ctx, c, url, *secrets)
	default:
		return fmt.Errorf("unknown scenario %q", *scenario)
	}
	if err != nil {
		return err
	}
	res := drive(op, *conc, *dur)
	res.Scenario, res.Database, res.Secrets = *scenario, *db, *secrets
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%-8s %-8s %8s %4s %9s %7s %10s %8s %8s %8s\n", "scenario", "db", "secrets", "c", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")
	fmt.Printf("%-8s %-8s %8d %4d %9d %7d %10.0f %8.2f %8.2f %8.2f\n", res.Scenario, res.Database, res.Secrets, res.Concurrency,
		res.Requests, res.Errors, res.PerSecond, res.P50ms, res.P95ms, res.P99ms)
	return nil
}

// startServer runs lockbox in this process on a loopback port, on a fresh database.
func startServer(d store.Dialect) (string, func(), error) {
	opts := store.Options{MaxConns: 20}
	var cleanup []func()
	switch d {
	case store.SQLite:
		dir, err := os.MkdirTemp("", "lockbox-bench-")
		if err != nil {
			return "", nil, err
		}
		opts.Dir = dir
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	case store.Postgres:
		u, drop, err := storetest.CreateDatabase(context.Background(), storetest.PGAdminURL())
		if err != nil {
			return "", nil, err
		}
		opts.URL = u
		cleanup = append(cleanup, func() { drop() })
	default:
		return "", nil, fmt.Errorf("unknown database %q", d)
	}
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		return "", nil, err
	}
	root := make([]byte, keyring.KeySize)
	rand.Read(root)
	kr, _ := keyring.New(root, db)
	srv := app.New(db, kr, app.Options{Version: "bench", AuthRateLimit: 1 << 30, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	wctx, stopWorker := context.WithCancel(context.Background())
	go srv.Worker.Run(wctx)
	return "http://" + ln.Addr().String(), func() {
		stopWorker()
		hs.Close()
		db.Close()
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}, nil
}

func prepareLogin(ctx context.Context, c *client.Client, url, identityID string, n int) (func(*http.Client) error, error) {
	var ua struct {
		IdentityUniversalAuth struct{ ClientID string } `json:"identityUniversalAuth"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/auth/universal-auth/identities/"+identityID, map[string]any{"lockoutEnabled": false}, &ua); err != nil {
		return nil, err
	}
	var secret string
	for range n {
		var cs struct{ ClientSecret string }
		if err := c.Do(ctx, "POST", "/api/v1/auth/universal-auth/identities/"+identityID+"/client-secrets", map[string]any{}, &cs); err != nil {
			return nil, err
		}
		secret = cs.ClientSecret
	}
	body, _ := json.Marshal(map[string]string{"clientId": ua.IdentityUniversalAuth.ClientID, "clientSecret": secret})
	return func(hc *http.Client) error {
		resp, err := hc.Post(url+"/api/v1/auth/universal-auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}, nil
}

// prepareSecretsList makes a project whose dev root holds n secrets, a fifth of
// them with two references each, and one import of staging (10 secrets); the
// operation lists dev with references expanded and imports included.
func prepareSecretsList(ctx context.Context, c *client.Client, url string, n int) (func(*http.Client) error, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "bench"}, &p); err != nil {
		return nil, err
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
		return nil, err
	}
	if err := batch("staging", staging); err != nil {
		return nil, err
	}
	if err := c.Do(ctx, "POST", "/api/v1/secret-imports", map[string]any{"workspaceId": id, "environment": "dev", "path": "/",
		"import": map[string]any{"environment": "staging", "path": "/"}}, nil); err != nil {
		return nil, err
	}
	target := url + "/api/v3/secrets/raw?workspaceId=" + id + "&environment=dev&secretPath=/&expandSecretReferences=true&include_imports=true"
	token := c.Token
	return func(hc *http.Client) error {
		req, _ := http.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+token)
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
	}, nil
}

// drive runs op from conc goroutines for d after a one-second warm-up.
func drive(op func(*http.Client) error, conc int, d time.Duration) result {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	warm := time.Now().Add(time.Second)
	for time.Now().Before(warm) {
		op(hc)
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
	el := time.Since(start)
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
