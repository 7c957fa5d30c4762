package project

import (
	"crypto/rand"
	"strings"
	"unicode"
)

// ValidSlug reports whether s follows Infisical's slug rule: lowercase letters,
// digits and single hyphens between them, length lo..hi.
func ValidSlug(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	return Slugify(s) == s
}

// Slugify lowercases s and joins its runs of letters and digits with hyphens.
func Slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

// RandomSuffix returns n lowercase letters and digits, for making slugs unique.
func RandomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
