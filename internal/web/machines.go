package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/dynamic"
	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/kms"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Machine identities.

func (h *Handler) identities(w http.ResponseWriter, q *req) error {
	list, _, err := h.svc.Identities.List(q.ctx(), q.actor, q.actor.OrgID, 0, 500)
	if err != nil {
		return err
	}
	can, err := h.orgCan(q)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": "Machine identities", "Identities": list, "Can": can}
	if can["createIdentity"] && can["readRoles"] {
		if d["Roles"], err = h.svc.OrgRoles.Grantable(q.ctx(), q.actor); err != nil {
			return err
		}
	}
	h.render(w, q, http.StatusOK, "identities", d)
	return nil
}

func (h *Handler) identityCreate(w http.ResponseWriter, q *req) error {
	role := q.PostFormValue("role")
	if role == "" {
		role = "no-access"
	}
	i, err := h.svc.Identities.Create(q.ctx(), q.actor, identity.NewIdentity{OrgID: q.actor.OrgID, Name: q.PostFormValue("name"), Role: role})
	if err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+i.ID)
	return nil
}

func (h *Handler) identityData(q *req) (map[string]any, error) {
	i, err := h.svc.Identities.Get(q.ctx(), q.actor, q.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := map[string]any{"Title": i.Name, "I": i}
	ua, err := h.svc.UniversalAuth.Get(q.ctx(), q.actor, i.ID)
	switch {
	case err == nil:
		d["UA"] = ua
		cs, err := h.svc.UniversalAuth.ClientSecrets(q.ctx(), q.actor, i.ID)
		switch {
		case errs.Is(err, errs.Forbidden): // listing them needs get-token
			d["TokensHidden"] = true
		case err != nil:
			return nil, err
		}
		d["ClientSecrets"] = cs
	case errs.KindOf(err) == errs.Internal:
		return nil, err
	}
	ta, err := h.svc.Identities.GetTokenAuth(q.ctx(), q.actor, i.ID)
	switch {
	case err == nil:
		d["TokenAuth"] = ta
		toks, err := h.svc.Identities.Tokens(q.ctx(), q.actor, i.ID, 0, maxTokensListed)
		switch {
		case errs.Is(err, errs.Forbidden): // listing them needs get-token
			d["TokensHidden"] = true
		case err != nil:
			return nil, err
		}
		now := time.Now()
		rows := make([]tokenRow, 0, len(toks))
		for _, t := range toks {
			r := tokenRow{AccessToken: t, State: "active"}
			if end := t.ExpiresAt(); end != nil {
				r.Expires = end.UTC().Format("2006-01-02 15:04 UTC")
				if !now.Before(*end) {
					r.State = "expired"
				}
			}
			if t.Exhausted() {
				r.State = "used up"
			}
			if t.Revoked {
				r.State = "revoked"
			}
			rows = append(rows, r)
		}
		d["Tokens"] = rows
	case errs.KindOf(err) == errs.Internal:
		return nil, err
	}
	methods, err := h.loginMethods(q, i)
	if err != nil {
		return nil, err
	}
	d["Methods"] = methods
	can, err := h.identityCan(q, i)
	if err != nil {
		return nil, err
	}
	d["Can"] = can
	if can["editOrg"] {
		org, err := h.orgCan(q)
		if err != nil {
			return nil, err
		}
		if org["readRoles"] {
			if d["Roles"], err = h.svc.OrgRoles.Grantable(q.ctx(), q.actor); err != nil {
				return nil, err
			}
		}
	}
	ps, err := h.svc.Projects.List(q.ctx(), q.actor)
	if err != nil {
		return nil, err
	}
	// Only the projects the actor may add this identity to.
	var addable []project.Project
	for _, p := range ps {
		set, err := h.svc.Authz.ProjectPermissions(q.ctx(), q.actor, p.ID)
		if err != nil {
			if errs.KindOf(err) == errs.Internal {
				return nil, err
			}
			continue
		}
		if set.Can(authz.ActCreate, authz.SubIdentity, &authz.Fields{IdentityID: i.ID}) {
			addable = append(addable, p)
		}
	}
	d["Projects"] = addable
	if a := q.FormValue("added"); a != "" {
		for _, p := range ps {
			if p.ID == a {
				d["Added"] = p.Name
			}
		}
	}
	return d, nil
}

func (h *Handler) identityPage(w http.ResponseWriter, q *req) error {
	d, err := h.identityData(q)
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "identity", d)
	return nil
}

func (h *Handler) uaAttach(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.UniversalAuth.Attach(q.ctx(), q.actor, q.PathValue("id"), identity.UAConfig{}); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

// clientSecretCreate shows the new client secret once, on the response to
// the POST; it is never shown again.
func (h *Handler) clientSecretCreate(w http.ResponseWriter, q *req) error {
	id := q.PathValue("id")
	ua, err := h.svc.UniversalAuth.Get(q.ctx(), q.actor, id)
	if err != nil {
		return err
	}
	uses, err := formInt64(q, "numUsesLimit")
	if err != nil {
		return err
	}
	ttl, err := formInt64(q, "ttl")
	if err != nil {
		return err
	}
	sec, _, err := h.svc.UniversalAuth.NewClientSecret(q.ctx(), q.actor, id, q.PostFormValue("description"), deref(uses), deref(ttl))
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "shown", map[string]any{"Title": "Client secret created",
		"Intro": "Copy the client secret now: it is shown only once.",
		"Items": []shownItem{{"Client ID", ua.ClientID, "client-id"}, {"Client secret", sec, "client-secret"}},
		"Back":  "/identities/" + id})
	return nil
}

type shownItem struct{ Label, Value, ID string }

// methodRow is a registered login method as the identity page shows it.
type methodRow struct {
	Name, DisplayName string
	Attached          bool
	// Config is the attached configuration as JSON (secret fields are never
	// returned: left out, an update keeps them); TTL and MaxTTL its tokens'.
	Config      string
	TTL, MaxTTL int64
}

// loginMethods lists every registered login method, with the identity's
// configuration of those it has.
func (h *Handler) loginMethods(q *req, i identity.OrgIdentity) ([]methodRow, error) {
	if h.svc.AuthMethods == nil {
		return nil, nil
	}
	var out []methodRow
	for _, reg := range authmethod.All() {
		r := methodRow{Name: reg.Name, DisplayName: reg.DisplayName, Attached: slices.Contains(i.AuthMethods, reg.Name)}
		if r.Attached {
			c, err := h.svc.AuthMethods.Get(q.ctx(), q.actor, reg.Name, i.ID)
			if err != nil {
				return nil, err
			}
			var pretty bytes.Buffer
			if json.Indent(&pretty, c.Config, "", "  ") != nil {
				pretty.Reset()
				pretty.Write(c.Config)
			}
			r.Config, r.TTL, r.MaxTTL = pretty.String(), c.AccessTokenTTL, c.AccessTokenMaxTTL
		}
		out = append(out, r)
	}
	return out, nil
}

// methodSettings reads a method form: the configuration (a JSON object,
// the fields of Infisical's API for that method) and the token settings.
func methodSettings(q *req) (identity.TokenSettings, json.RawMessage, error) {
	var s identity.TokenSettings
	body := json.RawMessage(strings.TrimSpace(q.PostFormValue("config")))
	if len(body) == 0 {
		body = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return s, nil, errs.BadRequest("The configuration must be a JSON object")
	}
	var err error
	if s.AccessTokenTTL, s.AccessTokenMaxTTL, s.AccessTokenNumUsesLimit, err = tokenLimits(q); err != nil {
		return s, nil, err
	}
	return s, body, nil
}

// methodSave attaches a login method (POST .../methods, the method named
// in the form) or updates an attached one (POST .../methods/{method}).
func (h *Handler) methodSave(w http.ResponseWriter, q *req) error {
	if h.svc.AuthMethods == nil {
		return errs.NotFoundf("No login methods are available")
	}
	s, body, err := methodSettings(q)
	if err != nil {
		return err
	}
	save, method := h.svc.AuthMethods.Update, q.PathValue("method")
	if method == "" {
		save, method = h.svc.AuthMethods.Attach, q.PostFormValue("method")
	}
	if _, err := save(q.ctx(), q.actor, method, q.PathValue("id"), s, body); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

func (h *Handler) methodRemove(w http.ResponseWriter, q *req) error {
	if h.svc.AuthMethods == nil {
		return errs.NotFoundf("No login methods are available")
	}
	if _, err := h.svc.AuthMethods.Remove(q.ctx(), q.actor, q.PathValue("method"), q.PathValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

// maxTokensListed is how many Token Auth tokens an identity's page lists
// (newest first).
const maxTokensListed = 100

// identityRole changes an identity's organization role.
func (h *Handler) identityRole(w http.ResponseWriter, q *req) error {
	role := q.PostFormValue("role")
	if _, err := h.svc.Identities.Update(q.ctx(), q.actor, q.PathValue("id"), identity.IdentityUpdate{Role: &role}); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

// identityDelete deletes an identity: its tokens stop working at once.
func (h *Handler) identityDelete(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Identities.Delete(q.ctx(), q.actor, q.PathValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities")
	return nil
}

// formInt64 reads an optional number field of a form (empty: nil).
func formInt64(q *req, name string) (*int64, error) {
	v := strings.TrimSpace(q.PostFormValue(name))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, errs.BadRequest("%s must be a whole number, 0 or more", name)
	}
	return &n, nil
}

// tokenLimits reads a form's access token TTL, max TTL and use limit
// (each optional).
func tokenLimits(q *req) (ttl, maxTTL, uses *int64, err error) {
	if ttl, err = formInt64(q, "accessTokenTTL"); err != nil {
		return
	}
	if maxTTL, err = formInt64(q, "accessTokenMaxTTL"); err != nil {
		return
	}
	uses, err = formInt64(q, "accessTokenNumUsesLimit")
	return
}

// formIPs reads a list of addresses or CIDR ranges (separated by commas or
// white space; empty: nil, unchanged).
func formIPs(q *req, name string) []string {
	ips := strings.FieldsFunc(q.PostFormValue(name), func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if len(ips) == 0 {
		return nil
	}
	return ips
}

// uaUpdate changes an identity's Universal Auth settings.
func (h *Handler) uaUpdate(w http.ResponseWriter, q *req) error {
	var c identity.UAConfig
	var err error
	if c.AccessTokenTTL, c.AccessTokenMaxTTL, c.AccessTokenNumUsesLimit, err = tokenLimits(q); err != nil {
		return err
	}
	c.AccessTokenTrustedIPs = formIPs(q, "accessTokenTrustedIps")
	c.ClientSecretTrustedIPs = formIPs(q, "clientSecretTrustedIps")
	if _, err := h.svc.UniversalAuth.Update(q.ctx(), q.actor, q.PathValue("id"), c); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

// uaRemove removes Universal Auth: its client secrets and tokens stop working.
func (h *Handler) uaRemove(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.UniversalAuth.Remove(q.ctx(), q.actor, q.PathValue("id")); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

func deref(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// ipList shows trusted addresses as CIDR ranges.
func ipList(ips []identity.TrustedIP) string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.IPAddress+"/"+strconv.Itoa(ip.Prefix))
	}
	return strings.Join(out, ", ")
}

// tokenRow is a Token Auth token as the identity page lists it.
type tokenRow struct {
	identity.AccessToken
	State   string // active, expired, used up, revoked
	Expires string // empty: never
}

func (h *Handler) tokenAuthAttach(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Identities.AttachTokenAuth(q.ctx(), q.actor, q.PathValue("id"), identity.TokenAuthConfig{}); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

// tokenCreate shows the new access token once, on the response to the
// POST; it is never shown again.
func (h *Handler) tokenCreate(w http.ResponseWriter, q *req) error {
	id := q.PathValue("id")
	res, _, err := h.svc.Identities.CreateToken(q.ctx(), q.actor, id, q.PostFormValue("name"))
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "shown", map[string]any{"Title": "Access token created",
		"Intro": "Copy the access token now: it is shown only once.",
		"Items": []shownItem{{"Access token", res.AccessToken, "access-token"}},
		"Back":  "/identities/" + id})
	return nil
}

// tokenRevoke revokes a Token Auth token of the identity in the path.
func (h *Handler) tokenRevoke(w http.ResponseWriter, q *req) error {
	t, err := h.svc.Identities.Token(q.ctx(), q.actor, q.PathValue("tid"))
	if err != nil {
		return err
	}
	if t.IdentityID != q.PathValue("id") {
		return errs.NotFoundf("Token with ID %s not found", q.PathValue("tid"))
	}
	if err := h.svc.Identities.RevokeToken(q.ctx(), q.actor, t.ID); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

func (h *Handler) clientSecretRevoke(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.UniversalAuth.RevokeClientSecret(q.ctx(), q.actor, q.PathValue("id"), q.PathValue("csid")); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id"))
	return nil
}

func (h *Handler) identityAddProject(w http.ResponseWriter, q *req) error {
	role := q.PostFormValue("role")
	if _, err := h.svc.Memberships.Add(q.ctx(), q.actor, q.PostFormValue("project"), q.PathValue("id"),
		[]project.RoleGrant{{Role: role}}); err != nil {
		return err
	}
	redirect(w, q.Request, "/identities/"+q.PathValue("id")+"?added="+url.QueryEscape(q.PostFormValue("project")))
	return nil
}

// Dynamic secrets.

func dynScope(q *req) dynamic.Scope {
	return dynamic.Scope{ProjectID: q.PathValue("pid"), Env: q.FormValue("env"), Path: cleanPath(q.FormValue("path"))}
}

type providerView struct {
	Type   string
	Inputs []provider.Input
}

func providers() []providerView {
	var out []providerView
	for _, t := range provider.Types() {
		r, _ := provider.Lookup(t)
		out = append(out, providerView{t, r.Inputs})
	}
	return out
}

func (h *Handler) dynamicList(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	env := q.FormValue("env")
	if env == "" && len(pv.Environments) > 0 {
		env = pv.Environments[0].Slug
	}
	sc := dynamic.Scope{ProjectID: pv.ID, Env: env, Path: cleanPath(q.FormValue("path"))}
	list, err := h.svc.Dynamic.List(q.ctx(), q.actor, sc)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": pv.Name + " · Dynamic secrets", "P": pv, "Env": env, "Path": sc.Path, "List": list,
		"Providers": providers()}
	if t := q.FormValue("type"); t != "" {
		if r, ok := provider.Lookup(t); ok {
			d["Form"] = providerView{t, r.Inputs}
		}
	}
	h.render(w, q, http.StatusOK, "dynamic", d)
	return nil
}

// providerInputs turns the form's in.<name> fields into the provider's
// inputs: empty fields are left out, and a field of digits only that is
// neither secret nor a statement is sent as a number (ports, counts).
func providerInputs(q *req, r provider.Registration) (json.RawMessage, error) {
	in := map[string]any{}
	for _, i := range r.Inputs {
		v := q.PostFormValue("in." + i.Name)
		if v == "" {
			continue
		}
		if !i.Secret && !i.Statement {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				in[i.Name] = n
				continue
			}
			if v == "true" || v == "false" {
				in[i.Name] = v == "true"
				continue
			}
		}
		in[i.Name] = v
	}
	return json.Marshal(in)
}

func (h *Handler) dynamicCreate(w http.ResponseWriter, q *req) error {
	r, ok := provider.Lookup(q.PostFormValue("type"))
	if !ok {
		return errs.Invalidf("unknown provider type")
	}
	inputs, err := providerInputs(q, r)
	if err != nil {
		return err
	}
	sc := dynScope(q)
	s, err := h.svc.Dynamic.Create(q.ctx(), q.actor, sc, dynamic.NewSecret{Name: q.PostFormValue("name"), Type: r.Type,
		Inputs: inputs, DefaultTTL: q.PostFormValue("defaultTTL"), MaxTTL: q.PostFormValue("maxTTL")})
	if err != nil {
		return err
	}
	redirect(w, q.Request, dynURL(q, s.Name))
	return nil
}

func dynURL(q *req, name string) string {
	return "/projects/" + q.PathValue("pid") + "/dynamic/" + url.PathEscape(name) + "?env=" + url.QueryEscape(q.FormValue("env")) +
		"&path=" + url.QueryEscape(cleanPath(q.FormValue("path")))
}

func (h *Handler) dynamicSecret(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	sc := dynScope(q)
	s, err := h.svc.Dynamic.Get(q.ctx(), q.actor, sc, q.PathValue("name"))
	if err != nil {
		return err
	}
	leases, err := h.svc.Dynamic.Leases(q.ctx(), q.actor, sc, s.Name)
	if err != nil {
		return err
	}
	d := map[string]any{"Title": s.Name, "P": pv, "S": s, "Env": sc.Env, "Path": sc.Path, "Leases": leases}
	if pv.set.Can(authz.ActEditRootCredential, authz.SubDynamicSecrets, &authz.Fields{Environment: sc.Env, SecretPath: sc.Path}) {
		d["Edit"] = editInputs(s)
	}
	h.render(w, q, http.StatusOK, "dynsecret", d)
	return nil
}

// editInput is one field of the edit form: a secret input is never filled
// (left empty, the stored value stays); the others show their value.
type editInput struct {
	provider.Input
	Value string
}

func editInputs(s dynamic.Secret) []editInput {
	r, ok := provider.Lookup(s.Type)
	if !ok {
		return nil
	}
	var stored map[string]any
	_ = json.Unmarshal(s.Inputs, &stored)
	out := make([]editInput, 0, len(r.Inputs))
	for _, in := range r.Inputs {
		e := editInput{Input: in}
		if v, ok := stored[in.Name]; ok && !in.Secret && v != nil {
			if str, ok := v.(string); ok {
				e.Value = str
			} else {
				b, _ := json.Marshal(v)
				e.Value = string(b)
			}
		}
		out = append(out, e)
	}
	return out
}

// dynamicUpdate applies the edit form: empty fields (secret inputs among
// them) keep their stored values.
func (h *Handler) dynamicUpdate(w http.ResponseWriter, q *req) error {
	sc := dynScope(q)
	s, err := h.svc.Dynamic.Get(q.ctx(), q.actor, sc, q.PathValue("name"))
	if err != nil {
		return err
	}
	r, ok := provider.Lookup(s.Type)
	if !ok {
		return errs.Invalidf("unknown provider type")
	}
	inputs, err := providerInputs(q, r)
	if err != nil {
		return err
	}
	c := dynamic.Change{Inputs: inputs}
	if v := q.PostFormValue("defaultTTL"); v != "" {
		c.DefaultTTL = &v
	}
	if v := q.PostFormValue("maxTTL"); v != "" {
		c.MaxTTL = &v
	}
	if _, err := h.svc.Dynamic.Update(q.ctx(), q.actor, sc, s.Name, c); err != nil {
		return err
	}
	redirect(w, q.Request, dynURL(q, s.Name))
	return nil
}

// leaseCreate shows the lease's credentials once, on the POST's response.
func (h *Handler) leaseCreate(w http.ResponseWriter, q *req) error {
	l, _, err := h.svc.Dynamic.CreateLease(q.ctx(), q.actor, dynScope(q), q.PathValue("name"), q.PostFormValue("ttl"), nil)
	if err != nil {
		return err
	}
	var items []shownItem
	keys := make([]string, 0, len(l.Data))
	for k := range l.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := l.Data[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		items = append(items, shownItem{k, s, "cred-" + strings.ToLower(k)})
	}
	items = append(items, shownItem{"Lease ID", l.ID, "lease-id"}, shownItem{"Expires", l.ExpireAt.UTC().Format(time.RFC3339), "lease-expiry"})
	h.render(w, q, http.StatusOK, "shown", map[string]any{"Title": "Lease created",
		"Intro": "Copy the credentials now: they are shown only once.", "Items": items, "Back": dynURL(q, q.PathValue("name"))})
	return nil
}

func (h *Handler) leaseRenew(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Dynamic.RenewLease(q.ctx(), q.actor, dynScope(q), q.PathValue("lid"), q.PostFormValue("ttl")); err != nil {
		return err
	}
	redirect(w, q.Request, dynURL(q, q.PathValue("name")))
	return nil
}

func (h *Handler) leaseRevoke(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.Dynamic.RevokeLease(q.ctx(), q.actor, dynScope(q), q.PathValue("lid"), false); err != nil {
		return err
	}
	redirect(w, q.Request, dynURL(q, q.PathValue("name")))
	return nil
}

// KMS keys.

func (h *Handler) kmsKeys(w http.ResponseWriter, q *req) error {
	pv, err := h.loadProject(q)
	if err != nil {
		return err
	}
	keys, _, err := h.svc.KMS.List(q.ctx(), q.actor, pv.ID, kms.ListOptions{Limit: 100})
	if err != nil {
		return err
	}
	h.render(w, q, http.StatusOK, "kms", map[string]any{"Title": pv.Name + " · KMS keys", "P": pv, "Keys": keys})
	return nil
}

// kmsKeyHere is the id of the path's key after checking that the actor may
// do action on it and that it is the path project's (the domain checks and
// audits the action against the key's own project; this keeps a page from
// acting on another project's key).
func (h *Handler) kmsKeyHere(q *req, action string) (string, error) {
	id := q.PathValue("kid")
	return id, h.svc.KMS.CheckInProject(q.ctx(), q.actor, q.PathValue("pid"), id, action)
}

// kmsUpdate enables or disables a key, or changes its description.
func (h *Handler) kmsUpdate(w http.ResponseWriter, q *req) error {
	id, err := h.kmsKeyHere(q, authz.ActEdit)
	if err != nil {
		return err
	}
	var u kms.Update
	if v := q.PostFormValue("disabled"); v != "" {
		d := v == "true"
		u.Disabled = &d
	}
	if q.PostForm.Has("description") {
		d := q.PostFormValue("description")
		u.Description = &d
	}
	if _, err := h.svc.KMS.Update(q.ctx(), q.actor, id, u); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/kms")
	return nil
}

func (h *Handler) kmsRotate(w http.ResponseWriter, q *req) error {
	id, err := h.kmsKeyHere(q, authz.ActRotate)
	if err != nil {
		return err
	}
	if _, err := h.svc.KMS.Rotate(q.ctx(), q.actor, id); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/kms")
	return nil
}

func (h *Handler) kmsDelete(w http.ResponseWriter, q *req) error {
	id, err := h.kmsKeyHere(q, authz.ActDelete)
	if err != nil {
		return err
	}
	if _, err := h.svc.KMS.Delete(q.ctx(), q.actor, id); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/kms")
	return nil
}

func (h *Handler) kmsCreate(w http.ResponseWriter, q *req) error {
	if _, err := h.svc.KMS.Create(q.ctx(), q.actor, kms.NewKey{ProjectID: q.PathValue("pid"), Name: q.PostFormValue("name"),
		Description: q.PostFormValue("description"), Usage: q.PostFormValue("usage"), Algorithm: q.PostFormValue("algorithm")}); err != nil {
		return err
	}
	redirect(w, q.Request, "/projects/"+q.PathValue("pid")+"/kms")
	return nil
}

// Audit log.

const auditPageSize = 50

func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if end && layout == "2006-01-02" {
				t = t.Add(24*time.Hour - time.Microsecond)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errs.Invalidf("dates are YYYY-MM-DD or YYYY-MM-DDTHH:MM")
}

func (h *Handler) auditLog(w http.ResponseWriter, q *req) error {
	f := audit.Filter{OrgID: q.actor.OrgID, ProjectID: q.FormValue("project"), ActorID: q.FormValue("actor"), Limit: auditPageSize + 1}
	if t := strings.TrimSpace(q.FormValue("eventType")); t != "" {
		f.EventTypes = []string{t}
	}
	var err error
	if f.Start, err = parseDay(q.FormValue("from"), false); err != nil {
		return err
	}
	if f.End, err = parseDay(q.FormValue("to"), true); err != nil {
		return err
	}
	page, _ := strconv.Atoi(q.FormValue("page"))
	page = max(page, 1)
	f.Offset = (page - 1) * auditPageSize
	evs, err := h.svc.Audit.List(q.ctx(), q.actor, f)
	if err != nil {
		return err
	}
	more := len(evs) > auditPageSize
	if more {
		evs = evs[:auditPageSize]
	}
	ps, err := h.svc.Projects.List(q.ctx(), q.actor)
	if err != nil {
		return err
	}
	qs := q.URL.Query()
	link := func(p int) string {
		qs.Set("page", strconv.Itoa(p))
		return "/audit?" + qs.Encode()
	}
	d := map[string]any{"Title": "Audit log", "Events": evs, "Projects": ps, "F": map[string]string{
		"eventType": q.FormValue("eventType"), "actor": q.FormValue("actor"), "project": q.FormValue("project"),
		"from": q.FormValue("from"), "to": q.FormValue("to")}, "Page": page, "Me": q.actor.ID}
	if more {
		d["Next"] = link(page + 1)
	}
	if page > 1 {
		d["Prev"] = link(page - 1)
	}
	h.render(w, q, http.StatusOK, "audit", d)
	return nil
}
