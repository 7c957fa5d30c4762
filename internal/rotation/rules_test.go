package rotation

import (
	"encoding/json"
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

func TestGenPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p := genPassword()
		if len(p) != 32 || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" || seen[p] {
			t.Fatalf("password %q", p)
		}
		seen[p] = true
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
		{"ldap-password", `{"dn":""}`, "parameters.dn"},
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
	p, err := parseParameters("redis-credentials", "cache", json.RawMessage(`{"permissionScope":"~app:* +get"}`))
	if err != nil || p.Username1 != "cache-1" || p.Username2 != "cache-2" {
		t.Fatalf("redis defaults %+v %v", p, err)
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
