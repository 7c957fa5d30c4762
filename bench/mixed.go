package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

// serverProc is a real `lockbox server` process, so a restart is a real one.
type serverProc struct {
	bin, addr string
	env       []string
	cmd       *exec.Cmd
	cleanup   []func()
}

// moduleRoot finds the repository root from the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run bench from inside the lockbox repository")
	}
	return filepath.Dir(gomod), nil
}

// newServerProc builds cmd/lockbox and prepares a fresh database for it.
func newServerProc(d store.Dialect) (*serverProc, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockbox-bench-proc-")
	if err != nil {
		return nil, err
	}
	s := &serverProc{bin: filepath.Join(dir, "lockbox"), cleanup: []func(){func() { os.RemoveAll(dir) }}}
	build := exec.Command("go", "build", "-o", s.bin, "./cmd/lockbox")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		s.close()
		return nil, fmt.Errorf("build lockbox: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	s.addr = ln.Addr().String()
	ln.Close()
	key := make([]byte, 32)
	rand.Read(key)
	s.env = append(os.Environ(), "LOCKBOX_LISTEN="+s.addr, "LOCKBOX_DATA_DIR="+filepath.Join(dir, "data"),
		"LOCKBOX_ROOT_KEY="+base64.StdEncoding.EncodeToString(key), "LOCKBOX_AUTH_RATE_LIMIT=100000000", "LOCKBOX_LOG_LEVEL=error")
	if d == store.Postgres {
		u, drop, err := storetest.CreateDatabase(context.Background(), storetest.PGAdminURL())
		if err != nil {
			s.close()
			return nil, err
		}
		s.env = append(s.env, "LOCKBOX_DATABASE_URL="+u)
		s.cleanup = append(s.cleanup, func() { drop() })
	}
	return s, nil
}

func (s *serverProc) url() string { return "http://" + s.addr }

// start runs the server and waits until /api/status answers.
func (s *serverProc) start() error {
	s.cmd = exec.Command(s.bin, "server")
	s.cmd.Env = s.env
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url() + "/api/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("server did not start")
}

func (s *serverProc) stop(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	s.cmd.Wait()
	s.cmd = nil
}

func (s *serverProc) close() {
	s.stop(syscall.SIGKILL)
	for _, f := range slices.Backward(s.cleanup) {
		f()
	}
}

// serverMetrics reads a few gauges of the Go runtime from /metrics.
func serverMetrics(u string) (goroutines, heapMB, rssMB float64, err error) {
	resp, err := http.Get(u + "/metrics")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_goroutines":
			goroutines = f
		case "go_memstats_heap_inuse_bytes":
			heapMB = f / (1 << 20)
		case "process_resident_memory_bytes":
			rssMB = f / (1 << 20)
		}
	}
	return goroutines, heapMB, rssMB, sc.Err()
}

// mixedSetup is what the mixed scenario works on.
type mixedSetup struct {
	url, token, project string
	clientID, secret    string
	keys                int
}

func prepareMixed(ctx context.Context, c *client.Client, url string, keys int) (mixedSetup, error) {
	var p struct {
		Project struct{ ID string } `json:"project"`
	}
	if err := c.Do(ctx, "POST", "/api/v1/projects", map[string]any{"projectName": "mixed"}, &p); err != nil {
		return mixedSetup{}, err
	}
	items := make([]map[string]any, keys)
	for i := range items {
		items[i] = map[string]any{"secretKey": fmt.Sprintf("KEY_%d", i), "secretValue": fmt.Sprintf("value-%d", i)}
	}
	if err := c.Do(ctx, "POST", "/api/v3/secrets/batch/raw", map[string]any{"workspaceId": p.Project.ID, "environment": "dev",
		"secretPath": "/", "secrets": items}, nil); err != nil {
		return mixedSetup{}, err
	}
	if err := c.Do(ctx, "POST", "/api/v1/folders", map[string]any{"workspaceId": p.Project.ID, "environment": "dev", "path": "/", "name": "w"}, nil); err != nil {
		return mixedSetup{}, err
	}
	clientID, secret, err := loginIdentity(ctx, c, "mixed-login", 1)
	if err != nil {
		return mixedSetup{}, err
	}
	return mixedSetup{url: url, token: c.Token, project: p.Project.ID, clientID: clientID, secret: secret, keys: keys}, nil
}

// mixedRound is the outcome of one round of the mixed scenario.
type mixedRound struct {
	result
	Reads, Writes, Logins int
	Errors5xx             int            // 5xx answers outside the restart window
	ErrorsOther           int            // failed requests outside the restart window (connection errors, unexpected 4xx)
	RestartWindowErrors   int            // anything failing while the server restarted
	RestartSeconds        float64        // from the stop signal to the first answer of the new process
	OtherKinds            map[string]int // what the errors outside the window were
	acked                 map[string]string
	began                 time.Time
	// readsAcked holds the User-Agent, unique per request, of every read
	// answered 200, and whether it was answered before the restart began.
	readsAcked map[string]bool
}

func randN(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64()
}

// runMixedRound drives 90% reads (half single-secret gets, half 100-secret
// lists, each with a User-Agent of its own and remembered when answered), 9%
// writes (each a new secret in /w, remembered when acknowledged) and 1% logins
// from conc clients for d. restart, if set, is called at d/2 and returns when
// the new server answers.
func runMixedRound(ms mixedSetup, round, conc int, d time.Duration, restart func()) mixedRound {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	q := url.Values{"workspaceId": {ms.project}, "environment": {"dev"}, "secretPath": {"/"}, "expandSecretReferences": {"true"}}.Encode()
	loginBody, _ := json.Marshal(map[string]string{"clientId": ms.clientID, "clientSecret": ms.secret})
	var windowMu sync.RWMutex
	var winStart, winEnd time.Time // zero: no restart yet
	inWindow := func(t0, t1 time.Time) bool {
		windowMu.RLock()
		defer windowMu.RUnlock()
		if winStart.IsZero() {
			return false
		}
		end := winEnd
		if end.IsZero() {
			return !t1.Before(winStart)
		}
		return !t1.Before(winStart) && t0.Before(end.Add(time.Second))
	}
	var mu sync.Mutex
	beforeWindow := func(t time.Time) bool {
		windowMu.RLock()
		defer windowMu.RUnlock()
		return winStart.IsZero() || t.Before(winStart)
	}
	out := mixedRound{acked: map[string]string{}, OtherKinds: map[string]int{}, readsAcked: map[string]bool{}, began: time.Now()}
	var lat []time.Duration
	deadline := time.Now().Add(d)
	begin := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			var r mixedRound
			acked := map[string]string{}
			readsAcked := map[string]bool{}
			kinds := map[string]int{}
			for n := 0; time.Now().Before(deadline); n++ {
				var req *http.Request
				kind := randN(100)
				key, val, ua := "", "", ""
				authed := true // everything but the login carries the admin token
				switch {
				case kind < 45:
					req, _ = http.NewRequest("GET", ms.url+"/api/v3/secrets/raw/KEY_"+strconv.FormatInt(randN(int64(ms.keys)), 10)+"?"+q, nil)
					ua = fmt.Sprintf("lockbox-mixed/%d-%d-%d", round, w, n)
					r.Reads++
				case kind < 90:
					req, _ = http.NewRequest("GET", ms.url+"/api/v3/secrets/raw?"+q, nil)
					ua = fmt.Sprintf("lockbox-mixed/%d-%d-%d", round, w, n)
					r.Reads++
				case kind < 99:
					key, val = fmt.Sprintf("W%d_%d_%d", round, w, n), fmt.Sprintf("v-%d-%d-%d", w, n, randN(1<<40))
					b, _ := json.Marshal(map[string]any{"workspaceId": ms.project, "environment": "dev", "secretPath": "/w", "secretValue": val})
					req, _ = http.NewRequest("POST", ms.url+"/api/v3/secrets/raw/"+key, strings.NewReader(string(b)))
					req.Header.Set("Content-Type", "application/json")
					r.Writes++
				default:
					req, _ = http.NewRequest("POST", ms.url+"/api/v1/auth/universal-auth/login", strings.NewReader(string(loginBody)))
					req.Header.Set("Content-Type", "application/json")
					r.Logins++
					authed = false
				}
				if authed {
					req.Header.Set("Authorization", "Bearer "+ms.token)
				}
				if ua != "" {
					req.Header.Set("User-Agent", ua)
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				status := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				t1 := time.Now()
				switch {
				case status == 200:
					mine = append(mine, t1.Sub(t0))
					if key != "" {
						acked[key] = val
					}
					if ua != "" {
						readsAcked[ua] = beforeWindow(t1)
					}
				case inWindow(t0, t1):
					r.RestartWindowErrors++
				case status >= 500:
					r.Errors5xx++
					kinds[fmt.Sprintf("%s %d", req.Method, status)]++
				default:
					r.ErrorsOther++
					if err != nil {
						kinds["transport: "+err.Error()]++
					} else {
						kinds[fmt.Sprintf("%s %d", req.Method, status)]++
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			out.Reads += r.Reads
			out.Writes += r.Writes
			out.Logins += r.Logins
			out.Errors5xx += r.Errors5xx
			out.ErrorsOther += r.ErrorsOther
			out.RestartWindowErrors += r.RestartWindowErrors
			for k, v := range acked {
				out.acked[k] = v
			}
			for k, v := range readsAcked {
				out.readsAcked[k] = v
			}
			for k, v := range kinds {
				out.OtherKinds[k] += v
			}
			mu.Unlock()
		})
	}
	if restart != nil {
		time.Sleep(d / 2)
		windowMu.Lock()
		winStart = time.Now()
		windowMu.Unlock()
		restart()
		windowMu.Lock()
		winEnd = time.Now()
		out.RestartSeconds = winEnd.Sub(winStart).Seconds()
		windowMu.Unlock()
	}
	wg.Wait()
	out.result = summarize(lat, conc, time.Since(begin), out.Errors5xx+out.ErrorsOther+out.RestartWindowErrors)
	return out
}

// lostWrites lists acknowledged writes that are not readable with their value.
func lostWrites(ctx context.Context, c *client.Client, project string, acked map[string]string) (int, error) {
	var out struct {
		Secrets []struct{ SecretKey, SecretValue string } `json:"secrets"`
	}
	if err := c.Do(ctx, "GET", "/api/v3/secrets/raw?workspaceId="+project+"&environment=dev&secretPath=/w", nil, &out); err != nil {
		return 0, err
	}
	have := make(map[string]string, len(out.Secrets))
	for _, s := range out.Secrets {
		have[s.SecretKey] = s.SecretValue
	}
	lost := 0
	for k, v := range acked {
		if got, ok := have[k]; !ok || got != v {
			lost++
		}
	}
	return lost, nil
}

// unauditedReads counts the answered reads (by their User-Agents) that have
// no get-secret or get-secrets event in the project's audit log.
func unauditedReads(ctx context.Context, c *client.Client, project string, since time.Time, answered map[string]bool) (int, error) {
	seen := make(map[string]bool, len(answered))
	q := url.Values{"projectId": {project}, "eventType": {"get-secret,get-secrets"}, "limit": {"1000"},
		"startDate": {since.Add(-time.Minute).UTC().Format(time.RFC3339Nano)}}
	for offset := 0; ; offset += 1000 {
		q.Set("offset", strconv.Itoa(offset))
		var page struct {
			AuditLogs []struct{ UserAgent string } `json:"auditLogs"`
		}
		if err := c.Do(ctx, "GET", "/api/v1/organization/audit-logs?"+q.Encode(), nil, &page); err != nil {
			return 0, fmt.Errorf("read the audit log: %w", err)
		}
		for _, l := range page.AuditLogs {
			seen[l.UserAgent] = true
		}
		if len(page.AuditLogs) < 1000 {
			break
		}
	}
	missing := 0
	for ua := range answered {
		if !seen[ua] {
			missing++
		}
	}
	return missing, nil
}

// mixedReport is what -scenario mixed prints.
type mixedReport struct {
	Scenario            string         `json:"scenario"`
	Database            string         `json:"database"`
	Round               int            `json:"round"`
	Restarted           string         `json:"restarted"`
	Concurrency         int            `json:"concurrency"`
	Seconds             float64        `json:"seconds"`
	OK                  int            `json:"ok"`
	PerSecond           float64        `json:"perSecond"`
	P50ms               float64        `json:"p50ms"`
	P95ms               float64        `json:"p95ms"`
	P99ms               float64        `json:"p99ms"`
	Reads               int            `json:"reads"`
	Writes              int            `json:"writes"`
	Logins              int            `json:"logins"`
	Errors5xx           int            `json:"errors5xx"`
	ErrorsOther         int            `json:"errorsOther"`
	RestartWindowErrors int            `json:"restartWindowErrors"`
	RestartSeconds      float64        `json:"restartSeconds"`
	AckedWrites         int            `json:"ackedWrites"`
	LostWrites          int            `json:"lostWrites"`
	AckedReads          int            `json:"ackedReads"`         // reads answered 200 in the round
	ReadsBeforeRestart  int            `json:"readsBeforeRestart"` // of those, answered before the restart began
	UnauditedReads      int            `json:"unauditedReads"`     // answered reads without their audit event
	ErrorKinds          map[string]int `json:"errorKinds,omitempty"`
	Goroutines          float64        `json:"goroutinesAfter"`
	HeapInuseMB         float64        `json:"heapInuseMBAfter"`
	RSSMB               float64        `json:"rssMBAfter"`
}

// runMixed runs rounds of the mixed scenario against its own server process
// (restarted half-way through the first round when restartSig is set) or
// against targetURL.
func runMixed(db, targetURL, token string, conc int, d time.Duration, rounds int, restartSig string) ([]mixedReport, error) {
	ctx := context.Background()
	u := targetURL
	var proc *serverProc
	if u == "" {
		var err error
		if proc, err = newServerProc(store.Dialect(db)); err != nil {
			return nil, err
		}
		defer proc.close()
		if err := proc.start(); err != nil {
			return nil, err
		}
		u = proc.url()
	} else if restartSig != "" {
		return nil, errors.New("-restart needs the bench's own server (no -url)")
	}
	c := client.New(u, token)
	if token == "" {
		boot, err := c.Bootstrap(ctx, benchEmail, benchPassword, "Bench")
		if err != nil {
			return nil, fmt.Errorf("bootstrap (give -token for a server already set up): %w", err)
		}
		c.Token = boot.Identity.Credentials.Token
	}
	ms, err := prepareMixed(ctx, c, u, 100)
	if err != nil {
		return nil, err
	}
	var reports []mixedReport
	acked := map[string]string{}
	for round := 1; round <= rounds; round++ {
		var restart func()
		restarted := "no"
		if round == 1 && restartSig != "" {
			sig := syscall.SIGTERM
			if restartSig == "kill" {
				sig = syscall.SIGKILL
			}
			restarted = restartSig
			restart = func() {
				proc.stop(sig)
				if err := proc.start(); err != nil {
					fmt.Fprintln(os.Stderr, "bench: restart failed:", err)
				}
			}
		}
		r := runMixedRound(ms, round, conc, d, restart)
		for k, v := range r.acked {
			acked[k] = v
		}
		lost, err := lostWrites(ctx, c, ms.project, acked)
		if err != nil {
			return nil, err
		}
		unaudited, err := unauditedReads(ctx, c, ms.project, r.began, r.readsAcked)
		if err != nil {
			return nil, err
		}
		beforeRestart := 0
		for _, before := range r.readsAcked {
			if before && restart != nil {
				beforeRestart++
			}
		}
		time.Sleep(2 * time.Second) // let idle connections and their goroutines go
		g, heap, rss, err := serverMetrics(u)
		if err != nil {
			return nil, err
		}
		reports = append(reports, mixedReport{Scenario: "mixed", Database: db, Round: round, Restarted: restarted, Concurrency: conc,
			Seconds: r.Seconds, OK: r.Requests, PerSecond: r.PerSecond, P50ms: r.P50ms, P95ms: r.P95ms, P99ms: r.P99ms,
			Reads: r.Reads, Writes: r.Writes, Logins: r.Logins, Errors5xx: r.Errors5xx, ErrorsOther: r.ErrorsOther,
			RestartWindowErrors: r.RestartWindowErrors, RestartSeconds: r.RestartSeconds, AckedWrites: len(acked), LostWrites: lost,
			AckedReads: len(r.readsAcked), ReadsBeforeRestart: beforeRestart, UnauditedReads: unaudited,
			ErrorKinds: r.OtherKinds, Goroutines: g, HeapInuseMB: heap, RSSMB: rss})
	}
	return reports, nil
}

func reportMixed(rs []mixedReport, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(rs)
	}
	fmt.Printf("%-8s %5s %8s %4s %8s %7s %7s %7s %7s %6s %6s %9s %7s %6s %6s %6s %7s %7s %6s %7s\n", "db", "round", "restart", "c", "ok/s", "p50ms",
		"p95ms", "p99ms", "writes", "logins", "5xx", "otherErr", "winErr", "restS", "acked", "lost", "readsOK", "noAudit", "gorout", "heapMB")
	for _, r := range rs {
		fmt.Printf("%-8s %5d %8s %4d %8.0f %7.2f %7.2f %7.2f %7d %6d %6d %9d %7d %6.2f %6d %6d %7d %7d %6.0f %7.1f\n", r.Database, r.Round, r.Restarted,
			r.Concurrency, r.PerSecond, r.P50ms, r.P95ms, r.P99ms, r.Writes, r.Logins, r.Errors5xx, r.ErrorsOther, r.RestartWindowErrors,
			r.RestartSeconds, r.AckedWrites, r.LostWrites, r.AckedReads, r.UnauditedReads, r.Goroutines, r.HeapInuseMB)
		for k, n := range r.ErrorKinds {
			fmt.Printf("         error outside the restart window: %dx %s\n", n, k)
		}
	}
	return nil
}
