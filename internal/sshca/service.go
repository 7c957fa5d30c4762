// Package sshca is lockbox's SSH certificate authority: per-project CAs
// whose private keys never leave the server, certificate templates that
// bound what they sign, SSH hosts with their login users, and the record
// and audit of every certificate issued.
package sshca

import (
	"context"
	"crypto"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/keygen"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// CA is an SSH certificate authority. Its private key is not part of it:
// it stays sealed in storage and is opened only to sign.
type CA struct {
	ID           string
	OrgID        string
	ProjectID    string
	FriendlyName string
	KeyAlgorithm Algorithm
	Status       string // "active" or "disabled"
	PublicKey    string // authorized_keys form
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// CA statuses.
const (
	Active   = "active"
	Disabled = "disabled"
)

// PrivateKeyAD binds a CA's sealed private key to its row.
func PrivateKeyAD(caID string) string { return keyring.AD("ssh_cas", "private_key", caID) }

// Template bounds what a CA signs through it.
type Template struct {
	ID                string
	ProjectID         string
	CAID              string
	Name              string
	Status            string // "active" or "disabled"
	TTL               string // default validity, as given ("1h")
	MaxTTL            string
	AllowedUsers      []string // patterns of user principals
	AllowedHosts      []string // patterns of host principals
	AllowUserCerts    bool
	AllowHostCerts    bool
	AllowCustomKeyIDs bool
	Extensions        map[string]string // of user certificates
	CriticalOptions   map[string]string // of user certificates
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Cert records one issued certificate (not its key, nor the certificate itself).
// Basis is what an issuance was checked against, confirmed again in the
// transaction that records the certificate: between the check and the
// record lie a key generation and a signature, and an admin may disable or
// narrow a template, or change a host's login mappings, meanwhile.
type Basis struct {
	TemplateAt time.Time // UpdatedAt of the certificate's template as checked (Cert.TemplateID)
	HostAt     time.Time // UpdatedAt of the certificate's host as checked (Cert.HostID)
}

type Cert struct {
	ID         string
	ProjectID  string
	CAID       string
	TemplateID string // empty for host-issued certificates
	HostID     string // empty for template-issued certificates
	Serial     string // decimal
	Type       CertType
	Principals []string
	KeyID      string
	NotBefore  time.Time
	NotAfter   time.Time
	CreatedAt  time.Time
	RevokedAt  time.Time // zero: not revoked
}

// Store is the storage the SSH CA needs. Methods that change state take the
// audit event to record in the same transaction.
type Store interface {
	CreateSSHCA(ctx context.Context, ca CA, sealedKey []byte, ev audit.Event) error
	SSHCA(ctx context.Context, id string) (CA, error)
	SSHCAPrivateKey(ctx context.Context, id string) ([]byte, error)
	SSHCAs(ctx context.Context, projectID string) ([]CA, error)
	// UpdateSSHCA, UpdateSSHTemplate, UpdateSSHHost and UpdateSSHHostGroup
	// write the object if it is still as read at prev: project.ErrStale
	// otherwise, also when it is gone.
	UpdateSSHCA(ctx context.Context, ca CA, prev time.Time, ev audit.Event) error
	// DeleteSSHCA deletes a CA with its templates and records; errs.Conflict
	// while a host uses it.
	DeleteSSHCA(ctx context.Context, id string, ev audit.Event) error

	// CreateSSHTemplate: errs.Conflict if the project has a template of that name.
	CreateSSHTemplate(ctx context.Context, t Template, ev audit.Event) error
	SSHTemplate(ctx context.Context, id string) (Template, error)
	// SSHTemplates lists a project's templates, or with caID only that CA's.
	SSHTemplates(ctx context.Context, projectID, caID string) ([]Template, error)
	UpdateSSHTemplate(ctx context.Context, t Template, prev time.Time, ev audit.Event) error
	DeleteSSHTemplate(ctx context.Context, id string, ev audit.Event) error

	// RecordSSHCert stores an issued certificate's record with its audit
	// event; errs.Conflict if the CA already issued its serial, a 400 if
	// the CA is no longer active, project.ErrStale if what the issuance
	// was checked against changed (see Basis).
	RecordSSHCert(ctx context.Context, c Cert, b Basis, ev audit.Event) error
	// SSHCerts returns a page of a project's records, newest first, and the total.
	SSHCerts(ctx context.Context, projectID string, offset, limit int) ([]Cert, int, error)

	// CreateSSHHost: errs.Conflict if the project has a host of that name.
	CreateSSHHost(ctx context.Context, h Host, ev audit.Event) error
	// SSHHost finds a host, with the login mappings of its groups.
	SSHHost(ctx context.Context, id string) (Host, error)
	// SSHHosts lists an organization's hosts, or with projectID one project's.
	SSHHosts(ctx context.Context, orgID, projectID string, limit int) ([]Host, error)
	UpdateSSHHost(ctx context.Context, h Host, prev time.Time, ev audit.Event) error
	DeleteSSHHost(ctx context.Context, id string, ev audit.Event) error

	// SSHCert finds a certificate record by id.
	SSHCert(ctx context.Context, id string) (Cert, error)
	// SSHCertsBySerial finds the records of a serial number, across CAs.
	SSHCertsBySerial(ctx context.Context, serial string) ([]Cert, error)
	// RevokeSSHCert marks a record revoked at at, with ev; errs.Conflict if
	// it already is.
	RevokeSSHCert(ctx context.Context, id string, at time.Time, ev audit.Event) error
	// RevokedSSHSerials returns the serials of a CA's revoked certificates
	// that are still valid at now, and the time of its last revocation.
	RevokedSSHSerials(ctx context.Context, caID string, now time.Time) ([]string, time.Time, error)

	// SSHConfig reads a project's SSH settings.
	SSHConfig(ctx context.Context, projectID string) (Config, error)
	// PutSSHConfig creates or replaces a project's SSH settings, with ev.
	PutSSHConfig(ctx context.Context, c Config, ev audit.Event) error
	// BootstrapSSHConfig stores new CAs and the settings that name them, with
	// evs, in one transaction; errs.Conflict if the project has settings.
	BootstrapSSHConfig(ctx context.Context, c Config, cas []NewSealedCA, evs []audit.Event) error

	// CreateSSHHostGroup: errs.Conflict if the organization has a group of that name.
	CreateSSHHostGroup(ctx context.Context, g HostGroup, ev audit.Event) error
	SSHHostGroup(ctx context.Context, id string) (HostGroup, error)
	// SSHHostGroups lists a project's groups by name.
	SSHHostGroups(ctx context.Context, projectID string) ([]HostGroup, error)
	UpdateSSHHostGroup(ctx context.Context, g HostGroup, prev time.Time, ev audit.Event) error
	DeleteSSHHostGroup(ctx context.Context, id string, ev audit.Event) error
	// SSHHostGroupHosts lists a project's hosts, by hostname, with whether
	// each is in the group.
	SSHHostGroupHosts(ctx context.Context, groupID, projectID string) ([]GroupHost, error)
	// AddSSHHostGroupMember and RemoveSSHHostGroupMember change m if the
	// group and the host are still as read (project.ErrStale otherwise),
	// and stamp both: a change of the group's mappings or of the host's
	// name checked against the members as read cannot commit beside it.
	// Add: errs.Conflict if the host is in the group.
	AddSSHHostGroupMember(ctx context.Context, m Membership, ev audit.Event) error
	// Remove: errs.NotFound if the host is not in the group.
	RemoveSSHHostGroupMember(ctx context.Context, m Membership, ev audit.Event) error

	// AppendAudit records an event that goes with no change.
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Authorizer resolves an actor's permissions in a project.
type Authorizer interface {
	ProjectPermissions(ctx context.Context, actor authz.Actor, projectID string) (authz.Set, error)
}

// Service manages SSH CAs, templates and hosts, and issues certificates.
type Service struct {
	store Store
	authz Authorizer
	keys  *keyring.Keyring
	now   func() time.Time

	// gen bounds the slow (RSA) key generations running at once, with those
	// of the other services (keygen.Shared).
	gen *keygen.Pool

	// Cached (SetCache): CAs with their opened private keys, and templates,
	// by id, for the signing path. They die with the cache generation, so a
	// CA disabled or deleted, or a template narrowed, on any node is never
	// used from memory afterwards.
	signers   *cache.Map[string, *caSigner]
	templates *cache.Map[string, Template]
	// KRLs by CA id, each for at most KRLRefresh: a revocation moves the
	// generation, and the KRL's own date and what expired meanwhile are at
	// most that old.
	krls *cache.Map[string, []byte]
}

// caSigner is a CA and, if it is active, its opened private key.
type caSigner struct {
	ca     CA
	signer ssh.Signer
}

// MaxCached bounds the CAs, and separately the templates, a node keeps in memory.
const MaxCached = 10_000

// SetCache keeps CAs (with their opened keys), templates and KRLs in memory
// in generation g (docs/architecture.md).
func (s *Service) SetCache(g *cache.Gen) {
	s.signers = cache.NewMap[string, *caSigner](g, MaxCached)
	s.templates = cache.NewMap[string, Template](g, MaxCached)
	s.krls = cache.NewMap[string, []byte](g, MaxCached)
}

// NewService returns the SSH CA service; now nil means time.Now.
func NewService(st Store, az Authorizer, kr *keyring.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, authz: az, keys: kr, now: now, gen: keygen.Shared}
}

// Bounds on what one project may hold.
const (
	MaxCAsPerProject       = 100
	MaxTemplatesPerProject = 1000
	MaxHostsPerProject     = 10_000
	MaxNameLen             = 64
)

// generate makes a key of a; RSA holds a generation slot, so that members
// issuing RSA-4096 keys in a loop cannot take every core.
func (s *Service) generate(ctx context.Context, a Algorithm) (crypto.Signer, error) {
	if a.slow() {
		release, err := s.gen.Acquire(ctx, "SSH keys")
		if err != nil {
			return nil, err
		}
		defer release()
	}
	k, err := generateKey(a)
	if err != nil {
		return nil, errs.Internalf(err, "generate %s key", a)
	}
	return k, nil
}

func projectNotFound(id string) error { return errs.NotFoundf("Project with ID '%s' not found", id) }
func caNotFound(id string) error      { return errs.NotFoundf("SSH CA with ID '%s' not found", id) }
func templateNotFound(id string) error {
	return errs.NotFoundf("SSH certificate template with ID '%s' not found", id)
}
func hostNotFound(id string) error { return errs.NotFoundf("SSH host with ID '%s' not found", id) }

// perms resolves actor's permissions in projectID. With hide, a project the
// actor is not a member of answers notFound, so that an object's id neither
// confirms it exists nor names its project.
func (s *Service) perms(ctx context.Context, actor authz.Actor, projectID string, notFound func() error, hide bool) (authz.Set, error) {
	p, err := s.authz.ProjectPermissions(ctx, actor, projectID)
	if errs.Is(err, errs.NotFound) || (hide && errs.Is(err, errs.Forbidden)) {
		return authz.Set{}, notFound()
	}
	return p, err
}

// check is perms followed by a check of action on subject.
func (s *Service) check(ctx context.Context, actor authz.Actor, projectID, action, subject string, f *authz.Fields, notFound func() error, hide bool) error {
	p, err := s.perms(ctx, actor, projectID, notFound, hide)
	if err != nil {
		return err
	}
	return p.Check(action, subject, f)
}

// projectID validates a project id given by the client.
func projectID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return "", errs.Fieldf("projectId", "projectId is required")
	}
	if _, err := uuid.Parse(id); err != nil {
		return "", projectNotFound(id)
	}
	return id, nil
}

func checkName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxNameLen || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", errs.Fieldf(field, "%s must be 1 to %d characters", field, MaxNameLen)
	}
	return s, nil
}

func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func caEvent(actor authz.Actor, typ string, ca CA, md map[string]any) audit.Event {
	if md == nil {
		md = map[string]any{}
	}
	md["sshCaId"] = ca.ID
	md["friendlyName"] = ca.FriendlyName
	return audit.New(actor, typ, md).InProject(ca.ProjectID, "")
}

// NewCA is what CreateCA needs.
type NewCA struct {
	ProjectID    string
	FriendlyName string // empty: the algorithm's name
	KeyAlgorithm string // empty: ED25519
}

// CreateCA generates a CA key pair and stores the private key sealed.
func (s *Service) CreateCA(ctx context.Context, actor authz.Actor, n NewCA) (CA, error) {
	pid, err := projectID(n.ProjectID)
	if err != nil {
		return CA{}, err
	}
	alg, err := ParseAlgorithm("keyAlgorithm", n.KeyAlgorithm, ED25519)
	if err != nil {
		return CA{}, err
	}
	name := strings.TrimSpace(n.FriendlyName)
	if name == "" {
		name = "SSH CA (" + string(alg) + ")"
	}
	if name, err = checkName("friendlyName", name); err != nil {
		return CA{}, err
	}
	if err := s.check(ctx, actor, pid, authz.ActCreate, authz.SubSshCAs, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return CA{}, err
	}
	if cas, err := s.store.SSHCAs(ctx, pid); err != nil {
		return CA{}, err
	} else if len(cas) >= MaxCAsPerProject {
		return CA{}, TooManyCAs(len(cas))
	}
	ca, sealed, err := s.newCA(ctx, actor.OrgID, pid, name, alg)
	if err != nil {
		return CA{}, err
	}
	ev := caEvent(actor, "create-ssh-ca", ca, map[string]any{"keyAlgorithm": string(alg)})
	if err := s.store.CreateSSHCA(ctx, ca, sealed, ev); err != nil {
		return CA{}, err
	}
	return ca, nil
}

// newCA generates a CA key pair of alg for project pid and seals its
// private key; nothing is stored.
func (s *Service) newCA(ctx context.Context, orgID, pid, name string, alg Algorithm) (CA, []byte, error) {
	k, err := s.generate(ctx, alg)
	if err != nil {
		return CA{}, nil, err
	}
	now := s.stamp()
	ca := CA{ID: uuid.NewString(), OrgID: orgID, ProjectID: pid, FriendlyName: name, KeyAlgorithm: alg,
		Status: Active, CreatedAt: now, UpdatedAt: now}
	raw, err := marshalPrivate(k, "lockbox-ssh-ca-"+ca.ID)
	if err != nil {
		return CA{}, nil, errs.Internalf(err, "encode CA key")
	}
	defer clear(raw)
	signer, err := parsePrivate(raw)
	if err != nil {
		return CA{}, nil, errs.Internalf(err, "load CA key")
	}
	ca.PublicKey = authorizedKey(signer.PublicKey())
	sealed, err := s.keys.Seal(ctx, keyring.Project(pid), raw, PrivateKeyAD(ca.ID))
	if err != nil {
		return CA{}, nil, err
	}
	return ca, sealed, nil
}

// ca reads a CA by id; a malformed id is not found.
func (s *Service) ca(ctx context.Context, id string) (CA, error) {
	if _, err := uuid.Parse(id); err != nil {
		return CA{}, caNotFound(id)
	}
	ca, err := s.store.SSHCA(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return CA{}, caNotFound(id)
	}
	return ca, err
}

// authorizedCA reads a CA and checks action on CAs in its project.
func (s *Service) authorizedCA(ctx context.Context, actor authz.Actor, id, action string) (CA, error) {
	ca, err := s.ca(ctx, id)
	if err != nil {
		return CA{}, err
	}
	return ca, s.check(ctx, actor, ca.ProjectID, action, authz.SubSshCAs, nil, func() error { return caNotFound(id) }, true)
}

// GetCA returns a CA by id.
func (s *Service) GetCA(ctx context.Context, actor authz.Actor, id string) (CA, error) {
	ca, err := s.authorizedCA(ctx, actor, id, authz.ActRead)
	if err != nil {
		return CA{}, err
	}
	return ca, s.store.AppendAudit(ctx, caEvent(actor, "get-ssh-ca", ca, nil))
}

// ListCAs returns a project's CAs, oldest first.
func (s *Service) ListCAs(ctx context.Context, actor authz.Actor, project string) ([]CA, error) {
	pid, err := projectID(project)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, actor, pid, authz.ActRead, authz.SubSshCAs, nil, func() error { return projectNotFound(pid) }, false); err != nil {
		return nil, err
	}
	return s.store.SSHCAs(ctx, pid)
}

// CAPublicKey returns a CA's public key to anyone: it is what servers and
// clients are told to trust.
func (s *Service) CAPublicKey(ctx context.Context, id string) (string, error) {
	ca, err := s.ca(ctx, id)
	if err != nil {
		return "", err
	}
	return ca.PublicKey, nil
}

// CAUpdate changes a CA; nil fields stay as they are.
type CAUpdate struct {
	FriendlyName *string
	Status       *string
}

func checkStatus(field string, s string) (string, error) {
	if s != Active && s != Disabled {
		return "", errs.Fieldf(field, "status must be active or disabled")
	}
	return s, nil
}

// UpdateCA renames a CA or enables or disables it; a disabled CA signs
// nothing. A change that commits first is read again, not undone.
func (s *Service) UpdateCA(ctx context.Context, actor authz.Actor, id string, u CAUpdate) (CA, error) {
	return project.RetryStale(ctx, "SSH CA", func() (CA, error) { return s.updateCA(ctx, actor, id, u) })
}

func (s *Service) updateCA(ctx context.Context, actor authz.Actor, id string, u CAUpdate) (CA, error) {
	ca, err := s.authorizedCA(ctx, actor, id, authz.ActEdit)
	if err != nil {
		return CA{}, err
	}
	if u.FriendlyName != nil {
		if ca.FriendlyName, err = checkName("friendlyName", *u.FriendlyName); err != nil {
			return CA{}, err
		}
	}
	if u.Status != nil {
		if ca.Status, err = checkStatus("status", *u.Status); err != nil {
			return CA{}, err
		}
	}
	prev := ca.UpdatedAt
	ca.UpdatedAt = project.NextStamp(s.now(), prev)
	return ca, s.store.UpdateSSHCA(ctx, ca, prev, caEvent(actor, "update-ssh-ca", ca, map[string]any{"status": ca.Status}))
}

// DeleteCA deletes a CA, its private key and its templates. A CA that a
// host uses cannot be deleted.
func (s *Service) DeleteCA(ctx context.Context, actor authz.Actor, id string) (CA, error) {
	ca, err := s.authorizedCA(ctx, actor, id, authz.ActDelete)
	if err != nil {
		return CA{}, err
	}
	err = s.store.DeleteSSHCA(ctx, id, caEvent(actor, "delete-ssh-ca", ca, nil))
	switch {
	case errs.Is(err, errs.NotFound):
		return CA{}, caNotFound(id)
	case errs.Is(err, errs.Conflict):
		return CA{}, errs.BadRequest("SSH CA with ID '%s' is used by an SSH host; change or delete the host first", id)
	}
	return ca, err
}

// CATemplates lists a CA's certificate templates.
func (s *Service) CATemplates(ctx context.Context, actor authz.Actor, id string) (CA, []Template, error) {
	ca, err := s.authorizedCA(ctx, actor, id, authz.ActRead)
	if err != nil {
		return CA{}, nil, err
	}
	p, err := s.perms(ctx, actor, ca.ProjectID, func() error { return caNotFound(id) }, true)
	if err != nil {
		return CA{}, nil, err
	}
	if err := p.Check(authz.ActRead, authz.SubSshCertTemplates, nil); err != nil {
		return CA{}, nil, err
	}
	ts, err := s.store.SSHTemplates(ctx, ca.ProjectID, ca.ID)
	if err != nil {
		return CA{}, nil, err
	}
	return ca, ts, s.store.AppendAudit(ctx, caEvent(actor, "get-ssh-ca-certificate-templates", ca, nil))
}

// signer returns a CA and its opened private key, from the cache when it
// can. The CA must be active.
func (s *Service) signer(ctx context.Context, id string) (CA, ssh.Signer, error) {
	if _, err := uuid.Parse(id); err != nil {
		return CA{}, nil, caNotFound(id)
	}
	e, err := cache.Load(ctx, s.signers, id, s.now(), func(ctx context.Context) (*caSigner, time.Time, error) {
		ca, err := s.store.SSHCA(ctx, id)
		if err != nil || ca.Status != Active {
			return &caSigner{ca: ca}, time.Time{}, err
		}
		sealed, err := s.store.SSHCAPrivateKey(ctx, ca.ID)
		if err != nil {
			return nil, time.Time{}, err
		}
		raw, err := s.keys.Open(ctx, keyring.Project(ca.ProjectID), sealed, PrivateKeyAD(ca.ID))
		if err != nil {
			return nil, time.Time{}, err
		}
		defer clear(raw)
		sg, err := parsePrivate(raw)
		if err != nil {
			return nil, time.Time{}, errs.Internalf(err, "load SSH CA %s key", ca.ID)
		}
		return &caSigner{ca: ca, signer: sg}, time.Time{}, nil
	})
	if errs.Is(err, errs.NotFound) {
		return CA{}, nil, caNotFound(id)
	}
	if err != nil {
		return CA{}, nil, err
	}
	if e.signer == nil {
		return CA{}, nil, errs.BadRequest("SSH CA with ID '%s' is disabled", id)
	}
	return e.ca, e.signer, nil
}

// serialString renders a serial as Infisical does: decimal.
func serialString(n uint64) string { return strconv.FormatUint(n, 10) }
