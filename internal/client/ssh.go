package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// SSHCA is an SSH certificate authority; its private key never leaves the server.
type SSHCA struct {
	ID           string `json:"id"`
	ProjectID    string `json:"projectId"`
	Status       string `json:"status"`
	FriendlyName string `json:"friendlyName"`
	KeyAlgorithm string `json:"keyAlgorithm"`
	PublicKey    string `json:"publicKey"`
	CreatedAt    string `json:"createdAt"`
}

// SSHTemplate bounds what a CA signs through it.
type SSHTemplate struct {
	ID                    string            `json:"id,omitempty"`
	ProjectID             string            `json:"projectId,omitempty"`
	SshCaID               string            `json:"sshCaId"`
	Status                string            `json:"status,omitempty"`
	Name                  string            `json:"name"`
	TTL                   string            `json:"ttl,omitempty"`
	MaxTTL                string            `json:"maxTTL,omitempty"`
	AllowedUsers          []string          `json:"allowedUsers"`
	AllowedHosts          []string          `json:"allowedHosts"`
	AllowUserCertificates bool              `json:"allowUserCertificates"`
	AllowHostCertificates bool              `json:"allowHostCertificates"`
	AllowCustomKeyIds     bool              `json:"allowCustomKeyIds"`
	Extensions            map[string]string `json:"extensions,omitempty"`
	CriticalOptions       map[string]string `json:"criticalOptions,omitempty"`
}

// SSHCertRequest asks for a certificate through a template: sign (with
// PublicKey) or issue (a key pair made by the server, of KeyAlgorithm).
type SSHCertRequest struct {
	CertificateTemplateID string   `json:"certificateTemplateId"`
	PublicKey             string   `json:"publicKey,omitempty"`
	KeyAlgorithm          string   `json:"keyAlgorithm,omitempty"`
	CertType              string   `json:"certType,omitempty"`
	Principals            []string `json:"principals"`
	TTL                   string   `json:"ttl,omitempty"`
	KeyID                 string   `json:"keyId,omitempty"`
}

// SSHCert is an issued certificate; PrivateKey and PublicKey are set when
// the server made the key pair, and are shown this once.
type SSHCert struct {
	SerialNumber string `json:"serialNumber"`
	SignedKey    string `json:"signedKey"`
	PrivateKey   string `json:"privateKey,omitempty"`
	PublicKey    string `json:"publicKey,omitempty"`
	KeyAlgorithm string `json:"keyAlgorithm,omitempty"`
}

// SSHLoginMapping lets principals (identity ids, user ids or emails) log
// in to a host as LoginUser.
type SSHLoginMapping struct {
	LoginUser         string `json:"loginUser"`
	AllowedPrincipals struct {
		Usernames []string `json:"usernames"`
	} `json:"allowedPrincipals"`
}

// SSHHost is a registered SSH host.
type SSHHost struct {
	ID            string            `json:"id,omitempty"`
	ProjectID     string            `json:"projectId"`
	Hostname      string            `json:"hostname"`
	Alias         string            `json:"alias,omitempty"`
	UserCertTtl   string            `json:"userCertTtl,omitempty"`
	HostCertTtl   string            `json:"hostCertTtl,omitempty"`
	UserSshCaID   string            `json:"userSshCaId,omitempty"`
	HostSshCaID   string            `json:"hostSshCaId,omitempty"`
	LoginMappings []SSHLoginMapping `json:"loginMappings"`
}

func sshCAPath(id, suffix string) string { return "/api/v1/ssh/ca/" + url.PathEscape(id) + suffix }

func (c *Client) sshCA(ctx context.Context, method, path string, body any) (SSHCA, error) {
	var out struct {
		CA SSHCA `json:"ca"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.CA, err
}

// SSHCreateCA creates a CA in a project; empty keyAlgorithm is the server's default.
func (c *Client) SSHCreateCA(ctx context.Context, projectID, friendlyName, keyAlgorithm string) (SSHCA, error) {
	return c.sshCA(ctx, http.MethodPost, "/api/v1/ssh/ca", map[string]string{"projectId": projectID, "friendlyName": friendlyName,
		"keyAlgorithm": keyAlgorithm})
}

// SSHCA reads a CA.
func (c *Client) SSHCA(ctx context.Context, id string) (SSHCA, error) {
	return c.sshCA(ctx, http.MethodGet, sshCAPath(id, ""), nil)
}

// SSHDeleteCA deletes a CA with its templates.
func (c *Client) SSHDeleteCA(ctx context.Context, id string) (SSHCA, error) {
	return c.sshCA(ctx, http.MethodDelete, sshCAPath(id, ""), nil)
}

// SSHSetCAStatus enables ("active") or disables ("disabled") a CA.
func (c *Client) SSHSetCAStatus(ctx context.Context, id, status string) (SSHCA, error) {
	return c.sshCA(ctx, http.MethodPatch, sshCAPath(id, ""), map[string]string{"status": status})
}

// SSHCAs lists a project's CAs.
func (c *Client) SSHCAs(ctx context.Context, projectID string) ([]SSHCA, error) {
	var out struct {
		CAs []SSHCA `json:"cas"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(projectID)+"/ssh-cas", nil, &out)
	return out.CAs, err
}

// SSHCreateTemplate creates a certificate template.
func (c *Client) SSHCreateTemplate(ctx context.Context, t SSHTemplate) (SSHTemplate, error) {
	var out SSHTemplate
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/certificate-templates", t, &out)
	return out, err
}

// SSHDeleteTemplate deletes a certificate template.
func (c *Client) SSHDeleteTemplate(ctx context.Context, id string) (SSHTemplate, error) {
	var out SSHTemplate
	err := c.Do(ctx, http.MethodDelete, "/api/v1/ssh/certificate-templates/"+url.PathEscape(id), nil, &out)
	return out, err
}

// SSHTemplates lists a project's certificate templates.
func (c *Client) SSHTemplates(ctx context.Context, projectID string) ([]SSHTemplate, error) {
	var out struct {
		CertificateTemplates []SSHTemplate `json:"certificateTemplates"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(projectID)+"/ssh-certificate-templates", nil, &out)
	return out.CertificateTemplates, err
}

// SSHSign signs r.PublicKey.
func (c *Client) SSHSign(ctx context.Context, r SSHCertRequest) (SSHCert, error) {
	var out SSHCert
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/certificates/sign", r, &out)
	return out, err
}

// SSHIssue has the server make a key pair and its certificate.
func (c *Client) SSHIssue(ctx context.Context, r SSHCertRequest) (SSHCert, error) {
	r.PublicKey = ""
	var out SSHCert
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/certificates/issue", r, &out)
	return out, err
}

func sshHostPath(id, suffix string) string { return "/api/v1/ssh/hosts/" + url.PathEscape(id) + suffix }

// SSHAddHost registers a host.
func (c *Client) SSHAddHost(ctx context.Context, h SSHHost) (SSHHost, error) {
	if h.LoginMappings == nil {
		h.LoginMappings = []SSHLoginMapping{}
	}
	var out SSHHost
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/hosts", h, &out)
	return out, err
}

// SSHHosts lists the hosts the caller may read or log in to.
func (c *Client) SSHHosts(ctx context.Context) ([]SSHHost, error) {
	var out []SSHHost
	err := c.Do(ctx, http.MethodGet, "/api/v1/ssh/hosts", nil, &out)
	return out, err
}

// SSHDeleteHost deletes a host.
func (c *Client) SSHDeleteHost(ctx context.Context, id string) (SSHHost, error) {
	var out SSHHost
	err := c.Do(ctx, http.MethodDelete, sshHostPath(id, ""), nil, &out)
	return out, err
}

// SSHIssueHostUserCert issues a key pair and a user certificate to log in to a host as loginUser.
func (c *Client) SSHIssueHostUserCert(ctx context.Context, hostID, loginUser string) (SSHCert, error) {
	var out SSHCert
	err := c.Do(ctx, http.MethodPost, sshHostPath(hostID, "/issue-user-cert"), map[string]string{"loginUser": loginUser}, &out)
	return out, err
}

// SSHIssueHostHostCert signs a host's public key as its host certificate.
func (c *Client) SSHIssueHostHostCert(ctx context.Context, hostID, publicKey string) (SSHCert, error) {
	var out SSHCert
	err := c.Do(ctx, http.MethodPost, sshHostPath(hostID, "/issue-host-cert"), map[string]string{"publicKey": publicKey}, &out)
	return out, err
}

// SSHPublicKey reads a CA public key route (no token needed): the
// authorized_keys line of a CA ("/api/v1/ssh/ca/ID/public-key") or of a
// host's user or host CA ("/api/v1/ssh/hosts/ID/user-ca-public-key").
func (c *Client) SSHPublicKey(ctx context.Context, path string) (string, error) {
	b, err := c.publicGet(ctx, path, 64<<10)
	return strings.TrimSpace(string(b)), err
}

// SSHKRL reads a CA's key revocation list, in OpenSSH's binary format (no
// token needed), for sshd's RevokedKeys.
func (c *Client) SSHKRL(ctx context.Context, caID string) ([]byte, error) {
	return c.publicGet(ctx, sshCAPath(caID, "/krl"), 64<<20)
}

// publicGet reads a route served without a token, at most limit bytes.
func (c *Client) publicGet(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "lockbox-cli")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Message string `json:"message"`
			Error   string `json:"error"`
			ReqID   string `json:"reqId"`
		}
		json.Unmarshal(b, &eb)
		return nil, &APIError{StatusCode: resp.StatusCode, Name: eb.Error, Message: eb.Message, ReqID: eb.ReqID}
	}
	return b, nil
}

// SSHCertRecord is the record of an issued certificate (not the certificate).
type SSHCertRecord struct {
	ID           string   `json:"id"`
	SshCaID      string   `json:"sshCaId"`
	SerialNumber string   `json:"serialNumber"`
	CertType     string   `json:"certType"`
	Principals   []string `json:"principals"`
	KeyID        string   `json:"keyId"`
	NotAfter     string   `json:"notAfter"`
	Status       string   `json:"status"`
	RevokedAt    *string  `json:"revokedAt"`
}

// SSHRevoke revokes an issued certificate by id or serial number; caID
// tells apart a serial that two CAs issued ("" if not needed).
func (c *Client) SSHRevoke(ctx context.Context, ref, caID string) (SSHCertRecord, error) {
	var out struct {
		Certificate SSHCertRecord `json:"certificate"`
	}
	body := map[string]string{}
	if caID != "" {
		body["sshCaId"] = caID
	}
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/certificates/"+url.PathEscape(ref)+"/revoke", body, &out)
	return out.Certificate, err
}

// SSHHostGroup is a set of hosts whose login mappings apply to each.
type SSHHostGroup struct {
	ID            string            `json:"id,omitempty"`
	ProjectID     string            `json:"projectId,omitempty"`
	Name          string            `json:"name,omitempty"`
	LoginMappings []SSHLoginMapping `json:"loginMappings,omitempty"`
}

// SSHGroupHost is a host of a group's project, as the group lists it.
type SSHGroupHost struct {
	ID            string  `json:"id"`
	Hostname      string  `json:"hostname"`
	Alias         *string `json:"alias"`
	IsPartOfGroup bool    `json:"isPartOfGroup"`
	JoinedGroupAt *string `json:"joinedGroupAt"`
}

func sshGroupPath(id, suffix string) string {
	return "/api/v1/ssh/host-groups/" + url.PathEscape(id) + suffix
}

// SSHCreateHostGroup creates a host group.
func (c *Client) SSHCreateHostGroup(ctx context.Context, g SSHHostGroup) (SSHHostGroup, error) {
	if g.LoginMappings == nil {
		g.LoginMappings = []SSHLoginMapping{}
	}
	var out SSHHostGroup
	err := c.Do(ctx, http.MethodPost, "/api/v1/ssh/host-groups", g, &out)
	return out, err
}

// SSHUpdateHostGroup renames a group (name not empty) or replaces its login
// mappings (mappings not nil).
func (c *Client) SSHUpdateHostGroup(ctx context.Context, id, name string, mappings []SSHLoginMapping) (SSHHostGroup, error) {
	body := map[string]any{}
	if name != "" {
		body["name"] = name
	}
	if mappings != nil {
		body["loginMappings"] = mappings
	}
	var out SSHHostGroup
	err := c.Do(ctx, http.MethodPatch, sshGroupPath(id, ""), body, &out)
	return out, err
}

// SSHHostGroup reads a host group.
func (c *Client) SSHHostGroup(ctx context.Context, id string) (SSHHostGroup, error) {
	var out SSHHostGroup
	err := c.Do(ctx, http.MethodGet, sshGroupPath(id, ""), nil, &out)
	return out, err
}

// SSHHostGroups lists a project's host groups.
func (c *Client) SSHHostGroups(ctx context.Context, projectID string) ([]SSHHostGroup, error) {
	var out struct {
		Groups []SSHHostGroup `json:"groups"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(projectID)+"/ssh-host-groups", nil, &out)
	return out.Groups, err
}

// SSHDeleteHostGroup deletes a host group; its hosts stay.
func (c *Client) SSHDeleteHostGroup(ctx context.Context, id string) (SSHHostGroup, error) {
	var out SSHHostGroup
	err := c.Do(ctx, http.MethodDelete, sshGroupPath(id, ""), nil, &out)
	return out, err
}

// SSHGroupHosts lists the hosts of a group's project with whether each is
// in the group; filter is "", "group-members" or "non-group-members".
func (c *Client) SSHGroupHosts(ctx context.Context, id, filter string) ([]SSHGroupHost, error) {
	path := sshGroupPath(id, "/hosts")
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	var out struct {
		Hosts []SSHGroupHost `json:"hosts"`
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out.Hosts, err
}

// SSHAddHostToGroup puts a host in a group (add true) or takes it out.
func (c *Client) SSHAddHostToGroup(ctx context.Context, groupID, hostID string, add bool) (SSHHost, error) {
	method := http.MethodPost
	if !add {
		method = http.MethodDelete
	}
	var out SSHHost
	err := c.Do(ctx, method, sshGroupPath(groupID, "/hosts/"+url.PathEscape(hostID)), nil, &out)
	return out, err
}
