// Package dotenv writes secrets as a dotenv file that a shell may source
// and dotenv readers parse, and says which secrets must be left out of one
// (or out of an environment): the CLI's exports and `lockbox run`, and the
// dashboard's download, share it.
package dotenv

import (
	"fmt"
	"slices"
	"strings"
)

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
	if !strings.ContainsAny(v, "'\\\r") && strings.IndexFunc(v, func(r rune) bool { return r != '\n' && isControl(r) }) < 0 {
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
