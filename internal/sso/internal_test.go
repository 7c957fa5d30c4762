package sso

import "testing"

func TestDomainAllowed(t *testing.T) {
	for _, tc := range []struct {
		list, email string
		want        bool
	}{
		{"", "a@anything.example", true},
		{"example.com, corp.example", "a@example.com", true},
		{"example.com, corp.example", "a@CORP.example", true},
		{"example.com", "a@sub.example.com", false},
		{"example.com", "a@example.com.evil", false},
		{"example.com", "a@evilexample.com", false},
	} {
		if got := domainAllowed(tc.list, tc.email); got != tc.want {
			t.Errorf("domainAllowed(%q, %q) = %v", tc.list, tc.email, got)
		}
	}
}

func TestEmailVerifiedClaim(t *testing.T) {
	for v, want := range map[any]bool{true: true, "true": true, "TRUE": true, false: false, "false": false, nil: false, 1.0: false} {
		if got := (claims{EmailVerified: v}).verified(); got != want {
			t.Errorf("email_verified %v: %v", v, got)
		}
	}
}

func TestParseDomains(t *testing.T) {
	got, err := parseDomains(" Example.com ,, corp.example ")
	if err != nil || len(got) != 2 || got[0] != "example.com" || got[1] != "corp.example" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"a@b.c", "no-dot", "x.example/path", "two words.example"} {
		if _, err := parseDomains(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
