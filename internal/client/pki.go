package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// PKICA is a certificate authority as the API describes it; its key never leaves the server.
type PKICA struct {
	ID            string  `json:"id"`
	ParentCAID    *string `json:"parentCaId"`
	ProjectID     string  `json:"projectId"`
	Type          string  `json:"type"`
	Status        string  `json:"status"`
	FriendlyName  string  `json:"friendlyName"`
	CommonName    string  `json:"commonName"`
	Organization  string  `json:"organization"`
	OU            string  `json:"ou"`
	Country       string  `json:"country"`
	Province      string  `json:"province"`
	Locality      string  `json:"locality"`
	DN            string  `json:"dn"`
	SerialNumber  *string `json:"serialNumber"`
	MaxPathLength int     `json:"maxPathLength"`
	KeyAlgorithm  string  `json:"keyAlgorithm"`
	NotBefore     *string `json:"notBefore"`
	NotAfter      *string `json:"notAfter"`
	CreatedAt     string  `json:"createdAt"`
	UpdatedAt     string  `json:"updatedAt"`
}

// PKINewCA describes a CA to create; zero fields are left to the server.
type PKINewCA struct {
	ProjectID     string `json:"projectId"`
	Type          string `json:"type"`
	FriendlyName  string `json:"friendlyName,omitempty"`
	CommonName    string `json:"commonName,omitempty"`
	Organization  string `json:"organization,omitempty"`
	OU            string `json:"ou,omitempty"`
	Country       string `json:"country,omitempty"`
	Province      string `json:"province,omitempty"`
	Locality      string `json:"locality,omitempty"`
	NotAfter      string `json:"notAfter,omitempty"`
	MaxPathLength *int   `json:"maxPathLength,omitempty"`
	KeyAlgorithm  string `json:"keyAlgorithm,omitempty"`
	ParentCAID    string `json:"parentCaId,omitempty"`
}

// PKIIssued is an issued or signed certificate; PrivateKey only when the
// server generated the key.
type PKIIssued struct {
	Certificate          string  `json:"certificate"`
	CertificateChain     string  `json:"certificateChain"`
	IssuingCaCertificate string  `json:"issuingCaCertificate,omitempty"`
	PrivateKey           *string `json:"privateKey,omitempty"`
	SerialNumber         string  `json:"serialNumber"`
}

// PKIIssue describes a certificate to issue (or, with CSR, to sign).
type PKIIssue struct {
	CAID                  string   `json:"caId,omitempty"`
	CertificateTemplateID string   `json:"certificateTemplateId,omitempty"`
	FriendlyName          string   `json:"friendlyName,omitempty"`
	CommonName            string   `json:"commonName,omitempty"`
	AltNames              string   `json:"altNames,omitempty"`
	TTL                   string   `json:"ttl,omitempty"`
	NotAfter              string   `json:"notAfter,omitempty"`
	KeyUsages             []string `json:"keyUsages,omitempty"`
	ExtendedKeyUsages     []string `json:"extendedKeyUsages,omitempty"`
	KeyAlgorithm          string   `json:"keyAlgorithm,omitempty"`
	CSR                   string   `json:"csr,omitempty"`
}

// PKICertificate is an issued certificate's record.
type PKICertificate struct {
	ID                    string   `json:"id"`
	ProjectID             string   `json:"projectId"`
	CAID                  string   `json:"caId"`
	CertificateTemplateID *string  `json:"certificateTemplateId"`
	Status                string   `json:"status"`
	SerialNumber          string   `json:"serialNumber"`
	FriendlyName          string   `json:"friendlyName"`
	CommonName            string   `json:"commonName"`
	AltNames              string   `json:"altNames"`
	KeyUsages             []string `json:"keyUsages"`
	ExtendedKeyUsages     []string `json:"extendedKeyUsages"`
	NotBefore             string   `json:"notBefore"`
	NotAfter              string   `json:"notAfter"`
	RevokedAt             *string  `json:"revokedAt"`
	RevocationReason      *int     `json:"revocationReason"`
}

// PKITemplate is a certificate template.
type PKITemplate struct {
	ID                     string   `json:"id,omitempty"`
	ProjectID              string   `json:"projectId,omitempty"`
	CAID                   string   `json:"caId"`
	Name                   string   `json:"name"`
	CommonName             string   `json:"commonName"`
	SubjectAlternativeName string   `json:"subjectAlternativeName"`
	TTL                    string   `json:"ttl"`
	KeyUsages              []string `json:"keyUsages,omitempty"`
	ExtendedKeyUsages      []string `json:"extendedKeyUsages,omitempty"`
}

const pkiBase = "/api/v1/pki"

func pkiPath(kind, id, suffix string) string {
	return pkiBase + "/" + kind + "/" + url.PathEscape(id) + suffix
}

func (c *Client) pkiCA(ctx context.Context, method, path string, body any) (PKICA, error) {
	var out struct {
		CA PKICA `json:"ca"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.CA, err
}

// PKICreateCA creates a CA.
func (c *Client) PKICreateCA(ctx context.Context, n PKINewCA) (PKICA, error) {
	return c.pkiCA(ctx, http.MethodPost, pkiBase+"/ca", n)
}

// PKICAs lists a project's CAs.
func (c *Client) PKICAs(ctx context.Context, projectID string) ([]PKICA, error) {
	var out struct {
		CAs []PKICA `json:"cas"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/ca?projectId="+url.QueryEscape(projectID), nil, &out)
	return out.CAs, err
}

// PKICA reads a CA.
func (c *Client) PKICA(ctx context.Context, id string) (PKICA, error) {
	return c.pkiCA(ctx, http.MethodGet, pkiPath("ca", id, ""), nil)
}

// PKISetCAStatus enables (active) or disables a CA.
func (c *Client) PKISetCAStatus(ctx context.Context, id, status string) (PKICA, error) {
	return c.pkiCA(ctx, http.MethodPatch, pkiPath("ca", id, ""), map[string]string{"status": status})
}

// PKIDeleteCA deletes a CA with its certificates and templates.
func (c *Client) PKIDeleteCA(ctx context.Context, id string) (PKICA, error) {
	return c.pkiCA(ctx, http.MethodDelete, pkiPath("ca", id, ""), nil)
}

// PKICACSR returns an intermediate CA's CSR (PEM).
func (c *Client) PKICACSR(ctx context.Context, id string) (string, error) {
	var out struct {
		CSR string `json:"csr"`
	}
	err := c.Do(ctx, http.MethodGet, pkiPath("ca", id, "/csr"), nil, &out)
	return out.CSR, err
}

// PKICACertificate returns a CA's certificate and chain (PEM).
func (c *Client) PKICACertificate(ctx context.Context, id string) (PKIIssued, error) {
	var out PKIIssued
	err := c.Do(ctx, http.MethodGet, pkiPath("ca", id, "/certificate"), nil, &out)
	return out, err
}

// PKIImportCACertificate installs a pending intermediate CA's certificate.
func (c *Client) PKIImportCACertificate(ctx context.Context, id, certificate, chain string) error {
	return c.Do(ctx, http.MethodPost, pkiPath("ca", id, "/import-certificate"),
		map[string]string{"certificate": certificate, "certificateChain": chain}, nil)
}

// PKISignIntermediate signs an intermediate CA's CSR with CA id.
func (c *Client) PKISignIntermediate(ctx context.Context, id, csr, notAfter string, maxPathLength *int) (PKIIssued, error) {
	body := map[string]any{"csr": csr, "notAfter": notAfter}
	if maxPathLength != nil {
		body["maxPathLength"] = *maxPathLength
	}
	var out PKIIssued
	err := c.Do(ctx, http.MethodPost, pkiPath("ca", id, "/sign-intermediate"), body, &out)
	return out, err
}

// PKIIssue issues a certificate with a key the server generates; with
// r.CSR set, it signs the CSR instead.
func (c *Client) PKIIssue(ctx context.Context, r PKIIssue) (PKIIssued, error) {
	path := pkiBase + "/certificates/issue-certificate"
	if r.CSR != "" {
		path = pkiBase + "/certificates/sign-certificate"
	}
	var out PKIIssued
	err := c.Do(ctx, http.MethodPost, path, r, &out)
	return out, err
}

// PKICertificates lists a page of a project's certificates, newest first.
func (c *Client) PKICertificates(ctx context.Context, projectID string, offset, limit int) ([]PKICertificate, int, error) {
	q := url.Values{"projectId": {projectID}}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Certificates []PKICertificate `json:"certificates"`
		TotalCount   int              `json:"totalCount"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/certificates?"+q.Encode(), nil, &out)
	return out.Certificates, out.TotalCount, err
}

// PKIExpiring lists a project's active certificates expiring within days.
func (c *Client) PKIExpiring(ctx context.Context, projectID string, days int) ([]PKICertificate, error) {
	q := url.Values{"projectId": {projectID}, "days": {strconv.Itoa(days)}}
	var out struct {
		Certificates []PKICertificate `json:"certificates"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/alerts/expiring-certificates?"+q.Encode(), nil, &out)
	return out.Certificates, err
}

func (c *Client) pkiCert(ctx context.Context, method, path string, body any) (PKICertificate, error) {
	var out struct {
		Certificate PKICertificate `json:"certificate"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.Certificate, err
}

// PKICertificate reads a certificate's record by serial number.
func (c *Client) PKICertificate(ctx context.Context, serial string) (PKICertificate, error) {
	return c.pkiCert(ctx, http.MethodGet, pkiPath("certificates", serial, ""), nil)
}

// PKIDeleteCertificate deletes a certificate's record.
func (c *Client) PKIDeleteCertificate(ctx context.Context, serial string) (PKICertificate, error) {
	return c.pkiCert(ctx, http.MethodDelete, pkiPath("certificates", serial, ""), nil)
}

// PKIBundle returns a certificate, its chain and (when the server generated it) its private key.
func (c *Client) PKIBundle(ctx context.Context, serial string) (PKIIssued, error) {
	var out PKIIssued
	err := c.Do(ctx, http.MethodGet, pkiPath("certificates", serial, "/bundle"), nil, &out)
	return out, err
}

// PKIRevoke revokes a certificate; reason empty is UNSPECIFIED.
func (c *Client) PKIRevoke(ctx context.Context, serial, reason string) (revokedAt string, err error) {
	var out struct {
		RevokedAt string `json:"revokedAt"`
	}
	err = c.Do(ctx, http.MethodPost, pkiPath("certificates", serial, "/revoke"), map[string]string{"revocationReason": reason}, &out)
	return out.RevokedAt, err
}

func (c *Client) pkiTemplate(ctx context.Context, method, path string, body any) (PKITemplate, error) {
	var out struct {
		Template PKITemplate `json:"certificateTemplate"`
	}
	err := c.Do(ctx, method, path, body, &out)
	return out.Template, err
}

// PKICreateTemplate creates a certificate template.
func (c *Client) PKICreateTemplate(ctx context.Context, t PKITemplate) (PKITemplate, error) {
	return c.pkiTemplate(ctx, http.MethodPost, pkiBase+"/certificate-templates", t)
}

// PKITemplates lists a project's templates.
func (c *Client) PKITemplates(ctx context.Context, projectID string) ([]PKITemplate, error) {
	var out struct {
		Templates []PKITemplate `json:"certificateTemplates"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/certificate-templates?projectId="+url.QueryEscape(projectID), nil, &out)
	return out.Templates, err
}

// PKITemplate reads a template.
func (c *Client) PKITemplate(ctx context.Context, id string) (PKITemplate, error) {
	return c.pkiTemplate(ctx, http.MethodGet, pkiPath("certificate-templates", id, ""), nil)
}

// PKIDeleteTemplate deletes a template.
func (c *Client) PKIDeleteTemplate(ctx context.Context, id string) (PKITemplate, error) {
	return c.pkiTemplate(ctx, http.MethodDelete, pkiPath("certificate-templates", id, ""), nil)
}

// PKICRL fetches a CA's CRL (DER); it needs no token.
func (c *Client) PKICRL(ctx context.Context, caID string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(pkiPath("crl", caID, "/der")), nil)
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &APIError{StatusCode: resp.StatusCode, Name: http.StatusText(resp.StatusCode), Message: fmt.Sprintf("CRL of CA %s not found", caID)}
	}
	return b, nil
}
