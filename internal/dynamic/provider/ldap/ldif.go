package ldap

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// An LDIF change record (RFC 2849), reduced to what the provider runs.
type record struct {
	DN     string
	Type   string // add, delete or modify
	Attrs  []ldap.Attribute
	Change []ldap.Change
}

// maxLDIF bounds a template, so a hostile one cannot make parsing expensive.
const maxLDIF = 64 << 10

// parseLDIF reads LDIF change records: "dn:" first, an optional
// "changetype:" (add when absent), then attribute lines for add, or
// "add:/replace:/delete:" groups ended by "-" for modify. Values may be
// base64 ("attr:: ..."); lines starting with one space continue the previous
// line; "#" lines are comments. URL values ("attr:< ...") are refused: a
// template must not make the server read files.
func parseLDIF(text string) ([]record, error) {
	if len(text) > maxLDIF {
		return nil, fmt.Errorf("LDIF is longer than %d bytes", maxLDIF)
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var blocks [][]string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, cur)
			cur = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, " ") && len(cur) > 0:
			cur[len(cur)-1] += line[1:]
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		default:
			cur = append(cur, line)
		}
	}
	flush()
	var out []record
	for i, b := range blocks {
		if i == 0 && len(b) > 0 && strings.HasPrefix(strings.ToLower(b[0]), "version:") {
			b = b[1:]
			if len(b) == 0 {
				continue
			}
		}
		r, err := parseRecord(b)
		if err != nil {
			return nil, fmt.Errorf("LDIF record %d: %v", len(out)+1, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("LDIF has no record")
	}
	return out, nil
}

func splitLine(line string) (attr, value string, err error) {
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", fmt.Errorf("line %q is not \"attribute: value\"", truncate(line))
	}
	attr, rest := strings.TrimSpace(line[:i]), line[i+1:]
	switch {
	case strings.HasPrefix(rest, ":"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest[1:]))
		if err != nil {
			return "", "", fmt.Errorf("attribute %s: bad base64 value", attr)
		}
		return attr, string(b), nil
	case strings.HasPrefix(rest, "<"):
		return "", "", fmt.Errorf("attribute %s: URL values are not allowed", attr)
	}
	return attr, strings.TrimLeft(rest, " "), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseRecord(lines []string) (record, error) {
	var r record
	attr, dn, err := splitLine(lines[0])
	if err != nil {
		return r, err
	}
	if !strings.EqualFold(attr, "dn") || strings.TrimSpace(dn) == "" {
		return r, errors.New(`a record starts with "dn:"`)
	}
	if _, err := ldap.ParseDN(dn); err != nil {
		return r, fmt.Errorf("dn %q: %v", truncate(dn), err)
	}
	r.DN, r.Type = dn, "add"
	lines = lines[1:]
	if len(lines) > 0 {
		if a, v, err := splitLine(lines[0]); err == nil && strings.EqualFold(a, "changetype") {
			r.Type = strings.ToLower(strings.TrimSpace(v))
			lines = lines[1:]
		}
	}
	switch r.Type {
	case "add":
		if len(lines) == 0 {
			return r, errors.New("an add record needs attributes")
		}
		idx := map[string]int{}
		for _, l := range lines {
			a, v, err := splitLine(l)
			if err != nil {
				return r, err
			}
			k := strings.ToLower(a)
			if i, ok := idx[k]; ok {
				r.Attrs[i].Vals = append(r.Attrs[i].Vals, v)
				continue
			}
			idx[k] = len(r.Attrs)
			r.Attrs = append(r.Attrs, ldap.Attribute{Type: a, Vals: []string{v}})
		}
	case "delete":
		if len(lines) > 0 {
			return r, errors.New("a delete record takes no attributes")
		}
	case "modify":
		ops := map[string]uint{"add": ldap.AddAttribute, "replace": ldap.ReplaceAttribute, "delete": ldap.DeleteAttribute}
		for len(lines) > 0 {
			op, target, err := splitLine(lines[0])
			if err != nil {
				return r, err
			}
			code, ok := ops[strings.ToLower(op)]
			if !ok {
				return r, fmt.Errorf("modify operation %q is not add, replace or delete", truncate(op))
			}
			target = strings.TrimSpace(target)
			ch := ldap.Change{Operation: code, Modification: ldap.PartialAttribute{Type: target}}
			lines = lines[1:]
			for len(lines) > 0 && lines[0] != "-" {
				a, v, err := splitLine(lines[0])
				if err != nil {
					return r, err
				}
				if !strings.EqualFold(a, target) {
					return r, fmt.Errorf("attribute %s inside a change of %s", a, target)
				}
				ch.Modification.Vals = append(ch.Modification.Vals, v)
				lines = lines[1:]
			}
			if len(lines) > 0 {
				lines = lines[1:] // the "-"
			}
			r.Change = append(r.Change, ch)
		}
		if len(r.Change) == 0 {
			return r, errors.New("a modify record needs at least one change")
		}
	default:
		return r, fmt.Errorf("changetype %q is not supported (add, delete, modify)", truncate(r.Type))
	}
	return r, nil
}
