package jwtcheck

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
)

// ParsePEMKey parses a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY") or
// certificate into an RSA, ECDSA or Ed25519 key.
func ParsePEMKey(s string) (crypto.PublicKey, error) {
	b, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if b == nil {
		return nil, errors.New("not a PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
	}
	if err != nil {
		return nil, err
	}
	return checkKey(k)
}

func checkKey(k any) (crypto.PublicKey, error) {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		return k, nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// JWKS is a JSON Web Key Set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one key of a set; only the members of public signing keys are read.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// MaxKeys bounds the keys read from one set.
const MaxKeys = 100

// Key returns the public key j describes.
func (j JWK) Key() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch j.Kty {
	case "RSA":
		n, err1 := dec(j.N)
		e, err2 := dec(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA key")
		}
		return checkKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())})
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		c, ok := curves[j.Crv]
		x, err1 := dec(j.X)
		y, err2 := dec(j.Y)
		if !ok || err1 != nil || err2 != nil {
			return nil, errors.New("bad EC key")
		}
		size := (c.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC key size")
		}
		return ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
	case "OKP":
		x, err := dec(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", j.Kty)
}

// keySet is a parsed set: keys by kid, and all of them.
type keySet struct {
	byKid map[string][]crypto.PublicKey
	all   []crypto.PublicKey
}

func parseSet(doc JWKS) (keySet, error) {
	s := keySet{byKid: map[string][]crypto.PublicKey{}}
	for i, j := range doc.Keys {
		if i >= MaxKeys {
			break
		}
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.Key()
		if err != nil {
			continue // a set may hold keys of other kinds; skip what we cannot use
		}
		s.byKid[j.Kid] = append(s.byKid[j.Kid], k)
		s.all = append(s.all, k)
	}
	if len(s.all) == 0 {
		return s, errors.New("the key set holds no usable signing key")
	}
	return s, nil
}

// Cache timings of a KeyCache.
const (
	KeysMaxAge     = time.Hour        // keys older than this are fetched again
	KeysMinRefresh = 30 * time.Second // at most one fetch per this, whatever the tokens say
	KeysStaleUse   = 24 * time.Hour   // keys still used when a refresh fails
	MaxKeysNoKid   = 10               // keys tried for a token without kid
	// KeysFetchTimeout bounds one fetch (an OIDC discovery and its key set),
	// whatever becomes of the login that started it.
	KeysFetchTimeout = 30 * time.Second
)

// KeyCache holds a JWKS fetched by Fetch: fetched on first use, again once
// KeysMaxAge old, and again when a token names a kid it does not hold, at
// most once per KeysMinRefresh. So a login with a known key fetches nothing,
// and tokens with made-up kids cannot make the server fetch in a loop.
type KeyCache struct {
	Fetch func(ctx context.Context) (JWKS, error)
	Now   func() time.Time

	fetching sync.Mutex // one fetch at a time

	mu        sync.Mutex
	set       keySet
	fetchedAt time.Time // of set; zero: none yet
	triedAt   time.Time // last fetch attempt
}

// Keys is a KeyFunc.
func (c *KeyCache) Keys(ctx context.Context, kid string) ([]crypto.PublicKey, error) {
	if ks, ok := c.lookup(kid, false); ok {
		return ks, nil
	}
	c.fetching.Lock()
	defer c.fetching.Unlock()
	if ks, ok := c.lookup(kid, false); ok { // fetched while we waited
		return ks, nil
	}
	now := c.Now()
	c.mu.Lock()
	recent := !c.triedAt.IsZero() && now.Sub(c.triedAt) < KeysMinRefresh
	c.mu.Unlock()
	var fetchErr error
	if !recent {
		c.mu.Lock()
		c.triedAt = now
		c.mu.Unlock()
		// The fetch is the cache's, not the caller's: a caller that goes
		// away must not fail it (and so keep every login out until the
		// next attempt is allowed). Its own limit bounds it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), KeysFetchTimeout)
		doc, err := c.Fetch(fctx)
		cancel()
		var set keySet
		if err == nil {
			set, err = parseSet(doc)
		}
		if err == nil {
			c.mu.Lock()
			c.set, c.fetchedAt = set, now
			c.mu.Unlock()
		}
		fetchErr = err
	}
	if ks, ok := c.lookup(kid, true); ok {
		return ks, nil
	}
	c.mu.Lock()
	have := len(c.set.all) > 0
	c.mu.Unlock()
	if !have {
		if fetchErr == nil {
			fetchErr = errors.New("no keys fetched yet (rate-limited)")
		}
		return nil, &authmethod.Refusal{Check: "signature", Message: "Access denied: the issuer's signing keys could not be fetched", Err: fetchErr}
	}
	if kid == "" {
		return nil, authmethod.Refuse("signature", "Access denied: the token names no key (kid) and the issuer has more than %d keys", MaxKeysNoKid)
	}
	return nil, &authmethod.Refusal{Check: "signature", Message: "Access denied: the token's signing key (kid) is not among the issuer's keys", Err: fetchErr}
}

// lookup finds kid's keys in fresh keys (or, with stale, in keys up to KeysStaleUse old).
func (c *KeyCache) lookup(kid string, stale bool) ([]crypto.PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetchedAt.IsZero() {
		return nil, false
	}
	age := c.Now().Sub(c.fetchedAt)
	if age > KeysMaxAge && !(stale && age < KeysStaleUse) {
		return nil, false
	}
	if kid == "" {
		if len(c.set.all) > MaxKeysNoKid {
			return nil, false
		}
		return c.set.all, true
	}
	if ks, ok := c.set.byKid[kid]; ok {
		return ks, true
	}
	// A token may name a kid the set does not (keys published without
	// one): those keys are tried, and the signature decides.
	ks, ok := c.set.byKid[""]
	return ks, ok
}
