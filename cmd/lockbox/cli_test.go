package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// cliEnv runs the built binary as a user would, against one server, with a
// private config directory and none of the caller's INFISICAL_/LOCKBOX_ variables.
type cliEnv struct {
	t      *testing.T
	addr   string
	config string
	extra  []string
}

func newCLI(t *testing.T, addr string) *cliEnv {
	return &cliEnv{t: t, addr: addr, config: t.TempDir()}
}

func (e *cliEnv) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFISICAL_") && !strings.HasPrefix(kv, "LOCKBOX_") {
			env = append(env, kv)
		}
	}
	own := []string{"LOCKBOX_API_URL=http://" + e.addr, "LOCKBOX_CONFIG_DIR=" + e.config}
	for _, kv := range append(append([]string{}, e.extra...), extra...) {
		if strings.HasPrefix(kv, "INFISICAL_API_URL=") || strings.HasPrefix(kv, "INFISICAL_DOMAIN=") {
			own = own[1:] // the test names the server the Infisical way
		}
		if strings.HasPrefix(kv, "LOCKBOX_CONFIG_DIR=") {
			own = own[:len(own)-1]
		}
	}
	env = append(env, own...)
	return append(append(env, e.extra...), extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// run executes lockbox args; extra are KEY=VALUE environment additions.
func (e *cliEnv) run(extra []string, args ...string) result {
	e.t.Helper()
	return e.runIn(nil, extra, args...)
}

// runIn is run with stdin as the command's standard input.
func (e *cliEnv) runIn(stdin []byte, extra []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = e.env(extra...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// must runs and fails the test on a non-zero exit.
func (e *cliEnv) must(extra []string, args ...string) string {
	e.t.Helper()
	r := e.run(extra, args...)
	if r.code != 0 {
		e.t.Fatalf("lockbox %s: exit %d\nstdout: %s\nstderr: %s", redact(strings.Join(args, " ")), r.code, redact(r.stdout), redact(r.stderr))
	}
	return r.stdout
}

var (
	jwtRE        = regexp.MustCompile(`eyJ[\w-]+\.[\w-]+\.[\w-]+`)
	secretFlagRE = regexp.MustCompile(`(--(?:client-secret|password|token|jwt|bind-pass)[ =])\S+`)
)

// redact keeps access tokens, and what follows a flag that carries a
// secret (a client secret, a password), out of a failing test's output.
func redact(s string) string {
	return secretFlagRE.ReplaceAllString(jwtRE.ReplaceAllString(s, "<token>"), "$1<redacted>")
}

// waitExit waits for a started command, failing the test instead of hanging
// if it does not exit.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		t.Fatalf("%s did not exit within %v", cmd.Path, d)
		return nil
	}
}

// adminSetup bootstraps the server and returns the admin token and a project ID.
func adminSetup(t *testing.T, c *cliEnv) (admin []string, project string) {
	t.Helper()
	tok := strings.TrimSpace(c.must(nil, "bootstrap", "--email", "a@b.co", "--password", "pw", "--organization", "Acme"))
	admin = []string{"INFISICAL_TOKEN=" + tok}
	project = strings.TrimSpace(c.must(admin, "projects", "create", "demo", "--plain"))
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(project) {
		t.Fatalf("project id %q", project)
	}
	return admin, project
}

func TestCLISecretsLoginRunExport(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	p := []string{"--projectId", project, "--env", "dev"}

	// Administration: projects, environments, an identity with Universal Auth.
	var projects []struct{ ID, Name string }
	json.Unmarshal([]byte(c.must(admin, "projects", "list", "-o", "json")), &projects)
	if len(projects) != 1 || projects[0].ID != project || projects[0].Name != "demo" {
		t.Fatalf("projects list: %+v", projects)
	}
	c.must(admin, "environments", "create", "QA", "--slug", "qa", "--projectId", project)
	if out := c.must(admin, "environments", "list", "--projectId", project); !strings.Contains(out, "qa") || !strings.Contains(out, "staging") {
		t.Fatalf("environments list:\n%s", out)
	}
	c.must(admin, "environments", "delete", "qa", "--projectId", project)
	if out := c.must(admin, "environments", "list", "--projectId", project); strings.Contains(out, "qa ") {
		t.Fatalf("qa not deleted:\n%s", out)
	}
	// An identity with the organization's member role reads a project once added to it.
	mid := strings.TrimSpace(c.must(admin, "identities", "create", "reader", "--role", "member", "--plain"))
	if out := c.must(admin, "projects", "add-identity", project, mid, "--role", "viewer"); !strings.Contains(out, "viewer") {
		t.Fatalf("add-identity:\n%s", out)
	}
	if r := c.run(admin, "projects", "add-identity", project, mid); r.code == 0 || !strings.Contains(r.stderr, "already a member") {
		t.Fatalf("adding a member twice: exit %d, %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(c.must(admin, "identities", "create", "ci", "--role", "admin", "--plain"))
	if !strings.Contains(c.must(admin, "identities", "list"), "ci") {
		t.Fatal("identity not listed")
	}
	clientID := strings.TrimSpace(c.must(admin, "identities", "universal-auth", "attach", id, "--access-token-ttl", "9", "--access-token-max-ttl", "3600", "--plain"))
	secret := strings.TrimSpace(c.must(admin, "identities", "client-secrets", "create", id, "--description", "cli test", "--plain"))
	if out := c.must(admin, "identities", "client-secrets", "list", id); !strings.Contains(out, "cli test") || strings.Contains(out, secret) {
		t.Fatalf("client secrets list (must not show the secret):\n%s", out)
	}

	// Login saves a 0600 session; later commands use it without any token in the environment.
	out := c.must(nil, "login", "--method", "universal-auth", "--client-id", clientID, "--client-secret", secret)
	sessionFile := filepath.Join(c.config, "session.json")
	if !strings.Contains(out, sessionFile) {
		t.Fatalf("login output:\n%s", out)
	}
	fi, err := os.Stat(sessionFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", fi, err)
	}
	readSession := func() session {
		var s session
		b, _ := os.ReadFile(sessionFile)
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := readSession()
	if s1.Domain != "http://"+addr || s1.Token == "" || s1.TTL != 9 {
		t.Fatalf("session %+v", s1)
	}
	if plain := strings.TrimSpace(c.must([]string{"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID=" + clientID, "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET=" + secret},
		"login", "--plain")); strings.Count(plain, ".") != 2 {
		t.Fatalf("--plain prints a JWT, got %q", plain)
	}
	s1 = readSession()

	// secrets set / get / list.
	multi := "line one\nline two with 'quotes' and \"double\" and $HOME and `ticks` \\ end"
	if out := c.must(nil, append([]string{"secrets", "set", "GREETING=hello", "MULTI=" + multi, "EMPTY="}, p...)...); strings.Count(out, "created") != 3 {
		t.Fatalf("set:\n%s", out)
	}
	if out := c.must(nil, append([]string{"secrets", "set", "GREETING=hi"}, p...)...); !strings.Contains(out, "updated") {
		t.Fatalf("second set:\n%s", out)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(envFile, []byte("# a comment\nexport FROM_FILE=plain value # trailing comment\nQUOTED=\"a\\nb \\\"c\\\"\"\nSINGLE='it'\\''s'\n"), 0o600)
	c.must(nil, append([]string{"secrets", "set", "--file", envFile}, p...)...)
	if got := c.must(nil, append([]string{"secrets", "get", "GREETING", "QUOTED", "SINGLE", "FROM_FILE", "--plain"}, p...)...); got != "hi\na\nb \"c\"\nit's\nplain value\n" {
		t.Fatalf("get --plain: %q", got)
	}
	if out := c.must(nil, append([]string{"secrets"}, p...)...); !strings.Contains(out, "GREETING") || !strings.Contains(out, "hi") {
		t.Fatalf("secrets table:\n%s", out)
	}

	// run: the child sees the values, and its exit code comes back.
	r := c.run(nil, append(append([]string{"run"}, p...), "--", "sh", "-c", `printf '%s|%s' "$GREETING" "$MULTI"; exit 7`)...)
	if r.code != 7 || r.stdout != "hi|"+multi {
		t.Fatalf("run: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r := c.run(nil, append(append([]string{"run"}, p...), "--", "no-such-command-xyz")...); r.code != 127 {
		t.Fatalf("missing command: exit %d", r.code)
	}

	// export in every format, each read back by an independent reader.
	want := map[string]string{"GREETING": "hi", "MULTI": multi, "EMPTY": "", "FROM_FILE": "plain value", "QUOTED": "a\nb \"c\"", "SINGLE": "it's"}
	dotenv := c.must(nil, append([]string{"export", "--format", "dotenv"}, p...)...)
	df := filepath.Join(t.TempDir(), "exported.env")
	os.WriteFile(df, []byte(dotenv), 0o600)
	for k, v := range want {
		got, err := exec.Command("bash", "-c", `set -a; . "$0"; printf '%s' "${!1}"`, df, k).Output()
		if err != nil || string(got) != v {
			t.Fatalf("dotenv sourced by bash: %s = %q (%v), want %q\n%s", k, got, err, v, dotenv)
		}
	}
	var js []struct{ Key, Value string }
	if err := json.Unmarshal([]byte(c.must(nil, append([]string{"export", "--format", "json"}, p...)...)), &js); err != nil || len(js) != len(want) {
		t.Fatalf("json export: %v %+v", err, js)
	}
	for _, kv := range js {
		if want[kv.Key] != kv.Value {
			t.Fatalf("json %s = %q", kv.Key, kv.Value)
		}
	}
	var ym map[string]string
	if err := yaml.Unmarshal([]byte(c.must(nil, append([]string{"export", "--format", "yaml"}, p...)...)), &ym); err != nil || len(ym) != len(want) {
		t.Fatalf("yaml export: %v %v", err, ym)
	}
	for k, v := range want {
		if ym[k] != v {
			t.Fatalf("yaml %s = %q", k, ym[k])
		}
	}
	recs, err := csv.NewReader(strings.NewReader(c.must(nil, append([]string{"export", "--format", "csv"}, p...)...))).ReadAll()
	if err != nil || len(recs) != len(want)+1 || recs[0][0] != "Key" {
		t.Fatalf("csv export: %v %v", err, recs)
	}
	for _, rec := range recs[1:] {
		if want[rec[0]] != rec[1] {
			t.Fatalf("csv %s = %q", rec[0], rec[1])
		}
	}
	if r := c.run(nil, append([]string{"export", "--format", "xml"}, p...)...); r.code == 0 || !strings.Contains(r.stderr, "dotenv, json, yaml or csv") {
		t.Fatalf("bad format: %+v", r)
	}
	// Our own .env reader takes the dotenv export back unchanged.
	c.must(nil, "secrets", "set", "--file", df, "--projectId", project, "--env", "staging")
	if again := c.must(nil, "export", "--format", "json", "--projectId", project, "--env", "staging"); again != c.must(nil, append([]string{"export", "--format", "json"}, p...)...) {
		t.Fatalf("round trip through dotenv changed the secrets:\n%s", again)
	}

	// Errors carry the server's message and request id, and exit non-zero.
	r = c.run(nil, append([]string{"secrets", "get", "NOPE"}, p...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "NOPE") || !strings.Contains(r.stderr, "request id") {
		t.Fatalf("missing secret: %+v", r)
	}
	if r := c.run(nil, "secrets", "--projectId", project, "--output", "xml"); r.code == 0 {
		t.Fatal("bad --output accepted")
	}

	// The session is renewed once less than a third of its 9 s is left.
	time.Sleep(time.Until(s1.ExpiresAt.Add(-2 * time.Second)))
	c.must(nil, append([]string{"secrets"}, p...)...)
	s2 := readSession()
	if s2.Token == s1.Token || !s2.ExpiresAt.After(s1.ExpiresAt) {
		t.Fatalf("session not renewed: %v -> %v", s1.ExpiresAt, s2.ExpiresAt)
	}

	// Imported secrets come with the folder's own unless --include-imports=false.
	c.must(nil, "secrets", "set", "ONLY_STAGING=imported", "--projectId", project, "--env", "staging")
	adminClient := client.New("http://"+addr, strings.TrimPrefix(admin[0], "INFISICAL_TOKEN="))
	if err := adminClient.Do(context.Background(), "POST", "/api/v1/secret-imports", map[string]any{"workspaceId": project, "environment": "dev",
		"path": "/", "import": map[string]any{"environment": "staging", "path": "/"}}, nil); err != nil {
		t.Fatal(err)
	}
	show := []string{"--", "sh", "-c", `printf '%s|%s' "${ONLY_STAGING-unset}" "$GREETING"`}
	if r := c.run(nil, append(append([]string{"run"}, p...), show...)...); r.stdout != "imported|hi" {
		t.Fatalf("run with imports: %+v", r)
	}
	if r := c.run(nil, append(append([]string{"run", "--include-imports=false"}, p...), show...)...); r.stdout != "unset|hi" {
		t.Fatalf("run --include-imports=false: %+v", r)
	}

	// Folders, and --recursive picks up a secret in a subfolder.
	c.must(nil, append([]string{"folders", "create", "app"}, p...)...)
	if out := c.must(nil, append([]string{"folders"}, p...)...); !strings.Contains(out, "app") {
		t.Fatalf("folders:\n%s", out)
	}
	c.must(nil, append([]string{"secrets", "set", "--path", "/app", "NESTED=deep", "TWICE=deep"}, p...)...)
	c.must(nil, append([]string{"secrets", "set", "TWICE=top"}, p...)...)
	// A key at two depths: the deeper one wins, as with Infisical's CLI.
	if r := c.run(nil, append(append([]string{"run", "--recursive"}, p...), "--", "sh", "-c", `printf '%s|%s' "$NESTED" "$TWICE"`)...); r.code != 0 || r.stdout != "deep|deep" {
		t.Fatalf("run --recursive: %+v", r)
	}
	if r := c.run(nil, append(append([]string{"run"}, p...), "--", "sh", "-c", `printf '%s|%s' "${NESTED-unset}" "$TWICE"`)...); r.stdout != "unset|top" {
		t.Fatalf("run without --recursive sees a subfolder's secret: %+v", r)
	}

	// Audit log, filtered.
	var logs []struct {
		Event struct{ Type string }
	}
	json.Unmarshal([]byte(c.must(admin, "audit-logs", "--event-type", "create-secret", "--limit", "100", "-o", "json")), &logs)
	if len(logs) < 3 {
		t.Fatalf("audit logs: %+v", logs)
	}
	for _, l := range logs {
		if l.Event.Type != "create-secret" {
			t.Fatalf("filter ignored: %+v", l)
		}
	}
	if out := c.must(admin, "audit-logs", "--since", "1h"); !strings.Contains(out, "EVENT") || !strings.Contains(out, "create-secret") {
		t.Fatalf("audit table:\n%s", out)
	}

	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out := c.must(nil, "completion", sh); !strings.Contains(out, "lockbox") {
			t.Fatalf("completion %s", sh)
		}
	}

	// Infisical's variables alone: the server from INFISICAL_API_URL (with /api), a Universal Auth
	// login per command from INFISICAL_UNIVERSAL_AUTH_CLIENT_ID/SECRET, no saved session.
	infisicalEnv := []string{"INFISICAL_API_URL=http://" + addr + "/api", "LOCKBOX_CONFIG_DIR=" + t.TempDir(),
		"INFISICAL_UNIVERSAL_AUTH_CLIENT_ID=" + clientID, "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET=" + secret}
	if got := c.must(infisicalEnv, append([]string{"secrets", "get", "GREETING", "--plain"}, p...)...); got != "hi\n" {
		t.Fatalf("with Infisical's variables: %q", got)
	}

	// A revoked client secret no longer logs in.
	var secrets []struct{ ID, Description string }
	json.Unmarshal([]byte(c.must(admin, "identities", "client-secrets", "list", id, "-o", "json")), &secrets)
	if len(secrets) != 1 {
		t.Fatalf("client secrets: %+v", secrets)
	}
	if out := c.must(admin, "identities", "client-secrets", "revoke", id, secrets[0].ID); !strings.Contains(out, "true") {
		t.Fatalf("revoke output:\n%s", out)
	}
	if r := c.run(nil, "login", "--client-id", clientID, "--client-secret", secret, "--plain"); r.code == 0 || !strings.Contains(r.stderr, "request id") {
		t.Fatalf("login with a revoked client secret: %+v", r)
	}

	// Logout revokes the token and removes the file.
	tok := readSession().Token
	c.must(nil, "logout")
	if _, err := os.Stat(sessionFile); !os.IsNotExist(err) {
		t.Fatal("session file left")
	}
	if r := c.run([]string{"INFISICAL_TOKEN=" + tok}, append([]string{"secrets"}, p...)...); r.code == 0 {
		t.Fatal("token still valid after logout")
	}
	if r := c.run(nil, append([]string{"secrets"}, p...)...); r.code == 0 || !strings.Contains(r.stderr, "not logged in") {
		t.Fatalf("after logout: %+v", r)
	}
}

func TestCLIRunForwardsSignalsAndWatches(t *testing.T) {
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	admin, project := adminSetup(t, c)
	c.extra = admin
	p := []string{"--projectId", project, "--env", "dev"}
	c.must(nil, append([]string{"secrets", "set", "V=one"}, p...)...)

	start := func(args ...string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(binary, args...)
		cmd.Env = c.env()
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, out
	}
	waitOut := func(out *syncBuffer, s string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in output:\n%s", s, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// SIGTERM to lockbox reaches the child; the child's exit code comes back.
	cmd, out := start(append(append([]string{"run"}, p...), "--", "sh", "-c", `trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done`)...)
	waitOut(out, "ready")
	cmd.Process.Signal(syscall.SIGTERM)
	err := waitExit(t, cmd, 10*time.Second)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("after SIGTERM: %v\n%s", err, out.String())
	}

	// A watch interval of zero is refused, not a panic (exit 2).
	if r := c.run(nil, append(append([]string{"run", "--watch", "--watch-interval", "0"}, p...), "--", "true")...); r.code != 1 ||
		!strings.Contains(r.stderr, "--watch-interval must be at least 100ms") {
		t.Fatalf("--watch-interval 0: exit %d\n%s", r.code, r.stderr)
	}

	// --watch restarts the child with the new value.
	cmd, out = start(append(append([]string{"run", "--watch", "--watch-interval", "200ms"}, p...), "--", "sh", "-c", `echo "V=$V"; while :; do sleep 0.05; done`)...)
	waitOut(out, "V=one")
	c.must(nil, append([]string{"secrets", "set", "V=two"}, p...)...)
	waitOut(out, "V=two")
	if strings.Count(out.String(), "V=one") != 1 {
		t.Fatalf("restarted without a change:\n%s", out.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(t, cmd, 10*time.Second); err == nil {
		t.Fatal("child killed by SIGINT should make a non-zero exit")
	}
}

func TestCLIDynamicSecretLeases(t *testing.T) {
	admin, db, prefix := pgTarget(t)
	addr, _, _, _ := startServer(t, t.TempDir(), nil)
	c := newCLI(t, addr)
	tokenEnv, project := adminSetup(t, c)
	c.extra = tokenEnv
	p := []string{"--projectId", project, "--env", "dev"}
	inputs := filepath.Join(t.TempDir(), "inputs.json")
	os.WriteFile(inputs, []byte(`{"client":"postgres","host":"127.0.0.1","port":5432,"database":"`+db+`","username":"postgres","password":""}`), 0o600)
	c.must(nil, append([]string{"dynamic-secrets", "create", "pg", "--type", "sql-database", "--inputs", inputs,
		"--default-ttl", "1h", "--max-ttl", "2h", "--username-template", prefix + "{{randomUsername}}"}, p...)...)
	if out := c.must(nil, append([]string{"dynamic-secrets", "list"}, p...)...); !strings.Contains(out, "sql-database") {
		t.Fatalf("list:\n%s", out)
	}
	out := c.must(nil, append([]string{"dynamic-secrets", "lease", "create", "pg", "--ttl", "30m"}, p...)...)
	m := regexp.MustCompile(`(?m)^DB_USERNAME\s+(\S+)$`).FindStringSubmatch(out)
	lm := regexp.MustCompile(`(?m)^LEASE ID\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil || lm == nil || !strings.Contains(out, "DB_PASSWORD") || !strings.Contains(out, "EXPIRES") {
		t.Fatalf("lease create:\n%s", out)
	}
	user, leaseID := m[1], lm[1]
	if got := roles(t, admin, prefix); len(got) != 1 || got[0] != user {
		t.Fatalf("roles %v, want %s", got, user)
	}
	if out := c.must(nil, append([]string{"dynamic-secrets", "lease", "list", "pg"}, p...)...); !strings.Contains(out, leaseID) || !strings.Contains(out, "active") {
		t.Fatalf("lease list:\n%s", out)
	}
	// Renewal adds to the current expiry: 30m + 60m leaves about 90m.
	var renewed leaseOut
	json.Unmarshal([]byte(c.must(nil, append([]string{"dynamic-secrets", "lease", "renew", leaseID, "--ttl", "60m", "-o", "json"}, p...)...)), &renewed)
	if d := time.Until(renewed.ExpireAt); d < 85*time.Minute || d > 95*time.Minute {
		t.Fatalf("renewed to %v", renewed.ExpireAt)
	}
	if r := c.run(nil, append([]string{"dynamic-secrets", "lease", "renew", leaseID, "--ttl", "5h"}, p...)...); r.code == 0 || !strings.Contains(r.stderr, "TTL") {
		t.Fatalf("renew past max TTL: %+v", r)
	}
	if out := c.must(nil, append([]string{"dynamic-secrets", "lease", "revoke", leaseID}, p...)...); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke:\n%s", out)
	}
	if got := roles(t, admin, prefix); len(got) != 0 {
		t.Fatalf("roles after revoke: %v", got)
	}
	c.must(nil, append([]string{"dynamic-secrets", "delete", "pg"}, p...)...)
}

// The README's CLI walk-through, run verbatim with lockbox on PATH.
func TestReadmeWalkthrough(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- cli-walkthrough -->\\s*```sh\\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no <!-- cli-walkthrough --> block")
	}
	script := string(m[1])
	n := 0
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	if n >= 10 {
		t.Fatalf("the walk-through has %d commands; the issue asks for under ten", n)
	}
	addr := freeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(newCLI(t, addr).env(), "PATH="+filepath.Dir(binary)+":"+os.Getenv("PATH"), "LOCKBOX_LISTEN="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the backgrounded server dies with the group
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	// Files, not pipes: the backgrounded server keeps its copy of stdout open.
	outF, _ := os.Create(filepath.Join(t.TempDir(), "stdout"))
	errF, _ := os.Create(filepath.Join(t.TempDir(), "stderr"))
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	read := func(f *os.File) string { b, _ := os.ReadFile(f.Name()); return string(b) }
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("walk-through hung:\n%s\n%s", redact(read(outF)), redact(read(errF)))
	}
	if err != nil {
		t.Fatalf("walk-through failed: %v\nstdout:\n%s\nstderr:\n%s", err, redact(read(outF)), redact(read(errF)))
	}
	if out := read(outF); !strings.Contains(out, "\nGREETING=hello\n") || !strings.Contains(out, "DB_URL=postgres://db.internal/app") {
		t.Fatalf("the last command's environment has no GREETING:\n%s", redact(out))
	}
}

// TestRedactHidesSecretFlags: a failing CLI test prints the command it ran
// with the values of secret-bearing flags and tokens hidden.
func TestRedactHidesSecretFlags(t *testing.T) {
	in := "login --method universal-auth --client-id cid --client-secret 8415cfec --password=pw1 --token eyJa.eyJb.sig"
	got := redact(in)
	for _, leak := range []string{"8415cfec", "pw1", "eyJa"} {
		if strings.Contains(got, leak) {
			t.Fatalf("redact(%q) = %q", in, got)
		}
	}
	if !strings.Contains(got, "--client-id cid") {
		t.Fatalf("redact hid more than secrets: %q", got)
	}
}
