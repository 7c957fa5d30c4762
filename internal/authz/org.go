package authz

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Organization subjects that only organization roles use.
const (
	SubSSO             = "sso"
	SubLDAP            = "ldap"
	SubSCIM            = "scim"
	SubBilling         = "billing"
	SubIncidentContact = "incident-contact"
	SubSecretScanning  = "secret-scanning"
)

// orgSubjects lists each organization subject with its actions and the
// condition keys its rules may use.
var orgSubjects = map[string]struct {
	actions    []string
	conditions []string
}{
	SubWorkspace:        {[]string{ActRead, ActCreate, ActEdit, ActDelete}, nil},
	SubProject:          {[]string{ActRead, ActCreate, ActEdit, ActDelete}, nil},
	SubIdentity:         {orgIdentityActions, []string{"identityId"}},
	SubRole:             {generic, nil},
	SubMember:           {generic, nil},
	SubGroups:           {append(slices.Clone(generic), ActGrantPrivileges), nil},
	SubSettings:         {generic, nil},
	SubAuditLogs:        {generic, nil},
	SubKMS:              {generic, nil},
	SubSSO:              {generic, nil},
	SubLDAP:             {generic, nil},
	SubSCIM:             {generic, nil},
	SubBilling:          {generic, nil},
	SubIncidentContact:  {generic, nil},
	SubSecretScanning:   {generic, nil},
	SubProjectTemplates: {generic, nil},
	SubAppConnections:   {append(slices.Clone(generic), ActConnect), nil}, // connect: as Infisical's, and the built-in member has it
}

// ParseOrgRules decodes and validates a JSON array of v2 rules for an
// organization role. Bad rules are a 422 naming the rule. The list is
// bounded as a project role's is (ParseRules): a 975 KB role of 1,700
// $glob rules made every listing of the organization's roles take half a
// second and 213 MiB.
func ParseOrgRules(raw []byte) ([]Rule, error) { return parseBounded(raw, parseOrgRules) }

// parseOrgRules is ParseOrgRules without the bounds: a role stored before
// them is read as it is, never refused.
func parseOrgRules(raw []byte) ([]Rule, error) {
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
		spec, ok := orgSubjects[r.Subject]
		if !ok {
			return nil, invalid(i, "unknown organization subject %q", r.Subject)
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

// reservedOrgSlugs cannot be taken by custom organization roles.
var reservedOrgSlugs = []string{"admin", "member", "no-access", "custom", "owner"}

// IsReservedOrgRole reports whether slug is a built-in or reserved
// organization role.
func IsReservedOrgRole(slug string) bool { return slices.Contains(reservedOrgSlugs, slug) }

// OrgCustomRoles is the storage of custom organization roles the resolver
// reads when an actor's organization role is not a built-in one. A
// Memberships that does not implement it knows built-in roles only.
type OrgCustomRoles interface {
	// OrgRolePermissions returns the rules (v2 JSON) of the organization's
	// custom role slug; errs.NotFound if there is none.
	OrgRolePermissions(ctx context.Context, orgID, slug string) ([]byte, error)
}

// orgRoleSet returns the permission set of an organization role slug.
func (r *Resolver) orgRoleSet(ctx context.Context, orgID, role string) (Set, error) {
	if rules, ok := OrgRoleRules(role); ok {
		return NewSet(rules), nil
	}
	cr, ok := r.m.(OrgCustomRoles)
	if !ok {
		return Set{}, nil
	}
	raw, err := cr.OrgRolePermissions(ctx, orgID, role)
	if errs.Is(err, errs.NotFound) {
		return Set{}, nil
	}
	if err != nil {
		return Set{}, err
	}
	rules, err := parseOrgRules(raw)
	if err != nil {
		return Set{}, errs.Internalf(err, "stored organization role %s is invalid", role)
	}
	return NewSet(rules), nil
}

// OrgRoleSet returns the permission set of one of the actor's organization's
// roles, built-in or custom: what a member holding it may do.
func (r *Resolver) OrgRoleSet(ctx context.Context, actor Actor, role string) (Set, error) {
	return r.orgRoleSet(ctx, actor.OrgID, role)
}

// SubjectSpec is a subject a role's rules may name, with its actions and the
// condition keys its rules may use (for role editors).
type SubjectSpec struct {
	Subject    string
	Actions    []string
	Conditions []string
}

func specs(m map[string]struct {
	actions    []string
	conditions []string
}) []SubjectSpec {
	out := make([]SubjectSpec, 0, len(m))
	for s, v := range m {
		out = append(out, SubjectSpec{s, slices.Clone(v.actions), slices.Clone(v.conditions)})
	}
	slices.SortFunc(out, func(a, b SubjectSpec) int { return strings.Compare(a.Subject, b.Subject) })
	return out
}

// OrgSubjects lists the subjects of organization roles, by name.
func OrgSubjects() []SubjectSpec { return specs(orgSubjects) }

// ProjectSubjects lists the subjects of project roles, by name.
func ProjectSubjects() []SubjectSpec { return specs(projectSubjects) }
