package api

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/pki"
)

// pkiRoutes serves Infisical's PKI routes (/api/v1/pki/...): certificate
// authorities, certificates, certificate templates, expiry alerts and the
// public CRL.
func (s *Server) pkiRoutes(m *routeMux) {
	const ca = "/api/v1/pki/ca"
	m.Handle("POST "+ca, s.authed(s.pkiCACreate))
	m.Handle("GET "+ca, s.authed(s.pkiCAList))
	m.Handle("GET "+ca+"/{caId}", s.authed(s.pkiCAGet))
	m.Handle("PATCH "+ca+"/{caId}", s.authed(s.pkiCAUpdate))
	m.Handle("DELETE "+ca+"/{caId}", s.authed(s.pkiCADelete))
	m.Handle("GET "+ca+"/{caId}/csr", s.authed(s.pkiCACSR))
	m.Handle("GET "+ca+"/{caId}/certificate", s.authed(s.pkiCACert))
	m.Handle("GET "+ca+"/{caId}/ca-certificates", s.authed(s.pkiCACerts))
	m.Handle("GET "+ca+"/{caId}/crls", s.authed(s.pkiCACRLs))
	m.Handle("POST "+ca+"/{caId}/sign-intermediate", s.authed(s.pkiSignIntermediate))
	m.Handle("POST "+ca+"/{caId}/import-certificate", s.authed(s.pkiImportCert))
	m.Handle("POST "+ca+"/{caId}/issue-certificate", s.authed(s.pkiIssueFromCA))
	m.Handle("POST "+ca+"/{caId}/sign-certificate", s.authed(s.pkiSignFromCA))

	const certs = "/api/v1/pki/certificates"
	m.Handle("GET "+certs, s.authed(s.pkiCertList))
	m.Handle("POST "+certs+"/issue-certificate", s.authed(s.pkiIssue))
	m.Handle("POST "+certs+"/sign-certificate", s.authed(s.pkiSign))
	m.Handle("GET "+certs+"/{serialNumber}", s.authed(s.pkiCertGet))
	m.Handle("DELETE "+certs+"/{serialNumber}", s.authed(s.pkiCertDelete))
	m.Handle("POST "+certs+"/{serialNumber}/revoke", s.authed(s.pkiCertRevoke))
	m.Handle("GET "+certs+"/{serialNumber}/certificate", s.authed(s.pkiCertBody))
	m.Handle("GET "+certs+"/{serialNumber}/bundle", s.authed(s.pkiCertBundle))

	const tmpl = "/api/v1/pki/certificate-templates"
	m.Handle("POST "+tmpl, s.authed(s.pkiTemplateCreate))
	m.Handle("GET "+tmpl, s.authed(s.pkiTemplateList))
	m.Handle("GET "+tmpl+"/{id}", s.authed(s.pkiTemplateGet))
	m.Handle("PATCH "+tmpl+"/{id}", s.authed(s.pkiTemplateUpdate))
	m.Handle("DELETE "+tmpl+"/{id}", s.authed(s.pkiTemplateDelete))

	m.Handle("GET /api/v1/pki/alerts/expiring-certificates", s.authed(s.pkiExpiring))

	// Infisical's project lists, the project named by slug (or id).
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/cas", s.pkiWorkspaceList(s.pkiCAList))
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/certificates", s.pkiWorkspaceList(s.pkiCertList))
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/certificate-templates", s.pkiWorkspaceList(s.pkiTemplateList))

	// The CRL is public: relying parties fetch it without credentials.
	// The CRL id is the CA's id.
	m.Handle("GET /api/v1/pki/crl/{crlId}", s.handle(s.pkiCRL))
	m.Handle("GET /api/v1/pki/crl/{crlId}/der", s.handle(s.pkiCRL))
}

// pkiWorkspaceList serves list under /api/v2/workspace/{slug}/...: the
// project, named by slug or id, becomes the projectId query parameter.
func (s *Server) pkiWorkspaceList(list func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ref := r.PathValue("projectId")
		if _, err := uuid.Parse(ref); err != nil {
			p, err := s.svc.Projects.GetBySlug(r.Context(), actorFrom(r.Context()), ref)
			if err != nil {
				return err
			}
			ref = p.ID
		}
		q := r.URL.Query()
		q.Set("projectId", ref)
		r.URL.RawQuery = q.Encode()
		return list(w, r)
	}
}

func optTimeZero(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

type wireCA struct {
	ID                         string  `json:"id"`
	ParentCAID                 *string `json:"parentCaId"`
	ProjectID                  string  `json:"projectId"`
	Type                       string  `json:"type"`
	Status                     string  `json:"status"`
	FriendlyName               string  `json:"friendlyName"`
	Organization               string  `json:"organization"`
	OU                         string  `json:"ou"`
	Country                    string  `json:"country"`
	Province                   string  `json:"province"`
	Locality                   string  `json:"locality"`
	CommonName                 string  `json:"commonName"`
	DN                         string  `json:"dn"`
	SerialNumber               *string `json:"serialNumber"`
	MaxPathLength              int     `json:"maxPathLength"`
	KeyAlgorithm               string  `json:"keyAlgorithm"`
	NotBefore                  *string `json:"notBefore"`
	NotAfter                   *string `json:"notAfter"`
	RequireTemplateForIssuance bool    `json:"requireTemplateForIssuance"`
	CreatedAt                  string  `json:"createdAt"`
	UpdatedAt                  string  `json:"updatedAt"`
}

func toWireCA(c pki.CA) wireCA {
	return wireCA{ID: c.ID, ParentCAID: strPtr(c.ParentCAID), ProjectID: c.ProjectID, Type: string(c.Type), Status: string(c.Status),
		FriendlyName: c.FriendlyName, Organization: c.Subject.Organization, OU: c.Subject.OU, Country: c.Subject.Country,
		Province: c.Subject.Province, Locality: c.Subject.Locality, CommonName: c.Subject.CommonName, DN: c.DN,
		SerialNumber: strPtr(c.SerialNumber), MaxPathLength: c.MaxPathLength, KeyAlgorithm: string(c.KeyAlgorithm),
		NotBefore: optTimeZero(c.NotBefore), NotAfter: optTimeZero(c.NotAfter), RequireTemplateForIssuance: c.RequireTemplate,
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)}
}

func writeCA(w http.ResponseWriter, c pki.CA) error {
	return writeJSON(w, http.StatusOK, struct {
		CA wireCA `json:"ca"`
	}{toWireCA(c)})
}

// wireDate reads an optional date field: RFC 3339, or a bare date (midnight UTC).
func wireDate(name string, v *string) (*time.Time, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return nil, nil
	}
	s := strings.TrimSpace(*v)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, nil
		}
	}
	return nil, field(name, "%s must be a date such as 2030-01-31 or 2030-01-31T00:00:00Z", name)
}

func (s *Server) pkiCACreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ProjectID     string  `json:"projectId"`
		ProjectSlug   string  `json:"projectSlug"`
		Type          string  `json:"type"`
		FriendlyName  string  `json:"friendlyName"`
		CommonName    string  `json:"commonName"`
		Organization  string  `json:"organization"`
		OU            string  `json:"ou"`
		Country       string  `json:"country"`
		Province      string  `json:"province"`
		Locality      string  `json:"locality"`
		NotBefore     *string `json:"notBefore"`
		NotAfter      *string `json:"notAfter"`
		MaxPathLength *int    `json:"maxPathLength"`
		KeyAlgorithm  string  `json:"keyAlgorithm"`
		ParentCAID    string  `json:"parentCaId"`
		// Infisical's; lockbox's default is Infisical's (false).
		RequireTemplateForIssuance bool `json:"requireTemplateForIssuance"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	nb, err := wireDate("notBefore", req.NotBefore)
	if err != nil {
		return err
	}
	na, err := wireDate("notAfter", req.NotAfter)
	if err != nil {
		return err
	}
	actor := actorFrom(r.Context())
	if req.ProjectID == "" && strings.TrimSpace(req.ProjectSlug) != "" {
		p, err := s.svc.Projects.GetBySlug(r.Context(), actor, strings.TrimSpace(req.ProjectSlug))
		if err != nil {
			return err
		}
		req.ProjectID = p.ID
	}
	ca, err := s.svc.PKI.CreateCA(r.Context(), actor, pki.NewCA{ProjectID: req.ProjectID, Type: req.Type, FriendlyName: req.FriendlyName,
		Subject: pki.Subject{CommonName: req.CommonName, Organization: req.Organization, OU: req.OU, Country: req.Country,
			Province: req.Province, Locality: req.Locality},
		NotBefore: nb, NotAfter: na, MaxPathLength: req.MaxPathLength, KeyAlgorithm: req.KeyAlgorithm, ParentCAID: strings.TrimSpace(req.ParentCAID),
		RequireTemplate: req.RequireTemplateForIssuance})
	if err != nil {
		return err
	}
	return writeCA(w, ca)
}

func (s *Server) pkiCAList(w http.ResponseWriter, r *http.Request) error {
	cas, err := s.svc.PKI.ListCAs(r.Context(), actorFrom(r.Context()), query(r, "projectId"))
	if err != nil {
		return err
	}
	out := make([]wireCA, len(cas))
	for i, c := range cas {
		out[i] = toWireCA(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		CAs []wireCA `json:"cas"`
	}{out})
}

func (s *Server) pkiCAGet(w http.ResponseWriter, r *http.Request) error {
	ca, err := s.svc.PKI.GetCA(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	return writeCA(w, ca)
}

func (s *Server) pkiCAUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Status                     *string `json:"status"`
		RequireTemplateForIssuance *bool   `json:"requireTemplateForIssuance"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	actor := actorFrom(r.Context())
	if req.Status == nil && req.RequireTemplateForIssuance == nil {
		ca, err := s.svc.PKI.GetCA(r.Context(), actor, r.PathValue("caId"))
		if err != nil {
			return err
		}
		return writeCA(w, ca)
	}
	ca, err := s.svc.PKI.UpdateCA(r.Context(), actor, r.PathValue("caId"), pki.CAChange{Status: req.Status,
		RequireTemplate: req.RequireTemplateForIssuance})
	if err != nil {
		return err
	}
	return writeCA(w, ca)
}

func (s *Server) pkiCADelete(w http.ResponseWriter, r *http.Request) error {
	ca, err := s.svc.PKI.DeleteCA(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	return writeCA(w, ca)
}

func (s *Server) pkiCACSR(w http.ResponseWriter, r *http.Request) error {
	_, csr, err := s.svc.PKI.CSR(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"csr": csr})
}

type wireCertPEM struct {
	Certificate      string `json:"certificate"`
	CertificateChain string `json:"certificateChain"`
	SerialNumber     string `json:"serialNumber"`
}

func (s *Server) pkiCACert(w http.ResponseWriter, r *http.Request) error {
	ca, err := s.svc.PKI.CACertificate(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireCertPEM{ca.Certificate, ca.Chain, ca.SerialNumber})
}

func (s *Server) pkiCACerts(w http.ResponseWriter, r *http.Request) error {
	_, certs, err := s.svc.PKI.CACertificates(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	type caCert struct {
		wireCertPEM
		Version int `json:"version"`
	}
	out := make([]caCert, len(certs))
	for i, c := range certs {
		out[i] = caCert{wireCertPEM{c.Certificate, c.Chain, c.SerialNumber}, c.Version}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) pkiCACRLs(w http.ResponseWriter, r *http.Request) error {
	ca, der, err := s.svc.PKI.CACRL(r.Context(), actorFrom(r.Context()), r.PathValue("caId"))
	if err != nil {
		return err
	}
	type crl struct {
		ID  string `json:"id"`
		CRL string `json:"crl"`
	}
	out := []crl{}
	if der != nil {
		out = append(out, crl{ca.ID, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) pkiCRL(w http.ResponseWriter, r *http.Request) error {
	der, err := s.svc.PKI.CRL(r.Context(), r.PathValue("crlId"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(der)
	return err
}

func (s *Server) pkiSignIntermediate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CSR           string  `json:"csr"`
		NotBefore     *string `json:"notBefore"`
		NotAfter      *string `json:"notAfter"`
		MaxPathLength *int    `json:"maxPathLength"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	nb, err := wireDate("notBefore", req.NotBefore)
	if err != nil {
		return err
	}
	na, err := wireDate("notAfter", req.NotAfter)
	if err != nil {
		return err
	}
	out, err := s.svc.PKI.SignIntermediate(r.Context(), actorFrom(r.Context()), r.PathValue("caId"),
		pki.SignIntermediate{CSR: req.CSR, NotBefore: nb, NotAfter: na, MaxPathLength: req.MaxPathLength})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"certificate": out.Certificate, "certificateChain": out.Chain,
		"issuingCaCertificate": out.IssuingCA, "serialNumber": out.SerialNumber})
}

func (s *Server) pkiImportCert(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Certificate      string `json:"certificate"`
		CertificateChain string `json:"certificateChain"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ca, err := s.svc.PKI.ImportCertificate(r.Context(), actorFrom(r.Context()), r.PathValue("caId"), req.Certificate, req.CertificateChain)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"message": "Successfully imported certificate to CA", "caId": ca.ID})
}

// wireAltNames is Infisical's altNames: a comma-separated string (each
// value's type guessed), or a list of {type, value}.
type wireAltNames []pki.AltName

func (a *wireAltNames) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		out := wireAltNames{}
		for v := range strings.SplitSeq(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, pki.DetectAltName(v))
			}
		}
		*a = out
		return nil
	}
	var list []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return field("altNames", "altNames must be a comma-separated string or a list of {type, value}")
	}
	out := make(wireAltNames, 0, len(list))
	for _, v := range list {
		out = append(out, pki.AltName{Type: v.Type, Value: v.Value})
	}
	*a = out
	return nil
}

type issueBody struct {
	CAID                  string        `json:"caId"`
	CertificateTemplateID string        `json:"certificateTemplateId"`
	FriendlyName          string        `json:"friendlyName"`
	CommonName            string        `json:"commonName"`
	AltNames              *wireAltNames `json:"altNames"`
	TTL                   json.Number   `json:"ttl"`
	NotBefore             *string       `json:"notBefore"`
	NotAfter              *string       `json:"notAfter"`
	KeyUsages             []string      `json:"keyUsages"`
	ExtendedKeyUsages     []string      `json:"extendedKeyUsages"`
	KeyAlgorithm          string        `json:"keyAlgorithm"`
	CSR                   string        `json:"csr"`
}

// ttl is a JSON string ("90d") or number (seconds).
func (b *issueBody) UnmarshalJSON(data []byte) error {
	type plain issueBody
	var raw struct {
		plain
		TTL json.RawMessage `json:"ttl"`
	}
	if err := decodeJSON(data, &raw); err != nil {
		return err
	}
	*b = issueBody(raw.plain)
	if len(raw.TTL) > 0 && string(raw.TTL) != "null" {
		var s string
		if err := json.Unmarshal(raw.TTL, &s); err != nil {
			var n json.Number
			if err := json.Unmarshal(raw.TTL, &n); err != nil {
				return field("ttl", "ttl must be a duration string such as 90d, or a number of seconds")
			}
			s = n.String()
		}
		b.TTL = json.Number(s)
	}
	return nil
}

func (s *Server) issueRequest(r *http.Request, caID string) (pki.IssueRequest, error) {
	var req issueBody
	if err := s.decode(r, &req); err != nil {
		return pki.IssueRequest{}, err
	}
	nb, err := wireDate("notBefore", req.NotBefore)
	if err != nil {
		return pki.IssueRequest{}, err
	}
	na, err := wireDate("notAfter", req.NotAfter)
	if err != nil {
		return pki.IssueRequest{}, err
	}
	if caID == "" {
		caID = req.CAID
	}
	out := pki.IssueRequest{CAID: caID, TemplateID: req.CertificateTemplateID, FriendlyName: req.FriendlyName,
		CommonName: req.CommonName, TTL: string(req.TTL), NotBefore: nb, NotAfter: na, KeyUsages: req.KeyUsages,
		ExtendedKeyUsages: req.ExtendedKeyUsages, KeyAlgorithm: req.KeyAlgorithm, CSR: req.CSR}
	if req.AltNames != nil {
		out.AltNames = []pki.AltName(*req.AltNames)
		if out.AltNames == nil {
			out.AltNames = []pki.AltName{}
		}
	}
	return out, nil
}

func writePKIIssued(w http.ResponseWriter, out pki.Issued) error {
	body := map[string]string{"certificate": out.Certificate, "certificateChain": out.Chain,
		"issuingCaCertificate": out.IssuingCA, "serialNumber": out.SerialNumber}
	if out.PrivateKey != "" {
		body["privateKey"] = out.PrivateKey
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) pkiIssueWith(caID string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.issueRequest(r, caID)
		if err != nil {
			return err
		}
		if req.CSR != "" {
			return field("csr", "issue-certificate generates the key; send a CSR to sign-certificate")
		}
		out, err := s.svc.PKI.Issue(r.Context(), actorFrom(r.Context()), req)
		if err != nil {
			return err
		}
		return writePKIIssued(w, out)
	}
}

func (s *Server) pkiSignWith(caID string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := s.issueRequest(r, caID)
		if err != nil {
			return err
		}
		if strings.TrimSpace(req.CSR) == "" {
			return field("csr", "csr is required")
		}
		out, err := s.svc.PKI.Sign(r.Context(), actorFrom(r.Context()), req)
		if err != nil {
			return err
		}
		return writePKIIssued(w, out)
	}
}

func (s *Server) pkiIssueFromCA(w http.ResponseWriter, r *http.Request) error {
	return s.pkiIssueWith(r.PathValue("caId"))(w, r)
}

func (s *Server) pkiSignFromCA(w http.ResponseWriter, r *http.Request) error {
	return s.pkiSignWith(r.PathValue("caId"))(w, r)
}

func (s *Server) pkiIssue(w http.ResponseWriter, r *http.Request) error {
	return s.pkiIssueWith("")(w, r)
}
func (s *Server) pkiSign(w http.ResponseWriter, r *http.Request) error {
	return s.pkiSignWith("")(w, r)
}

type wireCert struct {
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
	CreatedAt             string   `json:"createdAt"`
	UpdatedAt             string   `json:"updatedAt"`
}

func toWireCert(c pki.Certificate) wireCert {
	out := wireCert{ID: c.ID, ProjectID: c.ProjectID, CAID: c.CAID, CertificateTemplateID: strPtr(c.TemplateID), Status: c.Status,
		SerialNumber: c.SerialNumber, FriendlyName: c.FriendlyName, CommonName: c.CommonName, AltNames: strings.Join(c.AltNames, ", "),
		KeyUsages: c.KeyUsages, ExtendedKeyUsages: c.ExtendedKeyUsages, NotBefore: rfc3339(c.NotBefore), NotAfter: rfc3339(c.NotAfter),
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)}
	if c.RevokedAt != nil {
		s := rfc3339(*c.RevokedAt)
		n := c.RevocationReason
		out.RevokedAt, out.RevocationReason = &s, &n
	}
	return out
}

func writeCert(w http.ResponseWriter, c pki.Certificate) error {
	return writeJSON(w, http.StatusOK, struct {
		Certificate wireCert `json:"certificate"`
	}{toWireCert(c)})
}

func (s *Server) pkiCertList(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 25, 1, 100, "limit")
	if err != nil {
		return err
	}
	certs, total, err := s.svc.PKI.ListCertificates(r.Context(), actorFrom(r.Context()), query(r, "projectId"), offset, limit)
	if err != nil {
		return err
	}
	return writeCertList(w, certs, total)
}

func writeCertList(w http.ResponseWriter, certs []pki.Certificate, total int) error {
	out := make([]wireCert, len(certs))
	for i, c := range certs {
		out[i] = toWireCert(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		Certificates []wireCert `json:"certificates"`
		TotalCount   int        `json:"totalCount"`
	}{out, total})
}

func (s *Server) pkiCertGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.PKI.GetCertificate(r.Context(), actorFrom(r.Context()), r.PathValue("serialNumber"))
	if err != nil {
		return err
	}
	return writeCert(w, c)
}

func (s *Server) pkiCertDelete(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.PKI.DeleteCertificate(r.Context(), actorFrom(r.Context()), r.PathValue("serialNumber"))
	if err != nil {
		return err
	}
	return writeCert(w, c)
}

func (s *Server) pkiCertRevoke(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RevocationReason string `json:"revocationReason"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.PKI.Revoke(r.Context(), actorFrom(r.Context()), r.PathValue("serialNumber"), req.RevocationReason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"message": "Successfully revoked certificate",
		"serialNumber": c.SerialNumber, "revokedAt": rfc3339(*c.RevokedAt)})
}

func (s *Server) pkiCertBody(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.PKI.GetCertificate(r.Context(), actorFrom(r.Context()), r.PathValue("serialNumber"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireCertPEM{c.Certificate, c.Chain, c.SerialNumber})
}

func (s *Server) pkiCertBundle(w http.ResponseWriter, r *http.Request) error {
	c, key, err := s.svc.PKI.Bundle(r.Context(), actorFrom(r.Context()), r.PathValue("serialNumber"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		wireCertPEM
		PrivateKey *string `json:"privateKey"`
	}{wireCertPEM{c.Certificate, c.Chain, c.SerialNumber}, strPtr(key)})
}

type wireTemplate struct {
	ID                     string   `json:"id"`
	ProjectID              string   `json:"projectId"`
	CAID                   string   `json:"caId"`
	Name                   string   `json:"name"`
	CommonName             string   `json:"commonName"`
	SubjectAlternativeName string   `json:"subjectAlternativeName"`
	TTL                    string   `json:"ttl"`
	KeyUsages              []string `json:"keyUsages"`
	ExtendedKeyUsages      []string `json:"extendedKeyUsages"`
	CreatedAt              string   `json:"createdAt"`
	UpdatedAt              string   `json:"updatedAt"`
}

func toWireTemplate(t pki.Template) wireTemplate {
	return wireTemplate{ID: t.ID, ProjectID: t.ProjectID, CAID: t.CAID, Name: t.Name, CommonName: t.CommonName,
		SubjectAlternativeName: t.SubjectAlternativeName, TTL: t.TTL, KeyUsages: t.KeyUsages, ExtendedKeyUsages: t.ExtendedKeyUsages,
		CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
}

func writeTemplate(w http.ResponseWriter, t pki.Template) error {
	return writeJSON(w, http.StatusOK, struct {
		Template wireTemplate `json:"certificateTemplate"`
	}{toWireTemplate(t)})
}

func (s *Server) templateInput(r *http.Request) (pki.TemplateInput, error) {
	var req struct {
		CAID                   *string   `json:"caId"`
		Name                   *string   `json:"name"`
		CommonName             *string   `json:"commonName"`
		SubjectAlternativeName *string   `json:"subjectAlternativeName"`
		TTL                    *string   `json:"ttl"`
		KeyUsages              *[]string `json:"keyUsages"`
		ExtendedKeyUsages      *[]string `json:"extendedKeyUsages"`
	}
	if err := s.decode(r, &req); err != nil {
		return pki.TemplateInput{}, err
	}
	in := pki.TemplateInput{CAID: req.CAID, Name: req.Name, CommonName: req.CommonName, SubjectAlternativeName: req.SubjectAlternativeName, TTL: req.TTL}
	if req.KeyUsages != nil {
		in.KeyUsages, in.SetKeyUsages = *req.KeyUsages, true
		if in.KeyUsages == nil {
			in.KeyUsages = []string{}
		}
	}
	if req.ExtendedKeyUsages != nil {
		in.ExtendedKeyUsages, in.SetExtendedKeyUsages = *req.ExtendedKeyUsages, true
	}
	return in, nil
}

func (s *Server) pkiTemplateCreate(w http.ResponseWriter, r *http.Request) error {
	in, err := s.templateInput(r)
	if err != nil {
		return err
	}
	t, err := s.svc.PKI.CreateTemplate(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		return err
	}
	return writeTemplate(w, t)
}

func (s *Server) pkiTemplateList(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.svc.PKI.ListTemplates(r.Context(), actorFrom(r.Context()), query(r, "projectId"))
	if err != nil {
		return err
	}
	out := make([]wireTemplate, len(ts))
	for i, t := range ts {
		out[i] = toWireTemplate(t)
	}
	return writeJSON(w, http.StatusOK, struct {
		Templates []wireTemplate `json:"certificateTemplates"`
	}{out})
}

func (s *Server) pkiTemplateGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.PKI.GetTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeTemplate(w, t)
}

func (s *Server) pkiTemplateUpdate(w http.ResponseWriter, r *http.Request) error {
	in, err := s.templateInput(r)
	if err != nil {
		return err
	}
	t, err := s.svc.PKI.UpdateTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	return writeTemplate(w, t)
}

func (s *Server) pkiTemplateDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.PKI.DeleteTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeTemplate(w, t)
}

func (s *Server) pkiExpiring(w http.ResponseWriter, r *http.Request) error {
	days, err := queryInt(r, 30, 1, 3650, "days", "alertBeforeDays")
	if err != nil {
		return err
	}
	certs, err := s.svc.PKI.Expiring(r.Context(), actorFrom(r.Context()), query(r, "projectId"), days)
	if err != nil {
		return err
	}
	return writeCertList(w, certs, len(certs))
}
