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

// HostGroup is a named set of a project's hosts whose login mappings apply
// to every host in it, beside each host's own.
type HostGroup struct {
	ID            string
	OrgID         string
	ProjectID     string
	Name          string // a slug, unique in the organization (as Infisical's)
	LoginMappings []LoginMapping
	HostCount     int // set by lists only
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// GroupHost is a host of a group's project as the group lists it.
type GroupHost struct {
	ID       string
	Hostname string
	Alias    string
	InGroup  bool
	JoinedAt time.Time // zero when not in the group
}

// Membership filters of a group's host list, as Infisical names them.
const (
	FilterGroupMembers    = "group-members"
	FilterNonGroupMembers = "non-group-members"
)

// MaxHostGroupsPerProject bounds the groups of one project.
const MaxHostGroupsPerProject = 1000

func checkSlug(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 1 || len(s) > MaxNameLen || !slugRE().MatchString(s) {
		return "", errs.Fieldf(field, "%s must be a slug of 1 to %d lower-case letters, digits and dashes", field, MaxNameLen)
	}
	return s, nil
}

func groupNotFound(id string) error {
	return errs.NotFoundf("SSH host group with ID '%s' not found", id)
}

func mappingsMD(ms []LoginMapping) []map[string]any {
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = map[string]any{"loginUser": m.LoginUser, "allowedPrincipals": map[string]any{"usernames": m.Principals}}
	}
	return out
}

func groupEvent(actor authz.Actor, typ string, g HostGroup, full bool) audit.Event {
	md := map[string]any{"sshHostGroupId": g.ID, "name": g.Name}
	if full {
		md["loginMappings"] = mappingsMD(g.LoginMappings)
	}
	return audit.New(actor, typ, md).InProject(g.ProjectID, "")
}

// HostGroupInput creates or (nil fields unchanged) updates a host group.
type HostGroupInput struct {
	ProjectID     string // create only
	Name          *string
	LoginMappings []LoginMapping
	SetMappings   bool
}

// CreateHostGroup makes a host group; it needs create on ssh-host-groups.
func (s *Service) CreateHostGroup(ctx context.Context, actor authz.Actor, in HostGroupInput) (HostGroup, error) {
	pid, err := projectID(in.ProjectID)
	if err != nil {
		return HostGroup{}, err
	}
	if in.Name == nil {
		return HostGroup{}, errs.Fieldf("name", "name is required")
	}
	now := s.stamp()
	g := HostGroup{ID: uuid.NewString(), OrgID: actor.OrgID, ProjectID: pid, LoginMappings: []LoginMapping{}, CreatedAt: now, UpdatedAt: now}
	if err := in.apply(&g); err != nil {
		return HostGroup{}, err
	}
	if err := s.check(ctx, actor, pid, authz.ActCreate, authz.SubSshHostGroups, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return HostGroup{}, err
	}
	if err := s.mappingsLast(ctx, actor, pid, authz.SubSshHostGroups, "", nil, g.LoginMappings); err != nil {
		return HostGroup{}, err
	}
	if gs, err := s.store.SSHHostGroups(ctx, pid); err != nil {
		return HostGroup{}, err
	} else if len(gs) >= MaxHostGroupsPerProject {
		return HostGroup{}, TooManyHostGroups(len(gs))
	}
	err = s.store.CreateSSHHostGroup(ctx, g, groupEvent(actor, "create-ssh-host-group", g, true))
	if errs.Is(err, errs.Conflict) {
		return HostGroup{}, errs.BadRequest("SSH host group with name '%s' already exists in the organization", g.Name)
	}
	return g, err
}

func (in HostGroupInput) apply(g *HostGroup) error {
	var err error
	if in.Name != nil {
		if g.Name, err = checkSlug("name", *in.Name); err != nil {
			return err
		}
	}
	if in.SetMappings {
		if g.LoginMappings, err = checkMappings(in.LoginMappings); err != nil {
			return err
		}
	}
	return nil
}

// authorizedGroup reads a group and checks action on host groups in its
// project; a group of a project the actor is not a member of is not found.
func (s *Service) authorizedGroup(ctx context.Context, actor authz.Actor, id, action string) (HostGroup, error) {
	if _, err := uuid.Parse(id); err != nil {
		return HostGroup{}, groupNotFound(id)
	}
	g, err := s.store.SSHHostGroup(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return HostGroup{}, groupNotFound(id)
	}
	if err != nil {
		return HostGroup{}, err
	}
	return g, s.check(ctx, actor, g.ProjectID, action, authz.SubSshHostGroups, nil, func() error { return groupNotFound(id) }, true)
}

// GetHostGroup returns a host group by id.
func (s *Service) GetHostGroup(ctx context.Context, actor authz.Actor, id string) (HostGroup, error) {
	g, err := s.authorizedGroup(ctx, actor, id, authz.ActRead)
	if err != nil {
		return HostGroup{}, err
	}
	return g, s.store.AppendAudit(ctx, groupEvent(actor, "get-ssh-host-group", g, false))
}

// ListHostGroups returns a project's host groups, by name.
func (s *Service) ListHostGroups(ctx context.Context, actor authz.Actor, project string) ([]HostGroup, error) {
	pid, err := projectID(project)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, actor, pid, authz.ActRead, authz.SubSshHostGroups, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return nil, err
	}
	return s.store.SSHHostGroups(ctx, pid)
}

// UpdateHostGroup renames a group or replaces its login mappings; it needs
// edit on ssh-host-groups. A change that commits first (of the group, or of
// its members) is read again, not undone.
func (s *Service) UpdateHostGroup(ctx context.Context, actor authz.Actor, id string, in HostGroupInput) (HostGroup, error) {
	return project.RetryStale(ctx, "SSH host group", func() (HostGroup, error) { return s.updateHostGroup(ctx, actor, id, in) })
}

func (s *Service) updateHostGroup(ctx context.Context, actor authz.Actor, id string, in HostGroupInput) (HostGroup, error) {
	g, err := s.authorizedGroup(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return HostGroup{}, err
	}
	before := g.LoginMappings
	if err := in.apply(&g); err != nil {
		return HostGroup{}, err
	}
	if err := s.mappingsLast(ctx, actor, g.ProjectID, authz.SubSshHostGroups, "", before, g.LoginMappings); err != nil {
		return HostGroup{}, err
	}
	if in.SetMappings {
		// New mappings apply to every host of the group: each is edited.
		if err := s.mayEditMembers(ctx, actor, g, before); err != nil {
			return HostGroup{}, err
		}
	}
	prev := g.UpdatedAt
	g.UpdatedAt = project.NextStamp(s.now(), prev)
	err = s.store.UpdateSSHHostGroup(ctx, g, prev, groupEvent(actor, "update-ssh-host-group", g, true))
	if errs.Is(err, errs.Conflict) {
		return HostGroup{}, errs.BadRequest("SSH host group with name '%s' already exists in the organization", g.Name)
	}
	return g, err
}

// DeleteHostGroup deletes a group; its hosts stay, without its mappings.
func (s *Service) DeleteHostGroup(ctx context.Context, actor authz.Actor, id string) (HostGroup, error) {
	g, err := s.authorizedGroup(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return HostGroup{}, err
	}
	err = s.store.DeleteSSHHostGroup(ctx, id, groupEvent(actor, "delete-ssh-host-group", g, false))
	if errs.Is(err, errs.NotFound) {
		return HostGroup{}, groupNotFound(id)
	}
	return g, err
}

// GroupHosts lists the hosts of a group's project with whether each is in
// the group; filter narrows to members or non-members ("" for all).
func (s *Service) GroupHosts(ctx context.Context, actor authz.Actor, id, filter string) (HostGroup, []GroupHost, error) {
	switch filter {
	case "", FilterGroupMembers, FilterNonGroupMembers:
	default:
		return HostGroup{}, nil, errs.Fieldf("filter", "filter must be %s or %s", FilterGroupMembers, FilterNonGroupMembers)
	}
	g, err := s.authorizedGroup(ctx, actor, id, authz.ActRead)
	if err != nil {
		return HostGroup{}, nil, err
	}
	all, err := s.store.SSHHostGroupHosts(ctx, g.ID, g.ProjectID)
	if err != nil {
		return HostGroup{}, nil, err
	}
	p, err := s.perms(ctx, actor, g.ProjectID, func() error { return groupNotFound(id) }, true)
	if err != nil {
		return HostGroup{}, nil, err
	}
	out := []GroupHost{}
	for _, h := range all {
		if !p.Can(authz.ActRead, authz.SubSshHosts, hostFields(h.Hostname)) {
			continue // as ListHosts: only hosts the actor may read
		}
		if filter == "" || (filter == FilterGroupMembers) == h.InGroup {
			out = append(out, h)
		}
	}
	return g, out, s.store.AppendAudit(ctx, groupEvent(actor, "get-ssh-host-group-hosts", g, false))
}

// groupAndHost reads a group (checking edit on host groups) and a host of
// its project, for adding and removing.
func (s *Service) groupAndHost(ctx context.Context, actor authz.Actor, groupID, hostID string) (HostGroup, Host, error) {
	g, err := s.authorizedGroup(ctx, actor, groupID, authz.ActEdit)
	if err != nil {
		return HostGroup{}, Host{}, err
	}
	// A host joining or leaving a group gains or loses the group's login
	// mappings: that is an edit of the host, bounded by its hostname.
	h, _, err := s.authorizedHost(ctx, actor, hostID, authz.ActEdit)
	if err == nil && h.ProjectID != g.ProjectID {
		return HostGroup{}, Host{}, errs.BadRequest("SSH host with ID %s not found in project %s", hostID, g.ProjectID)
	}
	return g, h, err
}

// Membership is a host joining or leaving a group, with the group and the
// host as the change read them.
type Membership struct {
	GroupID, HostID     string
	GroupPrev, HostPrev time.Time // their updated_at as read
	At                  time.Time // later than both
}

// membership is the change of h's membership of g, both as read.
func (s *Service) membership(g HostGroup, h Host) Membership {
	later := h.UpdatedAt
	if g.UpdatedAt.After(later) {
		later = g.UpdatedAt
	}
	return Membership{GroupID: g.ID, HostID: h.ID, GroupPrev: g.UpdatedAt, HostPrev: h.UpdatedAt, At: project.NextStamp(s.now(), later)}
}

// AddHostToGroup puts a host of the group's project in the group; it needs
// edit on ssh-host-groups (as Infisical). The host then takes the group's
// login mappings.
func (s *Service) AddHostToGroup(ctx context.Context, actor authz.Actor, groupID, hostID string) (HostGroup, Host, error) {
	return s.changeMembership(ctx, actor, groupID, hostID, "add-host-to-ssh-host-group", func(g HostGroup, h Host, m Membership, ev audit.Event) error {
		had := slices.Concat(h.LoginMappings, h.Inherited)
		if err := s.mappingsLast(ctx, actor, g.ProjectID, authz.SubSshHosts, h.Hostname, had, slices.Concat(had, g.LoginMappings)); err != nil {
			return err
		}
		err := s.store.AddSSHHostGroupMember(ctx, m, ev)
		if errs.Is(err, errs.Conflict) {
			return errs.BadRequest("SSH host with ID %s is already in SSH host group with ID %s", h.ID, g.ID)
		}
		return err
	})
}

// RemoveHostFromGroup takes a host out of a group.
func (s *Service) RemoveHostFromGroup(ctx context.Context, actor authz.Actor, groupID, hostID string) (HostGroup, Host, error) {
	return s.changeMembership(ctx, actor, groupID, hostID, "remove-host-from-ssh-host-group", func(g HostGroup, h Host, m Membership, ev audit.Event) error {
		err := s.store.RemoveSSHHostGroupMember(ctx, m, ev)
		if errs.Is(err, errs.NotFound) {
			return errs.NotFoundf("SSH host with ID %s not found in SSH host group with ID %s", h.ID, g.ID)
		}
		return err
	})
}

// changeMembership reads a group and a host (groupAndHost) and has change
// check and write the host's joining or leaving as m, with its event of
// type evType; a change of either committed meanwhile makes it read and
// try again (RetryStale). It returns the group and the host as they are
// after.
func (s *Service) changeMembership(ctx context.Context, actor authz.Actor, groupID, hostID, evType string,
	change func(HostGroup, Host, Membership, audit.Event) error) (HostGroup, Host, error) {
	g, err := project.RetryStale(ctx, "SSH host group", func() (HostGroup, error) {
		g, h, err := s.groupAndHost(ctx, actor, groupID, hostID)
		if err != nil {
			return HostGroup{}, err
		}
		ev := audit.New(actor, evType, map[string]any{"sshHostGroupId": g.ID, "sshHostId": h.ID,
			"hostname": h.Hostname}).InProject(g.ProjectID, "")
		m := s.membership(g, h)
		if err := change(g, h, m, ev); err != nil {
			return HostGroup{}, err
		}
		g.UpdatedAt = m.At
		return g, nil
	})
	if err != nil {
		return HostGroup{}, Host{}, err
	}
	h, err := s.host(ctx, hostID)
	return g, h, err
}

// mayEditMembers checks edit on every host in g, by its hostname, and that
// the group's mappings, once before, last on each (mappingsLast).
func (s *Service) mayEditMembers(ctx context.Context, actor authz.Actor, g HostGroup, before []LoginMapping) error {
	p, err := s.perms(ctx, actor, g.ProjectID, func() error { return groupNotFound(g.ID) }, true)
	if err != nil {
		return err
	}
	hosts, err := s.store.SSHHostGroupHosts(ctx, g.ID, g.ProjectID)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if h.InGroup {
			if err := p.Check(authz.ActEdit, authz.SubSshHosts, hostFields(h.Hostname)); err != nil {
				return err
			}
			if err := s.mappingsLast(ctx, actor, g.ProjectID, authz.SubSshHosts, h.Hostname, before, g.LoginMappings); err != nil {
				return err
			}
		}
	}
	return nil
}
