// Package client is a Go client of lockbox's HTTP API (which is Infisical's),
// used by the lockbox CLI and by end-to-end tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one lockbox server.
type Client struct {
	// BaseURL is the server's address, e.g. http://127.0.0.1:8080 (with or without /api).
	BaseURL string
	// Token is sent as a bearer token when set.
	Token string
	HTTP  *http.Client
}

// New returns a client for baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: baseURL, Token: token, HTTP: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects}}
}

// noRedirects makes a redirect the answer: the API never redirects, and
// Go's client would re-send a body (a client secret, a password, a token
// to revoke, secret values) to wherever a 307 or 308 points, and the
// bearer token to the same host on another port or over plain http.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// APIError is a non-2xx answer in Infisical's error shape.
type APIError struct {
	StatusCode int
	Name       string
	Message    string
	ReqID      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s (request id %s)", e.StatusCode, e.Name, e.Message, e.ReqID)
}

func (c *Client) url(path string) string {
	base := strings.TrimRight(c.BaseURL, "/")
	base = strings.TrimSuffix(base, "/api")
	return base + path
}

// Do sends method path with body (JSON-encoded unless nil) and decodes a 2xx
// response into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	_, _, err := c.Request(ctx, method, path, nil, body, out)
	return err
}

// Request is Do with extra request headers; it returns the status and the
// response headers. A 304 is not an error (out is left alone).
func (c *Client) Request(ctx context.Context, method, path string, header http.Header, body, out any) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "lockbox-cli")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if resp.StatusCode == http.StatusNotModified {
		return resp.StatusCode, resp.Header, nil
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			StatusCode int             `json:"statusCode"`
			Message    json.RawMessage `json:"message"`
			Error      string          `json:"error"`
			ReqID      string          `json:"reqId"`
		}
		json.Unmarshal(b, &eb)
		msg := string(eb.Message)
		var s string
		if json.Unmarshal(eb.Message, &s) == nil {
			msg = s
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, resp.Header, &APIError{StatusCode: resp.StatusCode, Name: eb.Error, Message: msg, ReqID: eb.ReqID}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s %s response: %w", method, path, err)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// BootstrapResponse is the answer of POST /api/v1/admin/bootstrap.
type BootstrapResponse struct {
	Message string `json:"message"`
	User    struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"user"`
	Organization struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
	} `json:"organization"`
	Identity struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Credentials struct {
			Token string `json:"token"`
		} `json:"credentials"`
	} `json:"identity"`
}

// Bootstrap sets up a fresh instance.
func (c *Client) Bootstrap(ctx context.Context, email, password, organization string) (BootstrapResponse, error) {
	var out BootstrapResponse
	err := c.Do(ctx, http.MethodPost, "/api/v1/admin/bootstrap", map[string]string{
		"email": email, "password": password, "organization": organization}, &out)
	return out, err
}

// LoginResponse is the answer of a machine-identity login or token renewal.
type LoginResponse struct {
	AccessToken       string `json:"accessToken"`
	ExpiresIn         int64  `json:"expiresIn"`
	AccessTokenMaxTTL int64  `json:"accessTokenMaxTTL"`
	TokenType         string `json:"tokenType"`
}

// UniversalAuthLogin exchanges a client ID and secret for an access token.
func (c *Client) UniversalAuthLogin(ctx context.Context, clientID, clientSecret string) (LoginResponse, error) {
	var out LoginResponse
	err := c.Do(ctx, http.MethodPost, "/api/v1/auth/universal-auth/login", map[string]string{"clientId": clientID, "clientSecret": clientSecret}, &out)
	return out, err
}

// MethodLogin logs in with a platform login method (jwt-auth, oidc-auth,
// kubernetes-auth, ldap-auth, ...): body is the method's login request.
func (c *Client) MethodLogin(ctx context.Context, method string, body map[string]string) (LoginResponse, error) {
	var out LoginResponse
	err := c.Do(ctx, http.MethodPost, "/api/v1/auth/"+url.PathEscape(method)+"/login", body, &out)
	return out, err
}

// IdentityOrgID is the organization of the machine identity whose token the client holds.
func (c *Client) IdentityOrgID(ctx context.Context) (string, error) {
	var d struct {
		IdentityDetails struct {
			Organization struct {
				ID string `json:"id"`
			} `json:"organization"`
		} `json:"identityDetails"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/identities/details", nil, &d)
	return d.IdentityDetails.Organization.ID, err
}
