package web

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// The role editor, shared by organization and project roles: a grid of
// subjects × actions (checkboxes named perm, valued subject:action) and,
// for subjects whose rules may use them, condition fields named
// cond.<subject>.<key>. A secretPath condition is a glob; the others are
// equalities. The domain's role service validates the rules it yields.

// editableConditions are the condition keys the grid offers, with their operator.
var editableConditions = map[string]string{"environment": "$eq", "secretPath": "$glob", "identityId": "$eq"}

type editorCell struct {
	Action string
	On     bool
}

type editorCond struct {
	Key, Op, Value string
}

type editorRow struct {
	Subject string
	Cells   []editorCell
	Conds   []editorCond
}

// roleEditor is what the editor template renders.
type roleEditor struct {
	Rows []editorRow
	// Advanced holds the rules as JSON when the grid cannot show them
	// (inverted rules, several rules on one subject, other conditions).
	Advanced string
}

// newRoleEditor lays out rules on the grid of specs.
func newRoleEditor(specs []authz.SubjectSpec, rules []authz.Rule) roleEditor {
	bySubject := map[string]authz.Rule{}
	fits := true
	for _, r := range rules {
		if _, dup := bySubject[r.Subject]; dup || r.Inverted {
			fits = false
		}
		for k, c := range r.Conditions {
			if op, ok := editableConditions[k]; !ok || len(c) != 1 || c[0].Op != op {
				fits = false
			}
		}
		bySubject[r.Subject] = r
	}
	var ed roleEditor
	if !fits {
		b, _ := json.MarshalIndent(rules, "", "  ")
		ed.Advanced = string(b)
		bySubject = nil
	}
	for _, s := range specs {
		r := bySubject[s.Subject]
		row := editorRow{Subject: s.Subject}
		for _, a := range s.Actions {
			row.Cells = append(row.Cells, editorCell{a, slices.Contains(r.Actions, a)})
		}
		for _, k := range s.Conditions {
			op, ok := editableConditions[k]
			if !ok {
				continue
			}
			c := editorCond{Key: k, Op: op}
			if cond := r.Conditions[k]; len(cond) == 1 {
				c.Value = cond[0].Value
			}
			row.Conds = append(row.Conds, c)
		}
		ed.Rows = append(ed.Rows, row)
	}
	return ed
}

type editorRule struct {
	Subject    string                       `json:"subject"`
	Action     []string                     `json:"action"`
	Conditions map[string]map[string]string `json:"conditions,omitempty"`
}

// rulesFromForm reads the editor's fields into rules JSON for the role
// service; a filled advanced field wins over the grid.
func rulesFromForm(form url.Values, specs []authz.SubjectSpec) (json.RawMessage, error) {
	if adv := strings.TrimSpace(form.Get("advanced")); adv != "" {
		if !json.Valid([]byte(adv)) {
			return nil, errs.BadRequest("The rules in JSON are not valid JSON")
		}
		return json.RawMessage(adv), nil
	}
	checked := map[string]bool{}
	for _, v := range form["perm"] {
		checked[v] = true
	}
	rules := []editorRule{}
	for _, s := range specs {
		r := editorRule{Subject: s.Subject}
		for _, a := range s.Actions {
			if checked[s.Subject+":"+a] {
				r.Action = append(r.Action, a)
			}
		}
		if len(r.Action) == 0 {
			continue
		}
		for _, k := range s.Conditions {
			op, ok := editableConditions[k]
			v := strings.TrimSpace(form.Get("cond." + s.Subject + "." + k))
			if !ok || v == "" {
				continue
			}
			if r.Conditions == nil {
				r.Conditions = map[string]map[string]string{}
			}
			r.Conditions[k] = map[string]string{op: v}
		}
		rules = append(rules, r)
	}
	return json.Marshal(rules)
}

// ruleSummary is one rule in words: "can read, edit secrets where
// environment is dev and secretPath matches /app/**".
func ruleSummary(r authz.Rule) string {
	var b strings.Builder
	if r.Inverted {
		b.WriteString("cannot ")
	} else {
		b.WriteString("can ")
	}
	b.WriteString(strings.Join(r.Actions, ", "))
	b.WriteString(" " + r.Subject)
	keys := make([]string, 0, len(r.Conditions))
	for k := range r.Conditions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteString(" where ")
		} else {
			b.WriteString(" and ")
		}
		for j, o := range r.Conditions[k] {
			if j > 0 {
				b.WriteString(" and ")
			}
			b.WriteString(k)
			switch o.Op {
			case "$eq":
				b.WriteString(" is " + o.Value)
			case "$neq":
				b.WriteString(" is not " + o.Value)
			case "$glob":
				b.WriteString(" matches " + o.Value)
			case "$in":
				b.WriteString(" is one of " + strings.Join(o.In, ", "))
			default:
				b.WriteString(" " + o.Op + " " + o.Value)
			}
		}
	}
	return b.String()
}
