package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lockbox-dev/lockbox/internal/audit"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/identity"
	"github.com/lockbox-dev/lockbox/internal/keyring"
	"github.com/lockbox-dev/lockbox/internal/org"
)

// LoginTTL is how long a login may take between the redirect to the
// identity provider and the callback.
const LoginTTL = 10 * time.Minute

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Service) stateHash(ctx context.Context, state string) (string, error) {
	h, err := s.state.Sum(ctx, s.keys, state)
	return hex.EncodeToString(h), err
}

// active returns the active configuration of the organization slug names;
// an unknown organization and one without active SSO read the same.
func (s *Service) active(ctx context.Context, orgSlug string) (Config, error) {
	notFound := errs.NotFoundf("SSO with OIDC is not set up for this organization")
	if orgSlug == "" || len(orgSlug) > 256 {
		return Config{}, notFound
	}
	orgID, err := s.store.OrgIDBySlug(ctx, orgSlug)
	if errs.Is(err, errs.NotFound) {
		return Config{}, notFound
	}
	if err != nil {
		return Config{}, err
	}
	c, err := s.store.OIDCConfig(ctx, orgID)
	if errs.Is(err, errs.NotFound) || (err == nil && !c.IsActive) {
		return Config{}, notFound
	}
	return c, err
}

// oauth builds the OAuth 2.0 client and the provider of c. Every request
// to the identity provider (discovery, keys, token exchange) goes through
// a client bound by the target policy, without redirects; the returned
// context carries it.
func (s *Service) oauth(ctx context.Context, c Config, redirectURL string) (context.Context, *oidc.Provider, *oauth2.Config, error) {
	cl, err := fetch.NewClient(s.env, "")
	if err != nil {
		return ctx, nil, nil, err
	}
	ctx = oidc.ClientContext(ctx, cl.HTTP())
	var p *oidc.Provider
	if c.ConfigurationType == TypeCustom {
		for _, f := range []struct{ name, u string }{{"tokenEndpoint", c.TokenEndpoint}, {"jwksUri", c.JwksURI}} {
			if _, err := fetch.CheckURL(ctx, s.env, f.name, f.u); err != nil {
				return ctx, nil, nil, err
			}
		}
		p = (&oidc.ProviderConfig{IssuerURL: c.Issuer, AuthURL: c.AuthorizationEndpoint, TokenURL: c.TokenEndpoint,
			JWKSURL: c.JwksURI, UserInfoURL: c.UserinfoEndpoint}).NewProvider(ctx)
	} else {
		if _, err := fetch.CheckURL(ctx, s.env, "discoveryURL", c.DiscoveryURL); err != nil {
			return ctx, nil, nil, err
		}
		issuer := strings.TrimSuffix(strings.TrimSuffix(c.DiscoveryURL, "/.well-known/openid-configuration"), "/")
		if p, err = oidc.NewProvider(ctx, issuer); err != nil {
			e := errs.BadRequest("The identity provider's discovery document could not be read")
			e.Err = err
			return ctx, nil, nil, e
		}
		// Endpoints the discovery document names are fetched too: the policy holds for them.
		var doc struct {
			AuthURL  string `json:"authorization_endpoint"`
			TokenURL string `json:"token_endpoint"`
			JWKSURL  string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil {
			return ctx, nil, nil, errs.Internalf(err, "discovery document")
		}
		// The browser is sent there: an http(s) URL, never javascript: or data:.
		if u, err := url.Parse(doc.AuthURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return ctx, nil, nil, errs.BadRequest("The identity provider's discovery document names no http(s) authorization endpoint")
		}
		for _, u := range []string{doc.TokenURL, doc.JWKSURL} {
			if _, err := fetch.CheckURL(ctx, s.env, "discoveryURL", u); err != nil {
				return ctx, nil, nil, err
			}
		}
	}
	secret, err := s.keys.Open(ctx, keyring.Org(c.OrgID), c.ClientSecret, secretAD(c.ID))
	if err != nil {
		return ctx, nil, nil, errs.Internalf(err, "open the OIDC client secret")
	}
	return ctx, p, &oauth2.Config{ClientID: c.ClientID, ClientSecret: string(secret), Endpoint: p.Endpoint(), RedirectURL: redirectURL,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}, nil
}

// Begin starts a login to the organization orgSlug: it returns the URL of
// the identity provider to send the browser to and the state the browser
// must bring back (kept in a cookie: the callback compares the two, so a
// login started in another browser cannot be completed in this one). next
// is where the dashboard goes afterwards.
func (s *Service) Begin(ctx context.Context, orgSlug, redirectURL, next string) (authURL, state string, err error) {
	c, err := s.active(ctx, orgSlug)
	if err != nil {
		return "", "", err
	}
	_, _, oc, err := s.oauth(ctx, c, redirectURL)
	if err != nil {
		return "", "", err
	}
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	h, err := s.stateHash(ctx, state)
	if err != nil {
		return "", "", err
	}
	now := s.now().UTC()
	if err := s.store.PutOIDCLoginState(ctx, LoginState{StateHash: h, OrgID: c.OrgID, Nonce: nonce, CodeVerifier: verifier,
		Next: next, ExpiresAt: now.Add(LoginTTL)}, now); err != nil {
		return "", "", err
	}
	return oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), state, nil
}

// Callback is what the identity provider sent the browser back with.
type Callback struct {
	State, Code, Error string
	BrowserState       string // from the cookie Begin's caller set
	RedirectURL        string // as given to Begin
	IP, UserAgent      string
}

// Result is a finished login: the user, signed in to OrgID.
type Result struct {
	User    identity.User
	OrgID   string
	Next    string
	Created bool
}

// claims are the ID token claims a login reads.
type claims struct {
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // a bool, or "true" from some providers
	GivenName     string `json:"given_name"`
	FamilyName    string `json:"family_name"`
	Name          string `json:"name"`
	Groups        any    `json:"groups"` // a list of names, or one name
}

// groups returns the names in the groups claim (none when it is absent);
// ok is false when it is neither a string nor a list of strings.
func (c claims) groups() (names []string, ok bool) {
	switch v := c.Groups.(type) {
	case nil:
		return nil, true
	case string:
		return []string{v}, true
	case []any:
		for _, g := range v {
			name, isString := g.(string)
			if !isString {
				return nil, false
			}
			names = append(names, name)
		}
		return names, true
	}
	return nil, false
}

func (c claims) verified() bool {
	switch v := c.EmailVerified.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

var errLogin = errs.BadRequest("The SSO login could not be completed; start it again")

// Finish completes a login: the state must be one Begin issued, unused and
// unexpired, and the browser's; the code is exchanged (with the PKCE
// verifier) and the ID token verified (signature, issuer, audience, expiry,
// nonce) by go-oidc. The email must be verified by the identity provider
// and in an allowed domain. The user is created on first login.
func (s *Service) Finish(ctx context.Context, cb Callback) (Result, error) {
	if cb.State == "" || cb.BrowserState == "" || subtle.ConstantTimeCompare([]byte(cb.State), []byte(cb.BrowserState)) != 1 {
		return Result{}, errs.Forbiddenf("The SSO login was not started in this browser; start it again")
	}
	h, err := s.stateHash(ctx, cb.State)
	if err != nil {
		return Result{}, err
	}
	st, err := s.store.TakeOIDCLoginState(ctx, h, s.now().UTC())
	if errs.Is(err, errs.NotFound) {
		return Result{}, errLogin
	}
	if err != nil {
		return Result{}, err
	}
	if cb.Error != "" {
		return Result{}, errs.BadRequest("The identity provider refused the login")
	}
	if cb.Code == "" {
		return Result{}, errLogin
	}
	c, err := s.store.OIDCConfig(ctx, st.OrgID)
	if errs.Is(err, errs.NotFound) || (err == nil && !c.IsActive) {
		return Result{}, errs.NotFoundf("SSO with OIDC is not set up for this organization")
	}
	if err != nil {
		return Result{}, err
	}
	ctx, p, oc, err := s.oauth(ctx, c, cb.RedirectURL)
	if err != nil {
		return Result{}, err
	}
	tok, err := oc.Exchange(ctx, cb.Code, oauth2.VerifierOption(st.CodeVerifier))
	if err != nil {
		return Result{}, s.refuse(ctx, c, cb, "", "code exchange failed", errs.BadRequest("The identity provider did not accept the login code"))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Result{}, s.refuse(ctx, c, cb, "", "no ID token", errs.BadRequest("The identity provider sent no ID token"))
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: c.ClientID, Now: s.now}).Verify(ctx, raw)
	if err != nil {
		return Result{}, s.refuse(ctx, c, cb, "", "ID token invalid", errs.Unauthorizedf("The identity provider's ID token is not valid"))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return Result{}, s.refuse(ctx, c, cb, "", "nonce mismatch", errs.Unauthorizedf("The identity provider's ID token is not valid"))
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		return Result{}, errs.BadRequest("The identity provider's ID token has malformed claims")
	}
	// ASCII only: Unicode folding would match "ſ" to "s" and "K" (Kelvin) to
	// "k", so one address could pass for another or for an allowed domain.
	if !isASCII(cl.Email) {
		return Result{}, s.refuse(ctx, c, cb, "", "non-ASCII email", errs.BadRequest("The identity provider sent an email address that is not ASCII"))
	}
	email := strings.ToLower(strings.TrimSpace(cl.Email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 320 {
		return Result{}, s.refuse(ctx, c, cb, "", "no usable email", errs.BadRequest("The identity provider sent no usable email address"))
	}
	if !cl.verified() {
		return Result{}, s.refuse(ctx, c, cb, email, "email not verified",
			errs.Forbiddenf("The identity provider has not verified the email address %s", email))
	}
	if !domainAllowed(c.AllowedEmailDomains, email) {
		return Result{}, s.refuse(ctx, c, cb, email, "email domain not allowed",
			errs.Forbiddenf("Email %s is not in a domain allowed to sign in to this organization", email))
	}
	role, customID := c.DefaultRole, ""
	if !authz.IsBuiltinOrgRole(role) {
		if customID, err = s.store.CustomOrgRoleID(ctx, c.OrgID, role); errs.Is(err, errs.NotFound) {
			return Result{}, s.refuse(ctx, c, cb, email, "default role missing",
				errs.BadRequest("The SSO configuration's default role %s no longer exists; an organization admin must choose another", role))
		} else if err != nil {
			return Result{}, errs.Internalf(err, "default role %s of the OIDC configuration", role)
		}
		role = "custom"
	}
	first, last := cl.GivenName, cl.FamilyName
	if first == "" && last == "" {
		first = cl.Name
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	u := identity.User{ID: identity.NewID(), Email: email, Username: email, FirstName: clip(first, 128), LastName: clip(last, 128),
		CreatedAt: now, UpdatedAt: now}
	actor := authz.Actor{Kind: authz.ActorUser, ID: u.ID, OrgID: c.OrgID, Name: email, IP: cb.IP, UserAgent: cb.UserAgent}
	ev := audit.New(actor, "create-user-sso", map[string]any{"email": email, "provider": "oidc", "role": c.DefaultRole})
	var groups []string
	if c.ManageGroupMemberships {
		var ok bool
		if groups, ok = cl.groups(); !ok {
			return Result{}, s.refuse(ctx, c, cb, email, "malformed groups claim",
				errs.BadRequest("The identity provider's groups claim is not a list of group names"))
		}
		if len(groups) > org.MaxMappedGroups {
			return Result{}, s.refuse(ctx, c, cb, email, "too many groups",
				errs.BadRequest("The identity provider names %d groups; at most %d can be mapped", len(groups), org.MaxMappedGroups))
		}
		if s.Groups == nil {
			return Result{}, errs.Internalf(nil, "SSO group mapping without a group service")
		}
	}
	got, created, err := s.store.ProvisionSSOUser(ctx, c.OrgID, u, role, customID, ev)
	if err != nil {
		if errs.Is(err, errs.Forbidden) {
			return Result{}, s.refuse(ctx, c, cb, email, "membership deactivated", err)
		}
		return Result{}, err
	}
	if c.ManageGroupMemberships {
		// Before the session exists: its first request holds the groups' roles.
		actor.ID = got.ID
		if err := s.Groups.SyncUserGroups(ctx, actor, c.OrgID, got.ID, groups); err != nil {
			return Result{}, err
		}
	}
	return Result{User: got, OrgID: c.OrgID, Next: st.Next, Created: created}, nil
}

// refuse audits a refused login of an organization and returns err.
func (s *Service) refuse(ctx context.Context, c Config, cb Callback, email, reason string, err error) error {
	actor := authz.Actor{Kind: authz.ActorUser, OrgID: c.OrgID, Name: email, IP: cb.IP, UserAgent: cb.UserAgent}
	if aerr := s.store.AppendAudit(context.WithoutCancel(ctx), audit.New(actor, "user-login-refused",
		map[string]any{"authMethod": "oidc", "email": email, "reason": reason})); aerr != nil {
		return fmt.Errorf("%w (and its audit: %v)", err, aerr)
	}
	return err
}

// domainAllowed reports whether email's domain is in the comma-separated
// list (empty: every domain).
func domainAllowed(list, email string) bool {
	if strings.TrimSpace(list) == "" {
		return true
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	for _, d := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(d), domain) {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
