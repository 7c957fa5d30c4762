package web

import (
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/identity"
)

// control is one kind of page control (a form or button) and the
// permission the domain checks when it is used.
type control struct {
	action  authz.Action
	subject authz.Subject
}

// Controls of project pages, checked against the actor's project permissions.
var projectControls = map[string]control{
	"editSecrets":   {authz.ActEdit, authz.SubSecrets},
	"createSecrets": {authz.ActCreate, authz.SubSecrets},
	"deleteSecrets": {authz.ActDelete, authz.SubSecrets},
	"folders":       {authz.ActCreate, authz.SubFolders},
	"editFolders":   {authz.ActEdit, authz.SubFolders},
	"deleteFolders": {authz.ActDelete, authz.SubFolders},
	"environments":  {authz.ActCreate, authz.SubEnvironments},
	"editEnv":       {authz.ActEdit, authz.SubEnvironments},
	"deleteEnv":     {authz.ActDelete, authz.SubEnvironments},
	"tags":          {authz.ActCreate, authz.SubTags},
	"editTags":      {authz.ActEdit, authz.SubTags},
	"deleteTags":    {authz.ActDelete, authz.SubTags},
	"imports":       {authz.ActCreate, authz.SubImports},
	"deleteImports": {authz.ActDelete, authz.SubImports},
	"rollback":      {authz.ActCreate, authz.SubSecretRollback},
	"dynamic":       {authz.ActCreate, authz.SubDynamicSecrets},
	"editDynamic":   {authz.ActEdit, authz.SubDynamicSecrets},
	"lease":         {authz.ActLease, authz.SubDynamicSecrets},
	"kms":           {authz.ActCreate, authz.SubCmek},
	"editKms":       {authz.ActEdit, authz.SubCmek},
	"rotateKms":     {authz.ActRotate, authz.SubCmek},
	"deleteKms":     {authz.ActDelete, authz.SubCmek},
	"addMember":     {authz.ActCreate, authz.SubMember},
	"editMember":    {authz.ActEdit, authz.SubMember},
	"removeMember":  {authz.ActDelete, authz.SubMember},
	"addIdentity":   {authz.ActCreate, authz.SubIdentity},
	"editIdentity":  {authz.ActEdit, authz.SubIdentity},
	"delIdentity":   {authz.ActDelete, authz.SubIdentity},
	"createRole":    {authz.ActCreate, authz.SubRole},
	"editRole":      {authz.ActEdit, authz.SubRole},
	"deleteRole":    {authz.ActDelete, authz.SubRole},
	"addGroup":      {authz.ActCreate, authz.SubGroups},
	"editGroup":     {authz.ActEdit, authz.SubGroups},
	"removeGroup":   {authz.ActDelete, authz.SubGroups},
}

// Controls of organization pages, checked against the actor's organization
// permissions.
var orgControls = map[string]control{
	"createProject":  {authz.ActCreate, authz.SubWorkspace},
	"createIdentity": {authz.ActCreate, authz.SubIdentity},
	"invite":         {authz.ActCreate, authz.SubMember},
	"editMember":     {authz.ActEdit, authz.SubMember},
	"removeMember":   {authz.ActDelete, authz.SubMember},
	"createRole":     {authz.ActCreate, authz.SubRole},
	"editRole":       {authz.ActEdit, authz.SubRole},
	"deleteRole":     {authz.ActDelete, authz.SubRole},
	"readMembers":    {authz.ActRead, authz.SubMember},
	"readRoles":      {authz.ActRead, authz.SubRole},
	"createGroup":    {authz.ActCreate, authz.SubGroups},
	"editGroup":      {authz.ActEdit, authz.SubGroups},
	"deleteGroup":    {authz.ActDelete, authz.SubGroups},
	"readGroups":     {authz.ActRead, authz.SubGroups},
}

// Controls of one identity's page (fields: that identity).
var identityControls = map[string]control{
	"attach":       {authz.ActCreate, authz.SubIdentity},
	"attachMethod": {authz.ActCreate, authz.SubIdentity},
	"editMethod":   {authz.ActEdit, authz.SubIdentity},
	"secret":       {authz.ActCreate, authz.SubIdentity},
	"revoke":       {authz.ActDelete, authz.SubIdentity},
	"delete":       {authz.ActDelete, authz.SubIdentity},
	"editOrg":      {authz.ActEdit, authz.SubIdentity},
	"mint":         {authz.ActEdit, authz.SubIdentity},
	"revokeToken":  {authz.ActEdit, authz.SubIdentity},
	"removeAuth":   {authz.ActEdit, authz.SubIdentity},
}

// tokenActions are the identity controls that are token operations, with
// the action of their own each needs as well (identity.checkIdentity).
var tokenActions = map[string]authz.Action{
	"secret":      authz.ActCreateToken,
	"revoke":      authz.ActDeleteToken,
	"mint":        authz.ActCreateToken,
	"revokeToken": authz.ActDeleteToken,
	"removeAuth":  authz.ActRevokeAuth,
	// Whoever sets a login method's keys or hosts can log in through it.
	"attachMethod": authz.ActCreateToken,
	"editMethod":   authz.ActCreateToken,
}

// allowed is the one place pages decide which controls to show: a control
// appears only when set, the permissions the domain service will check,
// allows its action on its subject (for the object f, nil: some object).
// Hiding is a courtesy; the domain checks every request again.
func allowed(set authz.Set, f *authz.Fields, controls map[string]control) map[string]bool {
	out := make(map[string]bool, len(controls))
	for name, c := range controls {
		out[name] = set.Can(c.action, c.subject, f)
	}
	return out
}

// orgCan is allowed for the organization controls.
func (h *Handler) orgCan(q *req) (map[string]bool, error) {
	set, err := h.svc.Authz.OrgPermissions(q.ctx(), q.actor)
	if err != nil {
		return nil, err
	}
	return allowed(set, nil, orgControls), nil
}

// identityCan is allowed for the controls of identity i's page. As the
// domain does, only someone holding everything the identity holds (its
// organization role and its groups': admin, or a custom role beyond
// theirs) may change it.
func (h *Handler) identityCan(q *req, i identity.OrgIdentity) (map[string]bool, error) {
	set, err := h.svc.Authz.OrgPermissions(q.ctx(), q.actor)
	if err != nil {
		return nil, err
	}
	f := &authz.Fields{IdentityID: i.ID}
	can := allowed(set, f, identityControls)
	for name, also := range tokenActions {
		can[name] = can[name] && set.Can(also, authz.SubIdentity, f)
	}
	ok, err := h.svc.Identities.WithinBounds(q.ctx(), q.actor, i)
	if err != nil {
		return nil, err
	}
	if !ok {
		clear(can)
	}
	return can, nil
}
