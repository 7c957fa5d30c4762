package secret

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// MaxReferenceDepth bounds how deep ${...} references are followed.
const MaxReferenceDepth = 10

// Expansion budget: what one request may make the server do by expanding
// references. Every reference substituted counts once against MaxExpandRefs and
// its substituted bytes against MaxExpandBytes, whether its value came from the
// request's memo or not; each distinct reference is looked up and expanded once
// per request.
const (
	MaxExpandBytes = 16 << 20
	MaxExpandRefs  = 20000
	// MaxRefsPerValue bounds the references one value may hold; larger values
	// are refused on write.
	MaxRefsPerValue = 500
)

var refRE = lazyre.New(`\$\{([a-zA-Z0-9_.\-]+)\}`)

// errBudget is returned, wrapped in an *errs.Error naming the secret, when an
// expansion exceeds its budget.
var errBudget = errors.New("reference expansion budget exceeded")

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

// CountRefs reports how many ${...} references value holds.
func CountRefs(value string) int {
	if !strings.Contains(value, "${") {
		return 0
	}
	return len(refRE().FindAllStringIndex(value, -1))
}

// Lookup finds the value of the secret key in env at path, checking the
// caller may read it. ok is false when there is no such secret (the
// reference is then left as written).
type Lookup func(ctx context.Context, env, path, key string) (value string, skipMultiline bool, ok bool, err error)

// Expand replaces the references in value, found in env at path, following
// references in referenced values up to MaxReferenceDepth, within a fresh
// budget. A cycle, a chain deeper than the limit or an exceeded budget is a 400.
func Expand(ctx context.Context, value, env, path string, lookup Lookup) (string, error) {
	x := NewExpander(lookup)
	return x.Expand(ctx, value, env, path)
}

// Expander expands references for one request: its budget and memo are
// shared by every value it expands. It is not safe for concurrent use.
type Expander struct {
	lookup   Lookup
	maxBytes int
	maxRefs  int
	bytes    int
	refs     int
	memo     map[string]memoValue
	stack    map[string]bool
	// checking: a cycle or a chain deeper than the limit leaves its
	// reference as written and the expansion goes on, so that every
	// reference a value reaches is looked up (and its permission checked).
	checking bool
	cuts     int // chains a checking expansion left as written at the depth limit
}

type memoValue struct {
	value  string
	found  bool
	height int // how many levels of references lie below value
	// at is the depth value was expanded at, and cut whether a checking
	// expansion left a chain below it as written there: reached again
	// nearer the top, it is expanded again, so nothing below is missed.
	at  int
	cut bool
}

// NewExpander returns an expander with the default budget.
func NewExpander(lookup Lookup) *Expander {
	return &Expander{lookup: lookup, maxBytes: MaxExpandBytes, maxRefs: MaxExpandRefs}
}

// Checking makes x look up every reference it can reach, leaving a cycle or
// a chain deeper than the limit as written instead of failing on it: a
// write's check that the writer may read what its value refers to must not
// stop at the first broken reference.
func (x *Expander) Checking() *Expander {
	x.checking = true
	return x
}

// WithBudget sets the expander's limits (for tests and benchmarks).
func (x *Expander) WithBudget(maxBytes, maxRefs int) *Expander {
	x.maxBytes, x.maxRefs = maxBytes, maxRefs
	return x
}

// Expand replaces the references in value, found in env at path.
func (x *Expander) Expand(ctx context.Context, value, env, path string) (string, error) {
	out, _, err := x.expand(ctx, value, env, path, 0)
	if errors.Is(err, errBudget) {
		e := errs.BadRequest("%s", x.budgetMessage())
		e.Err = errBudget
		return "", e
	}
	return out, err
}

// expand returns value expanded and the height of its reference tree.
func (x *Expander) expand(ctx context.Context, value, env, path string, depth int) (string, int, error) {
	if !strings.Contains(value, "${") {
		return value, 0, nil
	}
	locs := refRE().FindAllStringSubmatchIndex(value, -1)
	if len(locs) == 0 {
		return value, 0, nil
	}
	if depth >= MaxReferenceDepth {
		if x.checking {
			x.cuts++
			return value, 0, nil
		}
		return "", 0, errDepth()
	}
	var b strings.Builder
	last, height := 0, 1
	for _, l := range locs {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		inner := value[l[2]:l[3]]
		r := ParseRef(inner)
		tEnv, tPath := env, path
		if r.Env != "" {
			tEnv, tPath = r.Env, r.Path
		}
		id := tEnv + ":" + tPath + ":" + r.Key
		if x.stack[id] {
			if x.checking {
				x.cuts++ // left as written: what lies beyond was not checked here
				continue
			}
			return "", 0, errs.BadRequest("Secret reference cycle detected at ${%s}", truncate(inner, 128))
		}
		x.refs++
		if x.refs > x.maxRefs {
			return "", 0, errBudget
		}
		m, seen := x.memo[id]
		if seen && m.cut {
			if depth+1 < m.at {
				seen = false // see memoValue.cut
			} else {
				x.cuts++ // what encloses it was cut too
			}
		}
		if !seen {
			if x.memo == nil {
				x.memo, x.stack = map[string]memoValue{}, map[string]bool{}
			}
			v, _, ok, err := x.lookup(ctx, tEnv, tPath, r.Key)
			if err != nil {
				return "", 0, err
			}
			h, cuts := 0, x.cuts
			if ok {
				x.stack[id] = true
				v, h, err = x.expand(ctx, v, tEnv, tPath, depth+1)
				delete(x.stack, id)
				if err != nil {
					return "", 0, err
				}
			}
			m = memoValue{value: v, found: ok, height: h, at: depth + 1, cut: x.cuts > cuts}
			x.memo[id] = m
		} else if depth+1+m.height > MaxReferenceDepth && !x.checking {
			return "", 0, errDepth() // reached deeper here than where it was first expanded
		}
		height = max(height, 1+m.height)
		sub := value[l[0]:l[1]]
		if m.found {
			sub = m.value
		}
		x.bytes += len(sub)
		if x.bytes > x.maxBytes {
			return "", 0, errBudget
		}
		b.Grow(l[0] - last + len(sub))
		b.WriteString(value[last:l[0]])
		b.WriteString(sub)
		last = l[1]
	}
	b.WriteString(value[last:])
	return b.String(), height, nil
}

func (x *Expander) budgetMessage() string {
	return fmt.Sprintf("secret reference expansion exceeds the limits of %d bytes, %d references or %d folders per request", x.maxBytes, x.maxRefs, MaxExpandFolders)
}

func errDepth() error {
	return errs.BadRequest("Secret reference chain is deeper than %d", MaxReferenceDepth)
}
