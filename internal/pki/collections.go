package pki

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Collection is a named set of a project's CAs and certificates, which
// alerts watch.
type Collection struct {
	ID          string
	ProjectID   string
	Name        string
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Collection item types, as Infisical names them.
const (
	ItemCA          = "ca"
	ItemCertificate = "certificate"
)

// CollectionItem is a CA or a certificate in a collection; the name and
// validity are read from what it names.
type CollectionItem struct {
	ID           string
	CollectionID string
	Type         string // ItemCA or ItemCertificate
	ItemID       string // the CA's or the certificate's id
	FriendlyName string
	SerialNumber string
	NotBefore    time.Time
	NotAfter     time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Bounds on collections.
const (
	MaxCollections         = 500
	MaxItemsPerCollection  = 10000
	maxCollectionNameBytes = 255
	maxDescriptionBytes    = 1000
)

func collectionNotFound(id string) error {
	return errs.NotFoundf("PKI collection with ID '%s' not found", id)
}

func projectNotFound(id string) func() error {
	return func() error { return errs.NotFoundf("Project with ID '%s' not found", id) }
}

// collection reads a collection and checks action on pki-collections in its
// project; one of a project the actor is not a member of is not found.
func (s *Service) collection(ctx context.Context, actor authz.Actor, id, action string) (Collection, error) {
	id = strings.TrimSpace(id)
	if _, err := uuid.Parse(id); err != nil {
		return Collection{}, collectionNotFound(id)
	}
	c, err := s.store.Collection(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Collection{}, collectionNotFound(id)
	}
	if err != nil {
		return Collection{}, err
	}
	return c, s.check(ctx, actor, c.ProjectID, action, authz.SubPkiCollections, func() error { return collectionNotFound(id) }, true)
}

func collectionEvent(actor authz.Actor, typ string, c Collection, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["pkiCollectionId"] = c.ID
	return audit.New(actor, typ, md).InProject(c.ProjectID, "")
}

func checkCollectionFields(name, description *string) error {
	if name != nil {
		*name = strings.TrimSpace(*name)
		if *name == "" || len(*name) > maxCollectionNameBytes {
			return errs.Fieldf("name", "name must be 1 to %d characters", maxCollectionNameBytes)
		}
	}
	if description != nil {
		*description = strings.TrimSpace(*description)
		if len(*description) > maxDescriptionBytes {
			return errs.Fieldf("description", "description cannot exceed %d characters", maxDescriptionBytes)
		}
	}
	return nil
}

// CreateCollection makes an empty collection in a project.
func (s *Service) CreateCollection(ctx context.Context, actor authz.Actor, projectID, name, description string) (Collection, error) {
	projectID = strings.TrimSpace(projectID)
	if projectID == "" {
		return Collection{}, errs.Fieldf("projectId", "projectId is required")
	}
	if err := checkCollectionFields(&name, &description); err != nil {
		return Collection{}, err
	}
	if _, err := uuid.Parse(projectID); err != nil {
		return Collection{}, projectNotFound(projectID)()
	}
	if err := s.check(ctx, actor, projectID, authz.ActCreate, authz.SubPkiCollections, projectNotFound(projectID), false); err != nil {
		return Collection{}, err
	}
	if n, err := s.store.CountCollections(ctx, projectID); err != nil {
		return Collection{}, err
	} else if n >= MaxCollections {
		return Collection{}, TooManyCollections(n)
	}
	now := s.clock()
	c := Collection{ID: uuid.NewString(), ProjectID: projectID, Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	return c, s.store.CreateCollection(ctx, c, collectionEvent(actor, "create-pki-collection", c, map[string]any{"name": c.Name}))
}

// GetCollection returns a collection.
func (s *Service) GetCollection(ctx context.Context, actor authz.Actor, id string) (Collection, error) {
	return s.collection(ctx, actor, id, authz.ActRead)
}

// ListCollections returns a project's collections, oldest first.
func (s *Service) ListCollections(ctx context.Context, actor authz.Actor, projectID string) ([]Collection, error) {
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, projectNotFound(projectID)()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubPkiCollections, projectNotFound(projectID), false); err != nil {
		return nil, err
	}
	return s.store.Collections(ctx, projectID)
}

// UpdateCollection renames a collection or changes its description; nil
// leaves a field as it is.
func (s *Service) UpdateCollection(ctx context.Context, actor authz.Actor, id string, name, description *string) (Collection, error) {
	if err := checkCollectionFields(name, description); err != nil {
		return Collection{}, err
	}
	c, err := s.collection(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return Collection{}, err
	}
	if name != nil {
		c.Name = *name
	}
	if description != nil {
		c.Description = *description
	}
	c.UpdatedAt = s.clock()
	return c, s.store.UpdateCollection(ctx, c, collectionEvent(actor, "update-pki-collection", c, map[string]any{"name": c.Name}))
}

// DeleteCollection deletes a collection with its items and its alerts.
func (s *Service) DeleteCollection(ctx context.Context, actor authz.Actor, id string) (Collection, error) {
	c, err := s.collection(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return Collection{}, err
	}
	return c, s.store.DeleteCollection(ctx, c.ID, collectionEvent(actor, "delete-pki-collection", c, nil))
}

// AddCollectionItem puts a CA or a certificate of the collection's project
// into the collection. Adding one that is there already is a 400.
func (s *Service) AddCollectionItem(ctx context.Context, actor authz.Actor, collectionID, typ, itemID string) (CollectionItem, error) {
	typ, itemID = strings.TrimSpace(typ), strings.TrimSpace(itemID)
	if typ != ItemCA && typ != ItemCertificate {
		return CollectionItem{}, errs.Fieldf("type", "type must be ca or certificate")
	}
	if itemID == "" {
		return CollectionItem{}, errs.Fieldf("itemId", "itemId is required")
	}
	c, err := s.collection(ctx, actor, collectionID, authz.ActEdit)
	if err != nil {
		return CollectionItem{}, err
	}
	now := s.clock()
	it := CollectionItem{ID: uuid.NewString(), CollectionID: c.ID, Type: typ, CreatedAt: now, UpdatedAt: now}
	// The item must be of the collection's project and readable by the actor.
	switch typ {
	case ItemCA:
		ca, err := s.ca(ctx, actor, itemID, authz.ActRead, authz.SubCertificateAuthorities)
		if err != nil {
			return CollectionItem{}, err
		}
		if ca.ProjectID != c.ProjectID {
			return CollectionItem{}, caNotFound(itemID)
		}
		it.ItemID, it.FriendlyName, it.SerialNumber, it.NotBefore, it.NotAfter = ca.ID, ca.FriendlyName, ca.SerialNumber, ca.NotBefore, ca.NotAfter
	case ItemCertificate:
		cert, err := s.certificateByID(ctx, actor, itemID)
		if err != nil {
			return CollectionItem{}, err
		}
		if cert.ProjectID != c.ProjectID {
			return CollectionItem{}, errs.NotFoundf("Certificate with ID '%s' not found", itemID)
		}
		it.ItemID, it.FriendlyName, it.SerialNumber, it.NotBefore, it.NotAfter = cert.ID, cert.FriendlyName, cert.SerialNumber, cert.NotBefore, cert.NotAfter
	}
	if n, err := s.store.CountCollectionItems(ctx, c.ID); err != nil {
		return CollectionItem{}, err
	} else if n >= MaxItemsPerCollection {
		return CollectionItem{}, TooManyItems(n)
	}
	err = s.store.AddCollectionItem(ctx, it, collectionEvent(actor, "add-pki-collection-item", c,
		map[string]any{"pkiCollectionItemId": it.ID, "type": typ, "itemId": it.ItemID}))
	if errs.Is(err, errs.Conflict) {
		return CollectionItem{}, errs.BadRequest("The %s with ID '%s' is in the collection already", typ, it.ItemID)
	}
	return it, err
}

// RemoveCollectionItem takes an item out of a collection.
func (s *Service) RemoveCollectionItem(ctx context.Context, actor authz.Actor, collectionID, itemID string) (CollectionItem, error) {
	c, err := s.collection(ctx, actor, collectionID, authz.ActEdit)
	if err != nil {
		return CollectionItem{}, err
	}
	notFound := errs.NotFoundf("PKI collection item with ID '%s' not found", itemID)
	if _, err := uuid.Parse(itemID); err != nil {
		return CollectionItem{}, notFound
	}
	it, err := s.store.CollectionItem(ctx, itemID)
	if errs.Is(err, errs.NotFound) || (err == nil && it.CollectionID != c.ID) {
		return CollectionItem{}, notFound
	}
	if err != nil {
		return CollectionItem{}, err
	}
	return it, s.store.RemoveCollectionItem(ctx, it.ID, collectionEvent(actor, "delete-pki-collection-item", c,
		map[string]any{"pkiCollectionItemId": it.ID}))
}

// CollectionItems returns a page of a collection's items (of type typ
// when not empty), oldest first, and their total.
func (s *Service) CollectionItems(ctx context.Context, actor authz.Actor, collectionID, typ string, offset, limit int) (Collection, []CollectionItem, int, error) {
	if typ != "" && typ != ItemCA && typ != ItemCertificate {
		return Collection{}, nil, 0, errs.Fieldf("type", "type must be ca or certificate")
	}
	c, err := s.collection(ctx, actor, collectionID, authz.ActRead)
	if err != nil {
		return Collection{}, nil, 0, err
	}
	items, total, err := s.store.CollectionItems(ctx, c.ID, typ, offset, limit)
	return c, items, total, err
}

// certificateByID reads a certificate by id and checks read on it.
func (s *Service) certificateByID(ctx context.Context, actor authz.Actor, id string) (Certificate, error) {
	notFound := func() error { return errs.NotFoundf("Certificate with ID '%s' not found", id) }
	if _, err := uuid.Parse(id); err != nil {
		return Certificate{}, notFound()
	}
	c, err := s.store.CertificateByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return Certificate{}, notFound()
	}
	if err != nil {
		return Certificate{}, err
	}
	return c, s.check(ctx, actor, c.ProjectID, authz.ActRead, authz.SubCertificates, notFound, true)
}
