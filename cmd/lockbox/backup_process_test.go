package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/client"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// secretWriter writes one stream of operations to a project, each sent only
// after the one before was acknowledged: op 2k creates W<w>_<k>, op 2k+1 sets
// W<w>_LAST, so a snapshot of the database holds, for each writer, the state
// after some prefix of its operations.
type secretWriter struct {
	w      int
	values []string     // value of op j; appended before op j is sent
	sent   atomic.Int64 // ops sent (op sent-1 may be unanswered)
	acked  atomic.Int64 // ops answered 200
	mu     sync.Mutex
	err    error
}

func (sw *secretWriter) key(j int) string {
	if j%2 != 0 { // -1: LAST's initial value
		return fmt.Sprintf("W%d_LAST", sw.w)
	}
	return fmt.Sprintf("W%d_%06d", sw.w, j/2)
}

// state is what the writer's keys hold after its first m operations.
func (sw *secretWriter) state(m int) map[string]string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	s := map[string]string{sw.key(-1): "initial"}
	for j := range m {
		s[sw.key(j)] = sw.values[j]
	}
	return s
}

func (sw *secretWriter) run(ctx context.Context, c *client.Client, slug string) {
	scope := map[string]any{"projectSlug": slug, "environment": "dev", "secretPath": "/"}
	for j := 0; ctx.Err() == nil; j++ {
		b := make([]byte, 12)
		rand.Read(b)
		v := fmt.Sprintf("%d-%s", j, hex.EncodeToString(b))
		sw.mu.Lock()
		sw.values = append(sw.values, v)
		sw.mu.Unlock()
		body := maps.Clone(scope)
		body["secretValue"] = v
		method := "POST"
		if j%2 == 1 {
			method = "PATCH"
		}
		sw.sent.Store(int64(j + 1))
		if err := c.Do(context.Background(), method, "/api/v3/secrets/raw/"+sw.key(j), body, nil); err != nil {
			sw.mu.Lock()
			sw.err = fmt.Errorf("op %d (%s %s): %w", j, method, sw.key(j), err)
			sw.mu.Unlock()
			return
		}
		sw.acked.Store(int64(j + 1))
	}
}

// waitAcked waits until every writer has n more acknowledged operations than
// in from, failing the test if a writer stops or stalls for a minute.
func waitAcked(t *testing.T, ws []*secretWriter, from []int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for i, sw := range ws {
		for sw.acked.Load() < from[i]+n {
			sw.mu.Lock()
			err := sw.err
			sw.mu.Unlock()
			if err != nil {
				t.Fatalf("writer %d: %v", sw.w, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("writer %d: %d operations acknowledged, waiting for %d", sw.w, sw.acked.Load(), from[i]+n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func ackedNow(ws []*secretWriter) []int64 {
	out := make([]int64, len(ws))
	for i, sw := range ws {
		out[i] = sw.acked.Load()
	}
	return out
}

// listSecrets reads every secret in the project's dev root, decrypted by the server.
func listSecrets(t *testing.T, c *client.Client, slug string) map[string]string {
	t.Helper()
	var out struct {
		Secrets []struct{ SecretKey, SecretValue string }
	}
	if err := c.Do(context.Background(), "GET", "/api/v3/secrets/raw?projectSlug="+slug+"&environment=dev&secretPath=/", nil, &out); err != nil {
		t.Fatalf("list secrets: %v", err)
	}
	m := map[string]string{}
	for _, s := range out.Secrets {
		m[s.SecretKey] = s.SecretValue
	}
	return m
}

// A backup taken by the CLI while writers hammer a running server, restored
// into a new data dir with the root key file, serves every write
// acknowledged before the backup began, with its value, and for each writer
// exactly the state after a prefix of its operations: one snapshot.
func TestBackupUnderWriteLoadRestoresEveryAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "lockbox-data")
	addr, srv, srvErr, _ := startServer(t, dir, nil)
	c, slug := bootstrapProject(t, addr, "backup")
	const writers = 3
	ws := make([]*secretWriter, writers)
	for w := range ws {
		ws[w] = &secretWriter{w: w}
		if err := c.Do(context.Background(), "POST", "/api/v3/secrets/raw/"+ws[w].key(-1), map[string]any{
			"projectSlug": slug, "environment": "dev", "secretValue": "initial"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, sw := range ws {
		wg.Go(func() { sw.run(ctx, c, slug) })
	}
	defer func() { stop(); wg.Wait() }()
	waitAcked(t, ws, make([]int64, writers), 60)

	before := ackedNow(ws) // acknowledged before the backup began: must be in it
	out := filepath.Join(t.TempDir(), "lockbox.backup")
	bk := exec.Command(binary, "backup", "--out", out) // finds ./lockbox-data as the server did
	bk.Dir = dir
	bk.Env = os.Environ()
	bkOut, err := bk.CombinedOutput()
	sentAtEnd := make([]int64, writers) // sent after the backup returned: must not be in it
	for i, sw := range ws {
		sentAtEnd[i] = sw.sent.Load()
	}
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, bkOut)
	}
	during := ackedNow(ws)
	waitAcked(t, ws, during, 20) // the server kept taking writes
	stop()
	wg.Wait()
	for _, sw := range ws {
		if sw.err != nil {
			t.Fatalf("writer %d: %v", sw.w, sw.err)
		}
	}
	t.Logf("backup: %s\nops acknowledged per writer before it began %v, when it returned %v", strings.TrimSpace(string(bkOut)), before, during)
	stopServer(t, srv, srvErr)

	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", fi, err)
	}
	backup, _ := os.ReadFile(out)
	keyText, _ := os.ReadFile(filepath.Join(data, keyring.RootKeyFile))
	key, err := keyring.ReadRootKeyFile(filepath.Join(data, keyring.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(backup, key) || bytes.Contains(backup, bytes.TrimSpace(keyText)) {
		t.Fatal("the backup holds the root key")
	}

	// Restore with a copy of root.key into a new dir, then throw the old data dir away.
	keyCopy := filepath.Join(t.TempDir(), "root.key")
	os.WriteFile(keyCopy, keyText, 0o600)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	rs := exec.Command(binary, "restore", "--from", out, "--data-dir", restored, "--root-key-file", keyCopy)
	rs.Env = os.Environ()
	if out, err := rs.CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	addr2, _, srvErr2, _ := startServer(t, t.TempDir(), nil, "--data-dir", restored)
	if strings.Contains(srvErr2.String(), "GENERATED A NEW ROOT KEY") {
		t.Fatal("the restored server generated a root key instead of using the restored one")
	}
	c2 := client.New("http://"+addr2, c.Token) // the old token: its row is in the backup
	c2.HTTP = &http.Client{Timeout: 10 * time.Second}
	got := listSecrets(t, c2, slug)

	for i, sw := range ws {
		mine := map[string]string{}
		creates := 0
		for k, v := range got {
			if strings.HasPrefix(k, fmt.Sprintf("W%d_", sw.w)) {
				mine[k] = v
				if !strings.HasSuffix(k, "_LAST") {
					creates++
				}
			}
		}
		// With n creates present, the snapshot ends after op 2n-1 or 2n.
		m := -1
		for _, cand := range []int{2*creates - 1, 2 * creates} {
			if cand >= 0 && maps.Equal(mine, sw.state(cand)) {
				m = cand
			}
		}
		if m < 0 {
			t.Fatalf("writer %d: the restored secrets are no prefix of its writes (%d creates present): not one snapshot", sw.w, creates)
		}
		if int64(m) < before[i] {
			t.Fatalf("writer %d: the restored data holds its first %d writes, but %d were acknowledged before the backup began", sw.w, m, before[i])
		}
		if int64(m) > sentAtEnd[i] {
			t.Fatalf("writer %d: the restored data holds %d writes, but only %d were sent when the backup returned", sw.w, m, sentAtEnd[i])
		}
	}
	// The restored server serves writes too.
	if err := c2.Do(context.Background(), "POST", "/api/v3/secrets/raw/AFTER_RESTORE", map[string]any{
		"projectSlug": slug, "environment": "dev", "secretValue": "ok"}, nil); err != nil {
		t.Fatalf("write to the restored server: %v", err)
	}
	if v := listSecrets(t, c2, slug)["AFTER_RESTORE"]; v != "ok" {
		t.Fatalf("read back %q", v)
	}
}

// Restore checks the root key given in LOCKBOX_ROOT_KEY or --root-key-file
// and restores nothing with a wrong one; backup and restore refuse PostgreSQL.
func TestRestoreChecksTheRootKey(t *testing.T) {
	newKey := func() string {
		b := make([]byte, keyring.KeySize)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	key, wrong := newKey(), newKey()
	dir := t.TempDir()
	addr, srv, srvErr, _ := startServer(t, dir, []string{"LOCKBOX_ROOT_KEY=" + key})
	c, slug := bootstrapProject(t, addr, "keys")
	if err := c.Do(context.Background(), "POST", "/api/v3/secrets/raw/DB_PASSWORD", map[string]any{
		"projectSlug": slug, "environment": "dev", "secretValue": "hunter2"}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	run := func(env []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(b), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), 0
	}
	if s, code := run([]string{"LOCKBOX_ROOT_KEY=" + key}, "backup", "--out", out); code != 0 || !strings.Contains(s, "keep LOCKBOX_ROOT_KEY safe") {
		t.Fatalf("backup: exit %d\n%s", code, s)
	}
	stopServer(t, srv, srvErr)
	wrongFile := filepath.Join(t.TempDir(), "wrong.key")
	os.WriteFile(wrongFile, []byte(wrong+"\n"), 0o600)
	target := filepath.Join(t.TempDir(), "restored")
	// What a failure prints never shows the secrets this test looks for.
	redact := strings.NewReplacer("hunter2", "<redacted>", wrong, "<redacted wrong key>", key, "<redacted key>").Replace
	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"wrong LOCKBOX_ROOT_KEY", []string{"LOCKBOX_ROOT_KEY=" + wrong}, nil, 1, "wrong root key, nothing restored"},
		{"wrong --root-key-file", nil, []string{"--root-key-file", wrongFile}, 1, "wrong root key, nothing restored"},
		{"both", []string{"LOCKBOX_ROOT_KEY=" + key}, []string{"--root-key-file", wrongFile}, 2, "not both"},
		{"PostgreSQL", []string{"LOCKBOX_ROOT_KEY=" + key, "LOCKBOX_DATABASE_URL=postgres://u:hunter2@127.0.0.1:1/db"}, nil, 2, "pg_restore"},
	} {
		s, code := run(c.env, append([]string{"restore", "--from", out, "--data-dir", target}, c.args...)...)
		if code != c.code || !strings.Contains(s, c.want) {
			t.Fatalf("%s: exit %d, want %d and %q:\n%s", c.name, code, c.code, c.want, redact(s))
		}
		if strings.Contains(s, "hunter2") || strings.Contains(s, wrong) {
			t.Fatalf("%s: the output leaks a secret:\n%s", c.name, redact(s))
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Fatalf("%s: the refused restore left %s: %v", c.name, target, err)
		}
	}
	if s, code := run([]string{"LOCKBOX_DATABASE_URL=postgres://u:hunter2@127.0.0.1:1/db"}, "backup", "--out", filepath.Join(t.TempDir(), "pg")); code != 2 || !strings.Contains(s, "pg_dump -Fc") || strings.Contains(s, "hunter2") {
		t.Fatalf("backup on PostgreSQL: exit %d\n%s", code, redact(s))
	}
	if s, code := run([]string{"LOCKBOX_ROOT_KEY=" + key}, "restore", "--from", out, "--data-dir", target); code != 0 || !strings.Contains(s, "LOCKBOX_ROOT_KEY opens every data key") {
		t.Fatalf("restore with the right key: exit %d\n%s", code, redact(s))
	}
	if _, err := os.Stat(filepath.Join(target, keyring.RootKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("restore with LOCKBOX_ROOT_KEY wrote a root key file: %v", err)
	}
	addr2, _, _, _ := startServer(t, t.TempDir(), []string{"LOCKBOX_ROOT_KEY=" + key}, "--data-dir", target)
	c.BaseURL = "http://" + addr2
	if v := listSecrets(t, c, slug)["DB_PASSWORD"]; v != "hunter2" {
		t.Fatalf("restored value %q", v)
	}
}
