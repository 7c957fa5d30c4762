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
	CreatedAt     time.Time
	UpdatedAt     time.Time
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
	UpdateCA(ctx context.Context, ca CA, from CAStatus, ev audit.Event) error
	// DeleteCA deletes a CA with its certificates and templates.
	DeleteCA(ctx context.Context, id string, ev audit.Event) error
	// CACRL returns the CA's stored CRL (DER nil when none was made yet)
	// and the CA's revocation count.
	CACRL(ctx context.Context, caID string) (CRL, error)
	// SetCACRL stores crl provided the stored CRL covers no more revocations
	// (Rev) and has a lower number; errs.Conflict otherwise.
	SetCACRL(ctx context.Context, crl CRL) error

	CreateCertificate(ctx context.Context, c Certificate, ev audit.Event) error
	CertificateBySerial(ctx context.Context, serial string) (Certificate, error)
	// Certificates returns a page of a project's certificates, newest first, and the total.
	Certificates(ctx context.Context, projectID string, offset, limit int) ([]Certificate, int, error)
	// RevokedCertificates lists a CA's revoked certificates.
	RevokedCertificates(ctx context.Context, caID string) ([]Certificate, error)
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
	UpdateTemplate(ctx context.Context, t Template, ev audit.Event) error
	DeleteTemplate(ctx context.Context, id string, ev audit.Event) error

	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}
