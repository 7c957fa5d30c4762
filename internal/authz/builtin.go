package authz

import "slices"

// all actions of a subject, for admin roles.
func allActions(subject string) []string { return slices.Clone(projectSubjects[subject].actions) }

func rule(subject string, actions ...string) Rule { return Rule{Subject: subject, Actions: actions} }

var builtinProject = map[string][]Rule{
	"admin":     projectAdmin(),
	"member":    projectMember(),
	"viewer":    projectViewer(),
	"no-access": {},
	// cryptographic-operator uses KMS keys and nothing else, as Infisical's.
	"cryptographic-operator": {rule(SubCmek, ActEncrypt, ActDecrypt, ActSign, ActVerify)},
	// ssh-host-bootstrapper registers SSH hosts and issues their host
	// certificates, and nothing else, as Infisical's.
	"ssh-host-bootstrapper": {rule(SubSshHosts, ActCreate, ActIssueHostCert)},
}

func projectAdmin() []Rule {
	subjects := make([]string, 0, len(projectSubjects))
	for s := range projectSubjects {
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	out := make([]Rule, 0, len(subjects))
	for _, s := range subjects {
		out = append(out, rule(s, allActions(s)...))
	}
	return out
}

// projectMember follows Infisical's member role: full control of secrets and
// the things around them, read access to the project's administration.
func projectMember() []Rule {
	return []Rule{
		rule(SubSecrets, allActions(SubSecrets)...),
		rule(SubFolders, generic...),
		rule(SubImports, generic...),
		rule(SubDynamicSecrets, allActions(SubDynamicSecrets)...),
		rule(SubSecretRollback, ActRead, ActCreate),
		rule(SubEnvironments, generic...),
		rule(SubTags, generic...),
		rule(SubIntegrations, generic...),
		rule(SubWebhooks, generic...),
		rule(SubIdentity, generic...),
		rule(SubServiceTokens, generic...),
		rule(SubRole, ActRead),
		rule(SubMember, ActRead),
		rule(SubGroups, ActRead),
		rule(SubSettings, ActRead),
		rule(SubAuditLogs, ActRead),
		rule(SubIPAllowList, ActRead),
		rule(SubWorkspace, ActRead),
		rule(SubCmek, ActRead, ActCreate, ActEdit, ActDelete, ActEncrypt, ActDecrypt, ActSign, ActVerify, ActRotate),
		rule(SubSecretRotation, allActions(SubSecretRotation)...),
		// PKI as Infisical's member: issue and revoke certificates, read CAs and templates.
		rule(SubCertificateAuthorities, ActRead),
		rule(SubCertificates, allActions(SubCertificates)...),
		rule(SubCertificateTemplates, ActRead),
		rule(SubPkiAlerts, generic...),
		rule(SubPkiCollections, generic...),
		// SSH: members use the project's CAs (sign, issue) and manage hosts;
		// creating or deleting CAs and templates is for admins.
		// SSH as Infisical's member: use the project's CAs through templates
		// (sign, issue) and read hosts. Registering hosts and deciding who
		// logs in to them (login mappings, host groups) is for admins and
		// custom roles: a login mapping is a standing grant of certificates.
		rule(SubSshCAs, ActRead),
		rule(SubSshCertificates, ActRead, ActCreate),
		rule(SubSshCertTemplates, ActRead),
		rule(SubSshHosts, ActRead),
		rule(SubSshHostGroups, ActRead),
	}
}

// projectViewer may read everything and change nothing, except the root
// credentials of dynamic secrets (their admin passwords), which Infisical's
// viewer may read.
func projectViewer() []Rule {
	return []Rule{
		rule(SubSecrets, ActRead, ActDescribeSecret, ActReadValue),
		rule(SubFolders, ActRead),
		rule(SubImports, ActRead),
		rule(SubDynamicSecrets, ActRead), // not read-root-credential: the admin passwords
		rule(SubSecretRollback, ActRead),
		rule(SubEnvironments, ActRead),
		rule(SubTags, ActRead),
		rule(SubIntegrations, ActRead),
		rule(SubWebhooks, ActRead),
		rule(SubIdentity, ActRead),
		rule(SubServiceTokens, ActRead),
		rule(SubRole, ActRead),
		rule(SubMember, ActRead),
		rule(SubGroups, ActRead),
		rule(SubSettings, ActRead),
		rule(SubAuditLogs, ActRead),
		rule(SubIPAllowList, ActRead),
		rule(SubWorkspace, ActRead),
		rule(SubCmek, ActRead),
		rule(SubSecretRotation, ActRead),
		rule(SubCertificateAuthorities, ActRead),
		rule(SubCertificates, ActRead),
		rule(SubCertificateTemplates, ActRead),
		rule(SubPkiAlerts, ActRead),
		rule(SubPkiCollections, ActRead),
		rule(SubSshCAs, ActRead),
		rule(SubSshCertificates, ActRead),
		rule(SubSshCertTemplates, ActRead),
		rule(SubSshHosts, ActRead),
		rule(SubSshHostGroups, ActRead),
	}
}

var orgIdentityActions = []string{ActRead, ActCreate, ActEdit, ActDelete, ActGrantPrivileges, ActRevokeAuth, ActCreateToken, ActGetToken, ActDeleteToken}

var builtinOrg = map[string][]Rule{
	"admin": {
		rule(SubWorkspace, ActRead, ActCreate, ActEdit, ActDelete),
		rule(SubProject, ActRead, ActCreate, ActEdit, ActDelete),
		rule(SubIdentity, orgIdentityActions...),
		rule(SubRole, generic...),
		rule(SubMember, generic...),
		rule(SubGroups, generic...),
		rule(SubSettings, generic...),
		rule(SubAuditLogs, ActRead),
		rule(SubKMS, generic...),
		rule(SubSSO, generic...),
		rule(SubProjectTemplates, generic...),
		rule(SubAppConnections, ActRead, ActCreate, ActEdit, ActDelete, ActConnect),
	},
	"member": {
		rule(SubWorkspace, ActRead, ActCreate),
		rule(SubProject, ActRead, ActCreate),
		rule(SubIdentity, ActRead),
		rule(SubRole, ActRead),
		rule(SubMember, ActRead),
		rule(SubGroups, ActRead),
		rule(SubSettings, ActRead),
		rule(SubAuditLogs, ActRead),
		// As Infisical's member: may use the organization's connections, not see or change them.
		rule(SubAppConnections, ActConnect),
	},
	"no-access": {},
}

// ProjectRoleRules returns a built-in project role's rules.
func ProjectRoleRules(slug string) ([]Rule, bool) {
	r, ok := builtinProject[slug]
	return slices.Clone(r), ok
}

// OrgRoleRules returns a built-in organization role's rules.
func OrgRoleRules(slug string) ([]Rule, bool) {
	r, ok := builtinOrg[slug]
	return slices.Clone(r), ok
}

// reservedProjectSlugs cannot be taken by custom roles.
var reservedProjectSlugs = []string{"admin", "member", "viewer", "no-access", "custom", "ssh-host-bootstrapper", "cryptographic-operator"}

// IsBuiltinProjectRole reports whether slug is a built-in or reserved project role.
func IsBuiltinProjectRole(slug string) bool { return slices.Contains(reservedProjectSlugs, slug) }

// IsBuiltinOrgRole reports whether slug is a built-in organization role.
func IsBuiltinOrgRole(slug string) bool { _, ok := builtinOrg[slug]; return ok }
