package identity

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// Token types in the authTokenType claim, as Infisical names them.
const (
	TypeIdentityAccessToken = "identityAccessToken"
	TypeUserAccessToken     = "accessToken"
)

// MaxTokenAge bounds every token's lifetime, so that every JWT has an exp:
// a token whose TTL is 0 ("unlimited") lives this long and is renewable.
const MaxTokenAge = 90 * 24 * time.Hour

// claims are the JWT claims of both token kinds; clients treat tokens as opaque.
type claims struct {
	AuthTokenType         string `json:"authTokenType"`
	IdentityID            string `json:"identityId,omitempty"`
	IdentityAccessTokenID string `json:"identityAccessTokenId,omitempty"`
	ClientSecretID        string `json:"clientSecretId,omitempty"`
	AuthMethod            string `json:"authMethod,omitempty"`
	UserID                string `json:"userId,omitempty"`
	TokenVersionID        string `json:"tokenVersionId,omitempty"`
	OrganizationID        string `json:"organizationId,omitempty"`
	jwt.RegisteredClaims
}

type signer struct{ key []byte }

// sign issues c valid from now for lifetime, both in whole seconds as JWT
// times are, so exp-iat equals the expiresIn reported to the client.
func (s signer) sign(c claims, now time.Time, lifetime time.Duration) (string, error) {
	now = now.Truncate(time.Second)
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(lifetime.Truncate(time.Second)))
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if err != nil {
		return "", errs.Internalf(err, "sign token")
	}
	return tok, nil
}

// tokenExpired and tokenMalformed are Infisical's answers for JWT failures (403 TokenError).
func tokenExpired() error {
	return errs.Forbiddenf("Your token has expired. Please re-authenticate.").WithCode("TokenError")
}

func tokenMalformed() error {
	return errs.Forbiddenf("The provided access token is malformed. Please re-authenticate.").WithCode("TokenError")
}

func (s signer) parse(tok string, now time.Time) (claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return c, tokenExpired()
	default:
		return c, tokenMalformed()
	}
}

// lifetime is how long a new token lives: its TTL (or MaxTokenAge when
// unlimited), never past createdAt+maxTTL.
func lifetime(ttl, maxTTL int64, createdAt, now time.Time) time.Duration {
	d := MaxTokenAge
	if ttl > 0 && time.Duration(ttl)*time.Second < d {
		d = time.Duration(ttl) * time.Second
	}
	if maxTTL > 0 {
		if left := createdAt.Add(time.Duration(maxTTL) * time.Second).Sub(now); left < d {
			d = left
		}
	}
	return d
}
