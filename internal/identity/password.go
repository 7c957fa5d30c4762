package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// argon2id parameters (OWASP's second recommendation: 19 MiB, 2 passes, 1 lane).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash in the PHC string format. It runs
// unthrottled: servers go through a PasswordHasher.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// CheckPassword reports whether pw matches hash, in constant time. It runs
// unthrottled: servers take a PasswordHasher slot around it.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a user does not exist, so a login costs the
// same whether or not the email is known.
//
// It is made on first use, not at package initialisation, where it cost every
// CLI command ~100 ms of argon2id before doing anything. Its password is
// random, drawn then: nobody can know it (a login refuses a user without a
// password whatever the check says, as well).
var dummyHash = sync.OnceValue(func() string { return HashPassword(rand.Text()) })

// hashToCheck is the hash a password login checks for the user found (err
// from the lookup), and whether a match is a login (real). It is the dummy
// when there is no user, and also when the account has no password yet
// (invited, or SSO only): checking "" returns at once, and that speed told
// anyone which e-mail addresses have such an account. A dummy's match is
// never a login, whatever its password.
func hashToCheck(u User, err error) (hash string, real bool) {
	if err != nil || u.ID == "" || u.PasswordHash == "" {
		return dummyHash(), false
	}
	return u.PasswordHash, true
}

// DefaultPasswordHashConcurrency is how many argon2id hashes run at once
// unless configured: each holds argonMemory (19 MiB) while it runs.
const DefaultPasswordHashConcurrency = 4

// passwordHashWait is how long a password check waits for a free slot before
// it is refused as rate limited.
const passwordHashWait = 100 * time.Millisecond

// PasswordHasher runs argon2id with at most a fixed number of hashes at once,
// so unauthenticated requests cannot exhaust memory. A login that finds every
// slot busy for passwordHashWait is refused with errs.RateLimited. The zero
// value is not usable; use NewPasswordHasher.
type PasswordHasher struct {
	slots chan struct{}
}

// NewPasswordHasher returns a hasher running at most n hashes at once (n < 1 means 1).
func NewPasswordHasher(n int) *PasswordHasher {
	return &PasswordHasher{slots: make(chan struct{}, max(n, 1))}
}

// Acquire takes a hashing slot, waiting briefly, and returns the function
// that gives it back. It reports errs.RateLimited when no slot frees in time.
func (h *PasswordHasher) Acquire(ctx context.Context) (release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, passwordHashWait)
	defer cancel()
	return h.acquire(ctx)
}

// acquire waits for a slot as long as ctx lives.
func (h *PasswordHasher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
	default:
		select {
		case h.slots <- struct{}{}:
		case <-ctx.Done():
			e := errs.RateLimitedf("Too many concurrent password logins, please try again shortly")
			e.RetryAfter = 1
			return nil, e
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-h.slots }) }, nil
}

// Hash returns an argon2id hash of pw, holding a slot while it runs. It
// waits for a slot as long as ctx lives (it serves bootstrap, which runs once
// per instance); waiting costs no hashing memory.
func (h *PasswordHasher) Hash(ctx context.Context, pw string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(pw), nil
}
