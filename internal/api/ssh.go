package api

import (
	"net/http"

	"github.com/lockbox-dev/lockbox/internal/sshca"
)

// sshRoutes serves SSH certificate authorities, certificate templates,
// certificates and hosts: Infisical's /api/v1/ssh routes. The CA public
// keys are served without authentication, as Infisical serves them (they
// are what servers and clients are told to trust), under the per-IP rate
// limit of the login routes.
func (s *Server) sshRoutes(m *routeMux) {
	const ca, tpl, host = "/api/v1/ssh/ca", "/api/v1/ssh/certificate-templates", "/api/v1/ssh/hosts"
	m.Handle("POST "+ca, s.authed(s.sshCACreate))
	m.Handle("GET "+ca+"/{sshCaId}", s.authed(s.sshCAGet))
	m.Handle("PATCH "+ca+"/{sshCaId}", s.authed(s.sshCAUpdate))
	m.Handle("DELETE "+ca+"/{sshCaId}", s.authed(s.sshCADelete))
	m.Handle("GET "+ca+"/{sshCaId}/public-key", s.limited(s.handle(s.sshCAPublicKey)))
	m.Handle("GET "+ca+"/{sshCaId}/certificate-templates", s.authed(s.sshCATemplates))

	m.Handle("POST "+tpl, s.authed(s.sshTemplateCreate))
	m.Handle("GET "+tpl+"/{certificateTemplateId}", s.authed(s.sshTemplateGet))
	m.Handle("PATCH "+tpl+"/{certificateTemplateId}", s.authed(s.sshTemplateUpdate))
	m.Handle("DELETE "+tpl+"/{certificateTemplateId}", s.authed(s.sshTemplateDelete))

	m.Handle("POST /api/v1/ssh/certificates/sign", s.authed(s.sshSign))
	m.Handle("POST /api/v1/ssh/certificates/issue", s.authed(s.sshIssue))

	m.Handle("GET "+host, s.authed(s.sshHostList))
	m.Handle("POST "+host, s.authed(s.sshHostCreate))
	m.Handle("GET "+host+"/{sshHostId}", s.authed(s.sshHostGet))
	m.Handle("PATCH "+host+"/{sshHostId}", s.authed(s.sshHostUpdate))
	m.Handle("DELETE "+host+"/{sshHostId}", s.authed(s.sshHostDelete))
	m.Handle("POST "+host+"/{sshHostId}/issue-user-cert", s.authed(s.sshHostIssueUserCert))
	m.Handle("POST "+host+"/{sshHostId}/issue-host-cert", s.authed(s.sshHostIssueHostCert))
	m.Handle("GET "+host+"/{sshHostId}/user-ca-public-key", s.limited(s.handle(s.sshHostCAPublicKey(true))))
	m.Handle("GET "+host+"/{sshHostId}/host-ca-public-key", s.limited(s.handle(s.sshHostCAPublicKey(false))))

	const group = "/api/v1/ssh/host-groups"
	m.Handle("POST "+group, s.authed(s.sshGroupCreate))
	m.Handle("GET "+group+"/{sshHostGroupId}", s.authed(s.sshGroupGet))
	m.Handle("PATCH "+group+"/{sshHostGroupId}", s.authed(s.sshGroupUpdate))
	m.Handle("DELETE "+group+"/{sshHostGroupId}", s.authed(s.sshGroupDelete))
	m.Handle("GET "+group+"/{sshHostGroupId}/hosts", s.authed(s.sshGroupHosts))
	m.Handle("POST "+group+"/{sshHostGroupId}/hosts/{hostId}", s.authed(s.sshGroupAddHost))
	m.Handle("DELETE "+group+"/{sshHostGroupId}/hosts/{hostId}", s.authed(s.sshGroupRemoveHost))

	// Revocation (lockbox's: Infisical has none for SSH) and the KRL that
	// sshd's RevokedKeys reads, public like the CA's public key. Not behind
	// the per-address limit: a fleet behind one address polls it, and a
	// poller refused would keep serving sshd a stale list; each node builds
	// a CA's KRL once per cache generation and at least every minute
	// (sshca.Service.KRL).
	m.Handle("POST /api/v1/ssh/certificates/{certificateId}/revoke", s.authed(s.sshRevoke))
	m.Handle("GET "+ca+"/{sshCaId}/krl", s.handle(s.sshKRL))

	// A project's default CAs, as Infisical serves them.
	m.HandleSub(s.projectLists, "GET /api/v1/projects/{projectId}/ssh-config", s.sshConfigGet)
	m.HandleSub(s.workspaceLists, "GET /api/v1/workspace/{projectId}/ssh-config", s.sshConfigGet)
	m.Handle("PATCH /api/v1/projects/{projectId}/ssh-config", s.authed(s.sshConfigUpdate))
	m.Handle("PATCH /api/v1/workspace/{projectId}/ssh-config", s.authed(s.sshConfigUpdate))

	// A project's SSH objects, under both of Infisical's project prefixes.
	for _, l := range []struct {
		subs   map[string]func(http.ResponseWriter, *http.Request) error
		prefix string
	}{{s.projectLists, "GET /api/v1/projects/{projectId}/"}, {s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/"}} {
		m.HandleSub(l.subs, l.prefix+"ssh-cas", s.sshProjectCAs)
		m.HandleSub(l.subs, l.prefix+"ssh-certificate-templates", s.sshProjectTemplates)
		m.HandleSub(l.subs, l.prefix+"ssh-certificates", s.sshProjectCerts)
		m.HandleSub(l.subs, l.prefix+"ssh-hosts", s.sshProjectHosts)
		m.HandleSub(l.subs, l.prefix+"ssh-host-groups", s.sshProjectGroups)
	}
}

type wireSSHCA struct {
	ID           string `json:"id"`
	ProjectID    string `json:"projectId"`
	Status       string `json:"status"`
	FriendlyName string `json:"friendlyName"`
	KeyAlgorithm string `json:"keyAlgorithm"`
	KeySource    string `json:"keySource"`
	PublicKey    string `json:"publicKey"`
	CreatedAt    string `json:"createdAt"`
	UpdatedAt    string `json:"updatedAt"`
}

func toWireSSHCA(ca sshca.CA) wireSSHCA {
	return wireSSHCA{ID: ca.ID, ProjectID: ca.ProjectID, Status: ca.Status, FriendlyName: ca.FriendlyName,
		KeyAlgorithm: string(ca.KeyAlgorithm), KeySource: "internal", PublicKey: ca.PublicKey,
		CreatedAt: rfc3339(ca.CreatedAt), UpdatedAt: rfc3339(ca.UpdatedAt)}
}

func writeSSHCA(w http.ResponseWriter, ca sshca.CA) error {
	return writeJSON(w, http.StatusOK, struct {
		CA wireSSHCA `json:"ca"`
	}{toWireSSHCA(ca)})
}

// writeText answers with a text/plain body, as Infisical answers a route
// whose response is a string.
func writeText(w http.ResponseWriter, s string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(s))
	return err
}

func (s *Server) sshCACreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ProjectID    string `json:"projectId"`
		FriendlyName string `json:"friendlyName"`
		KeyAlgorithm string `json:"keyAlgorithm"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.KeyAlgorithm == "" {
		req.KeyAlgorithm = string(sshca.RSA2048) // Infisical's default
	}
	ca, err := s.svc.SSH.CreateCA(r.Context(), actorFrom(r.Context()), sshca.NewCA{ProjectID: req.ProjectID,
		FriendlyName: req.FriendlyName, KeyAlgorithm: req.KeyAlgorithm})
	if err != nil {
		return err
	}
	return writeSSHCA(w, ca)
}

func (s *Server) sshCAGet(w http.ResponseWriter, r *http.Request) error {
	ca, err := s.svc.SSH.GetCA(r.Context(), actorFrom(r.Context()), r.PathValue("sshCaId"))
	if err != nil {
		return err
	}
	return writeSSHCA(w, ca)
}

func (s *Server) sshCAUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		FriendlyName *string `json:"friendlyName"`
		Status       *string `json:"status"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	ca, err := s.svc.SSH.UpdateCA(r.Context(), actorFrom(r.Context()), r.PathValue("sshCaId"),
		sshca.CAUpdate{FriendlyName: req.FriendlyName, Status: req.Status})
	if err != nil {
		return err
	}
	return writeSSHCA(w, ca)
}

func (s *Server) sshCADelete(w http.ResponseWriter, r *http.Request) error {
	ca, err := s.svc.SSH.DeleteCA(r.Context(), actorFrom(r.Context()), r.PathValue("sshCaId"))
	if err != nil {
		return err
	}
	return writeSSHCA(w, ca)
}

func (s *Server) sshCAPublicKey(w http.ResponseWriter, r *http.Request) error {
	pk, err := s.svc.SSH.CAPublicKey(r.Context(), r.PathValue("sshCaId"))
	if err != nil {
		return err
	}
	return writeText(w, pk+"\n")
}

func (s *Server) sshCATemplates(w http.ResponseWriter, r *http.Request) error {
	_, ts, err := s.svc.SSH.CATemplates(r.Context(), actorFrom(r.Context()), r.PathValue("sshCaId"))
	if err != nil {
		return err
	}
	return writeTemplates(w, ts)
}

func (s *Server) sshProjectCAs(w http.ResponseWriter, r *http.Request) error {
	cas, err := s.svc.SSH.ListCAs(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	out := make([]wireSSHCA, len(cas))
	for i, ca := range cas {
		out[i] = toWireSSHCA(ca)
	}
	return writeJSON(w, http.StatusOK, struct {
		CAs []wireSSHCA `json:"cas"`
	}{out})
}

type wireSSHTemplate struct {
	ID                    string            `json:"id"`
	ProjectID             string            `json:"projectId"`
	SshCaID               string            `json:"sshCaId"`
	Status                string            `json:"status"`
	Name                  string            `json:"name"`
	TTL                   string            `json:"ttl"`
	MaxTTL                string            `json:"maxTTL"`
	AllowedUsers          []string          `json:"allowedUsers"`
	AllowedHosts          []string          `json:"allowedHosts"`
	AllowUserCertificates bool              `json:"allowUserCertificates"`
	AllowHostCertificates bool              `json:"allowHostCertificates"`
	AllowCustomKeyIds     bool              `json:"allowCustomKeyIds"`
	Extensions            map[string]string `json:"extensions"`
	CriticalOptions       map[string]string `json:"criticalOptions"`
	CreatedAt             string            `json:"createdAt"`
	UpdatedAt             string            `json:"updatedAt"`
}

func toWireSSHTemplate(t sshca.Template) wireSSHTemplate {
	return wireSSHTemplate{ID: t.ID, ProjectID: t.ProjectID, SshCaID: t.CAID, Status: t.Status, Name: t.Name, TTL: t.TTL, MaxTTL: t.MaxTTL,
		AllowedUsers: t.AllowedUsers, AllowedHosts: t.AllowedHosts, AllowUserCertificates: t.AllowUserCerts,
		AllowHostCertificates: t.AllowHostCerts, AllowCustomKeyIds: t.AllowCustomKeyIDs, Extensions: t.Extensions,
		CriticalOptions: t.CriticalOptions, CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
}

func writeTemplates(w http.ResponseWriter, ts []sshca.Template) error {
	out := make([]wireSSHTemplate, len(ts))
	for i, t := range ts {
		out[i] = toWireSSHTemplate(t)
	}
	return writeJSON(w, http.StatusOK, struct {
		CertificateTemplates []wireSSHTemplate `json:"certificateTemplates"`
	}{out})
}

// templateRequest is the body of template create and update.
type templateRequest struct {
	SshCaID               string             `json:"sshCaId"`
	Name                  *string            `json:"name"`
	Status                *string            `json:"status"`
	TTL                   *string            `json:"ttl"`
	MaxTTL                *string            `json:"maxTTL"`
	AllowedUsers          *[]string          `json:"allowedUsers"`
	AllowedHosts          *[]string          `json:"allowedHosts"`
	AllowUserCertificates *bool              `json:"allowUserCertificates"`
	AllowHostCertificates *bool              `json:"allowHostCertificates"`
	AllowCustomKeyIds     *bool              `json:"allowCustomKeyIds"`
	Extensions            map[string]string  `json:"extensions"`
	CriticalOptions       *map[string]string `json:"criticalOptions"`
}

func (t templateRequest) input() sshca.TemplateInput {
	in := sshca.TemplateInput{CAID: t.SshCaID, Name: t.Name, Status: t.Status, TTL: t.TTL, MaxTTL: t.MaxTTL,
		AllowUserCerts: t.AllowUserCertificates, AllowHostCerts: t.AllowHostCertificates, AllowCustomKeyIDs: t.AllowCustomKeyIds,
		Extensions: t.Extensions}
	if t.AllowedUsers != nil {
		in.AllowedUsers, in.SetUsers = *t.AllowedUsers, true
	}
	if t.AllowedHosts != nil {
		in.AllowedHosts, in.SetHosts = *t.AllowedHosts, true
	}
	if t.CriticalOptions != nil {
		in.CriticalOptions, in.SetCritical = *t.CriticalOptions, true
	}
	return in
}

func (s *Server) sshTemplateCreate(w http.ResponseWriter, r *http.Request) error {
	var req templateRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.AllowUserCertificates == nil || req.AllowHostCertificates == nil || req.AllowCustomKeyIds == nil {
		return field("allowUserCertificates", "allowUserCertificates, allowHostCertificates and allowCustomKeyIds are required")
	}
	if req.AllowedUsers == nil || req.AllowedHosts == nil {
		return field("allowedUsers", "allowedUsers and allowedHosts are required (they may be empty)")
	}
	t, err := s.svc.SSH.CreateTemplate(r.Context(), actorFrom(r.Context()), req.input())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHTemplate(t))
}

func (s *Server) sshTemplateGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.SSH.GetTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("certificateTemplateId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHTemplate(t))
}

func (s *Server) sshTemplateUpdate(w http.ResponseWriter, r *http.Request) error {
	var req templateRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	in := req.input()
	in.CAID = ""
	t, err := s.svc.SSH.UpdateTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("certificateTemplateId"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHTemplate(t))
}

func (s *Server) sshTemplateDelete(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.SSH.DeleteTemplate(r.Context(), actorFrom(r.Context()), r.PathValue("certificateTemplateId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHTemplate(t))
}

func (s *Server) sshProjectTemplates(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.svc.SSH.ListTemplates(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeTemplates(w, ts)
}

// certRequest is the body of sign and issue.
type certRequest struct {
	CertificateTemplateID string   `json:"certificateTemplateId"`
	PublicKey             string   `json:"publicKey"`
	KeyAlgorithm          string   `json:"keyAlgorithm"`
	CertType              string   `json:"certType"`
	Principals            []string `json:"principals"`
	TTL                   string   `json:"ttl"`
	KeyID                 string   `json:"keyId"`
}

func (c certRequest) domain() sshca.CertRequest {
	return sshca.CertRequest{TemplateID: c.CertificateTemplateID, PublicKey: c.PublicKey, KeyAlg: c.KeyAlgorithm, CertType: c.CertType,
		Principals: c.Principals, TTL: c.TTL, KeyID: c.KeyID}
}

type wireSigned struct {
	SerialNumber string `json:"serialNumber"`
	SignedKey    string `json:"signedKey"`
}

type wireIssued struct {
	SerialNumber string `json:"serialNumber"`
	SignedKey    string `json:"signedKey"`
	PrivateKey   string `json:"privateKey"`
	PublicKey    string `json:"publicKey"`
	KeyAlgorithm string `json:"keyAlgorithm"`
}

func writeIssued(w http.ResponseWriter, out sshca.Issued) error {
	return writeJSON(w, http.StatusOK, wireIssued{SerialNumber: out.Cert.Serial, SignedKey: out.SignedKey,
		PrivateKey: out.PrivateKey, PublicKey: out.PublicKey, KeyAlgorithm: string(out.KeyAlg)})
}

func (s *Server) sshSign(w http.ResponseWriter, r *http.Request) error {
	var req certRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	out, err := s.svc.SSH.Sign(r.Context(), actorFrom(r.Context()), req.domain())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireSigned{SerialNumber: out.Cert.Serial, SignedKey: out.SignedKey})
}

func (s *Server) sshIssue(w http.ResponseWriter, r *http.Request) error {
	var req certRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	req.PublicKey = ""
	out, err := s.svc.SSH.Issue(r.Context(), actorFrom(r.Context()), req.domain())
	if err != nil {
		return err
	}
	return writeIssued(w, out)
}

type wireSSHCert struct {
	ID           string   `json:"id"`
	SshCaID      string   `json:"sshCaId"`
	TemplateID   *string  `json:"sshCertificateTemplateId"`
	HostID       *string  `json:"sshHostId"`
	SerialNumber string   `json:"serialNumber"`
	CertType     string   `json:"certType"`
	Principals   []string `json:"principals"`
	KeyID        string   `json:"keyId"`
	NotBefore    string   `json:"notBefore"`
	NotAfter     string   `json:"notAfter"`
	CreatedAt    string   `json:"createdAt"`
	UpdatedAt    string   `json:"updatedAt"`
	Status       string   `json:"status"`
	RevokedAt    *string  `json:"revokedAt"`
}

func toWireSSHCert(c sshca.Cert) wireSSHCert {
	out := wireSSHCert{ID: c.ID, SshCaID: c.CAID, TemplateID: strPtr(c.TemplateID), HostID: strPtr(c.HostID),
		SerialNumber: c.Serial, CertType: string(c.Type), Principals: c.Principals, KeyID: c.KeyID,
		NotBefore: rfc3339(c.NotBefore), NotAfter: rfc3339(c.NotAfter), CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.CreatedAt),
		Status: "active"}
	if !c.RevokedAt.IsZero() {
		at := rfc3339(c.RevokedAt)
		out.Status, out.RevokedAt, out.UpdatedAt = "revoked", &at, at
	}
	return out
}

func (s *Server) sshProjectCerts(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 25, 1, 100, "limit")
	if err != nil {
		return err
	}
	cs, total, err := s.svc.SSH.ListCerts(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"), offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireSSHCert, len(cs))
	for i, c := range cs {
		out[i] = toWireSSHCert(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		Certificates []wireSSHCert `json:"certificates"`
		TotalCount   int           `json:"totalCount"`
	}{out, total})
}

type wireAllowedPrincipals struct {
	Usernames []string `json:"usernames"`
}

type wireLoginMapping struct {
	LoginUser         string                `json:"loginUser"`
	AllowedPrincipals wireAllowedPrincipals `json:"allowedPrincipals"`
	// Source is "host" or "hostGroup" (inherited from a group), as
	// Infisical marks a host's mappings; group answers leave it out.
	Source string `json:"source,omitempty"`
}

func wireMappings(ms []sshca.LoginMapping, source string) []wireLoginMapping {
	out := make([]wireLoginMapping, len(ms))
	for i, m := range ms {
		out[i] = wireLoginMapping{LoginUser: m.LoginUser, AllowedPrincipals: wireAllowedPrincipals{Usernames: m.Principals}, Source: source}
	}
	return out
}

// domainMappings reads mappings from a request, leaving out those a client
// sends back as inherited from a group (they are changed on the group).
func domainMappings(ms []wireLoginMapping) []sshca.LoginMapping {
	out := []sshca.LoginMapping{}
	for _, m := range ms {
		if m.Source == "hostGroup" {
			continue
		}
		out = append(out, sshca.LoginMapping{LoginUser: m.LoginUser, Principals: m.AllowedPrincipals.Usernames})
	}
	return out
}

type wireSSHHost struct {
	ID            string             `json:"id"`
	ProjectID     string             `json:"projectId"`
	Hostname      string             `json:"hostname"`
	Alias         string             `json:"alias"`
	UserCertTtl   string             `json:"userCertTtl"`
	HostCertTtl   string             `json:"hostCertTtl"`
	UserSshCaID   string             `json:"userSshCaId"`
	HostSshCaID   string             `json:"hostSshCaId"`
	LoginMappings []wireLoginMapping `json:"loginMappings"`
	CreatedAt     string             `json:"createdAt"`
	UpdatedAt     string             `json:"updatedAt"`
}

func toWireSSHHost(h sshca.Host) wireSSHHost {
	ms := append(wireMappings(h.LoginMappings, "host"), wireMappings(h.Inherited, "hostGroup")...)
	return wireSSHHost{ID: h.ID, ProjectID: h.ProjectID, Hostname: h.Hostname, Alias: h.Alias, UserCertTtl: h.UserCertTTL,
		HostCertTtl: h.HostCertTTL, UserSshCaID: h.UserCAID, HostSshCaID: h.HostCAID, LoginMappings: ms,
		CreatedAt: rfc3339(h.CreatedAt), UpdatedAt: rfc3339(h.UpdatedAt)}
}

func writeHosts(w http.ResponseWriter, hs []sshca.Host) error {
	out := make([]wireSSHHost, len(hs))
	for i, h := range hs {
		out[i] = toWireSSHHost(h)
	}
	return writeJSON(w, http.StatusOK, out)
}

// hostRequest is the body of host create and update.
type hostRequest struct {
	ProjectID     string              `json:"projectId"`
	Hostname      *string             `json:"hostname"`
	Alias         *string             `json:"alias"`
	UserCertTtl   *string             `json:"userCertTtl"`
	HostCertTtl   *string             `json:"hostCertTtl"`
	UserSshCaID   string              `json:"userSshCaId"`
	HostSshCaID   string              `json:"hostSshCaId"`
	LoginMappings *[]wireLoginMapping `json:"loginMappings"`
}

func (h hostRequest) input() sshca.HostInput {
	in := sshca.HostInput{ProjectID: h.ProjectID, Hostname: h.Hostname, Alias: h.Alias, UserCertTTL: h.UserCertTtl,
		HostCertTTL: h.HostCertTtl, UserCAID: h.UserSshCaID, HostCAID: h.HostSshCaID}
	if h.LoginMappings != nil {
		in.SetMappings, in.LoginMappings = true, domainMappings(*h.LoginMappings)
	}
	return in
}

func (s *Server) sshHostList(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.svc.SSH.ListHosts(r.Context(), actorFrom(r.Context()))
	if err != nil {
		return err
	}
	return writeHosts(w, hs)
}

func (s *Server) sshProjectHosts(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.svc.SSH.ListProjectHosts(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeHosts(w, hs)
}

func (s *Server) sshHostCreate(w http.ResponseWriter, r *http.Request) error {
	var req hostRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	h, err := s.svc.SSH.CreateHost(r.Context(), actorFrom(r.Context()), req.input())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshHostGet(w http.ResponseWriter, r *http.Request) error {
	h, err := s.svc.SSH.GetHost(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshHostUpdate(w http.ResponseWriter, r *http.Request) error {
	var req hostRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	in := req.input()
	in.ProjectID, in.UserCAID, in.HostCAID = "", "", ""
	h, err := s.svc.SSH.UpdateHost(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostId"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshHostDelete(w http.ResponseWriter, r *http.Request) error {
	h, err := s.svc.SSH.DeleteHost(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshHostIssueUserCert(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		LoginUser string `json:"loginUser"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	_, out, err := s.svc.SSH.IssueHostUserCert(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostId"), req.LoginUser)
	if err != nil {
		return err
	}
	return writeIssued(w, out)
}

func (s *Server) sshHostIssueHostCert(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		PublicKey string `json:"publicKey"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	_, out, err := s.svc.SSH.IssueHostHostCert(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostId"), req.PublicKey)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireSigned{SerialNumber: out.Cert.Serial, SignedKey: out.SignedKey})
}

func (s *Server) sshHostCAPublicKey(user bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		pk, err := s.svc.SSH.HostCAPublicKey(r.Context(), r.PathValue("sshHostId"), user)
		if err != nil {
			return err
		}
		return writeText(w, pk+"\n")
	}
}

type wireSSHConfig struct {
	ID                 string  `json:"id"`
	ProjectID          string  `json:"projectId"`
	DefaultUserSshCaID *string `json:"defaultUserSshCaId"`
	DefaultHostSshCaID *string `json:"defaultHostSshCaId"`
	CreatedAt          string  `json:"createdAt"`
	UpdatedAt          string  `json:"updatedAt"`
}

func writeSSHConfig(w http.ResponseWriter, c sshca.Config) error {
	return writeJSON(w, http.StatusOK, wireSSHConfig{ID: c.ID, ProjectID: c.ProjectID, DefaultUserSshCaID: strPtr(c.DefaultUserCAID),
		DefaultHostSshCaID: strPtr(c.DefaultHostCAID), CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)})
}

func (s *Server) sshConfigGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.SSH.GetConfig(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	return writeSSHConfig(w, c)
}

func (s *Server) sshConfigUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		DefaultUserSshCaID *string `json:"defaultUserSshCaId"`
		DefaultHostSshCaID *string `json:"defaultHostSshCaId"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.SSH.UpdateConfig(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"),
		sshca.ConfigUpdate{DefaultUserCAID: req.DefaultUserSshCaID, DefaultHostCAID: req.DefaultHostSshCaID})
	if err != nil {
		return err
	}
	return writeSSHConfig(w, c)
}

type wireSSHHostGroup struct {
	ID            string             `json:"id"`
	ProjectID     string             `json:"projectId"`
	Name          string             `json:"name"`
	LoginMappings []wireLoginMapping `json:"loginMappings"`
	CreatedAt     string             `json:"createdAt"`
	UpdatedAt     string             `json:"updatedAt"`
}

func toWireSSHHostGroup(g sshca.HostGroup) wireSSHHostGroup {
	return wireSSHHostGroup{ID: g.ID, ProjectID: g.ProjectID, Name: g.Name, LoginMappings: wireMappings(g.LoginMappings, ""),
		CreatedAt: rfc3339(g.CreatedAt), UpdatedAt: rfc3339(g.UpdatedAt)}
}

type groupRequest struct {
	ProjectID     string              `json:"projectId"`
	Name          *string             `json:"name"`
	LoginMappings *[]wireLoginMapping `json:"loginMappings"`
}

func (g groupRequest) input() sshca.HostGroupInput {
	in := sshca.HostGroupInput{ProjectID: g.ProjectID, Name: g.Name}
	if g.LoginMappings != nil {
		in.SetMappings, in.LoginMappings = true, domainMappings(*g.LoginMappings)
	}
	return in
}

func (s *Server) sshGroupCreate(w http.ResponseWriter, r *http.Request) error {
	var req groupRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	g, err := s.svc.SSH.CreateHostGroup(r.Context(), actorFrom(r.Context()), req.input())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHostGroup(g))
}

func (s *Server) sshGroupGet(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.SSH.GetHostGroup(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHostGroup(g))
}

func (s *Server) sshGroupUpdate(w http.ResponseWriter, r *http.Request) error {
	var req groupRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	in := req.input()
	in.ProjectID = ""
	g, err := s.svc.SSH.UpdateHostGroup(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHostGroup(g))
}

func (s *Server) sshGroupDelete(w http.ResponseWriter, r *http.Request) error {
	g, err := s.svc.SSH.DeleteHostGroup(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHostGroup(g))
}

func (s *Server) sshProjectGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.svc.SSH.ListHostGroups(r.Context(), actorFrom(r.Context()), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	type listed struct {
		wireSSHHostGroup
		HostCount int `json:"hostCount"`
	}
	out := make([]listed, len(gs))
	for i, g := range gs {
		out[i] = listed{toWireSSHHostGroup(g), g.HostCount}
	}
	return writeJSON(w, http.StatusOK, struct {
		Groups []listed `json:"groups"`
	}{out})
}

type wireGroupHost struct {
	ID            string  `json:"id"`
	Hostname      string  `json:"hostname"`
	Alias         *string `json:"alias"`
	IsPartOfGroup bool    `json:"isPartOfGroup"`
	JoinedGroupAt *string `json:"joinedGroupAt"`
}

func (s *Server) sshGroupHosts(w http.ResponseWriter, r *http.Request) error {
	_, hs, err := s.svc.SSH.GroupHosts(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"), r.URL.Query().Get("filter"))
	if err != nil {
		return err
	}
	out := make([]wireGroupHost, len(hs))
	for i, h := range hs {
		out[i] = wireGroupHost{ID: h.ID, Hostname: h.Hostname, Alias: strPtr(h.Alias), IsPartOfGroup: h.InGroup}
		if h.InGroup {
			at := rfc3339(h.JoinedAt)
			out[i].JoinedGroupAt = &at
		}
	}
	return writeJSON(w, http.StatusOK, struct {
		Hosts      []wireGroupHost `json:"hosts"`
		TotalCount int             `json:"totalCount"`
	}{out, len(out)})
}

func (s *Server) sshGroupAddHost(w http.ResponseWriter, r *http.Request) error {
	_, h, err := s.svc.SSH.AddHostToGroup(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"), r.PathValue("hostId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshGroupRemoveHost(w http.ResponseWriter, r *http.Request) error {
	_, h, err := s.svc.SSH.RemoveHostFromGroup(r.Context(), actorFrom(r.Context()), r.PathValue("sshHostGroupId"), r.PathValue("hostId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireSSHHost(h))
}

func (s *Server) sshRevoke(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		SshCaID string `json:"sshCaId"`
	}
	if r.ContentLength != 0 {
		if err := s.decode(r, &req); err != nil {
			return err
		}
	}
	if q := r.URL.Query().Get("sshCaId"); req.SshCaID == "" {
		req.SshCaID = q
	}
	c, err := s.svc.SSH.Revoke(r.Context(), actorFrom(r.Context()), r.PathValue("certificateId"), req.SshCaID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Message     string      `json:"message"`
		Certificate wireSSHCert `json:"certificate"`
	}{"Successfully revoked SSH certificate", toWireSSHCert(c)})
}

// sshKRL serves a CA's KRL in OpenSSH's binary format, for sshd's RevokedKeys.
func (s *Server) sshKRL(w http.ResponseWriter, r *http.Request) error {
	b, err := s.svc.SSH.KRL(s.synced(r).Context(), r.PathValue("sshCaId"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}
