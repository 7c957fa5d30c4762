package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// Bounds on the work one request can cause and on what a project may hold.
const (
	MaxAltNames          = 100
	MaxCSRBytes          = 16 << 10
	MaxChainCertificates = 10
	MaxLeafLifetime      = 10 * 365 * 24 * time.Hour
	MaxCALifetime        = 30 * 365 * 24 * time.Hour
	MaxCAsPerProject     = 100
	MaxTemplates         = 500
	MaxExpiringList      = 1000
	defaultCALifetime    = 10 * 365 * 24 * time.Hour

	// CRLLifetime is a CRL's validity; a stored CRL older than CRLRefresh
	// is made again when next read, so unauthenticated readers can make a
	// CA sign at most one CRL per CRLRefresh.
	CRLLifetime = 7 * 24 * time.Hour
	CRLRefresh  = 24 * time.Hour
)

// rsaSignSlot holds a slot of keygen.Signatures for a signature with an RSA
// key larger than 2048 bits (an RSA-4096 signature is ~13 ms of a core, and
// a member may have certificates issued, or a CRL signed, in a loop); other
// keys sign without one. release gives the slot back.
func rsaSignSlot(ctx context.Context, signer crypto.Signer) (release func(), err error) {
	if k, ok := signer.Public().(*rsa.PublicKey); ok && k.N.BitLen() > 2048 {
		return signPool.Acquire(ctx, "signatures")
	}
	return func() {}, nil
}

// signPool bounds RSA signatures made at once (keygen.Signatures).
var signPool = keygen.Signatures

// genPool bounds the key generations running at once, with those of the
// other services (package keygen).
var genPool = keygen.Shared

func generate(ctx context.Context, a KeyAlgorithm) (crypto.Signer, error) {
	release, err := genPool.Acquire(ctx, "keys")
	if err != nil {
		return nil, err
	}
	defer release()
	k, err := GenerateKey(a)
	if err != nil {
		return nil, errs.Internalf(err, "generate %s key", a)
	}
	return k, nil
}

// Service manages a project's CAs, certificates and templates.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	now   func() time.Time

	// publicURL is the server's public base URL (LOCKBOX_SITE_URL); when
	// set, issued certificates name the CA's CRL and certificate under it.
	publicURL string

	mu      sync.Mutex
	signers map[string]crypto.Signer // CA id -> its unwrapped key; a CA's key never changes
}

// SetPublicURL sets the base URL (such as https://lockbox.example.com)
// under which certificates issued from now on name their CA's public CRL
// (CRL distribution point) and certificate (authority information
// access). Empty, the default, leaves both extensions out: a URL the
// relying party cannot reach would be worse than none.
func (s *Service) SetPublicURL(u string) { s.publicURL = strings.TrimRight(u, "/") }

// CRLURL is the public address of a CA's CRL (DER), or "" with no public URL.
func (s *Service) CRLURL(caID string) string {
	if s.publicURL == "" {
		return ""
	}
	return s.publicURL + "/api/v1/pki/crl/" + caID + "/der"
}

// CACertURL is the public address of a CA's certificate (DER), or "".
func (s *Service) CACertURL(caID string) string {
	if s.publicURL == "" {
		return ""
	}
	return s.publicURL + "/api/v1/pki/ca/" + caID + "/certificate/der"
}

// issuerLinks sets the CRL distribution point and the CA issuers URL of
// a certificate issued by caID, when the server has a public URL.
func (s *Service) issuerLinks(t *x509.Certificate, caID string) {
	if u := s.CRLURL(caID); u != "" {
		t.CRLDistributionPoints = []string{u}
		t.IssuingCertificateURL = []string{s.CACertURL(caID)}
	}
}

// PublicCACertificate returns a CA's current certificate (DER) to anyone,
// as the CA issuers URL of the certificates it issued promises.
func (s *Service) PublicCACertificate(ctx context.Context, id string) ([]byte, error) {
	notFound := errs.NotFoundf("CA with ID '%s' not found", id)
	if _, err := uuid.Parse(id); err != nil {
		return nil, notFound
	}
	ca, err := s.store.CA(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && ca.Certificate == "") {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	c, err := caCert(ca)
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

// maxCachedSigners bounds the CA keys a node keeps unwrapped.
const maxCachedSigners = 1000

// NewService returns the PKI service; now nil means time.Now.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, now: now, signers: map[string]crypto.Signer{}}
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

func caNotFound(id string) error { return errs.NotFoundf("CA with ID '%s' not found", id) }
func certNotFound(serial string) error {
	return errs.NotFoundf("Certificate with serial number '%s' not found", serial)
}
func templateNotFound(id string) error {
	return errs.NotFoundf("Certificate template with ID '%s' not found", id)
}

// check resolves actor's permissions in projectID and checks action on
// subject. A project the actor cannot see (not a member, when hide) is notFound.
func (s *Service) check(ctx context.Context, actor authz.Actor, projectID, action, subject string, notFound func() error, hide bool) error {
	perms, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if errs.Is(err, errs.NotFound) || (hide && errs.Is(err, errs.Forbidden)) {
		return notFound()
	}
	if err != nil {
		return err
	}
	return perms.Check(action, subject, nil)
}

// ca reads a CA by id and checks action on subject in its project; a CA of
// a project the actor is not a member of is not found.
func (s *Service) ca(ctx context.Context, actor authz.Actor, id, action, subject string) (CA, error) {
	if _, err := uuid.Parse(id); err != nil {
		return CA{}, caNotFound(id)
	}
	ca, err := s.store.CA(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return CA{}, caNotFound(id)
	}
	if err != nil {
		return CA{}, err
	}
	return ca, s.check(ctx, actor, ca.ProjectID, action, subject, func() error { return caNotFound(id) }, true)
}

func caEvent(actor authz.Actor, typ string, ca CA, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["caId"], md["dn"] = ca.ID, ca.DN
	return audit.New(actor, typ, md).InProject(ca.ProjectID, "")
}

// signer returns a CA's private key, unwrapped once per node.
func (s *Service) signer(ctx context.Context, ca CA) (crypto.Signer, error) {
	s.mu.Lock()
	k, ok := s.signers[ca.ID]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	der, err := s.keys.Open(ctx, keyring.Project(ca.ProjectID), ca.SealedKey, CAKeyAD(ca.ID))
	if err != nil {
		return nil, err
	}
	defer clear(der)
	k, err = ParseKey(der)
	if err != nil {
		return nil, errs.Internalf(err, "load CA %s key", ca.ID)
	}
	s.mu.Lock()
	if len(s.signers) >= maxCachedSigners {
		clear(s.signers)
	}
	s.signers[ca.ID] = k
	s.mu.Unlock()
	return k, nil
}

func (s *Service) forget(caID string) {
	s.mu.Lock()
	delete(s.signers, caID)
	s.mu.Unlock()
}

func caCert(ca CA) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(ca.Certificate))
	if b == nil {
		return nil, errs.Internalf(nil, "CA %s certificate is not PEM", ca.ID)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, errs.Internalf(err, "parse CA %s certificate", ca.ID)
	}
	return c, nil
}

func (sub Subject) name() pkix.Name {
	var n pkix.Name
	n.CommonName = sub.CommonName
	add := func(dst *[]string, v string) {
		if v != "" {
			*dst = []string{v}
		}
	}
	add(&n.Organization, sub.Organization)
	add(&n.OrganizationalUnit, sub.OU)
	add(&n.Country, sub.Country)
	add(&n.Province, sub.Province)
	add(&n.Locality, sub.Locality)
	return n
}

// NewCA is what CreateCA needs.
type NewCA struct {
	ProjectID     string
	Type          string // root or intermediate
	FriendlyName  string
	Subject       Subject
	NotBefore     *time.Time
	NotAfter      *time.Time
	MaxPathLength *int // nil: -1, no limit
	KeyAlgorithm  string
	// ParentCAID, for an intermediate, names a lockbox CA of the same
	// project that signs it at once; empty leaves it pending a certificate
	// (GET csr, then import-certificate).
	ParentCAID string
	// RequireTemplate: the CA issues only through its templates.
	RequireTemplate bool
}

func checkSubject(sub *Subject) error {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"commonName", &sub.CommonName, 64}, {"organization", &sub.Organization, 64}, {"ou", &sub.OU, 64},
		{"country", &sub.Country, 2}, {"province", &sub.Province, 128}, {"locality", &sub.Locality, 128}} {
		*f.v = strings.TrimSpace(*f.v)
		if len(*f.v) > f.max {
			return errs.Fieldf(f.name, "%s cannot exceed %d characters", f.name, f.max)
		}
	}
	if *sub == (Subject{}) {
		return errs.Invalidf("At least one of the fields commonName, organization, ou, country, province, or locality must be non-empty")
	}
	return nil
}

// CreateCA makes a CA and its key. A root CA signs its own certificate; an
// intermediate is signed by ParentCAID or waits for an imported certificate.
func (s *Service) CreateCA(ctx context.Context, actor authz.Actor, n NewCA) (CA, error) {
	n.ProjectID = strings.TrimSpace(n.ProjectID)
	if n.ProjectID == "" {
		return CA{}, errs.Fieldf("projectId", "projectId is required")
	}
	typ := CAType(strings.TrimSpace(n.Type))
	if typ != Root && typ != Intermediate {
		return CA{}, errs.Fieldf("type", "type must be root or intermediate")
	}
	if err := checkSubject(&n.Subject); err != nil {
		return CA{}, err
	}
	if len(n.FriendlyName) > 255 {
		return CA{}, errs.Fieldf("friendlyName", "friendlyName cannot exceed 255 characters")
	}
	alg, err := ParseKeyAlgorithm("keyAlgorithm", n.KeyAlgorithm, RSA2048)
	if err != nil {
		return CA{}, err
	}
	pathLen := -1
	if n.MaxPathLength != nil {
		if *n.MaxPathLength < -1 || *n.MaxPathLength > 32 {
			return CA{}, errs.Fieldf("maxPathLength", "maxPathLength must be -1 (no limit) to 32")
		}
		pathLen = *n.MaxPathLength
	}
	if typ == Root && n.ParentCAID != "" {
		return CA{}, errs.Fieldf("parentCaId", "A root CA has no parent")
	}
	projectNotFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", n.ProjectID) }
	if _, err := uuid.Parse(n.ProjectID); err != nil {
		return CA{}, projectNotFound()
	}
	if err := s.check(ctx, actor, n.ProjectID, authz.ActCreate, authz.SubCertificateAuthorities, projectNotFound, false); err != nil {
		return CA{}, err
	}
	var parent CA
	if n.ParentCAID != "" {
		if parent, err = s.ca(ctx, actor, n.ParentCAID, authz.ActCreate, authz.SubCertificateAuthorities); err != nil {
			return CA{}, err
		}
		if parent.ProjectID != n.ProjectID {
			return CA{}, caNotFound(n.ParentCAID)
		}
		if err := usable(parent); err != nil {
			return CA{}, err
		}
	}
	if cas, err := s.store.CAs(ctx, n.ProjectID); err != nil {
		return CA{}, err
	} else if len(cas) >= MaxCAsPerProject {
		return CA{}, TooManyCAs(len(cas))
	}
	now := s.clock()
	notBefore, notAfter := now, now.Add(defaultCALifetime)
	if n.NotBefore != nil {
		notBefore = n.NotBefore.UTC().Truncate(time.Second)
	}
	if n.NotAfter != nil {
		notAfter = n.NotAfter.UTC().Truncate(time.Second)
	} else if parent.ID != "" {
		notAfter = parent.NotAfter
	}
	if err := checkValidity(notBefore, notAfter, MaxCALifetime, now); err != nil {
		return CA{}, err
	}

	key, err := generate(ctx, alg)
	if err != nil {
		return CA{}, err
	}
	der, err := MarshalKey(key)
	if err != nil {
		return CA{}, errs.Internalf(err, "marshal CA key")
	}
	defer clear(der)
	ca := CA{ID: uuid.NewString(), OrgID: actor.OrgID, ProjectID: n.ProjectID, Type: typ, Status: PendingCertificate,
		FriendlyName: strings.TrimSpace(n.FriendlyName), Subject: n.Subject, DN: n.Subject.name().String(), KeyAlgorithm: alg,
		MaxPathLength: pathLen, RequireTemplate: n.RequireTemplate, CreatedAt: now, UpdatedAt: now}
	if ca.FriendlyName == "" {
		ca.FriendlyName = ca.DN
	}
	if ca.SealedKey, err = s.keys.Seal(ctx, keyring.Project(ca.ProjectID), der, CAKeyAD(ca.ID)); err != nil {
		return CA{}, err
	}
	var signed *x509.Certificate // by parent, when there is one
	switch {
	case typ == Root:
		serial, err := newSerial()
		if err != nil {
			return CA{}, errs.Internalf(err, "serial")
		}
		tmpl := caTemplate(serial, ca.Subject.name(), notBefore, notAfter, pathLen)
		certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return CA{}, errs.Internalf(err, "self-sign CA")
		}
		ca.Status, ca.Certificate, ca.SerialNumber = Active, PEMCert(certDER), SerialHex(serial)
		ca.NotBefore, ca.NotAfter = notBefore, notAfter
	case parent.ID != "":
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Subject.name()}, key)
		if err != nil {
			return CA{}, errs.Internalf(err, "CSR")
		}
		req, _ := x509.ParseCertificateRequest(csr)
		cert, serial, err := s.signCA(ctx, parent, req, notBefore, notAfter, pathLen)
		if err != nil {
			return CA{}, err
		}
		signed = cert
		ca.Status, ca.Certificate, ca.Chain, ca.SerialNumber = Active, PEMCert(cert.Raw), chainOf(parent), serial
		ca.NotBefore, ca.NotAfter, ca.ParentCAID, ca.MaxPathLength = cert.NotBefore, cert.NotAfter, parent.ID, pathLenOf(cert)
	}
	md := map[string]any{"type": string(typ), "keyAlgorithm": string(alg), "status": string(ca.Status)}
	if ca.ParentCAID != "" {
		md["parentCaId"], md["serialNumber"] = ca.ParentCAID, ca.SerialNumber
	}
	if signed != nil {
		// Recorded first: a certificate of the parent that no CA ends up
		// using can be revoked; one in use but unrecorded could not.
		if _, err := s.recordCACert(ctx, actor, parent, signed, ca.SerialNumber); err != nil {
			return CA{}, err
		}
	}
	if err := s.store.CreateCA(ctx, ca, caEvent(actor, "create-certificate-authority", ca, md)); err != nil {
		return CA{}, err
	}
	return ca, nil
}

func caTemplate(serial *big.Int, subject pkix.Name, notBefore, notAfter time.Time, pathLen int) *x509.Certificate {
	t := &x509.Certificate{SerialNumber: serial, Subject: subject, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:     true, BasicConstraintsValid: true, MaxPathLen: -1}
	if pathLen >= 0 {
		t.MaxPathLen, t.MaxPathLenZero = pathLen, pathLen == 0
	}
	return t
}

func pathLenOf(c *x509.Certificate) int {
	if c.MaxPathLen > 0 || (c.MaxPathLen == 0 && c.MaxPathLenZero) {
		return c.MaxPathLen
	}
	return -1
}

// chainOf is the chain a certificate issued by ca carries: ca's certificate, then its own chain.
func chainOf(ca CA) string {
	return strings.TrimSpace(ca.Certificate + "\n" + ca.Chain)
}

func checkValidity(notBefore, notAfter time.Time, limit time.Duration, now time.Time) error {
	if !notAfter.After(notBefore) {
		return errs.Fieldf("notAfter", "notAfter must be later than notBefore")
	}
	if !notAfter.After(now) {
		return errs.Fieldf("notAfter", "notAfter must be in the future")
	}
	if notAfter.Sub(notBefore) > limit {
		return errs.Fieldf("notAfter", "The validity period cannot exceed %d days", int(limit/(24*time.Hour)))
	}
	return nil
}

// usable reports why a CA cannot sign now, or nil.
func usable(ca CA) error {
	switch ca.Status {
	case Disabled:
		return errs.BadRequest("CA with ID '%s' is disabled", ca.ID)
	case PendingCertificate:
		return errs.BadRequest("CA with ID '%s' has no certificate yet; import one first", ca.ID)
	}
	return nil
}

// signCA signs an intermediate CA certificate for req with parent's key,
// bounding its lifetime and path length by the parent's.
func (s *Service) signCA(ctx context.Context, parent CA, req *x509.CertificateRequest, notBefore, notAfter time.Time, pathLen int) (*x509.Certificate, string, error) {
	pc, err := caCert(parent)
	if err != nil {
		return nil, "", err
	}
	if pl := pathLenOf(pc); pl == 0 {
		return nil, "", errs.BadRequest("CA with ID '%s' has a maximum path length of 0 and cannot sign intermediate CAs", parent.ID)
	} else if pl > 0 && (pathLen < 0 || pathLen >= pl) {
		pathLen = pl - 1
	}
	if notBefore.Before(pc.NotBefore) {
		notBefore = pc.NotBefore
	}
	if notAfter.After(pc.NotAfter) {
		return nil, "", errs.Fieldf("notAfter", "notAfter cannot be later than the issuing CA's notAfter (%s)", pc.NotAfter.Format(time.RFC3339))
	}
	if err := checkValidity(notBefore, notAfter, MaxCALifetime, s.clock()); err != nil {
		return nil, "", err
	}
	key, err := s.signer(ctx, parent)
	if err != nil {
		return nil, "", err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, "", errs.Internalf(err, "serial")
	}
	t := caTemplate(serial, req.Subject, notBefore, notAfter, pathLen)
	s.issuerLinks(t, parent.ID)
	der, err := x509.CreateCertificate(rand.Reader, t, pc, req.PublicKey, key)
	if err != nil {
		return nil, "", errs.Internalf(err, "sign intermediate")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", errs.Internalf(err, "parse intermediate")
	}
	return c, SerialHex(serial), nil
}

// GetCA returns a CA.
func (s *Service) GetCA(ctx context.Context, actor authz.Actor, id string) (CA, error) {
	return s.ca(ctx, actor, id, authz.ActRead, authz.SubCertificateAuthorities)
}

// ListCAs returns a project's CAs.
func (s *Service) ListCAs(ctx context.Context, actor authz.Actor, projectID string) ([]CA, error) {
	notFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", projectID) }
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, notFound()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubCertificateAuthorities, notFound, false); err != nil {
		return nil, err
	}
	return s.store.CAs(ctx, projectID)
}

// CAChange is what UpdateCA changes; nil fields stay.
type CAChange struct {
	Status          *string // active or disabled
	RequireTemplate *bool
}

// UpdateCA enables or disables a CA that has a certificate, or says
// whether it issues only through its templates.
func (s *Service) UpdateCA(ctx context.Context, actor authz.Actor, id string, c CAChange) (CA, error) {
	ca, err := s.ca(ctx, actor, id, authz.ActEdit, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, err
	}
	before := ca
	md := map[string]any{}
	if c.Status != nil {
		to := CAStatus(strings.TrimSpace(*c.Status))
		if to != Active && to != Disabled {
			return CA{}, errs.Fieldf("status", "status must be active or disabled")
		}
		if ca.Status == PendingCertificate {
			return CA{}, errs.BadRequest("CA with ID '%s' has no certificate yet; import one first", ca.ID)
		}
		ca.Status, md["status"] = to, string(to)
	}
	if c.RequireTemplate != nil {
		ca.RequireTemplate, md["requireTemplateForIssuance"] = *c.RequireTemplate, *c.RequireTemplate
	}
	if ca.Status == before.Status && ca.RequireTemplate == before.RequireTemplate {
		return ca, nil
	}
	ca.UpdatedAt = project.NextStamp(s.clock(), before.UpdatedAt)
	err = s.store.UpdateCASettings(ctx, ca, before.Status, before.UpdatedAt, caEvent(actor, "update-certificate-authority", ca, md))
	if errs.Is(err, errs.Conflict) {
		return CA{}, errs.Conflictf("CA with ID '%s' changed meanwhile; try again", ca.ID)
	}
	return ca, err
}

// DeleteCA deletes a CA with its key, certificates and templates. A CA
// that signed another lockbox CA of the project is kept until that one goes.
func (s *Service) DeleteCA(ctx context.Context, actor authz.Actor, id string) (CA, error) {
	ca, err := s.ca(ctx, actor, id, authz.ActDelete, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, err
	}
	cas, err := s.store.CAs(ctx, ca.ProjectID)
	if err != nil {
		return CA{}, err
	}
	for _, c := range cas {
		if c.ParentCAID == ca.ID {
			return CA{}, errs.BadRequest("CA with ID '%s' signed CA with ID '%s'; delete that one first", ca.ID, c.ID)
		}
	}
	if err := s.store.DeleteCA(ctx, ca.ID, caEvent(actor, "delete-certificate-authority", ca, nil)); err != nil {
		return CA{}, err
	}
	s.forget(ca.ID)
	return ca, nil
}

// CSR returns a certificate signing request for an intermediate CA's key,
// for an external CA to sign.
func (s *Service) CSR(ctx context.Context, actor authz.Actor, id string) (CA, string, error) {
	ca, err := s.ca(ctx, actor, id, authz.ActRead, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, "", err
	}
	if ca.Type != Intermediate {
		return CA{}, "", errs.BadRequest("CA with ID '%s' is a root CA; only an intermediate CA has a CSR", ca.ID)
	}
	key, err := s.signer(ctx, ca)
	if err != nil {
		return CA{}, "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: ca.Subject.name()}, key)
	if err != nil {
		return CA{}, "", errs.Internalf(err, "CSR")
	}
	return ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// CACertificate returns a CA with its certificate; a pending CA has none.
func (s *Service) CACertificate(ctx context.Context, actor authz.Actor, id string) (CA, error) {
	ca, err := s.ca(ctx, actor, id, authz.ActRead, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, err
	}
	if ca.Certificate == "" {
		return CA{}, errs.NotFoundf("CA with ID '%s' has no certificate yet", ca.ID)
	}
	return ca, nil
}

// Issued is a certificate as issued: PEM texts, and the private key when
// lockbox generated it (shown once here; sealed at rest).
type Issued struct {
	CA           CA
	Cert         Certificate
	Certificate  string
	Chain        string
	IssuingCA    string
	PrivateKey   string
	SerialNumber string
}

// SignIntermediate is what SignIntermediate needs.
type SignIntermediate struct {
	CSR           string
	NotBefore     *time.Time
	NotAfter      *time.Time
	MaxPathLength *int
}

// SignIntermediate signs an intermediate CA certificate for a CSR with the
// CA parentID.
func (s *Service) SignIntermediate(ctx context.Context, actor authz.Actor, parentID string, in SignIntermediate) (Issued, error) {
	req, err := parseCSR(in.CSR)
	if err != nil {
		return Issued{}, err
	}
	if in.NotAfter == nil {
		return Issued{}, errs.Fieldf("notAfter", "notAfter is required")
	}
	pathLen := -1
	if in.MaxPathLength != nil {
		if *in.MaxPathLength < -1 || *in.MaxPathLength > 32 {
			return Issued{}, errs.Fieldf("maxPathLength", "maxPathLength must be -1 (no limit) to 32")
		}
		pathLen = *in.MaxPathLength
	}
	parent, err := s.ca(ctx, actor, parentID, authz.ActCreate, authz.SubCertificateAuthorities)
	if err != nil {
		return Issued{}, err
	}
	if err := usable(parent); err != nil {
		return Issued{}, err
	}
	notBefore := s.clock()
	if in.NotBefore != nil {
		notBefore = in.NotBefore.UTC().Truncate(time.Second)
	}
	cert, serial, err := s.signCA(ctx, parent, req, notBefore, in.NotAfter.UTC().Truncate(time.Second), pathLen)
	if err != nil {
		return Issued{}, err
	}
	// Recorded as a certificate of the parent, so it can be revoked (and
	// listed on the parent's CRL) like a leaf: its key is held elsewhere,
	// and only the CRL can take it back.
	rec, err := s.recordCACert(ctx, actor, parent, cert, serial)
	if err != nil {
		return Issued{}, err
	}
	return Issued{CA: parent, Cert: rec, Certificate: PEMCert(cert.Raw), Chain: chainOf(parent), IssuingCA: parent.Certificate, SerialNumber: serial}, nil
}

// recordCACert records a CA certificate parent signed (sign-intermediate, an
// intermediate created under it or renewed) as one of parent's
// certificates: revoking it puts it on parent's CRL, the only way to take a
// CA certificate back.
func (s *Service) recordCACert(ctx context.Context, actor authz.Actor, parent CA, cert *x509.Certificate, serial string) (Certificate, error) {
	now := s.clock()
	rec := Certificate{ID: uuid.NewString(), ProjectID: parent.ProjectID, CAID: parent.ID, Status: CertActive, SerialNumber: serial,
		FriendlyName: cert.Subject.CommonName, CommonName: cert.Subject.CommonName, AltNames: []string{},
		KeyUsages: []string{"key_cert_sign", "crl_sign"}, ExtendedKeyUsages: []string{}, NotBefore: cert.NotBefore.UTC(),
		NotAfter: cert.NotAfter.UTC(), Certificate: PEMCert(cert.Raw), Chain: chainOf(parent), CreatedAt: now, UpdatedAt: now}
	return rec, s.store.CreateCertificate(ctx, rec, Basis{}, caEvent(actor, "sign-intermediate", parent, map[string]any{"serialNumber": serial,
		"subject": cert.Subject.String()}))
}

// ImportCertificate installs the certificate an external CA (or a lockbox
// CA's sign-intermediate) made for a pending intermediate CA's CSR. The
// certificate must carry the CA's key, be a CA certificate, and chain
// through certificateChain to a self-signed root.
func (s *Service) ImportCertificate(ctx context.Context, actor authz.Actor, id, certificate, chain string) (CA, error) {
	certs, err := parseCertsPEM("certificate", certificate, 1)
	if err != nil {
		return CA{}, err
	}
	if len(certs) != 1 {
		return CA{}, errs.Fieldf("certificate", "certificate must be one PEM-encoded certificate")
	}
	issuers, err := parseCertsPEM("certificateChain", chain, MaxChainCertificates)
	if err != nil {
		return CA{}, err
	}
	if len(issuers) == 0 {
		return CA{}, errs.Fieldf("certificateChain", "certificateChain must hold the issuing CA's certificate and those above it, up to the root")
	}
	ca, err := s.ca(ctx, actor, id, authz.ActEdit, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, err
	}
	if ca.Type != Intermediate || ca.Status != PendingCertificate {
		return CA{}, errs.BadRequest("CA with ID '%s' is not an intermediate CA waiting for its certificate", ca.ID)
	}
	key, err := s.signer(ctx, ca)
	if err != nil {
		return CA{}, err
	}
	c := certs[0]
	if !samePublicKey(key.Public(), c.PublicKey) {
		return CA{}, errs.Fieldf("certificate", "The certificate is not for this CA's key")
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		return CA{}, errs.Fieldf("certificate", "The certificate is not a CA certificate")
	}
	// No keyUsage extension at all (OpenSSL's v3_ca) allows every usage
	// (RFC 5280 4.2.1.3); CRLs are signed as such (crlIssuer).
	if c.KeyUsage != 0 && (c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0) {
		return CA{}, errs.Fieldf("certificate", "The certificate's key usage must allow signing certificates and CRLs")
	}
	if len(c.SubjectKeyId) == 0 {
		return CA{}, errs.Fieldf("certificate", "The certificate has no subject key identifier, which CRLs need")
	}
	now := s.clock()
	if !c.NotAfter.After(now) {
		return CA{}, errs.Fieldf("certificate", "The certificate has expired")
	}
	all := append([]*x509.Certificate{c}, issuers...)
	for i := 0; i+1 < len(all); i++ {
		if err := all[i].CheckSignatureFrom(all[i+1]); err != nil {
			return CA{}, errs.Fieldf("certificateChain", "Certificate %d of the chain did not sign the one before it", i+1)
		}
	}
	if last := all[len(all)-1]; last.CheckSignatureFrom(last) != nil {
		return CA{}, errs.Fieldf("certificateChain", "The chain must end with a self-signed root certificate")
	}
	var pems []string
	for _, ic := range issuers {
		pems = append(pems, strings.TrimSpace(PEMCert(ic.Raw)))
	}
	// A parent that is a lockbox CA of the project is recorded, so it is not
	// deleted while this one stands.
	cas, err := s.store.CAs(ctx, ca.ProjectID)
	if err != nil {
		return CA{}, err
	}
	for _, p := range cas {
		if p.Certificate != "" && p.ID != ca.ID {
			if pc, err := caCert(p); err == nil && string(pc.Raw) == string(issuers[0].Raw) {
				ca.ParentCAID = p.ID
			}
		}
	}
	prev := ca.UpdatedAt
	ca.Status, ca.Certificate, ca.Chain, ca.SerialNumber = Active, PEMCert(c.Raw), strings.Join(pems, "\n"), SerialHex(c.SerialNumber)
	ca.NotBefore, ca.NotAfter, ca.MaxPathLength, ca.UpdatedAt = c.NotBefore.UTC(), c.NotAfter.UTC(), pathLenOf(c), project.NextStamp(now, prev)
	err = s.store.UpdateCA(ctx, ca, PendingCertificate, prev, caEvent(actor, "import-certificate-authority-cert", ca,
		map[string]any{"serialNumber": ca.SerialNumber}))
	if errs.Is(err, errs.Conflict) {
		return CA{}, errs.BadRequest("CA with ID '%s' is not an intermediate CA waiting for its certificate", ca.ID)
	}
	return ca, err
}
