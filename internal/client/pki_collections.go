package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// PKICollection is a named set of a project's CAs and certificates.
type PKICollection struct {
	ID          string `json:"id"`
	ProjectID   string `json:"projectId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

// PKICollectionItem is a CA (type ca) or a certificate in a collection.
type PKICollectionItem struct {
	ID              string  `json:"id"`
	PkiCollectionID string  `json:"pkiCollectionId"`
	Type            string  `json:"type"`
	ItemID          string  `json:"itemId"`
	FriendlyName    string  `json:"friendlyName"`
	SerialNumber    string  `json:"serialNumber"`
	NotBefore       *string `json:"notBefore"`
	NotAfter        *string `json:"notAfter"`
}

// PKIAlert mails the certificates of a collection that expire within
// AlertBeforeDays to RecipientEmails (comma-separated), once a day.
type PKIAlert struct {
	ID              string  `json:"id"`
	ProjectID       string  `json:"projectId"`
	PkiCollectionID string  `json:"pkiCollectionId"`
	Name            string  `json:"name"`
	AlertBeforeDays int     `json:"alertBeforeDays"`
	RecipientEmails string  `json:"recipientEmails"`
	LastSentAt      *string `json:"lastSentAt"`
}

// PKICreateCollection makes a collection.
func (c *Client) PKICreateCollection(ctx context.Context, projectID, name, description string) (PKICollection, error) {
	var out PKICollection
	err := c.Do(ctx, http.MethodPost, pkiBase+"/collections", map[string]string{"projectId": projectID, "name": name, "description": description}, &out)
	return out, err
}

// PKICollections lists a project's collections.
func (c *Client) PKICollections(ctx context.Context, projectID string) ([]PKICollection, error) {
	var out struct {
		Collections []PKICollection `json:"collections"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/collections?"+url.Values{"projectId": {projectID}}.Encode(), nil, &out)
	return out.Collections, err
}

// PKICollection returns a collection.
func (c *Client) PKICollection(ctx context.Context, id string) (PKICollection, error) {
	var out PKICollection
	err := c.Do(ctx, http.MethodGet, pkiPath("collections", id, ""), nil, &out)
	return out, err
}

// PKIDeleteCollection deletes a collection with its items and alerts.
func (c *Client) PKIDeleteCollection(ctx context.Context, id string) (PKICollection, error) {
	var out PKICollection
	err := c.Do(ctx, http.MethodDelete, pkiPath("collections", id, ""), nil, &out)
	return out, err
}

// PKIAddCollectionItem puts a CA (typ "ca") or a certificate (typ "certificate", by id) into a collection.
func (c *Client) PKIAddCollectionItem(ctx context.Context, collectionID, typ, itemID string) (PKICollectionItem, error) {
	var out PKICollectionItem
	err := c.Do(ctx, http.MethodPost, pkiPath("collections", collectionID, "/items"), map[string]string{"type": typ, "itemId": itemID}, &out)
	return out, err
}

// PKIRemoveCollectionItem takes an item (by its item id) out of a collection.
func (c *Client) PKIRemoveCollectionItem(ctx context.Context, collectionID, itemID string) (PKICollectionItem, error) {
	var out PKICollectionItem
	err := c.Do(ctx, http.MethodDelete, pkiPath("collections", collectionID, "/items/"+url.PathEscape(itemID)), nil, &out)
	return out, err
}

// PKICollectionItems lists a page of a collection's items.
func (c *Client) PKICollectionItems(ctx context.Context, collectionID, typ string, offset, limit int) ([]PKICollectionItem, int, error) {
	q := url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(limit)}}
	if typ != "" {
		q.Set("type", typ)
	}
	var out struct {
		Items      []PKICollectionItem `json:"collectionItems"`
		TotalCount int                 `json:"totalCount"`
	}
	err := c.Do(ctx, http.MethodGet, pkiPath("collections", collectionID, "/items?"+q.Encode()), nil, &out)
	return out.Items, out.TotalCount, err
}

// PKICreateAlert makes an alert on a collection.
func (c *Client) PKICreateAlert(ctx context.Context, projectID, collectionID, name string, days int, emails []string) (PKIAlert, error) {
	var out PKIAlert
	err := c.Do(ctx, http.MethodPost, pkiBase+"/alerts", map[string]any{"projectId": projectID, "pkiCollectionId": collectionID,
		"name": name, "alertBeforeDays": days, "emails": emails}, &out)
	return out, err
}

// PKIUpdateAlert changes an alert; body holds the fields to change
// (name, pkiCollectionId, alertBeforeDays, emails).
func (c *Client) PKIUpdateAlert(ctx context.Context, id string, body map[string]any) (PKIAlert, error) {
	var out PKIAlert
	err := c.Do(ctx, http.MethodPatch, pkiPath("alerts", id, ""), body, &out)
	return out, err
}

// PKIAlerts lists a project's alerts.
func (c *Client) PKIAlerts(ctx context.Context, projectID string) ([]PKIAlert, error) {
	var out struct {
		Alerts []PKIAlert `json:"alerts"`
	}
	err := c.Do(ctx, http.MethodGet, pkiBase+"/alerts?"+url.Values{"projectId": {projectID}}.Encode(), nil, &out)
	return out.Alerts, err
}

// PKIAlert returns an alert.
func (c *Client) PKIAlert(ctx context.Context, id string) (PKIAlert, error) {
	var out PKIAlert
	err := c.Do(ctx, http.MethodGet, pkiPath("alerts", id, ""), nil, &out)
	return out, err
}

// PKIDeleteAlert deletes an alert.
func (c *Client) PKIDeleteAlert(ctx context.Context, id string) (PKIAlert, error) {
	var out PKIAlert
	err := c.Do(ctx, http.MethodDelete, pkiPath("alerts", id, ""), nil, &out)
	return out, err
}

// PKIRenewCA gives a CA a new certificate for its existing key, valid until notAfter.
func (c *Client) PKIRenewCA(ctx context.Context, id, notAfter string) (PKIIssued, error) {
	var out PKIIssued
	err := c.Do(ctx, http.MethodPost, pkiPath("ca", id, "/renew"), map[string]string{"type": "existing", "notAfter": notAfter}, &out)
	return out, err
}

// PKICACertificates lists the certificates a CA has had, oldest first.
func (c *Client) PKICACertificates(ctx context.Context, id string) ([]PKICACertificate, error) {
	var out []PKICACertificate
	err := c.Do(ctx, http.MethodGet, pkiPath("ca", id, "/ca-certificates"), nil, &out)
	return out, err
}

// PKICACertificate is one version of a CA's certificate.
type PKICACertificate struct {
	Certificate      string `json:"certificate"`
	CertificateChain string `json:"certificateChain"`
	SerialNumber     string `json:"serialNumber"`
	Version          int    `json:"version"`
}
