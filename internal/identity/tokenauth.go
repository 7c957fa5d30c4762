package identity

import (
	"context"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/project"
)

// TokenAuthConfig is an attach or update request for Token Auth; nil fields are absent.
type TokenAuthConfig struct {
	AccessTokenTTL          *int64
	AccessTokenMaxTTL       *int64
	AccessTokenNumUsesLimit *int64
	AccessTokenTrustedIPs   []string
}

func (c TokenAuthConfig) apply(ta *TokenAuth) error {
	ua := UniversalAuth{AccessTokenTTL: ta.AccessTokenTTL, AccessTokenMaxTTL: ta.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: ta.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: ta.AccessTokenTrustedIPs}
	if err := (UAConfig{AccessTokenTTL: c.AccessTokenTTL, AccessTokenMaxTTL: c.AccessTokenMaxTTL,
		AccessTokenNumUsesLimit: c.AccessTokenNumUsesLimit, AccessTokenTrustedIPs: c.AccessTokenTrustedIPs}).apply(&ua); err != nil {
		return err
	}
	ta.AccessTokenTTL, ta.AccessTokenMaxTTL = ua.AccessTokenTTL, ua.AccessTokenMaxTTL
	ta.AccessTokenNumUsesLimit, ta.AccessTokenTrustedIPs = ua.AccessTokenNumUsesLimit, ua.AccessTokenTrustedIPs
	return nil
}

func (a *Admin) tokenAuth(ctx context.Context, actor authz.Actor, identityID, action string) (OrgIdentity, TokenAuth, error) {
	oi, err := a.get(ctx, actor, identityID, action)
	if err != nil {
		return OrgIdentity{}, TokenAuth{}, err
	}
	ta, err := a.store.TokenAuth(ctx, oi.ID)
	if errs.Is(err, errs.NotFound) {
		return OrgIdentity{}, TokenAuth{}, errs.BadRequest("The identity does not have token auth")
	}
	return oi, ta, err
}

// AttachTokenAuth adds Token Auth to an identity, with Infisical's defaults.
func (a *Admin) AttachTokenAuth(ctx context.Context, actor authz.Actor, identityID string, c TokenAuthConfig) (TokenAuth, error) {
	oi, err := a.get(ctx, actor, identityID, authz.ActCreate)
	if err != nil {
		return TokenAuth{}, err
	}
	now := a.now().UTC().Truncate(time.Microsecond)
	ta := TokenAuth{ID: NewID(), IdentityID: oi.ID, AccessTokenTTL: 2592000, AccessTokenMaxTTL: 2592000,
		AccessTokenTrustedIPs: AnyIP, CreatedAt: now, UpdatedAt: now}
	if err := c.apply(&ta); err != nil {
		return TokenAuth{}, err
	}
	ev := audit.New(actor, "add-identity-token-auth", map[string]any{"identityId": oi.ID,
		"accessTokenTTL": ta.AccessTokenTTL, "accessTokenMaxTTL": ta.AccessTokenMaxTTL})
	return ta, a.store.CreateTokenAuth(ctx, ta, ev)
}

// UpdateTokenAuth changes an identity's Token Auth configuration.
func (a *Admin) UpdateTokenAuth(ctx context.Context, actor authz.Actor, identityID string, c TokenAuthConfig) (TokenAuth, error) {
	return project.RetryStale(ctx, "configuration", func() (TokenAuth, error) {
		oi, ta, err := a.tokenAuth(ctx, actor, identityID, authz.ActEdit)
		if err != nil {
			return TokenAuth{}, err
		}
		// Its settings (TTLs, use limits, trusted IPs) bound the logins of
		// the identity: changing them is giving it a credential.
		if err := checkMint(ctx, a.authz, actor, oi.ID); err != nil {
			return TokenAuth{}, err
		}
		prev := ta.UpdatedAt
		if err := c.apply(&ta); err != nil {
			return TokenAuth{}, err
		}
		ta.UpdatedAt = project.NextStamp(a.now(), prev)
		ev := audit.New(actor, "update-identity-token-auth", map[string]any{"identityId": oi.ID,
			"accessTokenTTL": ta.AccessTokenTTL, "accessTokenMaxTTL": ta.AccessTokenMaxTTL})
		return ta, a.store.UpdateTokenAuth(ctx, ta, prev, ev)
	})
}

// GetTokenAuth returns an identity's Token Auth configuration.
func (a *Admin) GetTokenAuth(ctx context.Context, actor authz.Actor, identityID string) (TokenAuth, error) {
	_, ta, err := a.tokenAuth(ctx, actor, identityID, authz.ActRead)
	return ta, err
}

// RemoveTokenAuth removes Token Auth and revokes every token made through it.
func (a *Admin) RemoveTokenAuth(ctx context.Context, actor authz.Actor, identityID string) (TokenAuth, error) {
	oi, ta, err := a.tokenAuth(ctx, actor, identityID, authz.ActEdit)
	if err != nil {
		return TokenAuth{}, err
	}
	if err := a.check(ctx, actor, authz.ActRevokeAuth, oi.ID); err != nil {
		return TokenAuth{}, err
	}
	ev := audit.New(actor, "revoke-identity-token-auth", map[string]any{"identityId": oi.ID})
	return ta, a.store.DeleteTokenAuth(ctx, oi.ID, ev)
}

// CreateToken makes a Token Auth access token for an identity.
func (a *Admin) CreateToken(ctx context.Context, actor authz.Actor, identityID, name string) (LoginResult, AccessToken, error) {
	oi, ta, err := a.tokenAuth(ctx, actor, identityID, authz.ActEdit)
	if err != nil {
		return LoginResult{}, AccessToken{}, err
	}
	if err := checkMint(ctx, a.authz, actor, oi.ID); err != nil {
		return LoginResult{}, AccessToken{}, err
	}
	if len(name) > 255 {
		return LoginResult{}, AccessToken{}, errs.Invalidf("name must be at most 255 characters")
	}
	now := a.now().UTC().Truncate(time.Microsecond)
	t := AccessToken{ID: NewID(), IdentityID: oi.ID, AuthMethod: MethodTokenAuth, Name: strings.TrimSpace(name),
		TTL: ta.AccessTokenTTL, MaxTTL: ta.AccessTokenMaxTTL, NumUsesLimit: ta.AccessTokenNumUsesLimit,
		TrustedIPs: ta.AccessTokenTrustedIPs, CreatedAt: now, UpdatedAt: now}
	ev := audit.New(actor, "create-token-identity-token-auth", map[string]any{"identityId": oi.ID, "identityAccessTokenId": t.ID})
	if err := a.store.CreateTokenAuthToken(ctx, ta.ID, t, ev); err != nil {
		if errs.Is(err, errs.NotFound) { // removed meanwhile
			return LoginResult{}, AccessToken{}, errs.BadRequest("The identity does not have token auth")
		}
		return LoginResult{}, AccessToken{}, err
	}
	res, err := a.svc.issue(ctx, t, now)
	return res, t, err
}

// Tokens lists an identity's Token Auth tokens, revoked ones included, newest first.
func (a *Admin) Tokens(ctx context.Context, actor authz.Actor, identityID string, offset, limit int) ([]AccessToken, error) {
	oi, err := a.get(ctx, actor, identityID, authz.ActRead)
	if err != nil {
		return nil, err
	}
	if err := a.check(ctx, actor, authz.ActGetToken, oi.ID); err != nil {
		return nil, err
	}
	return a.store.AccessTokens(ctx, oi.ID, MethodTokenAuth, offset, limit)
}

// token loads a Token Auth token of an identity in the actor's organization.
func (a *Admin) token(ctx context.Context, actor authz.Actor, tokenID, action string) (AccessToken, error) {
	notFound := errs.NotFoundf("Token with ID %s not found", tokenID)
	t, ref, err := a.store.AccessTokenByID(ctx, tokenID)
	if errs.Is(err, errs.NotFound) || (err == nil && (ref.OrgID != actor.OrgID || t.AuthMethod != MethodTokenAuth)) {
		return AccessToken{}, notFound
	}
	if err != nil {
		return AccessToken{}, err
	}
	if action != authz.ActRead {
		// As for the identity itself: a token of an identity holding more
		// than the actor (on its own or through a group) is not theirs to
		// rename or revoke.
		if _, err := a.get(ctx, actor, t.IdentityID, action); err != nil {
			return AccessToken{}, err
		}
		return t, nil
	}
	if err := a.check(ctx, actor, action, t.IdentityID); err != nil {
		return AccessToken{}, err
	}
	return t, nil
}

// Token returns one Token Auth token's record.
func (a *Admin) Token(ctx context.Context, actor authz.Actor, tokenID string) (AccessToken, error) {
	t, err := a.token(ctx, actor, tokenID, authz.ActRead)
	if err != nil {
		return AccessToken{}, err
	}
	return t, a.check(ctx, actor, authz.ActGetToken, t.IdentityID)
}

// RenameToken changes a token's name.
func (a *Admin) RenameToken(ctx context.Context, actor authz.Actor, tokenID, name string) (AccessToken, error) {
	t, err := a.token(ctx, actor, tokenID, authz.ActEdit)
	if err != nil {
		return AccessToken{}, err
	}
	if len(name) > 255 {
		return AccessToken{}, errs.Invalidf("name must be at most 255 characters")
	}
	t.Name = strings.TrimSpace(name)
	ev := audit.New(actor, "update-token-identity-token-auth", map[string]any{"identityId": t.IdentityID, "tokenId": t.ID, "name": t.Name})
	return t, a.store.RenameAccessToken(ctx, t.ID, t.Name, ev)
}

// RevokeToken revokes a Token Auth token at once.
func (a *Admin) RevokeToken(ctx context.Context, actor authz.Actor, tokenID string) error {
	t, err := a.token(ctx, actor, tokenID, authz.ActEdit)
	if err != nil {
		return err
	}
	if err := a.check(ctx, actor, authz.ActDeleteToken, t.IdentityID); err != nil {
		return err
	}
	ev := audit.New(actor, "revoke-token-identity-token-auth", map[string]any{"identityId": t.IdentityID, "tokenId": t.ID})
	ok, err := a.store.RevokeAccessTokenWithEvent(ctx, t.ID, ev)
	if err == nil && !ok {
		return errs.NotFoundf("Token with ID %s not found or already revoked", tokenID)
	}
	return err
}
