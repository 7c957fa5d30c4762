package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// ProjectTemplate is a project template: environments and roles a project
// created with its name starts with. Roles list the predefined roles first.
type ProjectTemplate struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Type         string `json:"type"`
	OrgID        string `json:"orgId"`
	Environments []struct {
		Name     string `json:"name"`
		Slug     string `json:"slug"`
		Position int    `json:"position"`
	} `json:"environments"`
	Roles []struct {
		Name        string          `json:"name"`
		Slug        string          `json:"slug"`
		Permissions json.RawMessage `json:"permissions"`
	} `json:"roles"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

// NewProjectTemplate describes a template to create; Roles and Environments
// are JSON arrays in Infisical's form (nil: none).
type NewProjectTemplate struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	Type         string          `json:"type"`
	Roles        json.RawMessage `json:"roles,omitempty"`
	Environments json.RawMessage `json:"environments,omitempty"`
}

const projectTemplates = "/api/v1/project-templates"

func (c *Client) projectTemplate(ctx context.Context, method, path string, body any) (ProjectTemplate, error) {
	var out struct {
		ProjectTemplate ProjectTemplate `json:"projectTemplate"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.ProjectTemplate, err
}

// CreateProjectTemplate creates a template in the session's organization.
func (c *Client) CreateProjectTemplate(ctx context.Context, t NewProjectTemplate) (ProjectTemplate, error) {
	return c.projectTemplate(ctx, http.MethodPost, projectTemplates, t)
}

// ProjectTemplates lists the built-in and the organization's templates, of
// one project type unless typ is "".
func (c *Client) ProjectTemplates(ctx context.Context, typ string) ([]ProjectTemplate, error) {
	var out struct {
		ProjectTemplates []ProjectTemplate `json:"projectTemplates"`
	}
	path := projectTemplates
	if typ != "" {
		path += "?" + url.Values{"type": {typ}}.Encode()
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out.ProjectTemplates, err
}

// ProjectTemplateByID returns a template.
func (c *Client) ProjectTemplateByID(ctx context.Context, id string) (ProjectTemplate, error) {
	return c.projectTemplate(ctx, http.MethodGet, projectTemplates+"/"+url.PathEscape(id), nil)
}

// DeleteProjectTemplate removes a template and returns it.
func (c *Client) DeleteProjectTemplate(ctx context.Context, id string) (ProjectTemplate, error) {
	return c.projectTemplate(ctx, http.MethodDelete, projectTemplates+"/"+url.PathEscape(id), nil)
}
