// Package totp is the "totp" dynamic-secret provider: each lease carries the
// current RFC 6238 one-time code of a stored TOTP secret and the seconds until
// it changes. Nothing is created in a target, so revocation is a no-op.
package totp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
)

func init() {
	provider.Register(provider.Registration{Type: "totp", New: New, Inputs: Inputs})
}

// Inputs are the provider's inputs, as Infisical names them.
var Inputs = []provider.Input{
	{Name: "configType", Required: true, Doc: `"url" (an otpauth:// URL) or "manual" (secret, algorithm, digits, period)`},
	{Name: "url", Secret: true, Doc: "otpauth://totp/... URL with a base32 secret; its algorithm, digits and period parameters are honoured"},
	{Name: "secret", Secret: true, Doc: "base32 secret (manual)"},
	{Name: "algorithm", Doc: `"sha1" (default), "sha256" or "sha512" (manual)`},
	{Name: "digits", Doc: "code length, 6 (default) to 10 (manual)"},
	{Name: "period", Doc: "seconds each code is valid, default 30 (manual)"},
}

// Config is the decoded inputs.
type Config struct {
	ConfigType string       `json:"configType"`
	URL        string       `json:"url,omitempty"`
	Secret     string       `json:"secret,omitempty"`
	Algorithm  string       `json:"algorithm,omitempty"`
	Digits     *json.Number `json:"digits,omitempty"`
	Period     *json.Number `json:"period,omitempty"`
}

// TOTP is a configured provider.
type TOTP struct {
	key    []byte
	alg    string
	digits int
	period int
	now    func() time.Time
}

var _ provider.Provider = (*TOTP)(nil)

// New decodes and validates the inputs.
func New(inputs json.RawMessage) (provider.Provider, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(inputs))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("totp inputs: %v", err)
	}
	t, err := c.parse()
	if err != nil {
		return nil, errors.New("totp inputs: " + err.Error())
	}
	return t, nil
}

func (c Config) parse() (*TOTP, error) {
	t := &TOTP{alg: "sha1", digits: 6, period: 30, now: time.Now}
	secret, alg, digits, period := c.Secret, c.Algorithm, "", ""
	if c.Digits != nil {
		digits = c.Digits.String()
	}
	if c.Period != nil {
		period = c.Period.String()
	}
	switch c.ConfigType {
	case "url":
		if c.Secret != "" || c.Algorithm != "" || c.Digits != nil || c.Period != nil {
			return nil, errors.New(`with configType "url" the secret, algorithm, digits and period come from the URL`)
		}
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
			return nil, errors.New("url must be an otpauth://totp/ URL")
		}
		q := u.Query()
		secret, alg, digits, period = q.Get("secret"), q.Get("algorithm"), q.Get("digits"), q.Get("period")
		if secret == "" {
			return nil, errors.New("url has no secret parameter")
		}
	case "manual":
		if c.URL != "" {
			return nil, errors.New(`url is only used with configType "url"`)
		}
		if secret == "" {
			return nil, errors.New("secret is required")
		}
	default:
		return nil, fmt.Errorf(`configType must be "url" or "manual", not %q`, c.ConfigType)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(strings.ReplaceAll(secret, " ", ""), "=")))
	if err != nil || len(key) == 0 {
		return nil, errors.New("secret is not valid base32")
	}
	t.key = key
	if alg != "" {
		t.alg = strings.ToLower(alg)
		if newHash(t.alg) == nil {
			return nil, fmt.Errorf(`algorithm must be sha1, sha256 or sha512, not %q`, alg)
		}
	}
	if digits != "" {
		n, err := strconv.Atoi(digits)
		if err != nil || n < 6 || n > 10 {
			return nil, errors.New("digits must be a whole number from 6 to 10")
		}
		t.digits = n
	}
	if period != "" {
		n, err := strconv.Atoi(period)
		if err != nil || n < 1 || n > 86400 {
			return nil, errors.New("period must be a whole number of seconds from 1 to 86400")
		}
		t.period = n
	}
	return t, nil
}

func newHash(alg string) func() hash.Hash {
	switch alg {
	case "sha1":
		return sha1.New
	case "sha256":
		return sha256.New
	case "sha512":
		return sha512.New
	}
	return nil
}

// Code is the RFC 6238 code for key at time at, and the whole seconds until
// the next code.
func Code(key []byte, alg string, digits, period int, at time.Time) (code string, remaining int) {
	unix := at.Unix()
	counter := uint64(unix / int64(period))
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(newHash(alg), key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := uint64(binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff)
	mod := uint64(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod), period - int(unix%int64(period))
}

// Validate has nothing to reach.
func (t *TOTP) Validate(context.Context) error { return nil }

// Create returns the current code.
func (t *TOTP) Create(context.Context, provider.CreateRequest) (provider.CreateResponse, error) {
	code, rem := Code(t.key, t.alg, t.digits, t.period, t.now())
	return provider.CreateResponse{Data: map[string]any{"TOTP": code, "TIME_REMAINING": rem}}, nil
}

// Revoke does nothing: a code expires by itself.
func (t *TOTP) Revoke(context.Context, provider.RevokeRequest) error { return nil }
