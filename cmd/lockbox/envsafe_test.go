package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestEnvRefusal: names that make a child run code or trust another
// server are left out of `run` and of a dotenv export (the audit's
// PYTHONWARNINGS with BROWSER, GIT_EXTERNAL_DIFF, MAKEFLAGS, LESSOPEN, PS2
// and MAILPATH ran a writer's command), unless allowed by name; ordinary
// names pass.
func TestEnvRefusal(t *testing.T) {
	for _, k := range []string{"PYTHONWARNINGS", "BROWSER", "GIT_EXTERNAL_DIFF", "MAKEFLAGS", "LESSOPEN", "PS2", "MAILPATH",
		"RPROMPT", "NODE_TLS_REJECT_UNAUTHORIZED", "npm_config_registry", "PIP_INDEX_URL", "AWS_ENDPOINT_URL_S3", "CGO_LDFLAGS",
		"GOPROXY", "XDG_CONFIG_HOME", "BASH_ENV", "LD_PRELOAD",
		// The second CLI audit's: each ran a command, sent a nested client's token elsewhere or replaced it.
		"GIT_SEQUENCE_EDITOR", "MANPAGER", "PSQL_PAGER", "SYSTEMD_PAGER", "SUDO_ASKPASS", "SUDO_EDITOR", "FCEDIT", "SHELL",
		"http_proxy", "HTTP_PROXY", "ALL_PROXY", "INFISICAL_TOKEN", "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET",
		"LOCKBOX_UNIVERSAL_AUTH_CLIENT_ID", "LOCKBOX_TOKEN", "KUBECONFIG", "DOCKER_HOST", "OPENSSL_CONF", "SSLKEYLOGFILE",
		"VIMINIT", "LUA_INIT_5_4", "RUSTC_WRAPPER", "JAVA_OPTS", "MAVEN_OPTS", "ERL_AFLAGS", "PSQLRC", "VAULT_ADDR"} {
		if envRefusal(k, "x", false, nil) == "" {
			t.Errorf("%s is let into a child's environment", k)
		}
		if envRefusal(k, "x", false, map[string]bool{k: true}) != "" {
			t.Errorf("%s is refused though allowed by name", k)
		}
	}
	for _, k := range []string{"DATABASE_URL", "API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "HTTPS_PROXY", "NO_PROXY", "AWS_REGION", "PIPELINE",
		"DOCKER_PASSWORD", "EDITORIAL_KEY", "PAGERDUTY_TOKEN"} {
		if why := envRefusal(k, "x", true, nil); why != "" {
			t.Errorf("%s is refused: %s", k, why)
		}
	}
}

// TestDotenvExportIsOneLineAKeyWhereItMustBe: a value with a line break and
// a quote is written on one line ($'...'), so no reader that goes line by
// line, or gives up on a line it cannot parse (python-dotenv did, and read
// the value's next lines as API_URL and LD_PRELOAD), finds a variable its
// writer chose; bash reads every value back exactly. A multi-line value
// without a quote keeps its lines, which dotenv readers read back.
func TestDotenvExportIsOneLineAKeyWhereItMustBe(t *testing.T) {
	vals := map[string]string{
		"INJECT": "x'\nAPI_URL=https://attacker.example\nLD_PRELOAD=/tmp/evil.so\n#",
		"MIXED":  "a\\b 'c' \r\n\t$HOME `id` \x01\x7f\xe2\x80\xa8 é end",
		"PEM":    "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"PLAIN":  "it's",
		// python-dotenv reads \' in single quotes as a quote: 'x\' ran on
		// into the next value, whose lines became variables.
		"A_BACKSLASH": `x\`,
		"B_LINES":     "first\nLD_PRELOAD=/tmp/evil.so\nlast",
	}
	keys := []string{"A_BACKSLASH", "B_LINES", "INJECT", "MIXED", "PEM", "PLAIN"}
	var b strings.Builder
	if err := writeExport(&b, "dotenv", keys, vals); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "API_URL=") {
			t.Fatalf("a value's line is a variable of its own: %q in\n%s", line, out)
		}
	}
	// Every single-quoted value holds no quote or backslash, so no dotenv
	// reader can run it on into the next: a reader that goes by quotes
	// sees exactly the keys written.
	if !strings.Contains(out, "A_BACKSLASH=$'x\\\\'") {
		t.Fatalf("a value with a backslash is not written as $'...':\n%s", out)
	}
	if !strings.Contains(out, "PEM='-----BEGIN KEY-----\nabc\n") {
		t.Fatalf("a multi-line value without a quote is not kept as it is:\n%s", out)
	}
	f := filepath.Join(t.TempDir(), "x.env")
	if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		got, err := exec.Command("bash", "-c", `set -a; . "$0"; printf %s "${!1}"`, f, k).Output()
		if err != nil || string(got) != vals[k] {
			t.Errorf("bash reads %s as %q (%v), want %q", k, got, err, vals[k])
		}
	}
}

// TestDotenvReadsWhatItWrites: lockbox's own .env reader takes back every
// value the dotenv export writes, $'...' included.
func TestDotenvReadsWhatItWrites(t *testing.T) {
	vals := map[string]string{"E": `x\`, "A": "x'\ny", "B": "a\\b 'c' \r\n\t$HOME \x01\x7f\xe2\x80\xa8 é \\x41 end", "C": "plain", "D": "l1\nl2",
		"F": "\x1b]0;PWNED\a\x1b[2J", "G": "\u009b2J\u009d0;t\u009c é"}
	keys := []string{"A", "B", "C", "D", "E", "F", "G"}
	var b strings.Builder
	if err := writeExport(&b, "dotenv", keys, vals); err != nil {
		t.Fatal(err)
	}
	// Escape sequences and C1 controls are written escaped, not raw (they
	// drove the terminal of whoever printed the export).
	if strings.ContainsAny(b.String(), "\x1b\a\u009b\u009c\u009d") {
		t.Fatalf("raw control characters in the export:\n%q", b.String())
	}
	got, err := parseDotenv(b.String())
	if err != nil || len(got) != len(keys) {
		t.Fatalf("%v %v from\n%s", got, err, b.String())
	}
	for _, p := range got {
		if vals[p.key] != p.value {
			t.Errorf("%s read back as %q, want %q", p.key, p.value, vals[p.key])
		}
	}
}

// TestYAMLExportReadsBack: a YAML export escapes what YAML does not take in
// a double-quoted scalar as it is (a DEL made a YAML reader refuse the whole
// file; U+0085 came back as a space), and every value reads back exactly.
func TestYAMLExportReadsBack(t *testing.T) {
	vals := map[string]string{"DEL": "a\x7fb", "NEL": "a\u0085b", "BOM": "\ufeffx", "C1": "\u009b[2J", "LS": "a\u2028b", "HTML": "<&>", "Q": `"'\`}
	keys := []string{"BOM", "C1", "DEL", "HTML", "LS", "NEL", "Q"}
	var b strings.Builder
	if err := writeExport(&b, "yaml", keys, vals); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x7f\u0085\u009b\ufeff") {
		t.Fatalf("raw characters in the YAML:\n%q", b.String())
	}
	var got map[string]string
	if err := yaml.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	for k, v := range vals {
		if got[k] != v {
			t.Errorf("%s read back as %q, want %q", k, got[k], v)
		}
	}
}

// TestJSONOutputEscapesC1Controls: JSON output (an export, --output json)
// writes DEL and the C1 controls as \u escapes, not raw (a C1 CSI drove
// terminals that act on 8-bit controls), and reads back exactly.
func TestJSONOutputEscapesC1Controls(t *testing.T) {
	vals := map[string]string{"C1": "\u009b2J\u009d0;t\u009c", "DEL": "a\x7fb", "OK": "é ü"}
	keys := []string{"C1", "DEL", "OK"}
	var b strings.Builder
	if err := writeExport(&b, "json", keys, vals); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	c := &cli{output: "json", stdout: &stdout}
	if err := c.print(vals, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{b.String(), stdout.String()} {
		if strings.ContainsAny(out, "\x7f\u009b\u009c\u009d") {
			t.Fatalf("raw controls in the JSON:\n%q", out)
		}
	}
	var got []map[string]string
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil || len(got) != 3 {
		t.Fatalf("%v %v", got, err)
	}
	for _, kv := range got {
		if vals[kv["key"]] != kv["value"] {
			t.Errorf("%s read back as %q", kv["key"], kv["value"])
		}
	}
	var again map[string]string
	if err := json.Unmarshal([]byte(stdout.String()), &again); err != nil || again["C1"] != vals["C1"] {
		t.Fatalf("--output json read back: %v %v", again, err)
	}
}
