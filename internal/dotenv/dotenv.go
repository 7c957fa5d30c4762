// Package dotenv writes secrets as a dotenv file that a shell may source
// and dotenv readers parse, and says which secrets must be left out of one
// (or out of an environment): the CLI's exports and `lockbox run`, and the
// dashboard's download, share it.
package dotenv

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// Pair is one KEY=VALUE of a parsed file.
type Pair struct{ Key, Value string }

// codeVars are environment variables that make a shell, the dynamic loader
// or an interpreter run code or load libraries the variable names, or that
// send a nested lockbox or infisical client's credentials to another
// server. A secret of such a name, which any writer of the folder (or of a
// folder it imports) can create, would run their code on the machine of
// whoever runs `lockbox run` or sources an export; they are left out unless
// a caller allows them by name (the CLI's --allow-env). The list is of the well-known ones, not
// every program's.
var codeVars = map[string]bool{
	// Shells (prompts and mail checks expand $(...) in an interactive one).
	"BASH_ENV": true, "ENV": true, "SHELLOPTS": true, "BASHOPTS": true, "PS0": true, "PS1": true, "PS2": true,
	"PS3": true, "PS4": true, "PROMPT_COMMAND": true, "PROMPT": true, "PROMPT2": true, "PROMPT3": true, "PROMPT4": true,
	"RPROMPT": true, "RPROMPT2": true, "RPS1": true, "RPS2": true, "MAIL": true, "MAILPATH": true, "MAILCHECK": true,
	"IFS": true, "PATH": true, "ZDOTDIR": true, "CDPATH": true, "HOME": true, "XDG_CONFIG_HOME": true,
	// Programs that run a command a variable names.
	"PAGER": true, "GIT_PAGER": true, "EDITOR": true, "VISUAL": true, "GIT_EDITOR": true, "BROWSER": true,
	"GIT_ASKPASS": true, "SSH_ASKPASS": true, "GIT_SSH": true, "GIT_SSH_COMMAND": true, "GIT_EXEC_PATH": true,
	"GIT_PROXY_COMMAND": true, "GIT_EXTERNAL_DIFF": true, "GIT_TEMPLATE_DIR": true, "LESSOPEN": true,
	"LESSCLOSE": true, "MAKEFLAGS": true, "MFLAGS": true, "GNUMAKEFLAGS": true, "CC": true, "CXX": true,
	"SHELL": true, "FCEDIT": true, "KUBECONFIG": true, "OPENSSL_CONF": true, "OPENSSL_ENGINES": true,
	"VIMINIT": true, "EXINIT": true, "PSQLRC": true, "R_PROFILE": true, "R_PROFILE_USER": true, "VAULT_ADDR": true,
	"RUSTC": true, "RUSTC_WRAPPER": true, "RUSTC_WORKSPACE_WRAPPER": true, "CARGO_BUILD_RUSTC_WRAPPER": true,
	"JAVA_OPTS": true, "MAVEN_OPTS": true, "GRADLE_OPTS": true, "ERL_AFLAGS": true, "ERL_ZFLAGS": true, "ERL_FLAGS": true,
	"DOCKER_HOST": true, "DOCKER_CONTEXT": true, "DOCKER_CONFIG": true, "DOCKER_TLS_VERIFY": true, "DOCKER_CERT_PATH": true,
	// Interpreters and runtimes.
	"NODE_OPTIONS": true, "NODE_PATH": true, "PYTHONSTARTUP": true, "PYTHONPATH": true, "PYTHONHOME": true,
	"PYTHONWARNINGS": true, "PYTHONBREAKPOINT": true, "PYTHONUSERBASE": true, "PYTHONEXECUTABLE": true,
	"PERL5OPT": true, "PERL5LIB": true, "PERLLIB": true, "PERL5DB": true, "RUBYOPT": true, "RUBYLIB": true,
	"GEM_HOME": true, "GEM_PATH": true, "BUNDLE_GEMFILE": true,
	"JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true, "JDK_JAVA_OPTIONS": true, "CLASSPATH": true,
	"DOTNET_STARTUP_HOOKS": true, "PHPRC": true, "PHP_INI_SCAN_DIR": true, "GCONV_PATH": true,
	// Where tools fetch code from (a module proxy, a package index).
	"GOPROXY": true, "GOSUMDB": true, "GONOSUMDB": true, "GONOSUMCHECK": true, "GOINSECURE": true, "GOFLAGS": true,
	"GOTOOLCHAIN": true, "GOENV": true, "GONOPROXY": true, "GOPRIVATE": true,
	// What a client trusts for TLS: with a proxy, the child's HTTPS and its credentials.
	"NODE_TLS_REJECT_UNAUTHORIZED": true, "NODE_EXTRA_CA_CERTS": true, "GIT_SSL_NO_VERIFY": true, "GIT_SSL_CAINFO": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "REQUESTS_CA_BUNDLE": true, "CURL_CA_BUNDLE": true,
	// Where TLS session keys are written (any reader of that file reads the child's HTTPS).
	"SSLKEYLOGFILE": true,
	// Proxies that see plain HTTP whole (an http:// API URL's token):
	// HTTPS_PROXY sees only a tunnel's host, and stays a secret's to set.
	"HTTP_PROXY": true, "ALL_PROXY": true,
}

// codePrefixes are families of such variables: the loaders', bash's
// exported functions, git's configuration from the environment
// (GIT_CONFIG_COUNT, GIT_CONFIG_KEY_0=core.sshCommand, ...), cgo's compiler
// flags, pip's and npm's settings (index, registry, scripts), the AWS
// SDKs' endpoints, and a nested lockbox or infisical client's own settings
// (where it sends its token, and the token or client secret it uses: a
// writer's INFISICAL_TOKEN made a nested client read the writer's secrets).
var codePrefixes = []string{"LD_", "DYLD_", "BASH_FUNC_", "GIT_CONFIG", "CGO_", "PIP_", "NPM_CONFIG_", "AWS_ENDPOINT_URL",
	"LOCKBOX_", "INFISICAL_", "LUA_INIT"}

// codeSuffixes name the commands programs run by a variable of their own:
// MANPAGER, PSQL_PAGER, SYSTEMD_PAGER, GIT_SEQUENCE_EDITOR, SUDO_EDITOR,
// SUDO_ASKPASS, ...
var codeSuffixes = []string{"PAGER", "EDITOR", "ASKPASS"}

// Refusal says why a secret key (with its value) is not put into an
// environment or a dotenv file, or "" if it is. shell asks also that the
// key be a shell name, for a file that is sourced. code reports that the
// reason is only that the name makes programs run code or load libraries:
// a caller may let such a key through by name.
func Refusal(key, value string, shell bool) (why string, code bool) {
	switch {
	case key == "" || strings.ContainsAny(key, "=\x00"):
		return "it is not an environment variable name", false
	case strings.ContainsRune(value, 0):
		return "its value holds a NUL byte, which no environment can carry", false
	case shell && !IsName(key):
		return "its name holds characters other than letters, digits, _ . and -, so sourcing it would run it", false
	}
	up := strings.ToUpper(key)
	if codeVars[up] || slices.ContainsFunc(codePrefixes, func(p string) bool { return strings.HasPrefix(up, p) }) ||
		slices.ContainsFunc(codeSuffixes, func(p string) bool { return strings.HasSuffix(up, p) }) {
		return "it makes programs run code or load libraries", true
	}
	return "", false
}

// IsShellName reports whether k is a shell variable's name: letters,
// digits and _, not starting with a digit. A sourced line whose name is not
// one is run as a command, and the shell's "not found" error prints the
// value with it.
func IsShellName(k string) bool {
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return k != ""
}

// IsName reports whether k is harmless as the start of a line a
// shell sources: letters, digits, _ . and -. A name that is not a shell
// variable (A.B, my-key) makes the line a command named "A.B=value",
// found nowhere; docker's --env-file and dotenv readers take such names.
func IsName(k string) bool {
	for _, r := range k {
		if !(r == '_' || r == '.' || r == '-' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return k != ""
}

// SingleQuoted reports whether Quote writes v in single quotes: it holds
// no quote, backslash, carriage return or control character but a line
// break or a tab. Such a value reads back exactly in every shell (POSIX sh
// and dash included) and in Node's dotenv; python-dotenv (and
// dotenv-expand) still fill in a ${NAME} in it from their environment. The
// other form, bash's $'...', does not exist in dash, where a quote in it
// left the rest of the file to be run as code.
func SingleQuoted(v string) bool {
	return !strings.ContainsAny(v, "'\\\r") && strings.IndexFunc(v, func(r rune) bool { return r != '\n' && isControl(r) }) < 0
}

// Quote writes a value the shell and dotenv readers take back: in
// single quotes when it holds no quote, backslash or carriage return (a
// multi-line value, a PEM key, keeps its lines), else on one line in bash's
// $'...' (\n, \', \\ and \xHH escapes). python-dotenv reads \' inside
// single quotes as a quote, so 'x\' ran on into the next value, and a
// quote closed, escaped and reopened (as a shell writes one) made it give
// up on the line: either way it then read the lines of a multi-line value
// as variables of their own (a writer's way to set API_URL or LD_PRELOAD
// for a reader of the file). On one line, a dotenv reader gets the escaped text, and nothing
// more; bash and the CLI's secrets set --file read it back exactly.
//
// A control character other than a line break or a tab (an escape
// sequence, a C1 control) also makes the value $'...': in single quotes it
// reached the terminal of whoever printed the export.
func Quote(v string) string {
	if SingleQuoted(v) {
		return "'" + v + "'"
	}
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else if c == 0xc2 && i+1 < len(v) && v[i+1] >= 0x80 && v[i+1] <= 0x9f { // a C1 control, U+0080-U+009F
				fmt.Fprintf(&b, `\x%02x\x%02x`, c, v[i+1])
				i++
			} else if c == '#' {
				// Node's dotenv reads this form unquoted, up to a #.
				b.WriteString(`\x23`)
			} else if c == 0xe2 && i+2 < len(v) && v[i+1] == 0x80 && (v[i+2] == 0xa8 || v[i+2] == 0xa9) {
				// U+2028 and U+2029 end a line for Node's dotenv: what
				// followed was read as a variable of its own.
				fmt.Fprintf(&b, `\x%02x\x%02x\x%02x`, c, v[i+1], v[i+2])
				i += 2
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// isControl reports a control character other than a tab.
func isControl(r rune) bool { return r != '\t' && (r < 0x20 || r >= 0x7f && r < 0xa0) }

// envKey is a key Parse takes: a shell name, with . and - besides.
var envKey = lazyre.New(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// cEscapes are the one-character escapes of bash's $'...' quoting.
var cEscapes = map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', 'a': '\a', 'b': '\b', 'e': 0x1b, 'E': 0x1b, 'f': '\f', 'v': '\v',
	'\\': '\\', '\'': '\'', '"': '"', '?': '?'}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// Parse reads a .env file: KEY=VALUE lines, optional "export ",
// # comments, single-quoted values taken literally (a quote inside is
// written as the shell does: close, backslash-quote, reopen), double-quoted values with \n \t \r \" \\ \$ escapes,
// both possibly spanning lines, bash's $'...' (as Quote writes a value
// with a quote, backslash or carriage return), and unquoted values up to a
// " #" comment.
func Parse(s string) ([]Pair, error) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var out []Pair
	pos, line := 0, 1
	fail := func(format string, a ...any) ([]Pair, error) {
		return nil, fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, a...))
	}
	for pos < len(s) {
		end := strings.IndexByte(s[pos:], '\n')
		if end < 0 {
			end = len(s) - pos
		}
		raw := s[pos : pos+end]
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			pos += end + 1
			line++
			continue
		}
		lead := len(raw) - len(strings.TrimLeft(raw, " \t"))
		cur := pos + lead
		if strings.HasPrefix(s[cur:], "export ") {
			cur += len("export ")
		}
		eq := strings.IndexByte(s[cur:pos+end], '=')
		if eq <= 0 {
			return fail("not KEY=VALUE")
		}
		key := strings.TrimSpace(s[cur : cur+eq])
		if !envKey().MatchString(key) {
			// Not quoted: a line that is not a key is often a piece of a
			// multi-line value left unquoted (a PEM key), which must not
			// reach a log.
			return fail("not a valid key (letters, digits, _ . -, not starting with a digit)")
		}
		cur += eq + 1
		for cur < len(s) && (s[cur] == ' ' || s[cur] == '\t') {
			cur++
		}
		var val strings.Builder
		startLine := line
		switch {
		case cur < len(s) && s[cur] == '\'':
			for {
				close := strings.IndexByte(s[cur+1:], '\'')
				if close < 0 {
					line = startLine
					return fail("unterminated single quote")
				}
				val.WriteString(s[cur+1 : cur+1+close])
				cur += 1 + close // at the closing quote
				if strings.HasPrefix(s[cur:], `'\''`) {
					val.WriteByte('\'')
					cur += 3 // at the reopening quote
					continue
				}
				cur++
				break
			}
		case strings.HasPrefix(s[cur:], "$'"):
			// bash's ANSI-C quoting, as Quote writes a value with a
			// line break and a quote.
			cur += 2
			for {
				if cur >= len(s) {
					line = startLine
					return fail("unterminated $' quote")
				}
				ch := s[cur]
				cur++
				if ch == '\'' {
					break
				}
				if ch != '\\' || cur >= len(s) {
					val.WriteByte(ch)
					continue
				}
				e := s[cur]
				cur++
				if r, ok := cEscapes[e]; ok {
					val.WriteByte(r)
					continue
				}
				if e == 'x' {
					n, v := 0, byte(0)
					for ; n < 2 && cur < len(s) && isHex(s[cur]); n, cur = n+1, cur+1 {
						v = v<<4 | unhex(s[cur])
					}
					if n > 0 {
						val.WriteByte(v)
						continue
					}
				}
				val.WriteByte('\\')
				val.WriteByte(e)
			}
		case cur < len(s) && s[cur] == '"':
			cur++
			for {
				if cur >= len(s) {
					line = startLine
					return fail("unterminated double quote")
				}
				ch := s[cur]
				if ch == '"' {
					cur++
					break
				}
				if ch == '\\' && cur+1 < len(s) {
					cur++
					switch e := s[cur]; e {
					case 'n':
						val.WriteByte('\n')
					case 't':
						val.WriteByte('\t')
					case 'r':
						val.WriteByte('\r')
					case '\n': // line continuation
					default:
						val.WriteByte(e)
					}
					cur++
					continue
				}
				val.WriteByte(ch)
				cur++
			}
		default:
			stop := strings.IndexByte(s[cur:], '\n')
			if stop < 0 {
				stop = len(s) - cur
			}
			v := s[cur : cur+stop]
			if j := strings.Index(v, " #"); j >= 0 {
				v = v[:j]
			}
			val.WriteString(strings.TrimSpace(v))
			cur += stop
		}
		// The rest of the physical line may only hold a comment.
		stop := strings.IndexByte(s[cur:], '\n')
		if stop < 0 {
			stop = len(s) - cur
		}
		line += strings.Count(s[pos:cur], "\n")
		if t := strings.TrimSpace(s[cur : cur+stop]); t != "" && !strings.HasPrefix(t, "#") {
			return fail("unexpected text after the value (quote a value with spaces or #)")
		}
		out = append(out, Pair{key, val.String()})
		pos = cur + stop + 1
		line++
	}
	return out, nil
}
