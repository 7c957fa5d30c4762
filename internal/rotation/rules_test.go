package rotation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

func TestNextAt(t *testing.T) {
	from := time.Date(2026, 1, 31, 22, 10, 0, 0, time.FixedZone("x", 3600))
	got := nextAt(from, 30, 3, 15)
	if want := time.Date(2026, 3, 2, 3, 15, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("nextAt = %v, want %v", got, want)
	}
}

// TestPasswordRequirements: generated passwords meet their requirements
// (many samples each, with the classes actually present counted), are
// never repeated, and use only the classes required; bad requirements are
// refused with Infisical's messages.
func TestPasswordRequirements(t *testing.T) {
	cases := []string{
		``, // the default: 48, one of lower, upper, digit
		`{"length":12,"required":{"digits":3,"lowercase":0,"uppercase":0,"symbols":2},"allowedSymbols":"#$%"}`,
		`{"length":1,"required":{"digits":0,"lowercase":1,"uppercase":0,"symbols":0}}`,
		`{"length":249,"required":{"digits":60,"lowercase":60,"uppercase":60,"symbols":60}}`,
		`{"length":20,"required":{"digits":0,"lowercase":0,"uppercase":0,"symbols":20},"allowedSymbols":"!"}`,
		`{"length":16,"required":{"digits":16,"lowercase":0,"uppercase":0,"symbols":0}}`,
	}
	for _, c := range cases {
		req, err := parsePasswordRequirements(json.RawMessage(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		p := DefaultPasswordRequirements
		if req != nil {
			p = *req
		}
		seen := map[string]bool{}
		for range 2000 {
			pw := p.Generate()
			if !p.Satisfied(pw) || safePassword(pw) != nil {
				t.Fatalf("%s: password %q does not meet its requirements", c, pw)
			}
			// Counted independently of Satisfied.
			var lo, up, dg, sy int
			for _, r := range pw {
				switch {
				case r >= 'a' && r <= 'z':
					lo++
				case r >= 'A' && r <= 'Z':
					up++
				case r >= '0' && r <= '9':
					dg++
				case strings.ContainsRune(p.AllowedSymbols, r):
					sy++
				default:
					t.Fatalf("%s: %q holds %q", c, pw, r)
				}
			}
			if len(pw) != p.Length || lo < p.Lowercase || up < p.Uppercase || dg < p.Digits || sy < p.Symbols ||
				(p.Lowercase == 0 && lo > 0) || (p.Uppercase == 0 && up > 0) || (p.Digits == 0 && dg > 0) || (p.Symbols == 0 && sy > 0) {
				t.Fatalf("%s: %q has %d lower %d upper %d digits %d symbols", c, pw, lo, up, dg, sy)
			}
			if len(pw) >= 12 && len(p.AllowedSymbols) > 1 && seen[pw] {
				t.Fatalf("%s: %q generated twice", c, pw)
			}
			seen[pw] = true
		}
	}
	bad := []struct{ in, msg string }{
		{`{"length":0,"required":{"digits":0,"lowercase":1,"uppercase":0,"symbols":0}}`, "Password length must be a positive number"},
		{`{"length":250,"required":{"digits":0,"lowercase":1,"uppercase":0,"symbols":0}}`, "Password length must be less than 250"},
		{`{"length":10,"required":{"digits":0,"lowercase":0,"uppercase":0,"symbols":0}}`, "At least one character type must be required"},
		{`{"length":10,"required":{"digits":5,"lowercase":5,"uppercase":1,"symbols":0}}`, "Sum of required characters cannot exceed the total length"},
		{`{"length":10,"required":{"digits":-1,"lowercase":5,"uppercase":1,"symbols":0}}`, "Digits count must be non-negative"},
		{`{"length":10,"required":{"digits":1,"lowercase":1,"uppercase":1,"symbols":1},"allowedSymbols":"'"}`, "allowedSymbols"},
		{`{"length":10,"required":{"digits":1,"lowercase":1,"uppercase":1,"symbols":1},"allowedSymbols":"a!"}`, "allowedSymbols"},
		{`{"length":10,"required":{"digits":1,"lowercase":1,"uppercase":1,"symbols":1},"allowedSymbols":"\\"}`, "allowedSymbols"},
		{`{"length":10}`, "required"},
		{`{"required":{"digits":1,"lowercase":1,"uppercase":1,"symbols":1}}`, "length is required"},
		{`"long"`, "must be an object"},
		// Counts whose sum wraps to 1 (it spun in Generate, never answering).
		{`{"length":48,"required":{"digits":9223372036854775807,"lowercase":9223372036854775807,"uppercase":3,"symbols":0}}`,
			"Sum of required characters cannot exceed the total length"},
		{`{"length":48,"required":{"digits":4611686018427387904,"lowercase":4611686018427387904,"uppercase":4611686018427387904,"symbols":4611686018427387905}}`,
			"Sum of required characters cannot exceed the total length"},
	}
	for _, b := range bad {
		_, err := parsePasswordRequirements(json.RawMessage(b.in))
		if errs.KindOf(err) != errs.Validation || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%s: got %v, want a validation failure saying %q", b.in, err, b.msg)
		}
	}
}

func BenchmarkGeneratePassword(b *testing.B) {
	for b.Loop() {
		DefaultPasswordRequirements.Generate()
	}
}

func TestParametersAreChecked(t *testing.T) {
	bad := []struct{ typ, params, field string }{
		{"postgres-credentials", `{"username1":"a","username2":"a"}`, "parameters.username2"},
		{"postgres-credentials", `{"username1":"a\"; DROP ROLE x; --","username2":"b"}`, "parameters.username1"},
		{"mysql-credentials", `{"username1":"a' OR '1","username2":"b"}`, "parameters.username1"},
		{"postgres-credentials", `{"username1":"a","username2":"b","extra":1}`, "parameters"},
		{"redis-credentials", `{"permissionScope":"~* >known"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* resetpass"}`, "parameters.permissionScope"},
		{"redis-credentials", `{}`, "parameters.permissionScope"},
		// No administration commands for users whose passwords readers see.
		{"redis-credentials", `{"permissionScope":"~* +@all"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* allcommands"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@admin"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@DANGEROUS"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +get +ACL|setuser"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +config"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +client|kill"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@all -@admin"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* -@admin -@dangerous +@all"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@all -@admin -@dangerous +acl"}`, "parameters.permissionScope"},
		// Other categories hold administration commands too, and selectors
		// would carry rules past the check.
		{"redis-credentials", `{"permissionScope":"~* +@slow"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@connection"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@write"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +@all -@admin -@dangerous +@slow"}`, "parameters.permissionScope"},
		// FUNCTION LOAD REPLACE is @write and @slow, not @admin or @dangerous.
		{"redis-credentials", `{"permissionScope":"~own:* +@all -@admin -@dangerous"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~own:* +@write -@admin -@dangerous"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* (+@all ~*)"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* (+acl)"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +flushdb"}`, "parameters.permissionScope"},
		{"redis-credentials", `{"permissionScope":"~* +client|list"}`, "parameters.permissionScope"},
		{"ldap-password", `{"dn":""}`, "parameters.dn"},
	}
	// Redis takes time that grows faster than a scope's key patterns to
	// apply one: at most MaxScopeRules rules and MaxScopeBytes bytes.
	many := make([]string, MaxScopeRules+1)
	for i := range many {
		many[i] = fmt.Sprintf("~k%d:*", i)
	}
	wide := make([]string, MaxScopeRules)
	for i := range wide {
		wide[i] = fmt.Sprintf("~%040d:*", i) // 44 bytes a rule, below the 256 of one
	}
	long := strings.Join(wide, " ")
	for _, sc := range []string{strings.Join(many, " "), long} {
		bad = append(bad, struct{ typ, params, field string }{"redis-credentials", `{"permissionScope":"` + sc + `"}`, "parameters.permissionScope"})
	}
	for _, c := range bad {
		_, err := parseParameters(c.typ, "n", json.RawMessage(c.params))
		e, ok := err.(*errs.Error)
		var fields []string
		if ok {
			fields, _ = e.Details.([]string)
		}
		if !ok || e.Kind != errs.Validation || strings.Join(fields, ".") != c.field {
			t.Errorf("%s %s: %v, want a 422 on %s", c.typ, c.params, err, c.field)
		}
	}
	p, err := parseParameters("redis-credentials", "cache", json.RawMessage(`{"permissionScope":"~app:* +get +client|setname +@read"}`))
	if err != nil || p.Username1 != "cache-1" || p.Username2 != "cache-2" {
		t.Fatalf("redis defaults %+v %v", p, err)
	}
	for _, ok := range []string{strings.Join(many[:MaxScopeRules], " "), "~* &* +@all -@admin -@dangerous -@scripting", "~* +@write +@slow -@dangerous -@scripting -@admin", "~app:* +@read +@hash +client|setname"} {
		if _, err := parseParameters("redis-credentials", "cache", json.RawMessage(`{"permissionScope":"`+ok+`"}`)); err != nil {
			t.Fatalf("scope %q: %v", ok, err)
		}
	}
	if _, err := parseMapping("postgres-credentials", json.RawMessage(`{"username":"X","password":"X"}`)); err == nil {
		t.Fatal("one secret for both user and password accepted")
	}
	if err := checkSchedule(0, 0, 0); err == nil {
		t.Fatal("rotationInterval 0 accepted")
	}
	if err := checkSchedule(1, 24, 0); err == nil {
		t.Fatal("hour 24 accepted")
	}
}
