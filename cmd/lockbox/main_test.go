package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/store/storetest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockbox-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lockbox")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		panic("build lockbox: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a strings.Builder safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBadSettingsExitTwoWithOneLine(t *testing.T) {
	unreadable := filepath.Join(t.TempDir(), "file")
	os.WriteFile(unreadable, []byte("x"), 0o600)
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"malformed root key", []string{"server"}, []string{"LOCKBOX_ROOT_KEY=short"}},
		{"data dir is a file", []string{"server", "--data-dir", unreadable}, nil},
		{"unreachable database", []string{"server", "--database-url", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"},
			[]string{"LOCKBOX_ROOT_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}},
		{"unknown flag", []string{"server", "--bogus"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(binary, c.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), c.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "lockbox: ") {
				t.Fatalf("want one line on stderr, got:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String(), "hunter2") {
				t.Fatalf("stderr leaks the password: %s", stderr.String())
			}
		})
	}
}

// startServer runs `lockbox server` with args in dir and waits until it serves.
// stopServer sends SIGTERM and fails unless the server exits cleanly within 20 s.
func stopServer(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}

func startServer(t *testing.T, dir string, env []string, args ...string) (addr string, cmd *exec.Cmd, stderr *syncBuffer, startup time.Duration) {
	t.Helper()
	addr = freeAddr(t)
	cmd = exec.Command(binary, append([]string{"server", "--listen", addr}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr = &syncBuffer{}
	cmd.Stderr = stderr
	stdout, _ := cmd.StdoutPipe()
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(ready)
				for sc.Scan() {
				}
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start; stderr:\n%s", stderr.String())
	}
	startup = time.Since(begin)
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status: %v %v", resp, err)
	}
	resp.Body.Close()
	return addr, cmd, stderr, startup
}

func TestServerStartsWithNoFlagsAndStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	_, cmd, stderr, startup := startServer(t, dir, nil)
	t.Logf("start-up to first status answer: %v", startup)
	fi, err := os.Stat(filepath.Join(dir, "lockbox-data", "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v %v", fi, err)
	}
	if !strings.Contains(stderr.String(), "GENERATED A NEW ROOT KEY") {
		t.Fatalf("no loud warning about the generated key:\n%s", stderr.String())
	}
	stopServer(t, cmd, stderr)
	// A second start reuses the key and the database (migrations are a no-op).
	_, _, stderr2, _ := startServer(t, dir, nil)
	if strings.Contains(stderr2.String(), "GENERATED A NEW ROOT KEY") {
		t.Fatal("second start generated another root key")
	}
}

func TestServerOnPostgresAndBootstrapCommand(t *testing.T) {
	url := storetest.RequirePG(t)
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	addr, _, _, _ := startServer(t, t.TempDir(), []string{"LOCKBOX_DATABASE_URL=" + url, "LOCKBOX_ROOT_KEY=" + key})
	out, err := exec.Command(binary, "bootstrap", "--domain", "http://"+addr, "--email", "a@b.co", "--password", "pw", "--organization", "Acme").Output()
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+addr+"/api/v1/organization/audit-logs", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("token from bootstrap command does not work: %v %v", resp, err)
	}
	resp.Body.Close()
	// A second bootstrap fails with the server's message and a non-zero exit.
	cmd := exec.Command(binary, "bootstrap", "--domain", "http://"+addr, "--email", "a@b.co", "--password", "pw", "--organization", "Acme")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "Instance has already been set up") {
		t.Fatalf("second bootstrap: %v %s", err, stderr.String())
	}
}

func TestRotateRootKeyCommand(t *testing.T) {
	dir := t.TempDir()
	addr, cmd, _, _ := startServer(t, dir, nil)
	out, err := exec.Command(binary, "bootstrap", "--domain", "http://"+addr, "--email", "a@b.co", "--password", "pw", "--organization", "Acme").Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	before, _ := os.ReadFile(filepath.Join(dir, "lockbox-data", "root.key"))
	rot := exec.Command(binary, "rotate-root-key")
	rot.Dir = dir
	if out, err := rot.CombinedOutput(); err != nil || !strings.Contains(string(out), "re-wrapped") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	// The server that was running holds the old root key: it refuses to
	// wrap a new data key under it (a project's), which would not open
	// once servers start with the new key.
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/projects", strings.NewReader(`{"projectName":"after-rotation"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "restart it with the new root key") {
		t.Fatalf("a project made by a server holding the old root key: %d %s", resp.StatusCode, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	after, _ := os.ReadFile(filepath.Join(dir, "lockbox-data", "root.key"))
	if string(before) == string(after) {
		t.Fatal("root key file unchanged")
	}
	// The server starts with the new key, the old token still works and
	// projects are made.
	addr, _, _, _ = startServer(t, dir, nil)
	req, _ = http.NewRequest("GET", "http://"+addr+"/api/v1/organization/audit-logs", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after rotation: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", "http://"+addr+"/api/v1/projects", strings.NewReader(`{"projectName":"after-restart"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a project after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
	// The old key no longer opens the database.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad := exec.CommandContext(ctx, binary, "server", "--listen", freeAddr(t))
	bad.Dir = dir
	bad.Env = append(os.Environ(), "LOCKBOX_ROOT_KEY="+strings.TrimSpace(string(before)))
	if err := bad.Run(); err == nil || ctx.Err() != nil {
		t.Fatalf("server with the old root key: %v (it must refuse to start)", err)
	}
}
