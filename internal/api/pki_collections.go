package api

import (
	"net/http"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/pki"
)

// pkiCollectionRoutes serves Infisical's PKI collections and alerts
// (/api/v1/pki/collections, /api/v1/pki/alerts), CA renewal and the
// public CA certificate that issued certificates point to.
func (s *Server) pkiCollectionRoutes(m *routeMux) {
	const col = "/api/v1/pki/collections"
	m.Handle("POST "+col, s.authed(s.pkiCollectionCreate))
	m.Handle("GET "+col, s.authed(s.pkiCollectionList))
	m.Handle("GET "+col+"/{collectionId}", s.authed(s.pkiCollectionGet))
	m.Handle("PATCH "+col+"/{collectionId}", s.authed(s.pkiCollectionUpdate))
	m.Handle("DELETE "+col+"/{collectionId}", s.authed(s.pkiCollectionDelete))
	m.Handle("GET "+col+"/{collectionId}/items", s.authed(s.pkiCollectionItems))
	m.Handle("POST "+col+"/{collectionId}/items", s.authed(s.pkiCollectionAddItem))
	m.Handle("DELETE "+col+"/{collectionId}/items/{collectionItemId}", s.authed(s.pkiCollectionRemoveItem))

	const alerts = "/api/v1/pki/alerts"
	m.Handle("POST "+alerts, s.authed(s.pkiAlertCreate))
	m.Handle("GET "+alerts, s.authed(s.pkiAlertList))
	m.Handle("GET "+alerts+"/{alertId}", s.authed(s.pkiAlertGet))
	m.Handle("PATCH "+alerts+"/{alertId}", s.authed(s.pkiAlertUpdate))
	m.Handle("DELETE "+alerts+"/{alertId}", s.authed(s.pkiAlertDelete))

	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/pki-collections", s.pkiWorkspaceList(s.pkiCollectionList))
	m.HandleSub(s.workspaceV2Lists, "GET /api/v2/workspace/{projectId}/pki-alerts", s.pkiWorkspaceList(s.pkiAlertList))

	m.Handle("POST /api/v1/pki/ca/{caId}/renew", s.authed(s.pkiCARenew))
	// Public, like the CRL: the CA issuers URL of issued certificates.
	m.Handle("GET /api/v1/pki/ca/{caId}/certificate/der", s.handle(s.pkiCACertDER))
}

type wireCollection struct {
	ID          string `json:"id"`
	ProjectID   string `json:"projectId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

func toWireCollection(c pki.Collection) wireCollection {
	return wireCollection{ID: c.ID, ProjectID: c.ProjectID, Name: c.Name, Description: c.Description,
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt)}
}

type wireCollectionItem struct {
	ID              string  `json:"id"`
	PkiCollectionID string  `json:"pkiCollectionId"`
	Type            string  `json:"type"`
	ItemID          string  `json:"itemId"`
	FriendlyName    string  `json:"friendlyName"`
	SerialNumber    string  `json:"serialNumber"`
	NotBefore       *string `json:"notBefore"`
	NotAfter        *string `json:"notAfter"`
	CreatedAt       string  `json:"createdAt"`
	UpdatedAt       string  `json:"updatedAt"`
}

func toWireItem(it pki.CollectionItem) wireCollectionItem {
	return wireCollectionItem{ID: it.ID, PkiCollectionID: it.CollectionID, Type: it.Type, ItemID: it.ItemID, FriendlyName: it.FriendlyName,
		SerialNumber: it.SerialNumber, NotBefore: optTimeZero(it.NotBefore), NotAfter: optTimeZero(it.NotAfter),
		CreatedAt: rfc3339(it.CreatedAt), UpdatedAt: rfc3339(it.UpdatedAt)}
}

func (s *Server) pkiCollectionCreate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ProjectID   string `json:"projectId"`
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.PKI.CreateCollection(r.Context(), actorFrom(r.Context()), req.ProjectID, req.Name, req.Description)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireCollection(c))
}

func (s *Server) pkiCollectionList(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.svc.PKI.ListCollections(r.Context(), actorFrom(r.Context()), query(r, "projectId"))
	if err != nil {
		return err
	}
	out := make([]wireCollection, len(cs))
	for i, c := range cs {
		out[i] = toWireCollection(c)
	}
	return writeJSON(w, http.StatusOK, struct {
		Collections []wireCollection `json:"collections"`
	}{out})
}

func (s *Server) pkiCollectionGet(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.PKI.GetCollection(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireCollection(c))
}

func (s *Server) pkiCollectionUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	c, err := s.svc.PKI.UpdateCollection(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"), req.Name, req.Description)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireCollection(c))
}

func (s *Server) pkiCollectionDelete(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.PKI.DeleteCollection(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireCollection(c))
}

func (s *Server) pkiCollectionItems(w http.ResponseWriter, r *http.Request) error {
	offset, err := queryInt(r, 0, 0, 1<<30, "offset")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, 25, 1, 100, "limit")
	if err != nil {
		return err
	}
	_, items, total, err := s.svc.PKI.CollectionItems(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"),
		strings.TrimSpace(query(r, "type")), offset, limit)
	if err != nil {
		return err
	}
	out := make([]wireCollectionItem, len(items))
	for i, it := range items {
		out[i] = toWireItem(it)
	}
	return writeJSON(w, http.StatusOK, struct {
		Items      []wireCollectionItem `json:"collectionItems"`
		TotalCount int                  `json:"totalCount"`
	}{out, total})
}

func (s *Server) pkiCollectionAddItem(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type   string `json:"type"`
		ItemID string `json:"itemId"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	it, err := s.svc.PKI.AddCollectionItem(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"), req.Type, req.ItemID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireItem(it))
}

func (s *Server) pkiCollectionRemoveItem(w http.ResponseWriter, r *http.Request) error {
	it, err := s.svc.PKI.RemoveCollectionItem(r.Context(), actorFrom(r.Context()), r.PathValue("collectionId"), r.PathValue("collectionItemId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireItem(it))
}

type wireAlert struct {
	ID              string  `json:"id"`
	ProjectID       string  `json:"projectId"`
	PkiCollectionID string  `json:"pkiCollectionId"`
	Name            string  `json:"name"`
	AlertBeforeDays int     `json:"alertBeforeDays"`
	RecipientEmails string  `json:"recipientEmails"`
	LastSentAt      *string `json:"lastSentAt"`
	CreatedAt       string  `json:"createdAt"`
	UpdatedAt       string  `json:"updatedAt"`
}

func toWireAlert(a pki.Alert) wireAlert {
	out := wireAlert{ID: a.ID, ProjectID: a.ProjectID, PkiCollectionID: a.CollectionID, Name: a.Name, AlertBeforeDays: a.AlertBeforeDays,
		RecipientEmails: strings.Join(a.Emails, ","), CreatedAt: rfc3339(a.CreatedAt), UpdatedAt: rfc3339(a.UpdatedAt)}
	if a.LastSentAt != nil {
		out.LastSentAt = optTimeZero(*a.LastSentAt)
	}
	return out
}

func (s *Server) alertInput(r *http.Request) (pki.AlertInput, error) {
	var req struct {
		ProjectID       string    `json:"projectId"`
		PkiCollectionID *string   `json:"pkiCollectionId"`
		Name            *string   `json:"name"`
		AlertBeforeDays *int      `json:"alertBeforeDays"`
		Emails          *[]string `json:"emails"`
	}
	if err := s.decode(r, &req); err != nil {
		return pki.AlertInput{}, err
	}
	in := pki.AlertInput{ProjectID: req.ProjectID, CollectionID: req.PkiCollectionID, Name: req.Name, AlertBeforeDays: req.AlertBeforeDays}
	if req.Emails != nil {
		in.Emails = *req.Emails
		if in.Emails == nil {
			in.Emails = []string{}
		}
	}
	return in, nil
}

func (s *Server) pkiAlertCreate(w http.ResponseWriter, r *http.Request) error {
	in, err := s.alertInput(r)
	if err != nil {
		return err
	}
	a, err := s.svc.PKI.CreateAlert(r.Context(), actorFrom(r.Context()), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireAlert(a))
}

func (s *Server) pkiAlertList(w http.ResponseWriter, r *http.Request) error {
	as, err := s.svc.PKI.ListAlerts(r.Context(), actorFrom(r.Context()), query(r, "projectId"))
	if err != nil {
		return err
	}
	out := make([]wireAlert, len(as))
	for i, a := range as {
		out[i] = toWireAlert(a)
	}
	return writeJSON(w, http.StatusOK, struct {
		Alerts []wireAlert `json:"alerts"`
	}{out})
}

func (s *Server) pkiAlertGet(w http.ResponseWriter, r *http.Request) error {
	a, err := s.svc.PKI.GetAlert(r.Context(), actorFrom(r.Context()), r.PathValue("alertId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireAlert(a))
}

func (s *Server) pkiAlertUpdate(w http.ResponseWriter, r *http.Request) error {
	in, err := s.alertInput(r)
	if err != nil {
		return err
	}
	a, err := s.svc.PKI.UpdateAlert(r.Context(), actorFrom(r.Context()), r.PathValue("alertId"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireAlert(a))
}

func (s *Server) pkiAlertDelete(w http.ResponseWriter, r *http.Request) error {
	a, err := s.svc.PKI.DeleteAlert(r.Context(), actorFrom(r.Context()), r.PathValue("alertId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireAlert(a))
}

func (s *Server) pkiCARenew(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Type     string  `json:"type"`
		NotAfter *string `json:"notAfter"`
	}
	if err := s.decode(r, &req); err != nil {
		return err
	}
	na, err := wireDate("notAfter", req.NotAfter)
	if err != nil {
		return err
	}
	ca, err := s.svc.PKI.RenewCA(r.Context(), actorFrom(r.Context()), r.PathValue("caId"), req.Type, na)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wireCertPEM{ca.Certificate, ca.Chain, ca.SerialNumber})
}

func (s *Server) pkiCACertDER(w http.ResponseWriter, r *http.Request) error {
	der, err := s.svc.PKI.PublicCACertificate(r.Context(), r.PathValue("caId"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(der)
	return err
}
