package secret

import (
	"context"
	"regexp"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// MaxReferenceDepth bounds how deep ${...} references are followed.
const MaxReferenceDepth = 10

var refRE = regexp.MustCompile(`\$\{([a-zA-Z0-9_.\-]+)\}`)

// Ref is a parsed reference: ${KEY} (same folder), ${env.KEY} (root of env)
// or ${env.a.b.KEY} (folder /a/b of env).
type Ref struct {
	Env  string // empty: the referencing secret's environment
	Path string // empty with Env empty: the referencing secret's folder
	Key  string
}

// ParseRef parses the inside of ${...}.
func ParseRef(s string) Ref {
	parts := strings.Split(s, ".")
	if len(parts) == 1 {
		return Ref{Key: s}
	}
	return Ref{Env: parts[0], Path: "/" + strings.Join(parts[1:len(parts)-1], "/"), Key: parts[len(parts)-1]}
}

// Lookup finds the value of the secret key in env at path, checking the
// caller may read it. ok is false when there is no such secret (the
// reference is then left as written).
type Lookup func(ctx context.Context, env, path, key string) (value string, skipMultiline bool, ok bool, err error)

// Expand replaces the references in value, found in env at path, following
// references in referenced values up to MaxReferenceDepth. A cycle or a
// chain deeper than the limit is a 400.
func Expand(ctx context.Context, value, env, path string, lookup Lookup) (string, error) {
	return expand(ctx, value, env, path, lookup, map[string]bool{}, 0)
}

func expand(ctx context.Context, value, env, path string, lookup Lookup, stack map[string]bool, depth int) (string, error) {
	if !strings.Contains(value, "${") {
		return value, nil
	}
	if depth >= MaxReferenceDepth {
		return "", errs.BadRequest("Secret reference chain is deeper than %d", MaxReferenceDepth)
	}
	var firstErr error
	out := refRE.ReplaceAllStringFunc(value, func(m string) string {
		if firstErr != nil {
			return m
		}
		r := ParseRef(m[2 : len(m)-1])
		tEnv, tPath := env, path
		if r.Env != "" {
			tEnv, tPath = r.Env, r.Path
		}
		id := tEnv + ":" + tPath + ":" + r.Key
		if stack[id] {
			firstErr = errs.BadRequest("Secret reference cycle detected at ${%s}", m[2:len(m)-1])
			return m
		}
		v, _, ok, err := lookup(ctx, tEnv, tPath, r.Key)
		if err != nil {
			firstErr = err
			return m
		}
		if !ok {
			return m
		}
		stack[id] = true
		v, err = expand(ctx, v, tEnv, tPath, lookup, stack, depth+1)
		delete(stack, id)
		if err != nil {
			firstErr = err
			return m
		}
		return v
	})
	if firstErr != nil {
		return "", firstErr
	}
	return out, nil
}
