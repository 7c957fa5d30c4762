package sshca

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// CertRequest asks for a certificate through a template.
type CertRequest struct {
	TemplateID string
	PublicKey  string // Sign only
	KeyAlg     string // Issue only; empty: ED25519
	CertType   string // empty: user
	Principals []string
	TTL        string // empty: the template's
	KeyID      string // empty: "<actor kind>-<actor id>"
}

// Issued is a new certificate. PrivateKey and PublicKey are set only when
// lockbox made the key pair (Issue): the private key is in this value and
// nowhere else, not in storage, audit or logs.
type Issued struct {
	Cert       Cert
	SignedKey  string // the certificate, authorized_keys form
	PrivateKey string // OpenSSH PEM
	PublicKey  string
	KeyAlg     Algorithm
	TTL        time.Duration
}

// Sign signs a client's public key through a template.
func (s *Service) Sign(ctx context.Context, actor authz.Actor, r CertRequest) (Issued, error) {
	key, err := ParsePublicKey(r.PublicKey)
	if err != nil {
		return Issued{}, err
	}
	prep := func(ctx context.Context) (prepared, error) { return s.prepare(ctx, actor, r) }
	p, err := prep(ctx)
	if err != nil {
		return Issued{}, err
	}
	return s.signChecked(ctx, actor, prep, p, key, "sign-ssh-key", nil)
}

// Issue makes a key pair and a certificate for it through a template; the
// private key is returned once.
func (s *Service) Issue(ctx context.Context, actor authz.Actor, r CertRequest) (Issued, error) {
	alg, err := ParseAlgorithm("keyAlgorithm", r.KeyAlg, ED25519)
	if err != nil {
		return Issued{}, err
	}
	prep := func(ctx context.Context) (prepared, error) { return s.prepare(ctx, actor, r) }
	p, err := prep(ctx)
	if err != nil {
		return Issued{}, err
	}
	return s.issueWithKey(ctx, actor, prep, p, alg, "issue-ssh-creds", map[string]any{"keyAlgorithm": string(alg)})
}

// prepared is a checked request: what to sign and with which CA.
type prepared struct {
	ca      CA
	signer  ssh.Signer
	tpl     Template // zero for host-issued certificates
	hostID  string
	hostAt  time.Time // the host's UpdatedAt as checked
	spec    CertSpec
	ttl     time.Duration
	auditMD map[string]any
}

// prepare validates r against its template and the actor's permissions.
func (s *Service) prepare(ctx context.Context, actor authz.Actor, r CertRequest) (prepared, error) {
	id := strings.TrimSpace(r.TemplateID)
	if id == "" {
		return prepared{}, errs.Fieldf("certificateTemplateId", "certificateTemplateId is required")
	}
	typ, err := ParseCertType(r.CertType)
	if err != nil {
		return prepared{}, err
	}
	principals, err := checkPrincipals(typ, r.Principals)
	if err != nil {
		return prepared{}, err
	}
	keyID, err := checkKeyID(r.KeyID)
	if err != nil {
		return prepared{}, err
	}
	var ttl time.Duration
	if strings.TrimSpace(r.TTL) != "" {
		if ttl, err = parseTTL("ttl", r.TTL); err != nil {
			return prepared{}, err
		}
	}
	if _, err := uuid.Parse(id); err != nil {
		return prepared{}, templateNotFound(id)
	}
	tpl, err := s.loadTemplate(ctx, id)
	if err != nil {
		return prepared{}, err
	}
	if err := s.check(ctx, actor, tpl.ProjectID, authz.ActCreate, authz.SubSshCertificates, nil, func() error { return templateNotFound(id) }, true); err != nil {
		return prepared{}, err
	}
	if tpl.Status != Active {
		return prepared{}, errs.BadRequest("SSH certificate template %q is disabled", tpl.Name)
	}
	switch {
	case typ == UserCert && !tpl.AllowUserCerts:
		return prepared{}, errs.BadRequest("SSH certificate template %q does not allow user certificates", tpl.Name)
	case typ == HostCert && !tpl.AllowHostCerts:
		return prepared{}, errs.BadRequest("SSH certificate template %q does not allow host certificates", tpl.Name)
	}
	if err := checkAllowed(tpl, typ, principals); err != nil {
		return prepared{}, err
	}
	maxTTL, err := parseTTL("maxTTL", tpl.MaxTTL)
	if err != nil {
		return prepared{}, errs.Internalf(err, "template %s max TTL", tpl.ID)
	}
	if ttl == 0 {
		if ttl, err = parseTTL("ttl", tpl.TTL); err != nil {
			return prepared{}, errs.Internalf(err, "template %s TTL", tpl.ID)
		}
	}
	if ttl > maxTTL {
		return prepared{}, errs.BadRequest("TTL %s exceeds the maximum of certificate template %q (%s)", ttl, tpl.Name, tpl.MaxTTL)
	}
	if keyID != "" && !tpl.AllowCustomKeyIDs {
		return prepared{}, errs.BadRequest("SSH certificate template %q does not allow custom key ids", tpl.Name)
	}
	if keyID == "" {
		keyID = string(actor.Kind) + "-" + actor.ID
	}
	ca, signer, err := s.signer(ctx, tpl.CAID)
	if err != nil {
		return prepared{}, err
	}
	spec := CertSpec{Type: typ, KeyID: keyID, Principals: principals}
	if typ == UserCert {
		spec.Extensions, spec.CriticalOptions = tpl.Extensions, tpl.CriticalOptions
	}
	return prepared{ca: ca, signer: signer, tpl: tpl, spec: spec, ttl: ttl,
		auditMD: map[string]any{"certificateTemplateId": tpl.ID}}, nil
}

// issueWithKey generates a key pair of alg and signs its public key
// (signChecked).
func (s *Service) issueWithKey(ctx context.Context, actor authz.Actor, prep func(context.Context) (prepared, error), p prepared, alg Algorithm,
	evType string, md map[string]any) (Issued, error) {
	k, err := s.generate(ctx, alg)
	if err != nil {
		return Issued{}, err
	}
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		return Issued{}, errs.Internalf(err, "public key")
	}
	priv, err := marshalPrivate(k, p.spec.KeyID)
	if err != nil {
		return Issued{}, errs.Internalf(err, "encode private key")
	}
	out, err := s.signChecked(ctx, actor, prep, p, pub, evType, md)
	if err != nil {
		return Issued{}, err
	}
	out.PrivateKey, out.PublicKey, out.KeyAlg = string(priv), authorizedKey(pub), alg
	return out, nil
}

// signChecked signs key as p, prepared by prep, describes. If the template
// or host p was checked against changed before the record was stored (the
// store refuses with project.ErrStale), prep checks the request again as
// they now are (its reads synchronised with the database anew, so that a
// cached template reflects the change, wherever it was made) and the key
// is signed again, or the request refused.
func (s *Service) signChecked(ctx context.Context, actor authz.Actor, prep func(context.Context) (prepared, error), p prepared, key ssh.PublicKey,
	evType string, md map[string]any) (Issued, error) {
	return project.RetryChecked(ctx, "SSH certificate template or host", p, func() (prepared, error) { return prep(cache.Resync(ctx)) },
		func(p prepared) (Issued, error) { return s.sign(ctx, actor, p, key, evType, md) })
}

// sign makes, records and audits the certificate p describes for key. A
// serial the CA already issued (one chance in 2^62 per pair) is drawn again.
func (s *Service) sign(ctx context.Context, actor authz.Actor, p prepared, key ssh.PublicKey, evType string, md map[string]any) (Issued, error) {
	now := s.now().UTC()
	p.spec.ValidAfter = now.Add(-Backdate).Truncate(time.Second)
	p.spec.ValidBefore = now.Add(p.ttl).Truncate(time.Second)
	for attempt := 0; ; attempt++ {
		p.spec.Serial = newSerial()
		cert, err := SignCert(p.signer, key, p.spec)
		if err != nil {
			return Issued{}, errs.Internalf(err, "sign certificate")
		}
		rec := Cert{ID: uuid.NewString(), ProjectID: p.ca.ProjectID, CAID: p.ca.ID, TemplateID: p.tpl.ID, HostID: p.hostID,
			Serial: serialString(cert.Serial), Type: p.spec.Type, Principals: p.spec.Principals, KeyID: p.spec.KeyID,
			NotBefore: p.spec.ValidAfter, NotAfter: p.spec.ValidBefore, CreatedAt: now.Truncate(time.Microsecond)}
		ev := map[string]any{"sshCaId": p.ca.ID, "certType": string(p.spec.Type), "principals": p.spec.Principals,
			"ttl": p.ttl.String(), "keyId": p.spec.KeyID, "serialNumber": rec.Serial,
			"publicKeyFingerprint": ssh.FingerprintSHA256(key)}
		for k, v := range p.auditMD {
			ev[k] = v
		}
		for k, v := range md {
			ev[k] = v
		}
		err = s.store.RecordSSHCert(ctx, rec, Basis{TemplateAt: p.tpl.UpdatedAt, HostAt: p.hostAt}, audit.New(actor, evType, ev).InProject(p.ca.ProjectID, ""))
		if errs.Is(err, errs.Conflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return Issued{}, err
		}
		return Issued{Cert: rec, SignedKey: authorizedKey(cert), TTL: p.ttl}, nil
	}
}

// ListCerts returns a page of a project's issued certificates, newest first.
func (s *Service) ListCerts(ctx context.Context, actor authz.Actor, project string, offset, limit int) ([]Cert, int, error) {
	pid, err := projectID(project)
	if err != nil {
		return nil, 0, err
	}
	if err := s.check(ctx, actor, pid, authz.ActRead, authz.SubSshCertificates, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	return s.store.SSHCerts(ctx, pid, max(0, offset), limit)
}
