package main

import (
	"fmt"
	"io"

	"github.com/lockbox-dev/lockbox/internal/dotenv"
)

// envRefusal says why a secret key (with its value) is not put into an
// environment or a dotenv file, or "" if it is (dotenv.Refusal; a name that
// makes programs run code passes when allowed by --allow-env).
func envRefusal(key, value string, shell bool, allow map[string]bool) string {
	why, code := dotenv.Refusal(key, value, shell)
	if code {
		if allow[key] {
			return ""
		}
		return fmt.Sprintf("%s (--allow-env %s sets it)", why, key)
	}
	return why
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
