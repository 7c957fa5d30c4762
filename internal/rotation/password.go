package rotation

import (
	"crypto/rand"
	"encoding/json"
	"math/big"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// PasswordRequirements shape the passwords a rotation generates
// (Infisical's parameters.passwordRequirements): Length characters, at least
// the Required count of each class; the rest is drawn from the classes with
// a non-zero count. Symbols come from AllowedSymbols.
type PasswordRequirements struct {
	Length         int
	Lowercase      int
	Uppercase      int
	Digits         int
	Symbols        int
	AllowedSymbols string
}

// DefaultPasswordRequirements is Infisical's default: 48 characters with at
// least one lowercase letter, one uppercase letter and one digit.
var DefaultPasswordRequirements = PasswordRequirements{Length: 48, Lowercase: 1, Uppercase: 1, Digits: 1, AllowedSymbols: defaultSymbols}

const (
	defaultSymbols = "-_.~!*"
	lowerChars     = "abcdefghijklmnopqrstuvwxyz"
	upperChars     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars     = "0123456789"
	// unsafeSymbols are never put in a password: they end or escape the
	// quoted literal a SQL statement or an AD unicodePwd carries it in.
	unsafeSymbols = `'"\` + "`"
)

// parsePasswordRequirements decodes and checks raw (absent: nil, meaning
// the default), with Infisical's rules and messages.
func parsePasswordRequirements(raw json.RawMessage) (*PasswordRequirements, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var in struct {
		Length   *int `json:"length"`
		Required *struct {
			Digits    *int `json:"digits"`
			Lowercase *int `json:"lowercase"`
			Uppercase *int `json:"uppercase"`
			Symbols   *int `json:"symbols"`
		} `json:"required"`
		AllowedSymbols *string `json:"allowedSymbols"`
	}
	const f = "parameters.passwordRequirements"
	if err := decodeStrict(raw, f, &in); err != nil {
		return nil, errs.Fieldf(f, "%s must be an object {length, required: {digits, lowercase, uppercase, symbols}, allowedSymbols}", f)
	}
	if in.Length == nil {
		return nil, errs.Fieldf(f+".length", "%s.length is required", f)
	}
	if in.Required == nil || in.Required.Digits == nil || in.Required.Lowercase == nil || in.Required.Uppercase == nil || in.Required.Symbols == nil {
		return nil, errs.Fieldf(f+".required", "%s.required must give digits, lowercase, uppercase and symbols", f)
	}
	p := PasswordRequirements{Length: *in.Length, Digits: *in.Required.Digits, Lowercase: *in.Required.Lowercase,
		Uppercase: *in.Required.Uppercase, Symbols: *in.Required.Symbols, AllowedSymbols: defaultSymbols}
	if in.AllowedSymbols != nil && *in.AllowedSymbols != "" {
		p.AllowedSymbols = *in.AllowedSymbols
	}
	return &p, p.check()
}

func (p PasswordRequirements) check() error {
	const f = "parameters.passwordRequirements"
	if p.Length < 1 {
		return errs.Fieldf(f+".length", "Password length must be a positive number")
	}
	if p.Length >= 250 {
		return errs.Fieldf(f+".length", "Password length must be less than 250")
	}
	for name, n := range map[string]int{"digits": p.Digits, "lowercase": p.Lowercase, "uppercase": p.Uppercase, "symbols": p.Symbols} {
		if n < 0 {
			return errs.Fieldf(f+".required."+name, "%s count must be non-negative", strings.ToUpper(name[:1])+name[1:])
		}
		if n > p.Length {
			// Each count bounded first, so that their sum cannot wrap
			// (two of 2^63-1 and a 3 summed to 1 and Generate spun).
			return errs.Fieldf(f+".required", "Sum of required characters cannot exceed the total length")
		}
	}
	if p.Digits+p.Lowercase+p.Uppercase+p.Symbols == 0 {
		return errs.Fieldf(f+".required", "At least one character type must be required")
	}
	if p.Digits+p.Lowercase+p.Uppercase+p.Symbols > p.Length {
		return errs.Fieldf(f+".required", "Sum of required characters cannot exceed the total length")
	}
	if len(p.AllowedSymbols) > 64 {
		return errs.Fieldf(f+".allowedSymbols", "allowedSymbols must be at most 64 characters")
	}
	for _, r := range p.AllowedSymbols {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(lowerChars+upperChars+digitChars+unsafeSymbols, r) {
			return errs.Fieldf(f+".allowedSymbols", "allowedSymbols may hold only printable ASCII punctuation other than quotes, backslash and backtick (not %q)", r)
		}
	}
	return nil
}

// classes are the character sets and required counts of p.
func (p PasswordRequirements) classes() [4]struct {
	chars string
	n     int
} {
	return [4]struct {
		chars string
		n     int
	}{{lowerChars, p.Lowercase}, {upperChars, p.Uppercase}, {digitChars, p.Digits}, {p.AllowedSymbols, p.Symbols}}
}

// Generate is a random password meeting p: the required characters of each
// class, the rest from the classes required at all, shuffled, every choice
// uniform (crypto/rand).
func (p PasswordRequirements) Generate() string {
	out := make([]byte, 0, p.Length)
	pool := ""
	for _, c := range p.classes() {
		if c.n > 0 && c.chars != "" {
			pool += c.chars
			for range min(c.n, p.Length) { // check() bounds c.n; a stored value is not trusted to
				out = append(out, c.chars[randN(len(c.chars))])
			}
		}
	}
	for len(out) < p.Length {
		out = append(out, pool[randN(len(pool))])
	}
	for i := len(out) - 1; i > 0; i-- {
		j := randN(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// Satisfied reports whether password meets p (tests; the check of a stored
// requirement against what it produced).
func (p PasswordRequirements) Satisfied(password string) bool {
	if len(password) != p.Length {
		return false
	}
	pool := ""
	for _, c := range p.classes() {
		if c.n > 0 {
			pool += c.chars
		}
		n := 0
		for i := range len(password) {
			if strings.IndexByte(c.chars, password[i]) >= 0 {
				n++
			}
		}
		if n < c.n {
			return false
		}
	}
	for i := range len(password) {
		if strings.IndexByte(pool, password[i]) < 0 {
			return false
		}
	}
	return true
}

func randN(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return int(v.Int64())
}

// safePassword reports whether a generated password can go into every
// target's statement: printable ASCII without quotes or backslashes.
func safePassword(pw string) error {
	for _, r := range pw {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(unsafeSymbols, r) {
			return errs.BadRequest("the generated password holds a character lockbox does not send to a target")
		}
	}
	return nil
}
