package client

import (
	"context"
	"net/http"
	"net/url"
)

// OrgUser is a user as membership listings describe them.
type OrgUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Username  string `json:"username"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

// OrgMember is a user's membership of an organization.
type OrgMember struct {
	ID        string  `json:"id"`
	OrgID     string  `json:"orgId"`
	Role      string  `json:"role"`
	RoleSlug  string  `json:"roleSlug"`
	Status    string  `json:"status"`
	IsActive  bool    `json:"isActive"`
	CreatedAt string  `json:"createdAt"`
	User      OrgUser `json:"user"`
}

// InviteLink is the one-time link made for one invitee.
type InviteLink struct {
	Email        string `json:"email"`
	Link         string `json:"link"`
	MembershipID string `json:"membershipId"`
	Mailed       bool   `json:"mailed"`
}

// ProjectRole is one role of a project membership.
type ProjectRole struct {
	ID                       string  `json:"id"`
	Role                     string  `json:"role"`
	CustomRoleSlug           *string `json:"customRoleSlug"`
	IsTemporary              bool    `json:"isTemporary"`
	TemporaryMode            *string `json:"temporaryMode,omitempty"`
	TemporaryRange           *string `json:"temporaryRange,omitempty"`
	TemporaryAccessStartTime *string `json:"temporaryAccessStartTime,omitempty"`
	TemporaryAccessEndTime   *string `json:"temporaryAccessEndTime,omitempty"`
}

// Slug is the role's slug, custom or built-in.
func (r ProjectRole) Slug() string {
	if r.CustomRoleSlug != nil && *r.CustomRoleSlug != "" {
		return *r.CustomRoleSlug
	}
	return r.Role
}

// ProjectUser is a user's membership of a project.
type ProjectUser struct {
	ID        string        `json:"id"`
	UserID    string        `json:"userId"`
	ProjectID string        `json:"projectId"`
	Roles     []ProjectRole `json:"roles"`
	User      OrgUser       `json:"user"`
}

// RoleGrant is a role to give, temporary when Range is set ("1h", "30m").
type RoleGrant struct {
	Role           string `json:"role"`
	IsTemporary    bool   `json:"isTemporary"`
	TemporaryMode  string `json:"temporaryMode,omitempty"`
	TemporaryRange string `json:"temporaryRange,omitempty"`
}

func orgMembersPath(orgID string) string {
	return "/api/v2/organizations/" + url.PathEscape(orgID) + "/memberships"
}

// OrgMembers lists the users of an organization.
func (c *Client) OrgMembers(ctx context.Context, orgID string) ([]OrgMember, error) {
	var out struct {
		Users []OrgMember `json:"users"`
	}
	err := c.Do(ctx, http.MethodGet, orgMembersPath(orgID), nil, &out)
	return out.Users, err
}

// RemoveOrgMember removes a user from an organization and its projects.
func (c *Client) RemoveOrgMember(ctx context.Context, orgID, membershipID string) (OrgMember, error) {
	var out struct {
		Membership OrgMember `json:"membership"`
	}
	err := c.Do(ctx, http.MethodDelete, orgMembersPath(orgID)+"/"+url.PathEscape(membershipID), nil, &out)
	return out.Membership, err
}

// InviteUsers invites emails into an organization with role.
func (c *Client) InviteUsers(ctx context.Context, orgID string, emails []string, role string) ([]InviteLink, error) {
	var out struct {
		CompleteInviteLinks []InviteLink `json:"completeInviteLinks"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/invite-org/signup", map[string]any{"inviteeEmails": emails, "organizationId": orgID,
		"organizationRoleSlug": role}, &out)
	return out.CompleteInviteLinks, err
}

func projectUsersPath(projectID string) string {
	return "/api/v1/projects/" + url.PathEscape(projectID) + "/memberships"
}

// ProjectUsers lists the users of a project.
func (c *Client) ProjectUsers(ctx context.Context, projectID string) ([]ProjectUser, error) {
	var out struct {
		Memberships []ProjectUser `json:"memberships"`
	}
	err := c.Do(ctx, http.MethodGet, projectUsersPath(projectID), nil, &out)
	return out.Memberships, err
}

// AddProjectUsers makes users of the organization (by email or username)
// members of a project with roles (empty: member); those already members are
// not returned.
func (c *Client) AddProjectUsers(ctx context.Context, projectID string, logins, roles []string) ([]ProjectUser, error) {
	var out struct {
		Memberships []ProjectUser `json:"memberships"`
	}
	err := c.Do(ctx, http.MethodPost, projectUsersPath(projectID), map[string]any{"usernames": logins, "roleSlugs": roles}, &out)
	return out.Memberships, err
}

// RemoveProjectUsers ends the project memberships of users.
func (c *Client) RemoveProjectUsers(ctx context.Context, projectID string, logins []string) ([]ProjectUser, error) {
	var out struct {
		Memberships []ProjectUser `json:"memberships"`
	}
	err := c.Do(ctx, http.MethodDelete, projectUsersPath(projectID), map[string]any{"usernames": logins}, &out)
	return out.Memberships, err
}

// ProjectUserByLogin finds the membership of a user named by email or username.
func (c *Client) ProjectUserByLogin(ctx context.Context, projectID, login string) (ProjectUser, error) {
	var out struct {
		Membership ProjectUser `json:"membership"`
	}
	err := c.Do(ctx, http.MethodPost, projectUsersPath(projectID)+"/details", map[string]any{"username": login}, &out)
	return out.Membership, err
}

// SetProjectUserRoles replaces the roles of a project membership.
func (c *Client) SetProjectUserRoles(ctx context.Context, projectID, membershipID string, roles []RoleGrant) ([]ProjectRole, error) {
	var out struct {
		Roles []ProjectRole `json:"roles"`
	}
	err := c.Do(ctx, http.MethodPatch, projectUsersPath(projectID)+"/"+url.PathEscape(membershipID), map[string]any{"roles": roles}, &out)
	return out.Roles, err
}
