package authz

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// glob is a compiled picomatch-style pattern, as Infisical's $glob uses:
// "*" matches within one path segment, "**" across segments ("/app/**" also
// matches "/app" itself), "?" one character other than "/", "{a,b}"
// alternatives and "[a-z]" / "[!a]" classes. Patterns compile to RE2, so a
// match takes time linear in the input.
type glob struct {
	re *regexp.Regexp
}

const maxGlobLen = 512

var errGlob = errors.New("malformed glob pattern")

// compiledGlobs keeps compiled patterns by their text, for every permission
// set and service token that holds them: a set is parsed again whenever its
// cache entry is dropped (any write), and one pattern of 512 characters
// takes up to ~2.6 ms and ~150 KB to compile (about 300 bytes a character),
// so 100 privileges of such patterns cost a member's every request 0.15 to
// 0.45 s of CPU. It holds at most maxInternedGlobChars characters of
// patterns (~75 MB of compiled ones at most); when full, arbitrary entries
// make room.
var compiledGlobs = struct {
	sync.Mutex
	m     map[string]*glob
	chars int
}{m: map[string]*glob{}}

const maxInternedGlobChars = 256 << 10

// compileGlob returns p compiled, from compiledGlobs when it was before.
func compileGlob(p string) (*glob, error) {
	compiledGlobs.Lock()
	g, ok := compiledGlobs.m[p]
	compiledGlobs.Unlock()
	if ok {
		return g, nil
	}
	g, err := compileGlobOnce(p)
	if err != nil {
		return nil, err
	}
	compiledGlobs.Lock()
	defer compiledGlobs.Unlock()
	if old, ok := compiledGlobs.m[p]; ok {
		return old, nil
	}
	for k := range compiledGlobs.m {
		if compiledGlobs.chars+len(p) <= maxInternedGlobChars {
			break
		}
		delete(compiledGlobs.m, k)
		compiledGlobs.chars -= len(k)
	}
	compiledGlobs.m[p] = g
	compiledGlobs.chars += len(p)
	return g, nil
}

// globsCompiled counts compileGlobOnce's compilations (tests).
var globsCompiled atomic.Int64

func compileGlobOnce(p string) (*glob, error) {
	globsCompiled.Add(1)
	if p == "" || len(p) > maxGlobLen || !utf8.ValidString(p) {
		return nil, errGlob
	}
	var b strings.Builder
	b.WriteString(`\A`)
	rest, err := globToRegexp(p, &b, 0)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, errGlob
	}
	b.WriteString(`\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, errGlob
	}
	return &glob{re: re}, nil
}

func (g *glob) match(s string) bool { return g.re.MatchString(s) }

// globToRegexp translates p until its end, or until an unmatched "}" or ","
// when inside braces (depth > 0), returning the untranslated remainder.
func globToRegexp(p string, b *strings.Builder, depth int) (string, error) {
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '*' && strings.HasPrefix(p[i:], "**"):
			atStart := i == 0 || p[i-1] == '/'
			end := i + 2
			atEnd := end == len(p) || p[end] == '/' || (depth > 0 && (p[end] == '}' || p[end] == ','))
			if !atStart || !atEnd {
				b.WriteString(`[^/]*`) // "a**b" behaves like "a*b"
				i = end
				continue
			}
			if end < len(p) && p[end] == '/' {
				// "**/" : zero or more whole segments.
				b.WriteString(`(?:[^/]*(?:/[^/]*)*/)?`)
				i = end + 1
				continue
			}
			// trailing "**": everything below, and the parent itself.
			s := b.String()
			if strings.HasSuffix(s, "/") {
				// written "/" before: make it optional together with the tail.
				b.Reset()
				b.WriteString(s[:len(s)-1])
				b.WriteString(`(?:/.*)?`)
			} else {
				b.WriteString(`.*`)
			}
			i = end
		case c == '*':
			b.WriteString(`[^/]*`)
			i++
		case c == '?':
			b.WriteString(`[^/]`)
			i++
		case c == '[':
			j := i + 1
			if j < len(p) && (p[j] == '!' || p[j] == '^') {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				return "", errGlob
			}
			class := p[i+1 : j]
			neg := strings.HasPrefix(class, "!") || strings.HasPrefix(class, "^")
			if neg {
				class = class[1:]
			}
			if class == "" {
				return "", errGlob
			}
			b.WriteString("[")
			if neg {
				b.WriteString("^/")
			}
			for _, r := range class {
				if r == '\\' || r == '[' || r == ']' || r == '^' {
					b.WriteString(`\`)
				}
				b.WriteRune(r)
			}
			b.WriteString("]")
			i = j + 1
		case c == '{':
			b.WriteString("(?:")
			rest := p[i+1:]
			for {
				var err error
				rest, err = globToRegexp(rest, b, depth+1)
				if err != nil {
					return "", err
				}
				if rest == "" {
					return "", errGlob
				}
				if rest[0] == ',' {
					b.WriteString("|")
					rest = rest[1:]
					continue
				}
				// rest[0] == '}'
				rest = rest[1:]
				break
			}
			b.WriteString(")")
			p, i = rest, 0
		case depth > 0 && (c == '}' || c == ','):
			return p[i:], nil
		case c == '}':
			return "", errGlob
		case c == '\\' && i+1 < len(p):
			b.WriteString(regexp.QuoteMeta(p[i+1 : i+2]))
			i += 2
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			i++
		}
	}
	if depth > 0 {
		return "", errGlob
	}
	return "", nil
}
