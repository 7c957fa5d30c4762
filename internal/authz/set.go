// Package authz decides what an actor may do: Infisical's permission rules
// (subject, actions, conditions, inverted rules) evaluated as CASL does, the
// built-in roles, and the resolution of an actor's roles into a rule set.
package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Action is a permission action such as "read".
type Action = string

// Subject is a permission subject such as "secrets".
type Subject = string

// Actions.
const (
	ActRead             = "read"
	ActCreate           = "create"
	ActEdit             = "edit"
	ActDelete           = "delete"
	ActDescribeSecret   = "describeSecret"
	ActReadValue        = "readValue"
	ActLease            = "lease"
	ActCreateToken      = "create-token"
	ActGetToken         = "get-token"
	ActDeleteToken      = "delete-token"
	ActRevokeAuth       = "revoke-auth"
	ActGrantPrivileges  = "grant-privileges"
	ActAssumePrivileges = "assume-privileges"

	ActReadRootCredential   = "read-root-credential"
	ActCreateRootCredential = "create-root-credential"
	ActEditRootCredential   = "edit-root-credential"
	ActDeleteRootCredential = "delete-root-credential"

	// KMS key ("cmek") actions.
	ActEncrypt          = "encrypt"
	ActDecrypt          = "decrypt"
	ActSign             = "sign"
	ActVerify           = "verify"
	ActRotate           = "rotate"
	ActExportPrivateKey = "export-private-key"

	// Secret rotation ("secret-rotation") actions.
	ActReadGeneratedCredentials = "read-generated-credentials"
	ActRotateSecrets            = "rotate-secrets"

	// ActConnect is the use of an app connection by a rotation ("app-connections").
	ActConnect = "connect"
	// ActReadPrivateKey reads the private key of a certificate lockbox
	// generated (its bundle), as Infisical's certificates "read-private-key".
	ActReadPrivateKey = "read-private-key"
	// SSH host actions.
	ActIssueHostCert = "issue-host-cert"
)

// Subjects.
const (
	SubSecrets        = "secrets"
	SubFolders        = "secret-folders"
	SubImports        = "secret-imports"
	SubDynamicSecrets = "dynamic-secrets"
	SubEnvironments   = "environments"
	SubTags           = "tags"
	SubRole           = "role"
	SubMember         = "member"
	SubGroups         = "groups"
	SubIdentity       = "identity"
	SubWorkspace      = "workspace"
	SubSettings       = "settings"
	SubAuditLogs      = "audit-logs"
	SubSecretRollback = "secret-rollback"
	SubIntegrations   = "integrations"
	SubWebhooks       = "webhooks"
	SubIPAllowList    = "ip-allowlist"
	SubKMS            = "kms"
	SubProject        = "project"
	SubServiceTokens  = "service-tokens"
	// SubCmek is the project's KMS keys (Infisical's "customer managed
	// encryption keys"); SubKMS is the project's own KMS settings.
	SubCmek = "cmek"
	// SubProjectTemplates is the organization's project templates.
	SubProjectTemplates = "project-templates"
	// SubSecretRotation is a project's secret rotations (their settings, the
	// credentials they generate, rotate-now).
	SubSecretRotation = "secret-rotation"
	// SubAppConnections is an organization subject: the admin credentials
	// that rotations act with.
	SubAppConnections = "app-connections"

	// PKI: a project's certificate authorities, the certificates they
	// issue, the templates that bound issuance, and expiry alerts.
	SubCertificateAuthorities = "certificate-authorities"
	SubCertificates           = "certificates"
	SubCertificateTemplates   = "certificate-templates"
	SubPkiAlerts              = "pki-alerts"
	SubPkiCollections         = "pki-collections"
	// SSH certificate authorities, the certificates they issue, the
	// templates that bound them, and registered SSH hosts.
	SubSshCAs           = "ssh-certificate-authorities"
	SubSshCertificates  = "ssh-certificates"
	SubSshCertTemplates = "ssh-certificate-templates"
	SubSshHosts         = "ssh-hosts"
	SubSshHostGroups    = "ssh-host-groups"
)

var generic = []string{ActRead, ActCreate, ActEdit, ActDelete}

// projectSubjects lists each project subject with its actions and the
// condition keys its rules may use.
var projectSubjects = map[string]struct {
	actions    []string
	conditions []string
}{
	SubSecrets: {[]string{ActRead, ActDescribeSecret, ActReadValue, ActCreate, ActEdit, ActDelete}, []string{"environment", "secretPath", "secretName", "secretTags"}},
	SubFolders: {generic, []string{"environment", "secretPath"}},
	SubImports: {generic, []string{"environment", "secretPath"}},
	SubDynamicSecrets: {append(slices.Clone(generic), ActLease, ActReadRootCredential, ActCreateRootCredential,
		ActEditRootCredential, ActDeleteRootCredential), []string{"environment", "secretPath"}},
	SubSecretRollback: {[]string{ActRead, ActCreate}, nil},
	SubEnvironments:   {generic, nil},
	SubTags:           {generic, nil},
	SubRole:           {generic, nil},
	SubMember:         {append(slices.Clone(generic), ActGrantPrivileges, ActAssumePrivileges), nil},
	SubGroups:         {append(slices.Clone(generic), ActGrantPrivileges), nil},
	SubIdentity: {append(slices.Clone(generic), ActGrantPrivileges, ActAssumePrivileges, ActRevokeAuth, ActCreateToken, ActGetToken, ActDeleteToken),
		[]string{"identityId"}},
	SubWorkspace:     {[]string{ActEdit, ActDelete, ActRead}, nil},
	SubSettings:      {generic, nil},
	SubAuditLogs:     {generic, nil},
	SubIntegrations:  {generic, nil},
	SubWebhooks:      {generic, nil},
	SubIPAllowList:   {generic, nil},
	SubKMS:           {generic, nil},
	SubServiceTokens: {generic, nil},
	SubCmek:          {append(slices.Clone(generic), ActEncrypt, ActDecrypt, ActSign, ActVerify, ActRotate, ActExportPrivateKey), nil},
	SubSecretRotation: {append(slices.Clone(generic), ActReadGeneratedCredentials, ActRotateSecrets),
		[]string{"environment", "secretPath"}},

	SubCertificateAuthorities: {generic, nil},
	SubCertificates:           {append(slices.Clone(generic), ActReadPrivateKey), nil},
	SubCertificateTemplates:   {generic, nil},
	SubPkiAlerts:              {generic, nil},
	SubPkiCollections:         {generic, nil},

	// SSH certificates.
	SubSshCAs:           {generic, nil},
	SubSshCertificates:  {generic, nil},
	SubSshCertTemplates: {generic, nil},
	SubSshHosts:         {append(slices.Clone(generic), ActIssueHostCert), []string{"hostname"}},
	SubSshHostGroups:    {generic, nil},
}

// Fields describe the object acted on, for conditions. A zero field means "not known".
type Fields struct {
	Environment string
	SecretPath  string
	SecretName  string
	SecretTags  []string
	IdentityID  string
	Hostname    string // an SSH host's
}

func (f *Fields) value(key string) string {
	switch key {
	case "environment":
		return f.Environment
	case "secretPath":
		return f.SecretPath
	case "secretName":
		return f.SecretName
	case "identityId":
		return f.IdentityID
	case "hostname":
		return f.Hostname
	}
	return ""
}

// Operator is one comparison of a condition.
type Operator struct {
	Op    string   // "$eq", "$neq", "$in", "$glob"
	Value string   // for $eq, $neq, $glob
	In    []string // for $in
	glob  *glob
}

// Condition is the set of operators on one field; all must hold.
type Condition []Operator

// Conditions maps a field name to its condition.
type Conditions map[string]Condition

// Rule is one permission rule in Infisical's v2 JSON form.
type Rule struct {
	Subject    string
	Actions    []string
	Conditions Conditions
	Inverted   bool
}

type wireRule struct {
	Subject    string                     `json:"subject"`
	Action     json.RawMessage            `json:"action"`
	Conditions map[string]json.RawMessage `json:"conditions,omitempty"`
	Inverted   bool                       `json:"inverted,omitempty"`
}

// MarshalJSON writes the v2 form: action as an array, conditions as given.
func (r Rule) MarshalJSON() ([]byte, error) {
	type outRule struct {
		Subject    string         `json:"subject"`
		Action     []string       `json:"action"`
		Conditions map[string]any `json:"conditions,omitempty"`
		Inverted   bool           `json:"inverted"` // always: Terraform reads a missing key as a change
	}
	o := outRule{Subject: r.Subject, Action: r.Actions, Inverted: r.Inverted}
	if len(r.Conditions) > 0 {
		o.Conditions = map[string]any{}
		for k, c := range r.Conditions {
			m := map[string]any{}
			for _, op := range c {
				if op.Op == "$in" {
					m[op.Op] = op.In
				} else {
					m[op.Op] = op.Value
				}
			}
			o.Conditions[k] = m
		}
	}
	return json.Marshal(o)
}

// UnmarshalJSON reads one rule without validating it against the subject table.
func (r *Rule) UnmarshalJSON(b []byte) error {
	rules, err := parseRule(b, -1)
	if err != nil {
		return err
	}
	*r = rules
	return nil
}

func invalid(i int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	e := errs.Invalidf("permission %d: %s", i, msg)
	if i < 0 {
		e = errs.Invalidf("permission: %s", msg)
	}
	e.Details = []string{"permissions", fmt.Sprint(max(i, 0))}
	return e
}

func parseRule(b []byte, i int) (Rule, error) {
	var w wireRule
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return Rule{}, invalid(i, "not a rule object")
	}
	r := Rule{Subject: strings.TrimSpace(w.Subject), Inverted: w.Inverted}
	if r.Subject == "" {
		return Rule{}, invalid(i, "subject is required")
	}
	var one string
	if err := json.Unmarshal(w.Action, &one); err == nil {
		r.Actions = []string{one}
	} else if err := json.Unmarshal(w.Action, &r.Actions); err != nil || len(r.Actions) == 0 {
		return Rule{}, invalid(i, "action must be a string or a non-empty array of strings")
	}
	for k, raw := range w.Conditions {
		c, err := parseCondition(k, raw)
		if err != nil {
			return Rule{}, invalid(i, "condition %q: %v", k, err)
		}
		if r.Conditions == nil {
			r.Conditions = Conditions{}
		}
		r.Conditions[k] = c
	}
	return r, nil
}

func parseCondition(key string, raw json.RawMessage) (Condition, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if key == "secretTags" {
			return nil, fmt.Errorf("secretTags supports only $in")
		}
		return Condition{{Op: "$eq", Value: s}}, checkValue(key, "$eq", s)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, fmt.Errorf("want a string or an object of operators")
	}
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	var c Condition
	for _, op := range ops {
		v := m[op]
		switch op {
		case "$eq", "$neq", "$glob":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s wants a string", op)
			}
			if err := checkValue(key, op, s); err != nil {
				return nil, err
			}
			o := Operator{Op: op, Value: s}
			if op == "$glob" {
				g, err := compileGlob(s)
				if err != nil {
					return nil, err
				}
				o.glob = g
			}
			c = append(c, o)
		case "$in":
			var in []string
			if err := json.Unmarshal(v, &in); err != nil {
				return nil, fmt.Errorf("$in wants an array of strings")
			}
			for _, s := range in {
				if err := checkValue(key, op, s); err != nil {
					return nil, err
				}
			}
			c = append(c, Operator{Op: op, In: in})
		default:
			return nil, fmt.Errorf("unknown operator %q", op)
		}
	}
	if key == "secretTags" {
		for _, o := range c {
			if o.Op != "$in" {
				return nil, fmt.Errorf("secretTags supports only $in")
			}
		}
	}
	return c, nil
}

func checkValue(key, op, v string) error {
	if key == "secretPath" && op != "$glob" && !strings.HasPrefix(v, "/") {
		return fmt.Errorf("secretPath must start with /")
	}
	return nil
}

// MaxRules and MaxRulesBytes bound one role's, privilege's or template
// role's rules.
// MaxGlobBytes bounds the $glob patterns of one list, together: each is
// compiled to a regular expression, about 150 bytes of memory a character,
// for every member holding the list.
const (
	MaxRules      = 256
	MaxRulesBytes = 32 << 10
	MaxGlobBytes  = 2 << 10
)

// ParseRules decodes and validates a JSON array of v2 rules for a project
// role. Bad rules are a 422 naming the rule.
//
// A secretPath value must also be one a path can equal or a glob can
// match: paths are matched normalised (/a/b: no trailing /, no //), so
// "/prod/" or a glob "prod/**" would never match, and a deny rule written
// so would deny nothing. Rules stored before this check are read as they
// are (parseRules), never refused.
//
// A list holds at most MaxRules rules in at most MaxRulesBytes: every
// member holding a role or privilege has its rules parsed again whenever
// its cached permissions are dropped (any write), so a 1 MiB role held a
// hundred times over cost seconds and gigabytes per request.
func ParseRules(raw []byte) ([]Rule, error) {
	rules, err := parseBounded(raw, parseRules)
	if err != nil {
		return nil, err
	}
	for i, r := range rules {
		for _, o := range r.Conditions["secretPath"] {
			values := o.In
			if o.Op != "$in" {
				values = []string{o.Value}
			}
			for _, v := range values {
				if err := matchablePath(o.Op, v); err != nil {
					return nil, invalid(i, "%v", err)
				}
			}
		}
	}
	return rules, nil
}

// parseBounded parses raw with parse, holding the list to MaxRulesBytes,
// MaxRules and MaxGlobBytes (project and organization roles alike).
func parseBounded(raw []byte, parse func([]byte) ([]Rule, error)) ([]Rule, error) {
	if len(raw) > MaxRulesBytes {
		return nil, errs.Invalidf("permissions are at most %d bytes of JSON", MaxRulesBytes)
	}
	rules, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if len(rules) > MaxRules {
		return nil, errs.Invalidf("permissions hold at most %d rules", MaxRules)
	}
	if _, n := globs(rules); n > MaxGlobBytes {
		return nil, errs.Invalidf("the $glob patterns of permissions are at most %d bytes together (%d here)", MaxGlobBytes, n)
	}
	return rules, nil
}

// globs counts rules' $glob patterns and their length together.
func globs(rules []Rule) (n, bytes int) {
	for _, r := range rules {
		for _, c := range r.Conditions {
			for _, o := range c {
				if o.Op == "$glob" {
					n, bytes = n+1, bytes+len(o.Value)
				}
			}
		}
	}
	return n, bytes
}

// matchablePath refuses a secretPath condition value no normalised path
// can equal (op $eq, $neq, $in) or match ($glob).
//
// A glob is held to this only as far as it is literal: one without a
// metacharacter is a path; one with them must not begin with a literal
// other than / ({/a,/b}/** and **/x can match, prod/** cannot).
func matchablePath(op, v string) error {
	if op == "$glob" {
		i := strings.IndexAny(v, "*?[{")
		if i < 0 {
			return matchablePath("$eq", v)
		}
		if i > 0 && v[0] != '/' {
			return fmt.Errorf("secretPath glob %q never matches: paths start with /", v)
		}
		return nil
	}
	if v == "/" {
		return nil
	}
	if !strings.HasPrefix(v, "/") || strings.Contains(v, "//") || strings.HasSuffix(v, "/") {
		return fmt.Errorf("secretPath %q never matches: paths are written /a/b, without // or a trailing /", v)
	}
	for _, seg := range strings.Split(v[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("secretPath %q never matches: paths hold no . or .. segment", v)
		}
	}
	return nil
}

// parseRules is ParseRules without the secretPath check: what stored rules
// are read with.
func parseRules(raw []byte) ([]Rule, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errs.Invalidf("permissions must be an array of rules")
	}
	out := make([]Rule, 0, len(items))
	for i, it := range items {
		r, err := parseRule(it, i)
		if err != nil {
			return nil, err
		}
		spec, ok := projectSubjects[r.Subject]
		if !ok {
			return nil, invalid(i, "unknown subject %q", r.Subject)
		}
		for _, a := range r.Actions {
			if !slices.Contains(spec.actions, a) {
				return nil, invalid(i, "action %q is not valid for subject %q", a, r.Subject)
			}
		}
		for k := range r.Conditions {
			if !slices.Contains(spec.conditions, k) {
				return nil, invalid(i, "condition %q is not valid for subject %q", k, r.Subject)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Set is a compiled, immutable collection of rules from one or more roles.
// The zero Set allows nothing.
type Set struct {
	rules []Rule

	// vetoes are the ranges of rules of the roles that deny something
	// (JoinRoles), when there are two or more; tail is where the
	// privileges that follow the roles begin. See decide.
	vetoes [][2]int
	tail   int

	// lasting is what is left of the set once the temporary grants in it
	// end, the earliest of them at until; nil when none of it is temporary.
	lasting *Set
	until   time.Time
}

// Denies reports whether a rule of s takes something away (inverted): a
// set that only denies is covered by any other, yet takes from whoever
// holds it.
func (s Set) Denies() bool {
	return slices.ContainsFunc(s.rules, func(r Rule) bool { return r.Inverted })
}

// NewSet joins rule lists, in order.
func NewSet(rules ...[]Rule) Set {
	var all []Rule
	for _, rs := range rules {
		all = append(all, rs...)
	}
	return Set{rules: all}
}

// JoinRoles is the set of a member holding roles (each its own list of
// rules) and then privileges: the roles ordered by OrderRoles, the
// privileges after them in their order. A role's denial holds against any
// other role's grant: where two roles deny something, each role's own last
// matching rule is its verdict, and one role's refusal is not undone by
// another role's later grant (decide). Privileges, last, still decide over
// the roles.
func JoinRoles(roles [][]Rule, privileges ...[]Rule) Set {
	OrderRoles(roles)
	var s Set
	for _, l := range roles {
		if slices.ContainsFunc(l, func(r Rule) bool { return r.Inverted }) {
			s.vetoes = append(s.vetoes, [2]int{len(s.rules), len(s.rules) + len(l)})
		}
		s.rules = append(s.rules, l...)
	}
	s.tail = len(s.rules)
	for _, l := range privileges {
		s.rules = append(s.rules, l...)
	}
	if len(s.vetoes) < 2 {
		// One denying role, last among the roles, already decides over
		// the others by CASL's order.
		s.vetoes = nil
	}
	return s
}

// decide is CASL's verdict over s's rules, matched by match (the last
// matching rule decides, and none refuses), with the exception JoinRoles
// makes for two or more roles that deny: a privilege that matches still
// decides; otherwise any such role whose own last matching rule denies
// refuses, and else the last matching rule of the roles decides (which is
// then one that allows: a denying last match belongs to a role that
// refuses).
func (s Set) decide(match func(r *Rule) bool) bool {
	last := func(lo, hi int) int {
		for i := hi - 1; i >= lo; i-- {
			if match(&s.rules[i]) {
				return i
			}
		}
		return -1
	}
	if s.vetoes == nil {
		i := last(0, len(s.rules))
		return i >= 0 && !s.rules[i].Inverted
	}
	if i := last(s.tail, len(s.rules)); i >= 0 {
		return !s.rules[i].Inverted
	}
	for _, v := range s.vetoes {
		if i := last(v[0], v[1]); i >= 0 && s.rules[i].Inverted {
			return false
		}
	}
	i := last(0, s.tail)
	return i >= 0 && !s.rules[i].Inverted
}

// CoversLift reports whether s holds, until end (zero: for good), what
// taking taken away gives back to whoever held it beside other grants:
// each of its denials, as a grant. Any set covers one that only denies, so
// this is the rule for removing a role that denies.
func (s Set) CoversLift(taken Set, end time.Time) bool {
	var given []Rule
	for _, r := range taken.rules {
		if r.Inverted {
			r.Inverted = false
			given = append(given, r)
		}
	}
	return len(given) == 0 || s.CoversUntil(Set{rules: given}, end)
}

// Rules returns the set's rules.
func (s Set) Rules() []Rule { return slices.Clone(s.rules) }

// Can reports whether action on subject is allowed. With f nil it asks
// whether the action is allowed on some object of the subject: conditions are
// ignored and only unconditional inverted rules deny, as in CASL. Otherwise
// the last rule that matches the action, subject and f decides.
func (s Set) Can(action Action, subject Subject, f *Fields) bool {
	return s.decide(func(r *Rule) bool {
		if r.Subject != subject || !slices.Contains(r.Actions, action) {
			return false
		}
		if f == nil {
			return !r.Inverted || len(r.Conditions) == 0
		}
		return r.matches(f)
	})
}

// CanWithSomeTags reports whether action on subject at f (its secretTags
// aside) is allowed for some set of tags: rules that allow on a tag
// condition are taken to match, rules that deny on one not to. False means
// refused whatever the object's tags, which can be said without reading
// them.
func (s Set) CanWithSomeTags(action Action, subject Subject, f *Fields) bool {
	return s.decide(func(r *Rule) bool {
		if r.Subject != subject || !slices.Contains(r.Actions, action) {
			return false
		}
		if _, tagged := r.Conditions["secretTags"]; tagged && r.Inverted {
			return false
		}
		return r.matchesBut(f, "secretTags")
	})
}

// Widens reports whether s allows some action on an object of subject at
// after (its condition fields once moved) that it refuses at before.
func (s Set) Widens(subject Subject, before, after *Fields) bool {
	for _, a := range projectSubjects[subject].actions {
		if s.Can(a, subject, after) && !s.Can(a, subject, before) {
			return true
		}
	}
	return false
}

// UsesCondition reports whether any rule on subject has a condition on field.
func (s Set) UsesCondition(subject Subject, field string) bool {
	for i := range s.rules {
		if s.rules[i].Subject == subject {
			if _, ok := s.rules[i].Conditions[field]; ok {
				return true
			}
		}
	}
	return false
}

// Check is Can, reporting a denial as 403 PermissionDenied.
func (s Set) Check(action Action, subject Subject, f *Fields) error {
	if s.Can(action, subject, f) {
		return nil
	}
	return errs.PermissionDenied(action, subject)
}

func (r *Rule) matches(f *Fields) bool { return r.matchesBut(f, "") }

// matchesBut is matches with the condition on field skip left out.
func (r *Rule) matchesBut(f *Fields, skip string) bool {
	for key, c := range r.Conditions {
		if key == skip {
			continue
		}
		if key == "secretTags" {
			if !tagsMatch(c, f.SecretTags) {
				return false
			}
			continue
		}
		v := f.value(key)
		for i := range c {
			if !c[i].match(v) {
				return false
			}
		}
	}
	return true
}

func tagsMatch(c Condition, tags []string) bool {
	for _, o := range c {
		hit := false
		for _, t := range tags {
			if slices.Contains(o.In, t) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (o *Operator) match(v string) bool {
	switch o.Op {
	case "$eq":
		return v == o.Value
	case "$neq":
		return v != o.Value
	case "$in":
		return slices.Contains(o.In, v)
	case "$glob":
		if o.glob == nil {
			g, err := compileGlob(o.Value)
			if err != nil {
				return false
			}
			o.glob = g
		}
		return o.glob.match(v)
	}
	return false
}

// CoversUntil is Covers for handing out other until end (zero: for good):
// the part of s that comes from temporary grants counts only if end is no
// later than the earliest of them ends. Whoever holds a role for an hour
// cannot make anything, theirs or anyone's, outlast that hour. Where it is
// false and Covers true, the only thing missing is time.
func (s Set) CoversUntil(other Set, end time.Time) bool {
	if !s.Covers(other) {
		return false
	}
	if s.lasting == nil || (!end.IsZero() && !end.After(s.until)) {
		return true
	}
	return s.lasting.Covers(other)
}

// Lasting is what is left of s once every temporary grant in it has ended
// (s itself when none is temporary).
func (s Set) Lasting() Set {
	if s.lasting == nil {
		return s
	}
	return *s.lasting
}

// Temporary reports whether part of s comes from temporary grants, and the
// moment the earliest of them ends.
func (s Set) Temporary() (until time.Time, ok bool) { return s.until, s.lasting != nil }

// Covers reports whether s allows everything other allows, conditions
// included, so that an actor holding s may hand out or take away other. It is
// conservative: it may answer false for sets that are in fact covered, never
// true for one that is not. A rule of other is covered by a rule of s on the
// same subject and action whose conditions it implies (each of the s rule's
// conditions appears in it unchanged); every rule of s that denies that
// action must be matched by an at least as broad denial in other, placed
// after the rule it restricts.
func (s Set) Covers(other Set) bool {
	for i, rb := range other.rules {
		if rb.Inverted {
			continue
		}
		for _, a := range rb.Actions {
			granted := false
			for _, ra := range s.rules {
				if !ra.Inverted && ra.Subject == rb.Subject && slices.Contains(ra.Actions, a) && implies(rb.Conditions, ra.Conditions) {
					granted = true
					break
				}
			}
			if !granted {
				return false
			}
			for _, ia := range s.rules {
				if !ia.Inverted || ia.Subject != rb.Subject || !slices.Contains(ia.Actions, a) || disjoint(ia.Conditions, rb.Conditions) {
					continue
				}
				denied := false
				for _, ib := range other.rules[i+1:] {
					if ib.Inverted && ib.Subject == rb.Subject && slices.Contains(ib.Actions, a) && implies(ia.Conditions, ib.Conditions) {
						denied = true
						break
					}
				}
				if !denied {
					return false
				}
			}
		}
	}
	return true
}

// AllowsThroughout reports whether s allows one of actions on every object
// of subject that where admits (a service token's reach: an environment,
// $eq, and a path pattern, $glob). Some rule must grant one of actions
// wherever where holds (holdsWherever), and no rule that denies one of
// denied may apply to an object where admits (each must be disjoint from
// it), whatever the order of the rules. It is conservative: it may answer
// false where s does allow it, never true where it does not.
func (s Set) AllowsThroughout(subject Subject, actions, denied []Action, where Conditions) bool {
	granted := false
	for _, r := range s.rules {
		if r.Subject != subject {
			continue
		}
		if r.Inverted {
			if slices.ContainsFunc(r.Actions, func(a string) bool { return slices.Contains(denied, a) }) && !disjoint(r.Conditions, where) {
				return false
			}
			continue
		}
		if slices.ContainsFunc(r.Actions, func(a string) bool { return slices.Contains(actions, a) }) && holdsWherever(r.Conditions, where) {
			granted = true
		}
	}
	return granted
}

// holdsWherever reports whether conditions c hold for every object that
// conditions where admit: each field c names is one where fixes (by one
// $eq or $glob), and every value where admits meets each of c's operators.
func holdsWherever(c, where Conditions) bool {
	for k, cc := range c {
		w, ok := where[k]
		if !ok || len(w) != 1 {
			return false
		}
		for _, o := range cc {
			switch w[0].Op {
			case "$eq":
				if !o.match(w[0].Value) {
					return false
				}
			case "$glob":
				if o.Op != "$glob" || !globWithin(w[0].Value, o.Value) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// globWithin reports whether outer matches every path inner matches: they
// are the same, or outer is a fixed path followed by "/**" (that folder
// and everything below it) and inner's fixed beginning is that path and a
// "/".
func globWithin(inner, outer string) bool {
	if inner == outer {
		return true
	}
	base, ok := strings.CutSuffix(outer, "/**")
	if !ok || globFixed(base) != base {
		return false
	}
	return strings.HasPrefix(globFixed(inner), base+"/")
}

// disjoint reports whether no object meets both a and b: some field has a
// condition in each that cannot hold with the other's. It is conservative:
// false where that cannot be told from the operators alone.
func disjoint(a, b Conditions) bool {
	for k, ca := range a {
		cb, ok := b[k]
		if !ok || k == "secretTags" {
			continue
		}
		for _, oa := range ca {
			for _, ob := range cb {
				if exclusive(oa, ob) {
					return true
				}
			}
		}
	}
	return false
}

// exclusive reports whether no value meets both operators: two $eq or $in
// with no value in common, an $eq value a $glob does not match, or two
// $globs whose fixed beginnings differ.
func exclusive(a, b Operator) bool {
	if a.Op == "$glob" && b.Op != "$glob" {
		a, b = b, a
	}
	values := func(o Operator) []string {
		if o.Op == "$eq" {
			return []string{o.Value}
		}
		return o.In
	}
	switch {
	case (a.Op == "$eq" || a.Op == "$in") && (b.Op == "$eq" || b.Op == "$in"):
		return !slices.ContainsFunc(values(a), func(v string) bool { return slices.Contains(values(b), v) })
	case a.Op == "$eq" && b.Op == "$glob":
		return !b.match(a.Value)
	case a.Op == "$glob" && b.Op == "$glob":
		p, q := globStem(a.Value), globStem(b.Value)
		return !strings.HasPrefix(p, q) && !strings.HasPrefix(q, p)
	}
	return false
}

// globStem is what every value a glob matches begins with: its fixed
// beginning less a final "/" (a trailing "/**" matches the folder itself).
func globStem(g string) string { return strings.TrimSuffix(globFixed(g), "/") }

// globFixed is a glob's text before its first special character or escape.
func globFixed(g string) string {
	if i := strings.IndexAny(g, `*?[{\`); i >= 0 {
		return g[:i]
	}
	return g
}

// implies reports whether conditions b hold wherever conditions a do: every
// condition of b is also a condition of a, unchanged.
func implies(a, b Conditions) bool {
	for k, cb := range b {
		ca, ok := a[k]
		if !ok || !sameCondition(ca, cb) {
			return false
		}
	}
	return true
}

func sameCondition(a, b Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for _, oa := range a {
		if !slices.ContainsFunc(b, func(ob Operator) bool {
			if oa.Op != ob.Op || oa.Value != ob.Value || len(oa.In) != len(ob.In) {
				return false
			}
			x, y := slices.Clone(oa.In), slices.Clone(ob.In)
			slices.Sort(x)
			slices.Sort(y)
			return slices.Equal(x, y)
		}) {
			return false
		}
	}
	return true
}
