package main

import (
	"fmt"
	"io"
	"strings"
)

// codeVars are environment variables that make a shell, the dynamic loader
// or an interpreter run code or load libraries the variable names. A secret
// of such a name, which any writer of the folder (or of a folder it
// imports) can create, would run their code on the machine of whoever runs
// `lockbox run` or sources an export; they are left out unless allowed by
// name (--allow-env).
var codeVars = map[string]bool{
	"BASH_ENV": true, "ENV": true, "SHELLOPTS": true, "BASHOPTS": true, "PS4": true, "PROMPT_COMMAND": true,
	"IFS": true, "PATH": true, "NODE_OPTIONS": true, "PYTHONSTARTUP": true, "PYTHONPATH": true,
	"PERL5OPT": true, "PERL5LIB": true, "RUBYOPT": true, "JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true,
	"GIT_SSH_COMMAND": true, "GIT_EXEC_PATH": true,
}

// codePrefixes are families of such variables: the loaders' and bash's
// exported functions.
var codePrefixes = []string{"LD_", "DYLD_", "BASH_FUNC_"}

// envRefusal says why a secret key (with its value) is not put into an
// environment or a dotenv file, or "" if it is. shell asks also that the
// key be a shell name, for a file that is sourced.
func envRefusal(key, value string, shell bool, allow map[string]bool) string {
	switch {
	case key == "" || strings.ContainsAny(key, "=\x00"):
		return "it is not an environment variable name"
	case strings.ContainsRune(value, 0):
		return "its value holds a NUL byte, which no environment can carry"
	case shell && !isShellName(key):
		return "it is not a shell variable name (letters, digits and _, not starting with a digit), so sourcing it would run it"
	}
	if allow[key] {
		return ""
	}
	up := strings.ToUpper(key)
	if codeVars[up] {
		return fmt.Sprintf("it makes programs run code or load libraries (--allow-env %s sets it)", key)
	}
	for _, p := range codePrefixes {
		if strings.HasPrefix(up, p) {
			return fmt.Sprintf("it makes programs run code or load libraries (--allow-env %s sets it)", key)
		}
	}
	return ""
}

func isShellName(k string) bool {
	for i, r := range k {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return k != ""
}

// envSafe returns the keys envRefusal lets through, in order, and warns on
// w about each one left out (its name quoted, never its value).
func envSafe(w io.Writer, keys []string, vals map[string]string, shell bool, allow []string) []string {
	allowed := make(map[string]bool, len(allow))
	for _, a := range allow {
		allowed[a] = true
	}
	out := keys[:0:0]
	for _, k := range keys {
		if why := envRefusal(k, vals[k], shell, allowed); why != "" {
			fmt.Fprintf(w, "lockbox: left out secret %q: %s\n", k, why)
			continue
		}
		out = append(out, k)
	}
	return out
}
