package authz

import (
	"fmt"
	"strings"
)

// IsGlob reports whether a secretPath holds glob syntax.
func IsGlob(path string) bool { return strings.ContainsAny(path, "*?{}[]") }

// ScopePattern is the secretPath glob a service-token scope grants: a plain
// path reaches itself and every folder below it ("/app" → "/app/**", "/" →
// "/**"); a path that is already a glob is taken as written.
func ScopePattern(path string) string {
	if IsGlob(path) {
		return path
	}
	return strings.TrimSuffix(path, "/") + "/**"
}

// ServiceTokenRules builds a service token's rules in its project: for each
// scope, reading (read, describeSecret, readValue) and, with write, creating,
// editing and deleting secrets, folders and imports, each conditioned on the
// scope's environment ($eq) and path ($glob, ScopePattern). A token without
// read or write gets no rules; any other may also read its project and its
// environments. It fails on a path that is not a valid glob.
func ServiceTokenRules(scopes []TokenScope, read, write bool) ([]Rule, error) {
	var out []Rule
	for _, sc := range scopes {
		pat := ScopePattern(sc.SecretPath)
		g, err := compileGlob(pat)
		if err != nil {
			return nil, fmt.Errorf("secretPath %q: %w", sc.SecretPath, err)
		}
		cond := func() Conditions {
			return Conditions{
				"environment": Condition{{Op: "$eq", Value: sc.Environment}},
				"secretPath":  Condition{{Op: "$glob", Value: pat, glob: g}},
			}
		}
		if read {
			out = append(out,
				Rule{Subject: SubSecrets, Actions: []string{ActRead, ActDescribeSecret, ActReadValue}, Conditions: cond()},
				Rule{Subject: SubFolders, Actions: []string{ActRead}, Conditions: cond()},
				Rule{Subject: SubImports, Actions: []string{ActRead}, Conditions: cond()})
		}
		if write {
			for _, sub := range []string{SubSecrets, SubFolders, SubImports} {
				out = append(out, Rule{Subject: sub, Actions: []string{ActCreate, ActEdit, ActDelete}, Conditions: cond()})
			}
		}
	}
	if len(out) > 0 {
		// The project itself (name, slug, environments): Infisical's CLI reads it
		// before some commands, e.g. to find a project's slug.
		out = append(out, Rule{Subject: SubWorkspace, Actions: []string{ActRead}}, Rule{Subject: SubEnvironments, Actions: []string{ActRead}})
	}
	return out, nil
}
