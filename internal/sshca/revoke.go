package sshca

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func certNotFound(ref string) error {
	return errs.NotFoundf("SSH certificate '%s' not found", clip(ref))
}

// Revoke marks an issued certificate revoked, so that its CA's KRL lists it.
// ref is the certificate's id, or its serial number; a serial that two of
// the actor's CAs issued needs caID to tell them apart. It needs delete on
// ssh-certificates (as PKI revocation needs delete on certificates).
// Revoking a revoked certificate changes nothing and reports when it was.
func (s *Service) Revoke(ctx context.Context, actor authz.Actor, ref, caID string) (Cert, error) {
	ref, caID = strings.TrimSpace(ref), strings.TrimSpace(caID)
	var cands []Cert
	switch {
	case uuid.Validate(ref) == nil:
		c, err := s.store.SSHCert(ctx, ref)
		if errs.Is(err, errs.NotFound) {
			return Cert{}, certNotFound(ref)
		}
		if err != nil {
			return Cert{}, err
		}
		cands = []Cert{c}
	default:
		if _, err := strconv.ParseUint(ref, 10, 64); err != nil {
			return Cert{}, errs.Fieldf("certificateId", "certificateId must be a certificate id or a decimal serial number")
		}
		cs, err := s.store.SSHCertsBySerial(ctx, ref)
		if err != nil {
			return Cert{}, err
		}
		cands = cs
	}
	// Keep the candidates the actor may see; the others do not exist for it.
	seen := map[string]bool{}
	var mine []Cert
	for _, c := range cands {
		if caID != "" && c.CAID != caID {
			continue
		}
		ok, known := seen[c.ProjectID]
		if !known {
			_, err := s.perms(ctx, actor, c.ProjectID, func() error { return certNotFound(ref) }, true)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return Cert{}, err
			}
			ok, seen[c.ProjectID] = err == nil, err == nil
		}
		if ok {
			mine = append(mine, c)
		}
	}
	switch {
	case len(mine) == 0:
		return Cert{}, certNotFound(ref)
	case len(mine) > 1:
		return Cert{}, errs.BadRequest("Serial number %s was issued by %d SSH CAs; give sshCaId", ref, len(mine))
	}
	c := mine[0]
	if err := s.check(ctx, actor, c.ProjectID, authz.ActDelete, authz.SubSshCertificates, nil, func() error { return certNotFound(ref) }, true); err != nil {
		return Cert{}, err
	}
	if !c.RevokedAt.IsZero() {
		return c, nil
	}
	c.RevokedAt = s.stamp()
	ev := audit.New(actor, "revoke-ssh-cert", map[string]any{"sshCertificateId": c.ID, "sshCaId": c.CAID, "serialNumber": c.Serial,
		"certType": string(c.Type), "principals": c.Principals, "keyId": c.KeyID}).InProject(c.ProjectID, "")
	err := s.store.RevokeSSHCert(ctx, c.ID, c.RevokedAt, ev)
	if errs.Is(err, errs.Conflict) { // revoked meanwhile
		c, err = s.store.SSHCert(ctx, c.ID)
	}
	return c, err
}

// KRLRefresh is how long a node serves a CA's KRL from memory while nothing
// is revoked: the KRL's generation date, and the certificates that expired
// meanwhile (still listed, harmlessly), are at most this old.
const KRLRefresh = time.Minute

// KRL returns a CA's key revocation list in OpenSSH's format, to anyone (as
// the CA's public key is): the serials of its revoked certificates that
// have not expired. Its version is the time of the last revocation, in
// microseconds, so that it grows with every change. It is built once per
// cache generation and at least every KRLRefresh (SetCache): the route is
// public and polled by every host; a revocation on any node, like any
// non-quiet write, moves the generation. The bytes are shared: callers
// must not change them.
func (s *Service) KRL(ctx context.Context, caID string) ([]byte, error) {
	caID = strings.TrimSpace(caID)
	now := s.now().UTC()
	return cache.Load(ctx, s.krls, caID, now, func(ctx context.Context) ([]byte, time.Time, error) {
		b, err := s.buildKRL(ctx, caID, now)
		return b, now.Add(KRLRefresh), err
	})
}

func (s *Service) buildKRL(ctx context.Context, caID string, now time.Time) ([]byte, error) {
	ca, err := s.ca(ctx, caID)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ca.PublicKey))
	if err != nil {
		return nil, errs.Internalf(err, "SSH CA %s public key", ca.ID)
	}
	revoked, last, err := s.store.RevokedSSHSerials(ctx, ca.ID, now)
	if err != nil {
		return nil, err
	}
	serials := make([]uint64, 0, len(revoked))
	for _, r := range revoked {
		n, err := strconv.ParseUint(r, 10, 64)
		if err != nil {
			return nil, errs.Internalf(err, "SSH CA %s serial %q", ca.ID, r)
		}
		serials = append(serials, n)
	}
	var version uint64
	if !last.IsZero() {
		version = uint64(last.UnixMicro())
	}
	return MarshalKRL(pub, serials, version, uint64(now.Unix()), "lockbox SSH CA "+ca.ID), nil
}
