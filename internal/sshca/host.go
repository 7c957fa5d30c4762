package sshca

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Host is a registered SSH host: the CAs that sign its user and host
// certificates and who may log in to it as which login user.
type Host struct {
	ID            string
	OrgID         string
	ProjectID     string
	Hostname      string
	Alias         string
	UserCertTTL   string // validity of user certificates issued for it
	HostCertTTL   string // validity of its host certificates
	UserCAID      string
	HostCAID      string
	LoginMappings []LoginMapping
	// Inherited are the login mappings of the host groups it is in (read
	// only here: they are changed on the groups).
	Inherited []LoginMapping
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LoginMapping lets principals log in as LoginUser. A principal names an
// actor: an identity by id, a user by id or email.
type LoginMapping struct {
	LoginUser  string
	Principals []string
}

// HostInput creates or (nil fields unchanged) updates a host.
type HostInput struct {
	ProjectID     string // create only
	Hostname      *string
	Alias         *string
	UserCertTTL   *string // default "8h"
	HostCertTTL   *string // default "1y"
	UserCAID      string  // create only; empty: the project's default
	HostCAID      string  // create only; empty: the project's default
	LoginMappings []LoginMapping
	SetMappings   bool // LoginMappings was given
}

// Bounds on a host's login mappings.
const (
	MaxLoginMappings       = 100
	MaxMappingPrincipals   = 100
	MaxHostsListed         = 1000
	defaultUserCertTTL     = "8h"
	defaultHostCertTTL     = "1y"
	maxLoginUserLen        = 32
	maxMappingPrincipalLen = 255
)

func checkHostname(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 253 || !hostnameRE().MatchString(s) {
		return "", errs.Fieldf("hostname", "Hostname must be a valid hostname")
	}
	return strings.ToLower(s), nil
}

func checkMappings(ms []LoginMapping) ([]LoginMapping, error) {
	if len(ms) > MaxLoginMappings {
		return nil, errs.Fieldf("loginMappings", "At most %d login mappings", MaxLoginMappings)
	}
	out := make([]LoginMapping, 0, len(ms))
	for _, m := range ms {
		u := strings.TrimSpace(m.LoginUser)
		if u == "" || len(u) > maxLoginUserLen || !principalRE().MatchString(u) {
			return nil, errs.Fieldf("loginMappings", "Login user %q is not a valid user name", clip(u))
		}
		if slices.ContainsFunc(out, func(o LoginMapping) bool { return o.LoginUser == u }) {
			return nil, errs.Fieldf("loginMappings", "Login user %q is mapped twice", u)
		}
		if len(m.Principals) > MaxMappingPrincipals {
			return nil, errs.Fieldf("loginMappings", "At most %d principals per login user", MaxMappingPrincipals)
		}
		ps := []string{}
		for _, p := range m.Principals {
			p = strings.TrimSpace(p)
			if p == "" || len(p) > maxMappingPrincipalLen || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return nil, errs.Fieldf("loginMappings", "Principal %q of login user %q is invalid", clip(p), u)
			}
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
		out = append(out, LoginMapping{LoginUser: u, Principals: ps})
	}
	return out, nil
}

// actorPrincipals are the names by which a login mapping may name actor.
func actorPrincipals(actor authz.Actor) []string {
	ps := []string{actor.ID}
	if actor.Kind == authz.ActorUser && actor.Name != "" {
		ps = append(ps, actor.Name)
	}
	return ps
}

// mayLogIn reports whether actor is a principal of h's mapping for loginUser
// ("" for any).
func (h Host) mayLogIn(actor authz.Actor, loginUser string) bool {
	ps := actorPrincipals(actor)
	for _, m := range slices.Concat(h.LoginMappings, h.Inherited) {
		if (loginUser == "" || m.LoginUser == loginUser) && slices.ContainsFunc(m.Principals, func(p string) bool {
			return slices.Contains(ps, p)
		}) {
			return true
		}
	}
	return false
}

func hostEvent(actor authz.Actor, typ string, h Host, full bool) audit.Event {
	md := map[string]any{"sshHostId": h.ID, "hostname": h.Hostname}
	if full {
		md["userCertTtl"], md["hostCertTtl"], md["userSshCaId"], md["hostSshCaId"] = h.UserCertTTL, h.HostCertTTL, h.UserCAID, h.HostCAID
		ms := make([]map[string]any, len(h.LoginMappings))
		for i, m := range h.LoginMappings {
			ms[i] = map[string]any{"loginUser": m.LoginUser, "allowedPrincipals": map[string]any{"usernames": m.Principals}}
		}
		md["loginMappings"] = ms
	}
	return audit.New(actor, typ, md).InProject(h.ProjectID, "")
}

// hostFields are a host's fields for permission conditions.
func hostFields(hostname string) *authz.Fields { return &authz.Fields{Hostname: hostname} }

// CreateHost registers a host.
func (s *Service) CreateHost(ctx context.Context, actor authz.Actor, in HostInput) (Host, error) {
	pid, err := projectID(in.ProjectID)
	if err != nil {
		return Host{}, err
	}
	if in.Hostname == nil {
		return Host{}, errs.Fieldf("hostname", "hostname is required")
	}
	now := s.stamp()
	h := Host{ID: uuid.NewString(), OrgID: actor.OrgID, ProjectID: pid, UserCertTTL: defaultUserCertTTL, HostCertTTL: defaultHostCertTTL,
		LoginMappings: []LoginMapping{}, CreatedAt: now, UpdatedAt: now}
	if err := in.apply(&h); err != nil {
		return Host{}, err
	}
	p, err := s.perms(ctx, actor, pid, func() error { return projectNotFound(pid) }, false)
	if err != nil {
		return Host{}, err
	}
	if err := p.Check(authz.ActCreate, authz.SubSshHosts, hostFields(h.Hostname)); err != nil {
		return Host{}, err
	}
	if err := s.mappingsLast(ctx, actor, pid, authz.SubSshHosts, h.Hostname, nil, h.LoginMappings); err != nil {
		return Host{}, err
	}
	userCA, hostCA := strings.TrimSpace(in.UserCAID), strings.TrimSpace(in.HostCAID)
	if userCA == "" || hostCA == "" {
		// As Infisical: a CA not given is the project's default, made on
		// the project's first host if it has none.
		c, err := s.defaults(ctx, actor, pid)
		if err != nil {
			return Host{}, err
		}
		if userCA == "" {
			userCA = c.DefaultUserCAID
		}
		if hostCA == "" {
			hostCA = c.DefaultHostCAID
		}
	}
	for _, c := range []struct{ field, label, id string }{{"userSshCaId", "User", userCA}, {"hostSshCaId", "Host", hostCA}} {
		id := c.id
		if id == "" {
			return Host{}, errs.BadRequest("Missing %s SSH CA: the project has no default %s SSH CA; give %s", strings.ToLower(c.label),
				strings.ToLower(c.label), c.field)
		}
		ca, err := s.ca(ctx, id)
		if err == nil && ca.ProjectID != pid {
			err = caNotFound(id)
		}
		if errs.Is(err, errs.NotFound) {
			return Host{}, errs.BadRequest("%s SSH CA with ID '%s' not found in project '%s'", c.label, id, pid)
		}
		if err != nil {
			return Host{}, err
		}
		if c.field == "userSshCaId" {
			h.UserCAID = ca.ID
		} else {
			h.HostCAID = ca.ID
		}
	}
	if hs, err := s.store.SSHHosts(ctx, actor.OrgID, pid, MaxHostsPerProject); err != nil {
		return Host{}, err
	} else if len(hs) >= MaxHostsPerProject {
		return Host{}, TooManyHosts(len(hs))
	}
	err = s.store.CreateSSHHost(ctx, h, hostEvent(actor, "create-ssh-host", h, true))
	if errs.Is(err, errs.Conflict) {
		return Host{}, errs.BadRequest("An SSH host named %q already exists in the project", h.Hostname)
	}
	return h, err
}

func (in HostInput) apply(h *Host) error {
	var err error
	if in.Hostname != nil {
		if h.Hostname, err = checkHostname(*in.Hostname); err != nil {
			return err
		}
	}
	if in.Alias != nil {
		a := strings.TrimSpace(*in.Alias)
		if len(a) > MaxNameLen || strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errs.Fieldf("alias", "alias must be at most %d characters", MaxNameLen)
		}
		h.Alias = a
	}
	if in.UserCertTTL != nil {
		h.UserCertTTL = strings.TrimSpace(*in.UserCertTTL)
	}
	if in.HostCertTTL != nil {
		h.HostCertTTL = strings.TrimSpace(*in.HostCertTTL)
	}
	if _, err := parseTTL("userCertTtl", h.UserCertTTL); err != nil {
		return err
	}
	if _, err := parseTTL("hostCertTtl", h.HostCertTTL); err != nil {
		return err
	}
	if in.SetMappings {
		if h.LoginMappings, err = checkMappings(in.LoginMappings); err != nil {
			return err
		}
	}
	return nil
}

// host reads a host; a malformed id is not found.
func (s *Service) host(ctx context.Context, id string) (Host, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Host{}, hostNotFound(id)
	}
	h, err := s.store.SSHHost(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Host{}, hostNotFound(id)
	}
	return h, err
}

// authorizedHost reads a host and checks action on it. A host of a project
// the actor is not a member of is not found.
func (s *Service) authorizedHost(ctx context.Context, actor authz.Actor, id, action string) (Host, authz.Set, error) {
	h, err := s.host(ctx, id)
	if err != nil {
		return Host{}, authz.Set{}, err
	}
	p, err := s.perms(ctx, actor, h.ProjectID, func() error { return hostNotFound(id) }, true)
	if err != nil {
		return Host{}, authz.Set{}, err
	}
	return h, p, p.Check(action, authz.SubSshHosts, hostFields(h.Hostname))
}

// GetHost returns a host by id.
func (s *Service) GetHost(ctx context.Context, actor authz.Actor, id string) (Host, error) {
	h, _, err := s.authorizedHost(ctx, actor, id, authz.ActRead)
	if err != nil {
		return Host{}, err
	}
	return h, s.store.AppendAudit(ctx, hostEvent(actor, "get-ssh-host", h, false))
}

// ListHosts returns the hosts of the actor's organization that it may read
// or log in to, across its projects.
func (s *Service) ListHosts(ctx context.Context, actor authz.Actor) ([]Host, error) {
	all, err := s.store.SSHHosts(ctx, actor.OrgID, "", MaxHostsListed)
	if err != nil {
		return nil, err
	}
	perms := map[string]*authz.Set{} // nil: not a member
	out := []Host{}
	for _, h := range all {
		p, seen := perms[h.ProjectID]
		if !seen {
			set, err := s.authz.ProjectPermissions(ctx, actor, h.ProjectID)
			switch {
			case err == nil:
				p = &set
			case errs.Is(err, errs.NotFound) || errs.Is(err, errs.Forbidden):
			default:
				return nil, err
			}
			perms[h.ProjectID] = p
		}
		if p != nil && (p.Can(authz.ActRead, authz.SubSshHosts, hostFields(h.Hostname)) || h.mayLogIn(actor, "")) {
			out = append(out, h)
		}
	}
	return out, nil
}

// ListProjectHosts returns a project's hosts that the actor may read.
func (s *Service) ListProjectHosts(ctx context.Context, actor authz.Actor, project string) ([]Host, error) {
	pid, err := projectID(project)
	if err != nil {
		return nil, err
	}
	p, err := s.perms(ctx, actor, pid, func() error { return projectNotFound(pid) }, false)
	if err != nil {
		return nil, err
	}
	if err := p.Check(authz.ActRead, authz.SubSshHosts, nil); err != nil {
		return nil, err
	}
	all, err := s.store.SSHHosts(ctx, "", pid, MaxHostsPerProject)
	if err != nil {
		return nil, err
	}
	out := []Host{}
	for _, h := range all {
		if p.Can(authz.ActRead, authz.SubSshHosts, hostFields(h.Hostname)) {
			out = append(out, h)
		}
	}
	return out, nil
}

// UpdateHost changes a host. Renaming needs edit on both names. A change
// that commits first is read again, not undone.
func (s *Service) UpdateHost(ctx context.Context, actor authz.Actor, id string, in HostInput) (Host, error) {
	return project.RetryStale(ctx, "SSH host", func() (Host, error) { return s.updateHost(ctx, actor, id, in) })
}

func (s *Service) updateHost(ctx context.Context, actor authz.Actor, id string, in HostInput) (Host, error) {
	h, p, err := s.authorizedHost(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Host{}, err
	}
	before, ttl := h.LoginMappings, h.UserCertTTL
	if err := in.apply(&h); err != nil {
		return Host{}, err
	}
	if err := p.Check(authz.ActEdit, authz.SubSshHosts, hostFields(h.Hostname)); err != nil {
		return Host{}, err
	}
	if h.UserCertTTL != ttl && len(h.LoginMappings)+len(h.Inherited) > 0 {
		if err := checkGrantsCertificates(p); err != nil {
			return Host{}, err
		}
	}
	if err := s.mappingsLast(ctx, actor, h.ProjectID, authz.SubSshHosts, h.Hostname, before, h.LoginMappings); err != nil {
		return Host{}, err
	}
	prev := h.UpdatedAt
	h.UpdatedAt = project.NextStamp(s.now(), prev)
	err = s.store.UpdateSSHHost(ctx, h, prev, hostEvent(actor, "update-ssh-host", h, true))
	if errs.Is(err, errs.Conflict) {
		return Host{}, errs.BadRequest("An SSH host named %q already exists in the project", h.Hostname)
	}
	return h, err
}

// DeleteHost deletes a host.
func (s *Service) DeleteHost(ctx context.Context, actor authz.Actor, id string) (Host, error) {
	h, _, err := s.authorizedHost(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Host{}, err
	}
	err = s.store.DeleteSSHHost(ctx, id, hostEvent(actor, "delete-ssh-host", h, false))
	if errs.Is(err, errs.NotFound) {
		return Host{}, hostNotFound(id)
	}
	return h, err
}

// HostCAPublicKey returns the public key of a host's user CA (user true) or
// host CA, to anyone: servers fetch the first into TrustedUserCAKeys,
// clients the second into known_hosts.
func (s *Service) HostCAPublicKey(ctx context.Context, id string, user bool) (string, error) {
	h, err := s.host(ctx, id)
	if err != nil {
		return "", err
	}
	caID := h.HostCAID
	if user {
		caID = h.UserCAID
	}
	return s.CAPublicKey(ctx, caID)
}

// IssueHostUserCert makes a key pair and a user certificate for loginUser on
// a host, for an actor its login mappings allow.
func (s *Service) IssueHostUserCert(ctx context.Context, actor authz.Actor, id, loginUser string) (Host, Issued, error) {
	loginUser = strings.TrimSpace(loginUser)
	if loginUser == "" {
		return Host{}, Issued{}, errs.Fieldf("loginUser", "loginUser is required")
	}
	var h Host
	prep := func(ctx context.Context) (prepared, error) {
		var err error
		if h, err = s.host(ctx, id); err != nil {
			return prepared{}, err
		}
		if _, err := s.perms(ctx, actor, h.ProjectID, func() error { return hostNotFound(id) }, true); err != nil {
			return prepared{}, err
		}
		if !h.mayLogIn(actor, loginUser) {
			return prepared{}, errs.Forbiddenf("You are not allowed to login as %s on this host", clip(loginUser))
		}
		ttl, err := parseTTL("userCertTtl", h.UserCertTTL)
		if err != nil {
			return prepared{}, errs.Internalf(err, "host %s user TTL", h.ID)
		}
		return s.hostPrepared(ctx, h, h.UserCAID, CertSpec{Type: UserCert, KeyID: string(actor.Kind) + "-" + actor.ID,
			Principals: []string{loginUser}, Extensions: DefaultExtensions()}, ttl)
	}
	p, err := prep(ctx)
	if err != nil {
		return Host{}, Issued{}, err
	}
	out, err := s.issueWithKey(ctx, actor, prep, p, ED25519, "issue-ssh-host-user-cert", map[string]any{"loginUser": loginUser})
	return h, out, err
}

// IssueHostHostCert signs a host's public key as its host certificate.
func (s *Service) IssueHostHostCert(ctx context.Context, actor authz.Actor, id, publicKey string) (Host, Issued, error) {
	key, err := ParsePublicKey(publicKey)
	if err != nil {
		return Host{}, Issued{}, err
	}
	var h Host
	prep := func(ctx context.Context) (prepared, error) {
		var err error
		if h, _, err = s.authorizedHost(ctx, actor, id, authz.ActIssueHostCert); err != nil {
			return prepared{}, err
		}
		ttl, err := parseTTL("hostCertTtl", h.HostCertTTL)
		if err != nil {
			return prepared{}, errs.Internalf(err, "host %s host TTL", h.ID)
		}
		return s.hostPrepared(ctx, h, h.HostCAID, CertSpec{Type: HostCert, KeyID: "host-" + h.ID, Principals: []string{h.Hostname}}, ttl)
	}
	p, err := prep(ctx)
	if err != nil {
		return Host{}, Issued{}, err
	}
	out, err := s.signChecked(ctx, actor, prep, p, key, "issue-ssh-host-host-cert", nil)
	return h, out, err
}

func (s *Service) hostPrepared(ctx context.Context, h Host, caID string, spec CertSpec, ttl time.Duration) (prepared, error) {
	ca, signer, err := s.signer(ctx, caID)
	if err != nil {
		return prepared{}, err
	}
	return prepared{ca: ca, signer: signer, hostID: h.ID, hostAt: h.UpdatedAt, spec: spec, ttl: ttl,
		auditMD: map[string]any{"sshHostId": h.ID, "hostname": h.Hostname}}, nil
}

// addsPrincipals reports whether after names a principal for a login user
// that before does not.
func addsPrincipals(before, after []LoginMapping) bool {
	had := map[[2]string]bool{}
	for _, m := range before {
		for _, p := range m.Principals {
			had[[2]string{m.LoginUser, p}] = true
		}
	}
	for _, m := range after {
		for _, p := range m.Principals {
			if !had[[2]string{m.LoginUser, p}] {
				return true
			}
		}
	}
	return false
}

// mappingsLast refuses new login mappings from an actor without edit on
// sub (on hostname when given), whatever else lets it create the host or
// group: a mapping is a standing grant of user certificates, and one that
// may only register hosts (ssh-host-bootstrapper) must not map itself as
// root. An actor whose edit rests on temporary access is refused too: the
// mapping needs what the actor holds for good.
// checkGrantsCertificates: a login mapping, and a host's user certificate
// lifetime under one, make the host's user CA sign certificates outside any
// template (any login user as principal, for the host's userCertTtl), which
// are good on every server that trusts the CA, not on this host alone. So
// besides the host's own rights they need the right to configure the
// project's SSH CAs, which can make a template allow as much; otherwise a
// role limited to some hostnames (or to hosts at all) minted long-lived
// root certificates for the production hosts' CA. Infisical asks only for
// the host's rights.
func checkGrantsCertificates(p authz.Set) error {
	if p.Can(authz.ActEdit, authz.SubSshCAs, nil) {
		return nil
	}
	return errs.Forbiddenf("Failed to set the login mappings or user certificate lifetime: a login mapping has the host's user CA sign certificates outside its templates, which needs the permission to edit the project's SSH certificate authorities").WithCode("PermissionBoundaryError")
}

func (s *Service) mappingsLast(ctx context.Context, actor authz.Actor, projectID, sub, hostname string, before, after []LoginMapping) error {
	if !addsPrincipals(before, after) {
		return nil
	}
	p, err := s.perms(ctx, actor, projectID, func() error { return projectNotFound(projectID) }, false)
	if err != nil {
		return err
	}
	var f *authz.Fields
	if hostname != "" {
		f = hostFields(hostname)
	}
	if err := p.Check(authz.ActEdit, sub, f); err != nil {
		return err
	}
	if err := checkGrantsCertificates(p); err != nil {
		return err
	}
	if _, temporary := p.Temporary(); !temporary {
		return nil
	}
	rule := authz.Rule{Subject: sub, Actions: []authz.Action{authz.ActEdit}}
	if hostname != "" {
		rule.Conditions = authz.Conditions{"hostname": authz.Condition{{Op: "$eq", Value: hostname}}}
	}
	if p.CoversUntil(authz.NewSet([]authz.Rule{rule}), time.Time{}) {
		return nil
	}
	return errs.Forbiddenf("Failed to set the login mappings: they would outlast the temporary access you hold them by").WithCode("PermissionBoundaryError")
}
