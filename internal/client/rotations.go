package client

import (
	"context"
	"net/http"
	"net/url"
)

// AppConnection is an app connection as the API describes it; its password
// never leaves the server.
type AppConnection struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description *string        `json:"description"`
	App         string         `json:"app"`
	Method      string         `json:"method"`
	Credentials map[string]any `json:"credentials"`
	// RotationPrincipals are what members holding only connect may rotate.
	RotationPrincipals []string `json:"rotationPrincipals"`
	Version            int      `json:"version"`
	OrgID              string   `json:"orgId"`
	CreatedAt          string   `json:"createdAt"`
	UpdatedAt          string   `json:"updatedAt"`
}

// NewAppConnection describes a connection to create.
type NewAppConnection struct {
	App         string         `json:"-"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Method      string         `json:"method,omitempty"`
	Credentials map[string]any `json:"credentials"`
	// RotationPrincipals: names or * patterns members may rotate.
	RotationPrincipals []string `json:"rotationPrincipals,omitempty"`
}

const appConns = "/api/v1/app-connections"

func (c *Client) appConn(ctx context.Context, method, path string, body any) (AppConnection, error) {
	var out struct {
		AppConnection AppConnection `json:"appConnection"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.AppConnection, err
}

// CreateAppConnection creates a connection; the server connects to prove it.
func (c *Client) CreateAppConnection(ctx context.Context, n NewAppConnection) (AppConnection, error) {
	return c.appConn(ctx, http.MethodPost, appConns+"/"+url.PathEscape(n.App), n)
}

// AppConnections lists the org's connections of app (empty: every app).
func (c *Client) AppConnections(ctx context.Context, app string) ([]AppConnection, error) {
	path := appConns
	if app != "" {
		path += "/" + url.PathEscape(app)
	}
	var out struct {
		AppConnections []AppConnection `json:"appConnections"`
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out.AppConnections, err
}

// AppConnection returns a connection of app by id.
func (c *Client) AppConnection(ctx context.Context, app, id string) (AppConnection, error) {
	return c.appConn(ctx, http.MethodGet, appConns+"/"+url.PathEscape(app)+"/"+url.PathEscape(id), nil)
}

// DeleteAppConnection deletes a connection no rotation uses.
func (c *Client) DeleteAppConnection(ctx context.Context, app, id string) (AppConnection, error) {
	return c.appConn(ctx, http.MethodDelete, appConns+"/"+url.PathEscape(app)+"/"+url.PathEscape(id), nil)
}

// SecretRotation is a rotation as the API describes it.
type SecretRotation struct {
	ID                    string            `json:"id"`
	Name                  string            `json:"name"`
	Type                  string            `json:"type"`
	ProjectID             string            `json:"projectId"`
	ConnectionID          string            `json:"connectionId"`
	Environment           map[string]string `json:"environment"`
	SecretPath            string            `json:"secretPath"`
	Parameters            map[string]string `json:"parameters"`
	SecretsMapping        map[string]string `json:"secretsMapping"`
	IsAutoRotationEnabled bool              `json:"isAutoRotationEnabled"`
	RotationInterval      int               `json:"rotationInterval"`
	ActiveIndex           int               `json:"activeIndex"`
	RotationStatus        string            `json:"rotationStatus"`
	LastRotatedAt         *string           `json:"lastRotatedAt"`
	LastRotationMessage   *string           `json:"lastRotationMessage"`
	NextRotationAt        *string           `json:"nextRotationAt"`
}

// NewSecretRotation describes a rotation to create.
type NewSecretRotation struct {
	Type                  string            `json:"-"`
	Name                  string            `json:"name"`
	ProjectID             string            `json:"projectId"`
	ConnectionID          string            `json:"connectionId"`
	Environment           string            `json:"environment"`
	SecretPath            string            `json:"secretPath"`
	RotationInterval      int               `json:"rotationInterval"`
	RotateAtUtc           map[string]int    `json:"rotateAtUtc,omitempty"`
	IsAutoRotationEnabled *bool             `json:"isAutoRotationEnabled,omitempty"`
	Parameters            map[string]string `json:"parameters"`
	SecretsMapping        map[string]string `json:"secretsMapping"`
}

const rotations = "/api/v2/secret-rotations"

func (c *Client) rotation(ctx context.Context, method, path string, body any) (SecretRotation, error) {
	var out struct {
		SecretRotation SecretRotation `json:"secretRotation"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.SecretRotation, err
}

func rotationPath(typ, id, suffix string) string {
	return rotations + "/" + url.PathEscape(typ) + "/" + url.PathEscape(id) + suffix
}

// CreateSecretRotation creates a rotation and runs its first rotation.
func (c *Client) CreateSecretRotation(ctx context.Context, n NewSecretRotation) (SecretRotation, error) {
	return c.rotation(ctx, http.MethodPost, rotations+"/"+url.PathEscape(n.Type), n)
}

// SecretRotations lists a project's rotations.
func (c *Client) SecretRotations(ctx context.Context, projectID string) ([]SecretRotation, error) {
	var out struct {
		SecretRotations []SecretRotation `json:"secretRotations"`
	}
	err := c.Do(ctx, http.MethodGet, rotations+"?"+url.Values{"projectId": {projectID}}.Encode(), nil, &out)
	return out.SecretRotations, err
}

// RotateSecrets rotates now.
func (c *Client) RotateSecrets(ctx context.Context, typ, id string) (SecretRotation, error) {
	return c.rotation(ctx, http.MethodPost, rotationPath(typ, id, "/rotate-secrets"), nil)
}

// DeleteSecretRotation deletes a rotation (and its secrets with
// deleteSecrets; revoke makes the credentials it issued stop working first).
func (c *Client) DeleteSecretRotation(ctx context.Context, typ, id string, deleteSecrets, revoke bool) (SecretRotation, error) {
	q := url.Values{}
	if deleteSecrets {
		q.Set("deleteSecrets", "true")
	}
	if revoke {
		q.Set("revokeGeneratedCredentials", "true")
	}
	qs := ""
	if len(q) > 0 {
		qs = "?" + q.Encode()
	}
	return c.rotation(ctx, http.MethodDelete, rotationPath(typ, id, qs), nil)
}
