package pki

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// CACert is one certificate a CA has had: its current one, or one it had
// before a renewal. Version counts from 1.
type CACert struct {
	CAID         string
	Version      int
	SerialNumber string
	Certificate  string
	Chain        string
	NotBefore    time.Time
	NotAfter     time.Time
	CreatedAt    time.Time
}

// RenewExisting is Infisical's one renewal type: a new certificate for
// the CA's existing key.
const RenewExisting = "existing"

// RenewCA gives a root or an intermediate CA signed by a lockbox CA a new
// certificate for its existing key, valid from now to notAfter, and keeps
// the old one in the CA's history. Since key and subject stay, certificates
// issued before still verify against the chain they were given, and the
// CA's CRL (signed with the same key) covers them; new ones chain to the
// new certificate.
func (s *Service) RenewCA(ctx context.Context, actor authz.Actor, id, typ string, notAfter *time.Time) (CA, error) {
	switch strings.TrimSpace(typ) {
	case RenewExisting:
	case "new":
		return CA{}, errs.Fieldf("type", "Renewal with a new key is not supported; type must be existing (as in Infisical)")
	default:
		return CA{}, errs.Fieldf("type", "type must be existing")
	}
	if notAfter == nil {
		return CA{}, errs.Fieldf("notAfter", "notAfter is required")
	}
	ca, err := s.ca(ctx, actor, id, authz.ActEdit, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, err
	}
	if ca.Status == PendingCertificate {
		return CA{}, errs.BadRequest("CA with ID '%s' has no certificate yet; import one first", ca.ID)
	}
	if ca.Type == Intermediate && ca.ParentCAID == "" {
		return CA{}, errs.BadRequest("CA with ID '%s' was signed by an external CA; renew it there and import the certificate", ca.ID)
	}
	now := s.clock()
	na := notAfter.UTC().Truncate(time.Second)
	if !na.After(ca.NotAfter) {
		return CA{}, errs.Fieldf("notAfter", "notAfter must be later than the CA's current notAfter (%s)", ca.NotAfter.Format(time.RFC3339))
	}
	old, err := caCert(ca)
	if err != nil {
		return CA{}, err
	}
	key, err := s.signer(ctx, ca)
	if err != nil {
		return CA{}, err
	}
	var cert *x509.Certificate
	var chain string
	switch ca.Type {
	case Root:
		if err := checkValidity(now, na, MaxCALifetime, now); err != nil {
			return CA{}, err
		}
		serial, err := newSerial()
		if err != nil {
			return CA{}, errs.Internalf(err, "serial")
		}
		t := caTemplate(serial, old.Subject, now, na, ca.MaxPathLength)
		// The same subject key identifier, so CRLs and chains keyed on it hold.
		t.SubjectKeyId = old.SubjectKeyId
		der, err := x509.CreateCertificate(rand.Reader, t, t, key.Public(), key)
		if err != nil {
			return CA{}, errs.Internalf(err, "self-sign CA")
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			return CA{}, errs.Internalf(err, "parse CA")
		}
	default:
		parent, err := s.ca(ctx, actor, ca.ParentCAID, authz.ActCreate, authz.SubCertificateAuthorities)
		if err != nil {
			return CA{}, err
		}
		if err := usable(parent); err != nil {
			return CA{}, err
		}
		req := &x509.CertificateRequest{Subject: old.Subject, PublicKey: key.Public()}
		if cert, _, err = s.signCA(ctx, parent, req, now, na, ca.MaxPathLength); err != nil {
			return CA{}, err
		}
		chain = chainOf(parent)
		// Recorded before the CA takes it (see CreateCA).
		if _, err := s.recordCACert(ctx, actor, parent, cert, SerialHex(cert.SerialNumber)); err != nil {
			return CA{}, err
		}
	}
	prev := CACert{CAID: ca.ID, SerialNumber: ca.SerialNumber, Certificate: ca.Certificate, Chain: ca.Chain,
		NotBefore: ca.NotBefore, NotAfter: ca.NotAfter, CreatedAt: now}
	from := ca.Status
	ca.Certificate, ca.Chain, ca.SerialNumber = PEMCert(cert.Raw), chain, SerialHex(cert.SerialNumber)
	// Later than any stamp read before, as every CA write's: a change read
	// before the renewal does not match it.
	ca.NotBefore, ca.NotAfter, ca.UpdatedAt = cert.NotBefore.UTC(), cert.NotAfter.UTC(), project.NextStamp(now, ca.UpdatedAt)
	err = s.store.RenewCA(ctx, ca, from, prev, caEvent(actor, "renew-certificate-authority", ca, map[string]any{
		"type": RenewExisting, "serialNumber": ca.SerialNumber, "previousSerialNumber": prev.SerialNumber,
		"notAfter": ca.NotAfter.Format(time.RFC3339)}))
	if errs.Is(err, errs.Conflict) {
		return CA{}, errs.Conflictf("CA with ID '%s' changed meanwhile; try again", ca.ID)
	}
	return ca, err
}

// CACertificates lists the certificates a CA has had, oldest first, its
// current one last.
func (s *Service) CACertificates(ctx context.Context, actor authz.Actor, id string) (CA, []CACert, error) {
	ca, err := s.ca(ctx, actor, id, authz.ActRead, authz.SubCertificateAuthorities)
	if err != nil {
		return CA{}, nil, err
	}
	out, err := s.store.CACertificates(ctx, ca.ID)
	if err != nil {
		return CA{}, nil, err
	}
	if ca.Certificate != "" {
		out = append(out, CACert{CAID: ca.ID, Version: len(out) + 1, SerialNumber: ca.SerialNumber, Certificate: ca.Certificate,
			Chain: ca.Chain, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter, CreatedAt: ca.UpdatedAt})
	}
	return ca, out, nil
}
