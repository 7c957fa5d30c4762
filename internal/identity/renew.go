package identity

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// RenewStore is the storage renewal and revocation need.
type RenewStore interface {
	AccessTokenByID(ctx context.Context, id string) (AccessToken, IdentityRef, error)
	// RenewAccessToken sets last_renewed_at on a token that is not revoked; false if it is.
	RenewAccessToken(ctx context.Context, id string, now time.Time) (bool, error)
	// RevokeAccessToken revokes a token; false if it was missing or already revoked.
	RevokeAccessToken(ctx context.Context, id string) (bool, error)
	OrgByID(ctx context.Context, id string) (project.Org, error)
	// AppendAudit records an event that goes with no change; it returns once the event is committed.
	AppendAudit(ctx context.Context, ev audit.Event) error
}

// Tokens renews and revokes machine-identity access tokens.
type Tokens struct {
	svc   *Service
	store RenewStore
}

// NewTokens returns the token service; svc signs the renewed tokens.
func NewTokens(st RenewStore, svc *Service) *Tokens { return &Tokens{svc: svc, store: st} }

// parseIdentityToken verifies an identity access token's signature and expiry.
func (s *Service) parseIdentityToken(ctx context.Context, tok string, now time.Time) (claims, error) {
	sig, err := s.signer(ctx)
	if err != nil {
		return claims{}, err
	}
	c, err := sig.parse(strings.TrimSpace(tok), now)
	if err != nil {
		return claims{}, err
	}
	if c.AuthTokenType != TypeIdentityAccessToken {
		return claims{}, errs.BadRequest("Only identity access tokens can be renewed")
	}
	return c, nil
}

// Renew issues a new JWT for the same token record, starting a new TTL. It
// never runs past the max TTL: near the end it issues a shorter token, and
// after it, none. A token that no longer authenticates (revoked, its uses
// spent, past its TTL) is not renewed, nor is one presented from an address
// outside its trusted IPs: where it may not be used it may not be kept alive.
// (Revoking is allowed from anywhere: it only takes access away.)
func (tk *Tokens) Renew(ctx context.Context, tok, ip string) (LoginResult, error) {
	s, st := tk.svc, tk.store
	now := s.now().UTC().Truncate(time.Microsecond)
	c, err := s.parseIdentityToken(ctx, tok, now)
	if err != nil {
		return LoginResult{}, err
	}
	t, ref, err := st.AccessTokenByID(ctx, c.IdentityAccessTokenID)
	if errs.Is(err, errs.NotFound) || (err == nil && (t.Revoked || t.IdentityID != c.IdentityID)) {
		return LoginResult{}, errs.Unauthorizedf("No identity access token found")
	}
	if err != nil {
		return LoginResult{}, err
	}
	if t.Exhausted() {
		return LoginResult{}, errs.Unauthorizedf("Unable to renew because access token usage limit reached")
	}
	// A token past its TTL no longer authenticates, and renewing it would
	// bring it back. Its JWT has expired too, unless it is periodic: that one
	// lives its period, which may be longer than the TTL.
	if end, ok := t.ttlEnd(); ok && !now.Before(end) {
		return LoginResult{}, errs.Unauthorizedf("Failed to renew MI access token due to TTL expiration")
	}
	if end, ok := t.maxEnd(); ok && !now.Before(end) {
		return LoginResult{}, errs.Unauthorizedf("Failed to renew MI access token due to Max TTL expiration")
	}
	if !IPAllowed(t.TrustedIPs, ip) {
		return LoginResult{}, errs.Forbiddenf("You are not allowed to access this resource from the current IP address")
	}
	ok, err := st.RenewAccessToken(ctx, t.ID, now)
	if err != nil {
		return LoginResult{}, err
	}
	if !ok {
		return LoginResult{}, errs.Unauthorizedf("No identity access token found")
	}
	actor := authz.Actor{Kind: authz.ActorIdentity, ID: t.IdentityID, OrgID: ref.OrgID, Name: ref.Name}
	// The token is renewed whatever happens to its audit event.
	auditBestEffort(ctx, st.AppendAudit, audit.New(actor, "renew-identity-access-token", map[string]any{"identityId": t.IdentityID,
		"identityAccessTokenId": t.ID}))
	return s.issue(ctx, t, now)
}

// Revoke revokes the token record behind a JWT; it works at once for every copy.
func (tk *Tokens) Revoke(ctx context.Context, tok string) error {
	s, st := tk.svc, tk.store
	now := s.now().UTC()
	sig, err := s.signer(ctx)
	if err != nil {
		return err
	}
	c, err := sig.parse(strings.TrimSpace(tok), now)
	if errs.Is(err, errs.Invalid) {
		return errs.Unauthorizedf("Only access tokens can be revoked")
	}
	if err != nil {
		return err
	}
	switch c.AuthTokenType {
	case TypeUserAccessToken:
		return s.revokeUserSession(ctx, c)
	case TypeIdentityAccessToken:
	default:
		return errs.Unauthorizedf("Only access tokens can be revoked")
	}
	ok, err := st.RevokeAccessToken(ctx, c.IdentityAccessTokenID)
	if err != nil {
		return err
	}
	if !ok {
		return errs.Unauthorizedf("No identity access token found")
	}
	if t, ref, err := st.AccessTokenByID(ctx, c.IdentityAccessTokenID); err == nil {
		actor := authz.Actor{Kind: authz.ActorIdentity, ID: t.IdentityID, OrgID: ref.OrgID, Name: ref.Name}
		auditBestEffort(ctx, st.AppendAudit, audit.New(actor, "revoke-identity-access-token", map[string]any{"identityId": t.IdentityID,
			"identityAccessTokenId": t.ID}))
	}
	return nil
}

// auditBestEffort records an event of something already done: a failure to
// record it is logged, and the caller still gets its result.
func auditBestEffort(ctx context.Context, appendAudit func(context.Context, audit.Event) error, ev audit.Event) {
	if err := appendAudit(context.WithoutCancel(ctx), ev); err != nil {
		slog.ErrorContext(ctx, "audit event lost", "type", ev.Type, "err", err.Error())
	}
}

// Details returns the organization of an identity actor.
func (tk *Tokens) Details(ctx context.Context, actor authz.Actor) (project.Org, error) {
	st := tk.store
	if actor.Kind != authz.ActorIdentity {
		return project.Org{}, errs.Forbiddenf("Only machine identities have identity details")
	}
	return st.OrgByID(ctx, actor.OrgID)
}
