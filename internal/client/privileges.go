package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// Privilege is an identity's additional privilege in a project.
type Privilege struct {
	ID                       string          `json:"id"`
	Slug                     string          `json:"slug"`
	ProjectMembershipID      string          `json:"projectMembershipId"`
	IdentityID               string          `json:"identityId"`
	ProjectID                string          `json:"projectId"`
	IsTemporary              bool            `json:"isTemporary"`
	TemporaryMode            string          `json:"temporaryMode,omitempty"`
	TemporaryRange           string          `json:"temporaryRange,omitempty"`
	TemporaryAccessStartTime string          `json:"temporaryAccessStartTime,omitempty"`
	TemporaryAccessEndTime   string          `json:"temporaryAccessEndTime,omitempty"`
	Permissions              json.RawMessage `json:"permissions,omitempty"`
	CreatedAt                string          `json:"createdAt"`
	UpdatedAt                string          `json:"updatedAt"`
}

// NewPrivilege describes a privilege to create. A non-empty TemporaryRange
// makes it temporary, from TemporaryAccessStartTime (empty: now).
type NewPrivilege struct {
	ProjectID                string
	IdentityID               string
	Slug                     string
	Permissions              json.RawMessage
	TemporaryRange           string
	TemporaryAccessStartTime string
}

const privilegesV2 = "/api/v2/identity-project-additional-privilege"

func (c *Client) privilege(ctx context.Context, method, path string, body any) (Privilege, error) {
	var out struct {
		Privilege Privilege `json:"privilege"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.Privilege, err
}

// CreatePrivilege gives an identity member of a project an additional privilege.
func (c *Client) CreatePrivilege(ctx context.Context, p NewPrivilege) (Privilege, error) {
	typ := map[string]any{"isTemporary": false}
	if p.TemporaryRange != "" {
		typ = map[string]any{"isTemporary": true, "temporaryMode": "relative", "temporaryRange": p.TemporaryRange}
		if p.TemporaryAccessStartTime != "" {
			typ["temporaryAccessStartTime"] = p.TemporaryAccessStartTime
		}
	}
	body := map[string]any{"projectId": p.ProjectID, "identityId": p.IdentityID, "permissions": p.Permissions, "type": typ}
	if p.Slug != "" {
		body["slug"] = p.Slug
	}
	return c.privilege(ctx, http.MethodPost, privilegesV2, body)
}

// Privileges lists an identity's privileges in a project (without their rules).
func (c *Client) Privileges(ctx context.Context, projectID, identityID string) ([]Privilege, error) {
	var out struct {
		Privileges []Privilege `json:"privileges"`
	}
	q := url.Values{"projectId": {projectID}, "identityId": {identityID}}
	err := c.Do(ctx, http.MethodGet, privilegesV2+"?"+q.Encode(), nil, &out)
	return out.Privileges, err
}

// PrivilegeByID returns a privilege with its rules.
func (c *Client) PrivilegeByID(ctx context.Context, id string) (Privilege, error) {
	return c.privilege(ctx, http.MethodGet, privilegesV2+"/"+url.PathEscape(id), nil)
}

// DeletePrivilege removes a privilege and returns it.
func (c *Client) DeletePrivilege(ctx context.Context, id string) (Privilege, error) {
	return c.privilege(ctx, http.MethodDelete, privilegesV2+"/"+url.PathEscape(id), nil)
}
