package client

import (
	"context"
	"net/http"
	"net/url"
)

// Group is an organization's group.
type Group struct {
	ID             string  `json:"id"`
	OrgID          string  `json:"orgId"`
	Name           string  `json:"name"`
	Slug           string  `json:"slug"`
	Role           string  `json:"role"`
	RoleID         *string `json:"roleId"`
	CustomRoleSlug *string `json:"customRoleSlug"`
	CreatedAt      string  `json:"createdAt"`
}

// RoleSlug is the slug of the group's organization role, custom or built-in.
func (g Group) RoleSlug() string {
	if g.CustomRoleSlug != nil && *g.CustomRoleSlug != "" {
		return *g.CustomRoleSlug
	}
	return g.Role
}

// GroupIdentity is a machine identity as a group listing shows it.
type GroupIdentity struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	IsPartOfGroup bool   `json:"isPartOfGroup"`
}

// GroupUser is a user as a group listing shows them.
type GroupUser struct {
	OrgUser
	IsPartOfGroup bool `json:"isPartOfGroup"`
}

// ProjectGroup is a group's membership of a project.
type ProjectGroup struct {
	ID        string        `json:"id"`
	ProjectID string        `json:"projectId"`
	GroupID   string        `json:"groupId"`
	Roles     []ProjectRole `json:"roles"`
	Group     struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"group"`
}

func groupPath(id string) string { return "/api/v1/groups/" + url.PathEscape(id) }

// Groups lists the organization's groups.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := c.Do(ctx, http.MethodGet, "/api/v1/groups", nil, &out)
	return out, err
}

// Group returns a group by id.
func (c *Client) Group(ctx context.Context, id string) (Group, error) {
	var out Group
	err := c.Do(ctx, http.MethodGet, groupPath(id), nil, &out)
	return out, err
}

// CreateGroup creates a group; slug and role may be empty (generated slug, no-access).
func (c *Client) CreateGroup(ctx context.Context, name, slug, role string) (Group, error) {
	body := map[string]any{"name": name}
	if slug != "" {
		body["slug"] = slug
	}
	if role != "" {
		body["role"] = role
	}
	var out Group
	err := c.Do(ctx, http.MethodPost, "/api/v1/groups", body, &out)
	return out, err
}

// DeleteGroup deletes a group.
func (c *Client) DeleteGroup(ctx context.Context, id string) (Group, error) {
	var out Group
	err := c.Do(ctx, http.MethodDelete, groupPath(id), nil, &out)
	return out, err
}

// GroupUsers lists a group's users (the first 100).
func (c *Client) GroupUsers(ctx context.Context, id string) ([]GroupUser, error) {
	var out struct {
		Users []GroupUser `json:"users"`
	}
	err := c.Do(ctx, http.MethodGet, groupPath(id)+"/users?filter=existingMembers&limit=100", nil, &out)
	return out.Users, err
}

// GroupIdentities lists a group's machine identities (the first 100).
func (c *Client) GroupIdentities(ctx context.Context, id string) ([]GroupIdentity, error) {
	var out struct {
		MachineIdentities []GroupIdentity `json:"machineIdentities"`
	}
	err := c.Do(ctx, http.MethodGet, groupPath(id)+"/machine-identities?filter=assignedMachineIdentities&limit=100", nil, &out)
	return out.MachineIdentities, err
}

// AddGroupUser puts a user (by username or email) in a group; remove takes them out.
func (c *Client) AddGroupUser(ctx context.Context, id, username string, remove bool) (OrgUser, error) {
	method := http.MethodPost
	if remove {
		method = http.MethodDelete
	}
	var out OrgUser
	err := c.Do(ctx, method, groupPath(id)+"/users/"+url.PathEscape(username), nil, &out)
	return out, err
}

// AddGroupIdentity puts a machine identity in a group; remove takes it out.
func (c *Client) AddGroupIdentity(ctx context.Context, id, identityID string, remove bool) error {
	method := http.MethodPost
	if remove {
		method = http.MethodDelete
	}
	return c.Do(ctx, method, groupPath(id)+"/machine-identities/"+url.PathEscape(identityID), nil, nil)
}

func projectGroupsPath(projectID string) string {
	return "/api/v1/projects/" + url.PathEscape(projectID) + "/groups"
}

// ProjectGroups lists the groups of a project.
func (c *Client) ProjectGroups(ctx context.Context, projectID string) ([]ProjectGroup, error) {
	var out struct {
		GroupMemberships []ProjectGroup `json:"groupMemberships"`
	}
	err := c.Do(ctx, http.MethodGet, projectGroupsPath(projectID), nil, &out)
	return out.GroupMemberships, err
}

// AddProjectGroup adds a group (by id, slug or name) to a project with roles.
func (c *Client) AddProjectGroup(ctx context.Context, projectID, group string, roles []RoleGrant) (ProjectGroup, error) {
	var out struct {
		GroupMembership ProjectGroup `json:"groupMembership"`
	}
	err := c.Do(ctx, http.MethodPost, projectGroupsPath(projectID)+"/"+url.PathEscape(group), map[string]any{"roles": roles}, &out)
	return out.GroupMembership, err
}

// SetProjectGroupRoles replaces a group's roles in a project.
func (c *Client) SetProjectGroupRoles(ctx context.Context, projectID, group string, roles []RoleGrant) ([]ProjectRole, error) {
	var out struct {
		Roles []ProjectRole `json:"roles"`
	}
	err := c.Do(ctx, http.MethodPatch, projectGroupsPath(projectID)+"/"+url.PathEscape(group), map[string]any{"roles": roles}, &out)
	return out.Roles, err
}

// RemoveProjectGroup removes a group from a project.
func (c *Client) RemoveProjectGroup(ctx context.Context, projectID, group string) (ProjectGroup, error) {
	var out struct {
		GroupMembership ProjectGroup `json:"groupMembership"`
	}
	err := c.Do(ctx, http.MethodDelete, projectGroupsPath(projectID)+"/"+url.PathEscape(group), nil, &out)
	return out.GroupMembership, err
}
