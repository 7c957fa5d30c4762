package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// IssueRequest is what Issue and Sign need. CAID or TemplateID names the
// issuer (a template names its CA). Exactly one of TTL and NotAfter, unless
// a template supplies the TTL.
type IssueRequest struct {
	CAID              string
	TemplateID        string
	FriendlyName      string
	CommonName        string
	AltNames          []AltName
	TTL               string
	NotBefore         *time.Time
	NotAfter          *time.Time
	KeyUsages         []string // nil or empty: the template's, or digital_signature and key_encipherment
	ExtendedKeyUsages []string // nil or empty: the template's, or none
	KeyAlgorithm      string   // Issue only; empty: rsa-2048
	CSR               string   // Sign only
}

// resolve finds the issuing CA (and template) for a request and checks
// that actor may create certificates in its project.
func (s *Service) resolve(ctx context.Context, actor authz.Actor, r IssueRequest) (CA, *Template, error) {
	r.CAID, r.TemplateID = strings.TrimSpace(r.CAID), strings.TrimSpace(r.TemplateID)
	var tmpl *Template
	if r.TemplateID != "" {
		t, err := s.template(ctx, actor, r.TemplateID, authz.ActRead)
		if err != nil {
			return CA{}, nil, err
		}
		if r.CAID != "" && r.CAID != t.CAID {
			return CA{}, nil, errs.Fieldf("caId", "The certificate template belongs to another CA")
		}
		r.CAID, tmpl = t.CAID, &t
	}
	if r.CAID == "" {
		return CA{}, nil, errs.Fieldf("caId", "caId or certificateTemplateId is required")
	}
	ca, err := s.ca(ctx, actor, r.CAID, authz.ActCreate, authz.SubCertificates)
	if err != nil {
		return CA{}, nil, err
	}
	if tmpl == nil && ca.RequireTemplate {
		// Else a bare caId takes any name, usage and lifetime the CA may.
		return CA{}, nil, errs.BadRequest("Certificate template is required for issuance from CA with ID '%s'", ca.ID)
	}
	return ca, tmpl, usable(ca)
}

// leaf is a checked request, ready to sign.
type leaf struct {
	cn                string
	sans              sans
	notBefore         time.Time
	notAfter          time.Time
	keyUsages, extKUs []string
}

func (s *Service) checkLeaf(ca CA, tmpl *Template, r IssueRequest) (leaf, error) {
	var l leaf
	l.cn = strings.TrimSpace(r.CommonName)
	if l.cn == "" {
		return l, errs.Fieldf("commonName", "commonName is required")
	}
	if len(l.cn) > 64 {
		return l, errs.Fieldf("commonName", "commonName cannot exceed 64 characters")
	}
	if len(r.FriendlyName) > 255 {
		return l, errs.Fieldf("friendlyName", "friendlyName cannot exceed 255 characters")
	}
	var err error
	if l.sans, err = checkAltNames(r.AltNames); err != nil {
		return l, err
	}
	if l.keyUsages, err = checkUsages("keyUsages", r.KeyUsages, true); err != nil {
		return l, err
	}
	if l.extKUs, err = checkUsages("extendedKeyUsages", r.ExtendedKeyUsages, true); err != nil {
		return l, err
	}
	now := s.clock()
	l.notBefore = now
	if r.NotBefore != nil {
		l.notBefore = r.NotBefore.UTC().Truncate(time.Second)
	}
	ttl := strings.TrimSpace(r.TTL)
	if ttl != "" && r.NotAfter != nil {
		return l, errs.Fieldf("ttl", "Either ttl or notAfter must be present, but not both")
	}
	if ttl == "" && r.NotAfter == nil {
		if tmpl == nil {
			return l, errs.Fieldf("ttl", "Either ttl or notAfter must be present")
		}
		ttl = tmpl.TTL
	}
	if r.NotAfter != nil {
		l.notAfter = r.NotAfter.UTC().Truncate(time.Second)
	} else {
		d, err := ParseTTL("ttl", ttl)
		if err != nil {
			return l, err
		}
		l.notAfter = l.notBefore.Add(d)
	}
	if err := checkValidity(l.notBefore, l.notAfter, MaxLeafLifetime, now); err != nil {
		return l, err
	}
	if l.notBefore.Before(ca.NotBefore) {
		return l, errs.Fieldf("notBefore", "notBefore cannot be earlier than the CA's notBefore (%s)", ca.NotBefore.Format(time.RFC3339))
	}
	if l.notAfter.After(ca.NotAfter) {
		return l, errs.BadRequest("The certificate's notAfter cannot be later than the CA's notAfter (%s)", ca.NotAfter.Format(time.RFC3339))
	}
	// An empty list is no list: a certificate without the key usage or
	// extended key usage extension may be used for any purpose (RFC 5280),
	// so [] would otherwise step out of a template's lists.
	if tmpl == nil {
		if len(r.KeyUsages) == 0 {
			l.keyUsages = slices.Clone(defaultKeyUsages)
		}
		return l, nil
	}
	// The template's bounds.
	globs := globCache{}
	if !globs.match(tmpl.CommonName, l.cn, cnGlob) {
		return l, errs.BadRequest("Common name %q is not allowed by the certificate template's policy", l.cn)
	}
	for i, v := range l.sans.all {
		if !globs.match(tmpl.SubjectAlternativeName, v, l.sans.kinds[i]) {
			return l, errs.BadRequest("Alternative name %q is not allowed by the certificate template's policy", v)
		}
	}
	if l.notAfter.Sub(l.notBefore) > tmpl.MaxTTL {
		return l, errs.BadRequest("The certificate's lifetime exceeds the certificate template's TTL of %s", tmpl.TTL)
	}
	if len(r.KeyUsages) == 0 {
		l.keyUsages = slices.Clone(tmpl.KeyUsages)
	}
	if len(r.ExtendedKeyUsages) == 0 {
		l.extKUs = slices.Clone(tmpl.ExtendedKeyUsages)
	}
	for _, u := range l.keyUsages {
		if !slices.Contains(tmpl.KeyUsages, u) {
			return l, errs.BadRequest("Key usage %q is not allowed by the certificate template", u)
		}
	}
	for _, u := range l.extKUs {
		if !slices.Contains(tmpl.ExtendedKeyUsages, u) {
			return l, errs.BadRequest("Extended key usage %q is not allowed by the certificate template", u)
		}
	}
	return l, nil
}

// Issue generates a key pair and a certificate for it. The private key is
// in the answer once and kept sealed for the bundle.
func (s *Service) Issue(ctx context.Context, actor authz.Actor, r IssueRequest) (Issued, error) {
	alg, err := ParseKeyAlgorithm("keyAlgorithm", r.KeyAlgorithm, RSA2048)
	if err != nil {
		return Issued{}, err
	}
	c, err := s.checked(ctx, actor, r)
	if err != nil {
		return Issued{}, err
	}
	key, err := generate(ctx, alg)
	if err != nil {
		return Issued{}, err
	}
	der, err := MarshalKey(key)
	if err != nil {
		return Issued{}, errs.Internalf(err, "marshal key")
	}
	defer clear(der)
	return s.signChecked(ctx, actor, r, c, key.Public(), der, "issue-cert")
}

// check is a request checked against its CA and template as they were read.
type check struct {
	ca   CA
	tmpl *Template
	leaf leaf
}

func (s *Service) checked(ctx context.Context, actor authz.Actor, r IssueRequest) (check, error) {
	ca, tmpl, err := s.resolve(ctx, actor, r)
	if err != nil {
		return check{}, err
	}
	l, err := s.checkLeaf(ca, tmpl, r)
	return check{ca: ca, tmpl: tmpl, leaf: l}, err
}

// signChecked signs and stores the certificate c describes. If the CA's
// rules or the template changed after c was checked (the store refuses
// with project.ErrStale), the request is checked again as they now are,
// then signed again for the same key, or refused.
func (s *Service) signChecked(ctx context.Context, actor authz.Actor, r IssueRequest, c check, pub crypto.PublicKey,
	keyDER []byte, evType string) (Issued, error) {
	return project.RetryChecked(ctx, "certificate template", c, func() (check, error) { return s.checked(ctx, actor, r) },
		func(c check) (Issued, error) { return s.sign(ctx, actor, c.ca, c.tmpl, r, c.leaf, pub, keyDER, evType) })
}

// Sign signs a certificate for a CSR's key. The request's commonName and
// altNames, when given, replace the CSR's.
func (s *Service) Sign(ctx context.Context, actor authz.Actor, r IssueRequest) (Issued, error) {
	csr, err := parseCSR(r.CSR)
	if err != nil {
		return Issued{}, err
	}
	if strings.TrimSpace(r.CommonName) == "" {
		r.CommonName = csr.Subject.CommonName
	}
	if r.AltNames == nil {
		r.AltNames = csrAltNames(csr.DNSNames, csr.EmailAddresses, csr.IPAddresses, csr.URIs)
	}
	c, err := s.checked(ctx, actor, r)
	if err != nil {
		return Issued{}, err
	}
	return s.signChecked(ctx, actor, r, c, csr.PublicKey, nil, "sign-cert")
}

func (s *Service) sign(ctx context.Context, actor authz.Actor, ca CA, tmpl *Template, r IssueRequest, l leaf,
	pub crypto.PublicKey, keyDER []byte, evType string) (Issued, error) {
	cac, err := caCert(ca)
	if err != nil {
		return Issued{}, err
	}
	signer, err := s.signer(ctx, ca)
	if err != nil {
		return Issued{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return Issued{}, errs.Internalf(err, "serial")
	}
	t := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: l.cn}, NotBefore: l.notBefore, NotAfter: l.notAfter,
		KeyUsage: x509KeyUsage(l.keyUsages), ExtKeyUsage: x509ExtKeyUsage(l.extKUs), BasicConstraintsValid: true,
		DNSNames: l.sans.dns, IPAddresses: l.sans.ips, EmailAddresses: l.sans.emails, URIs: l.sans.uris}
	s.issuerLinks(t, ca.ID)
	release, err := rsaSignSlot(ctx, signer)
	if err != nil {
		return Issued{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, t, cac, pub, signer)
	release()
	if err != nil {
		return Issued{}, errs.Internalf(err, "sign certificate")
	}
	now := s.clock()
	c := Certificate{ID: uuid.NewString(), ProjectID: ca.ProjectID, CAID: ca.ID, Status: CertActive, SerialNumber: SerialHex(serial),
		FriendlyName: strings.TrimSpace(r.FriendlyName), CommonName: l.cn, AltNames: l.sans.all, KeyUsages: l.keyUsages,
		ExtendedKeyUsages: l.extKUs, NotBefore: l.notBefore, NotAfter: l.notAfter, Certificate: PEMCert(der), Chain: chainOf(ca),
		CreatedAt: now, UpdatedAt: now}
	if c.FriendlyName == "" {
		c.FriendlyName = l.cn
	}
	if c.AltNames == nil {
		c.AltNames = []string{}
	}
	if tmpl != nil {
		c.TemplateID = tmpl.ID
	}
	if keyDER != nil {
		if c.SealedKey, err = s.keys.Seal(ctx, keyring.Project(c.ProjectID), keyDER, CertKeyAD(c.ID)); err != nil {
			return Issued{}, err
		}
	}
	md := map[string]any{"serialNumber": c.SerialNumber, "commonName": c.CommonName, "altNames": c.AltNames,
		"notAfter": c.NotAfter.Format(time.RFC3339)}
	if c.TemplateID != "" {
		md["certificateTemplateId"] = c.TemplateID
	}
	b := Basis{BareCA: tmpl == nil}
	if tmpl != nil {
		b.TemplateAt = tmpl.UpdatedAt
	}
	if err := s.store.CreateCertificate(ctx, c, b, caEvent(actor, evType, ca, md)); err != nil {
		return Issued{}, err
	}
	out := Issued{CA: ca, Cert: c, Certificate: c.Certificate, Chain: c.Chain, IssuingCA: ca.Certificate, SerialNumber: c.SerialNumber}
	if keyDER != nil {
		out.PrivateKey = PEMKey(keyDER)
	}
	return out, nil
}

// certificate reads a certificate by serial and checks action on it; one
// of a project the actor is not a member of is not found.
func (s *Service) certificate(ctx context.Context, actor authz.Actor, serial, action string) (Certificate, error) {
	serial = strings.ToLower(strings.TrimSpace(serial))
	if serial == "" || len(serial) > 64 || strings.Trim(serial, "0123456789abcdef") != "" {
		return Certificate{}, certNotFound(serial)
	}
	c, err := s.store.CertificateBySerial(ctx, serial)
	if errs.Is(err, errs.NotFound) {
		return Certificate{}, certNotFound(serial)
	}
	if err != nil {
		return Certificate{}, err
	}
	if err := s.check(ctx, actor, c.ProjectID, action, authz.SubCertificates, func() error { return certNotFound(serial) }, true); err != nil {
		return c, err
	}
	if action == authz.ActDelete && slices.Contains(c.KeyUsages, "key_cert_sign") {
		// A CA's certificate (sign-intermediate's record): revoking it takes
		// down every certificate below it, and dropping its record makes it
		// irrevocable, so it takes the right to edit CAs, as signing it took
		// theirs to create one.
		return c, s.check(ctx, actor, c.ProjectID, authz.ActEdit, authz.SubCertificateAuthorities, func() error { return certNotFound(serial) }, true)
	}
	return c, nil
}

func certEvent(actor authz.Actor, typ string, c Certificate, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["certId"], md["serialNumber"], md["caId"], md["commonName"] = c.ID, c.SerialNumber, c.CAID, c.CommonName
	return audit.New(actor, typ, md).InProject(c.ProjectID, "")
}

// GetCertificate returns a certificate by serial number.
func (s *Service) GetCertificate(ctx context.Context, actor authz.Actor, serial string) (Certificate, error) {
	return s.certificate(ctx, actor, serial, authz.ActRead)
}

// Bundle returns a certificate with its private key (PEM), empty when
// lockbox signed a CSR and never held the key. Reading a key needs
// read-private-key and is audited.
func (s *Service) Bundle(ctx context.Context, actor authz.Actor, serial string) (Certificate, string, error) {
	c, err := s.certificate(ctx, actor, serial, authz.ActReadPrivateKey)
	if err != nil {
		return Certificate{}, "", err
	}
	if c.SealedKey == nil {
		return c, "", nil
	}
	der, err := s.keys.Open(ctx, keyring.Project(c.ProjectID), c.SealedKey, CertKeyAD(c.ID))
	if err != nil {
		return Certificate{}, "", err
	}
	defer clear(der)
	if err := s.store.AppendAudit(ctx, certEvent(actor, "get-cert-bundle", c, nil)); err != nil {
		return Certificate{}, "", err
	}
	return c, PEMKey(der), nil
}

// Revoke revokes a certificate and makes its CA's CRL again.
func (s *Service) Revoke(ctx context.Context, actor authz.Actor, serial, reason string) (Certificate, error) {
	code, err := ParseCRLReason(reason)
	if err != nil {
		return Certificate{}, err
	}
	c, err := s.certificate(ctx, actor, serial, authz.ActDelete)
	if err != nil {
		return Certificate{}, err
	}
	if c.Status == CertRevoked {
		return Certificate{}, errs.BadRequest("Certificate with serial number '%s' is revoked already", c.SerialNumber)
	}
	at := s.clock()
	reasonName := strings.ToUpper(strings.TrimSpace(reason))
	if reasonName == "" {
		reasonName = "UNSPECIFIED"
	}
	err = s.store.RevokeCertificate(ctx, c.ID, c.CAID, at, code, certEvent(actor, "revoke-cert", c, map[string]any{"revocationReason": reasonName}))
	if errs.Is(err, errs.Conflict) {
		return Certificate{}, errs.BadRequest("Certificate with serial number '%s' is revoked already", c.SerialNumber)
	}
	if err != nil {
		return Certificate{}, err
	}
	c.Status, c.RevokedAt, c.RevocationReason, c.UpdatedAt = CertRevoked, &at, code, at
	// The CRL is made again now. Should that fail, the revocation stands
	// and the next read of the CRL makes it (it sees a revocation it lacks).
	_, _ = s.currentCRL(ctx, c.CAID)
	return c, nil
}

// DeleteCertificate deletes the record of a certificate that has expired.
// One that has not is kept: an active one could no longer be revoked (its
// record is what a revocation and the CRL are made from; deleting it would
// leave a valid certificate nobody can stop), and a revoked one would drop
// off the CRL. Infisical deletes either.
func (s *Service) DeleteCertificate(ctx context.Context, actor authz.Actor, serial string) (Certificate, error) {
	c, err := s.certificate(ctx, actor, serial, authz.ActDelete)
	if err != nil {
		return Certificate{}, err
	}
	if until := c.NotAfter.Format(time.RFC3339); c.NotAfter.After(s.clock()) {
		if c.Status == CertRevoked {
			return Certificate{}, errs.BadRequest("Certificate with serial number '%s' is revoked and stays on its CA's CRL until it expires (%s); it can be deleted then",
				c.SerialNumber, until)
		}
		return Certificate{}, errs.BadRequest("Certificate with serial number '%s' is valid until %s; its record is what revokes it, so it can be deleted once it expires",
			c.SerialNumber, until)
	}
	return c, s.store.DeleteCertificate(ctx, c.ID, certEvent(actor, "delete-cert", c, nil))
}

// ListCertificates returns a page of a project's certificates, newest first.
func (s *Service) ListCertificates(ctx context.Context, actor authz.Actor, projectID string, offset, limit int) ([]Certificate, int, error) {
	notFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", projectID) }
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, 0, notFound()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubCertificates, notFound, false); err != nil {
		return nil, 0, err
	}
	return s.store.Certificates(ctx, projectID, offset, limit)
}

// Expiring lists a project's active certificates that expire within days
// days (and have not expired yet), soonest first.
func (s *Service) Expiring(ctx context.Context, actor authz.Actor, projectID string, days int) ([]Certificate, error) {
	if days < 1 || days > 3650 {
		return nil, errs.Fieldf("days", "days must be 1 to 3650")
	}
	notFound := func() error { return errs.NotFoundf("Project with ID '%s' not found", projectID) }
	if _, err := uuid.Parse(projectID); err != nil {
		return nil, notFound()
	}
	if err := s.check(ctx, actor, projectID, authz.ActRead, authz.SubPkiAlerts, notFound, false); err != nil {
		return nil, err
	}
	now := s.clock()
	return s.store.ExpiringCertificates(ctx, projectID, now, now.Add(time.Duration(days)*24*time.Hour), MaxExpiringList)
}

// currentCRL returns the CA's stored CRL when it covers every revocation
// and is younger than CRLRefresh; else it signs a new one and stores it,
// unless a writer stored one covering as much first. CRL numbers grow with
// time (microseconds), so racing writers never reuse one.
func (s *Service) currentCRL(ctx context.Context, caID string) ([]byte, error) {
	var ca CA
	for range 5 {
		st, err := s.store.CACRL(ctx, caID)
		if err != nil {
			return nil, err
		}
		now := s.clock()
		if st.DER != nil && st.Rev >= st.CARev && now.Sub(st.ThisUpdate) < CRLRefresh {
			return st.DER, nil
		}
		if ca.ID == "" {
			if ca, err = s.store.CA(ctx, caID); err != nil {
				return nil, err
			}
			if ca.Certificate == "" {
				return nil, errs.NotFoundf("CRL with ID '%s' not found", caID)
			}
		}
		// Revocations committed up to st.CARev are all in this list, but
		// for certificates that expired before the last CRL signed after
		// their expiry (RFC 5280, 5.1.2.6).
		revoked, err := s.store.RevokedEntries(ctx, caID, now.Add(-CRLLifetime))
		if err != nil {
			return nil, err
		}
		crl, err := s.signCRL(ctx, ca, revoked, max(now.UnixMicro(), st.Number+1), now)
		if err != nil {
			return nil, err
		}
		crl.Rev = st.CARev
		err = s.store.SetCACRL(ctx, crl)
		if errs.Is(err, errs.Conflict) {
			continue // a newer CRL was stored meanwhile: check it
		}
		if err != nil {
			return nil, err
		}
		return crl.DER, nil
	}
	return nil, errs.Conflictf("The CRL of CA with ID '%s' is being updated; try again", caID)
}

func (s *Service) signCRL(ctx context.Context, ca CA, revoked []Revoked, number int64, now time.Time) (CRL, error) {
	cac, err := caCert(ca)
	if err != nil {
		return CRL{}, err
	}
	signer, err := s.signer(ctx, ca)
	if err != nil {
		return CRL{}, err
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, c := range revoked {
		n, ok := new(big.Int).SetString(c.SerialNumber, 16)
		if !ok {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: c.At, ReasonCode: c.Reason})
	}
	release, err := rsaSignSlot(ctx, signer)
	if err != nil {
		return CRL{}, err
	}
	defer release()
	crl := CRL{CAID: ca.ID, Number: number, ThisUpdate: now, NextUpdate: now.Add(CRLLifetime)}
	if crl.NextUpdate.After(cac.NotAfter) && cac.NotAfter.After(now) {
		crl.NextUpdate = cac.NotAfter
	}
	crl.DER, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(crl.Number),
		ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate, RevokedCertificateEntries: entries}, crlIssuer(cac), signer)
	if err != nil {
		return CRL{}, errs.Internalf(err, "sign CRL")
	}
	return crl, nil
}

// crlIssuer is the CA certificate as CRLs are signed with it. One with no
// keyUsage extension (an external CA's, imported) may sign CRLs (RFC 5280
// 4.2.1.3: without the extension every usage is allowed), but Go signs none
// unless its KeyUsage has cRLSign: every CRL of such a CA failed, a
// revocation answered 200 and was never published.
func crlIssuer(c *x509.Certificate) *x509.Certificate {
	if c.KeyUsage != 0 {
		return c
	}
	cp := *c
	cp.KeyUsage = x509.KeyUsageCRLSign | x509.KeyUsageCertSign
	return &cp
}

// CRL returns a CA's current CRL (DER) to anyone: it names only serial
// numbers. A stored CRL that covers every revocation is served until it is
// CRLRefresh old, so readers cannot make the CA sign more often than that.
func (s *Service) CRL(ctx context.Context, caID string) ([]byte, error) {
	if _, err := uuid.Parse(caID); err != nil {
		return nil, errs.NotFoundf("CRL with ID '%s' not found", caID)
	}
	der, err := s.currentCRL(ctx, caID)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.NotFoundf("CRL with ID '%s' not found", caID)
	}
	return der, err
}

// CACRL is CRL for a member who may read the CA, by CA id.
func (s *Service) CACRL(ctx context.Context, actor authz.Actor, caID string) (CA, []byte, error) {
	ca, err := s.ca(ctx, actor, caID, authz.ActRead, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, nil, err
	}
	if ca.Certificate == "" {
		return ca, nil, nil
	}
	der, err := s.CRL(ctx, caID)
	return ca, der, err
}
