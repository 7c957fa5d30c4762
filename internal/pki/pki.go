// Package pki runs a project's private certificate authorities: root and
// intermediate CAs whose keys stay sealed on the server, certificates issued
// or signed under templates that bound them, revocation and CRLs.
package pki

import (
	"context"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/keyring"
)

// CAType is root or intermediate.
type CAType string

// CA types.
const (
	Root         CAType = "root"
	Intermediate CAType = "intermediate"
)

// CAStatus is the state of a CA.
type CAStatus string

// CA states. An intermediate CA is pending until its certificate is imported.
const (
	Active             CAStatus = "active"
	PendingCertificate CAStatus = "pending-certificate"
	Disabled           CAStatus = "disabled"
)

// Subject is a distinguished name's parts.
type Subject struct {
	CommonName, Organization, OU, Country, Province, Locality string
}

// CA is a certificate authority. SealedKey is its private key sealed with
// the project's data key (CAKeyAD); it never leaves the service.
type CA struct {
	ID            string
	OrgID         string
	ProjectID     string
	Type          CAType
	Status        CAStatus
	FriendlyName  string
	Subject       Subject
	DN            string
	KeyAlgorithm  KeyAlgorithm
	MaxPathLength int // -1: no limit
	ParentCAID    string
	SerialNumber  string
	NotBefore     time.Time // zero while pending
	NotAfter      time.Time
	Certificate   string // PEM; empty while pending
	Chain         string // PEM of the issuers above, nearest first; empty for a root
	SealedKey     []byte
	// RequireTemplate (Infisical's requireTemplateForIssuance): the CA
	// issues and signs only through one of its certificate templates.
	RequireTemplate bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// CRL is a CA's stored certificate revocation list. Rev is the count of
// the CA's revocations it covers; CARev, as read, the CA's count now.
type CRL struct {
	CAID       string
	Number     int64
	DER        []byte // nil: none made yet
	ThisUpdate time.Time
	NextUpdate time.Time
	Rev        int64
	CARev      int64
}

// Certificate states.
const (
	CertActive  = "active"
	CertRevoked = "revoked"
)

// AltName is one subject alternative name.
type AltName struct {
	Type  string // dns_name, ip_address, email, uri
	Value string
}

// Revoked is a CRL entry: a revoked certificate's serial number (hex), when
// and why it was revoked.
type Revoked struct {
	SerialNumber string
	At           time.Time
	Reason       int
}

// Certificate is an issued certificate. SealedKey is its private key, sealed
// (CertKeyAD), when lockbox generated it; nil when it signed a CSR.
type Certificate struct {
	ID                string
	ProjectID         string
	CAID              string
	TemplateID        string
	Status            string
	SerialNumber      string
	FriendlyName      string
	CommonName        string
	AltNames          []string
	KeyUsages         []string
	ExtendedKeyUsages []string
	NotBefore         time.Time
	NotAfter          time.Time
	RevokedAt         *time.Time
	RevocationReason  int
	Certificate       string // PEM
	Chain             string // PEM, the issuing CA first
	SealedKey         []byte
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Template bounds what may be issued from a CA: names matching its globs,
// lifetimes up to MaxTTL, usages among its own.
type Template struct {
	ID                     string
	ProjectID              string
	CAID                   string
	Name                   string
	CommonName             string // glob list
	SubjectAlternativeName string // glob list
	TTL                    string // as given, e.g. "90d"
	MaxTTL                 time.Duration
	KeyUsages              []string
	ExtendedKeyUsages      []string
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// CAKeyAD binds a CA's sealed private key to its row.
func CAKeyAD(caID string) string { return keyring.AD("pki_cas", "private_key", caID) }

// CertKeyAD binds a certificate's sealed private key to its row.
func CertKeyAD(certID string) string { return keyring.AD("pki_certificates", "private_key", certID) }

// Store is the storage the PKI service needs.
type Store interface {
	CreateCA(ctx context.Context, ca CA, ev audit.Event) error
	CA(ctx context.Context, id string) (CA, error)
	// CAs lists a project's CAs, oldest first.
	CAs(ctx context.Context, projectID string) ([]CA, error)
	// UpdateCA writes a CA's status, certificate, chain, serial, validity,
	// path length and parent with ev, provided its status is still from;
	// errs.Conflict otherwise.
	// UpdateCA writes ca if it is still as read (status from, updated_at
	// prev): errs.Conflict otherwise.
	UpdateCA(ctx context.Context, ca CA, from CAStatus, prev time.Time, ev audit.Event) error
	// UpdateCASettings writes only a CA's status and RequireTemplate, on
	// the same condition.
	UpdateCASettings(ctx context.Context, ca CA, from CAStatus, prev time.Time, ev audit.Event) error
	// DeleteCA deletes a CA with its certificates and templates.
	DeleteCA(ctx context.Context, id string, ev audit.Event) error
	// CACRL returns the CA's stored CRL (DER nil when none was made yet)
	// and the CA's revocation count.
	CACRL(ctx context.Context, caID string) (CRL, error)
	// SetCACRL stores crl provided the stored CRL covers no more revocations
	// (Rev) and has a lower number; errs.Conflict otherwise.
	SetCACRL(ctx context.Context, crl CRL) error

	// CreateCertificate stores c with ev if its CA is still active (a 400
	// otherwise) and what the issuance was checked against still holds
	// (project.ErrStale otherwise): see Basis.
	CreateCertificate(ctx context.Context, c Certificate, b Basis, ev audit.Event) error
	CertificateBySerial(ctx context.Context, serial string) (Certificate, error)
	// Certificates returns a page of a project's certificates, newest first, and the total.
	Certificates(ctx context.Context, projectID string, offset, limit int) ([]Certificate, int, error)
	// RevokedEntries lists a CA's revoked certificates that expire after
	// expiredBefore, as CRL entries.
	RevokedEntries(ctx context.Context, caID string, expiredBefore time.Time) ([]Revoked, error)
	// RevokeCertificate marks an active certificate of CA caID revoked and
	// counts the revocation on the CA, with ev; errs.Conflict when it is
	// revoked already.
	RevokeCertificate(ctx context.Context, id, caID string, at time.Time, reason int, ev audit.Event) error
	DeleteCertificate(ctx context.Context, id string, ev audit.Event) error
	// ExpiringCertificates lists a project's active certificates whose
	// notAfter lies in [from, to], soonest first, at most limit.
	ExpiringCertificates(ctx context.Context, projectID string, from, to time.Time, limit int) ([]Certificate, error)

	CreateTemplate(ctx context.Context, t Template, ev audit.Event) error
	Template(ctx context.Context, id string) (Template, error)
	Templates(ctx context.Context, projectID string) ([]Template, error)
	// UpdateTemplate writes t if it is still as read at prev:
	// project.ErrStale otherwise, also when it is gone.
	UpdateTemplate(ctx context.Context, t Template, prev time.Time, ev audit.Event) error
	DeleteTemplate(ctx context.Context, id string, ev audit.Event) error

	// CertificateByID finds a certificate by id.
	CertificateByID(ctx context.Context, id string) (Certificate, error)

	// RenewCA writes a CA's new certificate, chain, serial and validity
	// with ev and archives prev as the CA's next version, provided the CA's
	// status is still from and its serial still prev's; errs.Conflict otherwise.
	RenewCA(ctx context.Context, ca CA, from CAStatus, prev CACert, ev audit.Event) error
	// CACertificates lists a CA's archived certificates, oldest first.
	CACertificates(ctx context.Context, caID string) ([]CACert, error)

	CreateCollection(ctx context.Context, c Collection, ev audit.Event) error
	Collection(ctx context.Context, id string) (Collection, error)
	// Collections lists a project's collections, oldest first.
	Collections(ctx context.Context, projectID string) ([]Collection, error)
	CountCollections(ctx context.Context, projectID string) (int, error)
	UpdateCollection(ctx context.Context, c Collection, ev audit.Event) error
	// DeleteCollection deletes a collection with its items and alerts.
	DeleteCollection(ctx context.Context, id string, ev audit.Event) error
	// AddCollectionItem stores an item; errs.Conflict when the collection
	// holds that CA or certificate already.
	AddCollectionItem(ctx context.Context, it CollectionItem, ev audit.Event) error
	CollectionItem(ctx context.Context, id string) (CollectionItem, error)
	CountCollectionItems(ctx context.Context, collectionID string) (int, error)
	RemoveCollectionItem(ctx context.Context, id string, ev audit.Event) error
	// CollectionItems returns a page of a collection's items (of type typ
	// unless empty), oldest first, and their total.
	CollectionItems(ctx context.Context, collectionID, typ string, offset, limit int) ([]CollectionItem, int, error)
	// ExpiringCollectionItems lists a collection's CAs and active
	// certificates whose notAfter lies in [from, to], soonest first.
	ExpiringCollectionItems(ctx context.Context, collectionID string, from, to time.Time, limit int) ([]CollectionItem, error)

	// CreateAlert stores an alert; errs.Conflict when the project has one of that name.
	CreateAlert(ctx context.Context, a Alert, ev audit.Event) error
	Alert(ctx context.Context, id string) (Alert, error)
	// Alerts lists a project's alerts, oldest first.
	Alerts(ctx context.Context, projectID string) ([]Alert, error)
	CountAlerts(ctx context.Context, projectID string) (int, error)
	// UpdateAlert writes an alert's name, collection, days and emails (not
	// its schedule); errs.Conflict on a name taken.
	UpdateAlert(ctx context.Context, a Alert, ev audit.Event) error
	DeleteAlert(ctx context.Context, id string, ev audit.Event) error
	// NextAlertDue is the earliest due time of any alert (zero: none).
	NextAlertDue(ctx context.Context) (time.Time, error)
	// ClaimDueAlerts claims up to limit alerts due at now, moving each one's
	// due time to until, so no other node claims it before then.
	ClaimDueAlerts(ctx context.Context, now, until time.Time, limit int) ([]Alert, error)
	// AlertSent records a claimed alert's outcome with ev: when sent, the
	// time; a non-nil retry moves its due time there.
	AlertSent(ctx context.Context, id string, at time.Time, sent bool, retry *time.Time, ev audit.Event) error

	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Basis is what an issuance was checked against, confirmed again in the
// transaction that stores the certificate: between the check and the
// store lie a key generation and a signature (seconds for an RSA key under
// load), and an admin may change the rules meanwhile.
type Basis struct {
	// BareCA: issued by caId alone, which the CA must still allow (its
	// "require template" off).
	BareCA bool
	// TemplateAt is the UpdatedAt of the certificate's template
	// (Certificate.TemplateID) as checked; the template must still be so.
	TemplateAt time.Time
}
