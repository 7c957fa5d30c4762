package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// recorder is a server that must never be reached: it keeps what it got.
type recorder struct {
	mu  sync.Mutex
	got []string
	srv *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization")+" "+string(b))
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "{}")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// TestCLIHostileSecretsAndServers: what a project writer puts in a secret's
// name or value, and what a server answers, cannot run code on, or take
// credentials from, the machine of a user of the CLI.
//   - A dotenv export leaves out keys that are not shell names (sourcing
//     `A;touch${IFS}PWNED;B=...` ran touch) and names that make programs run
//     code (BASH_ENV), unless --allow-env names them; `run` leaves the latter out.
//   - Tables write control characters escaped, not to the terminal.
//   - --output-file replaces a file (or a link) by a new 0600 file.
//   - The client follows no redirect: a 307 does not carry a client secret
//     to another server.
//   - logout revokes the token at the server that issued it, never at the
//     server the environment names now.
func TestCLIHostileSecretsAndServers(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	p := []string{"--projectId", project, "--env", "dev"}
	work := t.TempDir()
	marker := filepath.Join(work, "bash-env-ran")
	script := filepath.Join(work, "hook.sh")
	os.WriteFile(script, []byte("touch "+marker+"\n"), 0o700)

	api := client.New("http://"+addr, strings.TrimPrefix(admin[0], "INFISICAL_TOKEN="))
	for k, v := range map[string]string{"A;touch${IFS}PWNED;B": "1", "BASH_ENV": script, "TITLE": "\x1b]0;owned\x07", "OK_KEY": "fine",
		"my.key-1": "dotted", "GIT_CONFIG_COUNT": "1"} {
		if err := api.Do(context.Background(), "POST", "/api/v3/secrets/raw/"+url.PathEscape(k),
			map[string]any{"workspaceId": project, "environment": "dev", "secretPath": "/", "secretValue": v}, nil); err != nil {
			t.Fatalf("create %q: %v", k, err)
		}
	}

	// dotenv: sourced with set -a in a directory of its own, nothing runs.
	r := c.run(admin, append([]string{"export", "--format", "dotenv"}, p...)...)
	if r.code != 0 || strings.Contains(r.stdout, "touch") || strings.Contains(r.stdout, "BASH_ENV") || !strings.Contains(r.stdout, "OK_KEY='fine'") ||
		!strings.Contains(r.stderr, `left out secret "BASH_ENV"`) || !strings.Contains(r.stderr, `left out secret "A;touch${IFS}PWNED;B"`) ||
		!strings.Contains(r.stdout, "my.key-1='dotted'") || strings.Contains(r.stdout, "GIT_CONFIG_COUNT") {
		t.Fatalf("dotenv export: exit %d\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	df := filepath.Join(work, "exported.env")
	os.WriteFile(df, []byte(r.stdout), 0o600)
	sh := exec.Command("bash", "-c", `set -a; . "$0"; bash -c 'printf %s "$OK_KEY"'`, df)
	sh.Dir = work
	if out, err := sh.Output(); err != nil || string(out) != "fine" {
		t.Fatalf("sourcing the export: %q %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(work, "PWNED")); err == nil {
		t.Fatal("sourcing the export ran a command from a secret's name")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("sourcing the export ran BASH_ENV")
	}
	if out := c.must(admin, append([]string{"export", "--format", "dotenv", "--allow-env", "BASH_ENV"}, p...)...); !strings.Contains(out, "BASH_ENV=") || strings.Contains(out, "touch") {
		t.Fatalf("--allow-env BASH_ENV: %q", out)
	}

	// run: BASH_ENV is not set for the child unless allowed.
	r = c.run(admin, append(append([]string{"run"}, p...), "--", "bash", "-c", `printf %s "$OK_KEY"`)...)
	if r.code != 0 || r.stdout != "fine" || !strings.Contains(r.stderr, `left out secret "BASH_ENV"`) {
		t.Fatalf("run: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("run set BASH_ENV")
	}
	c.must(admin, append(append([]string{"run", "--allow-env", "BASH_ENV"}, p...), "--", "bash", "-c", "true")...)
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("--allow-env BASH_ENV did not set it: the test proves nothing")
	}

	// A table escapes control characters.
	if out := c.must(admin, append([]string{"secrets"}, p...)...); strings.Contains(out, "\x1b") || !strings.Contains(out, `\x1b]0;owned\x07`) {
		t.Fatalf("secrets table: %q", out)
	}

	// --output-file: an existing 0644 file becomes a new 0600 one; a link
	// is replaced, its target untouched.
	loose := filepath.Join(work, "loose.env")
	os.WriteFile(loose, []byte("old"), 0o644)
	os.Chmod(loose, 0o644)
	c.must(admin, append([]string{"export", "--output-file", loose}, p...)...)
	if fi, err := os.Stat(loose); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export over a 0644 file: %v %v", fi, err)
	}
	victim := filepath.Join(work, "victim")
	os.WriteFile(victim, []byte("untouched"), 0o666)
	link := filepath.Join(work, "link.env")
	os.Symlink(victim, link)
	c.must(admin, append([]string{"export", "--output-file", link}, p...)...)
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Fatalf("export followed a link: the target holds %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export over a link: %v %v", fi, err)
	}

	// A target that is not a file is written through, not replaced:
	// /dev/stdout, and a pipe of the user's own.
	if out := c.must(admin, append([]string{"export", "--output-file", "/dev/stdout"}, p...)...); !strings.Contains(out, "OK_KEY='fine'") {
		t.Fatalf("export to /dev/stdout: %q", out)
	}
	fifo := filepath.Join(work, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	c.must(admin, append([]string{"export", "--output-file", fifo}, p...)...)
	if out := <-got; !strings.Contains(out, "OK_KEY='fine'") {
		t.Fatalf("export to a pipe: %q", out)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v %v", fi, err)
	}

	// A redirect is an answer, not a request elsewhere with the body.
	elsewhere := newRecorder(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, elsewhere.srv.URL+req.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	r = c.run([]string{"LOCKBOX_API_URL=" + redirector.URL}, "login", "--method", "universal-auth", "--client-id", "cid", "--client-secret", "SECRET-NOT-TO-SEND")
	if r.code == 0 || len(elsewhere.requests()) != 0 {
		t.Fatalf("login through a redirect: exit %d, elsewhere got %q", r.code, elsewhere.requests())
	}

	// logout goes to the session's server only.
	id := strings.TrimSpace(c.must(admin, "identities", "create", "ci", "--role", "member", "--plain"))
	clientID := strings.TrimSpace(c.must(admin, "identities", "universal-auth", "attach", id, "--plain"))
	secret := strings.TrimSpace(c.must(admin, "identities", "client-secrets", "create", id, "--plain"))
	c.must(nil, "login", "--method", "universal-auth", "--client-id", clientID, "--client-secret", secret)
	b, _ := os.ReadFile(filepath.Join(c.config, "session.json"))
	var s session
	if err := json.Unmarshal(b, &s); err != nil || s.Token == "" {
		t.Fatalf("session: %v", err)
	}
	other := newRecorder(t)
	c.must([]string{"LOCKBOX_API_URL=" + other.srv.URL}, "logout")
	if got := other.requests(); len(got) != 0 {
		t.Fatalf("logout sent %d requests to another server", len(got))
	}
	err := client.New("http://"+addr, s.Token).Do(context.Background(), "GET", "/api/v1/workspace", nil, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 401 {
		t.Fatalf("the logged-out token still works: %v", err)
	}

	// A server's error text reaches the terminal escaped: logout's failed
	// revocation, and a session's failed renewal, printed it raw.
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"message":"x\u001b]0;PWNED\u0007\u001b[2J"}`)
	}))
	t.Cleanup(hostile.Close)
	for _, tc := range []struct {
		ttl  int64
		args []string
		want string
	}{{0, []string{"logout"}, "could not be revoked"}, {3600, []string{"secrets", "--projectId", project, "--env", "dev"}, "could not renew the session"}} {
		hs, _ := json.Marshal(session{Domain: hostile.URL, Token: "t", ExpiresAt: time.Now().Add(10 * time.Minute), TTL: tc.ttl})
		if err := os.WriteFile(filepath.Join(c.config, "session.json"), hs, 0o600); err != nil {
			t.Fatal(err)
		}
		r = c.run([]string{"LOCKBOX_API_URL=" + hostile.URL}, tc.args...)
		if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, `\x1b]0;PWNED`) || strings.ContainsRune(r.stderr, 0x1b) {
			t.Fatalf("%v: a server's error reached the terminal raw: %q", tc.args, r.stderr)
		}
	}
}
