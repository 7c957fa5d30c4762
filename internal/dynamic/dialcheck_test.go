package dynamic_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	_ "github.com/lockbox-dev/lockbox/internal/dynamic/provider/all"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

// TestEveryProviderDialsThroughTheCheck: the target policy's address check
// runs on the address each provider actually dials, so a name that resolves
// elsewhere at connection time (DNS rebinding) cannot pass it. Proved with
// loopback only: the check denies 127.0.0.0/8 and ::1 and every provider,
// given "localhost", is refused before it talks to its server.
func TestEveryProviderDialsThroughTheCheck(t *testing.T) {
	sfx := testsvc.Suffix() // a fresh pool per run: no pooled connection skips the dial
	cases := map[string]map[string]any{
		"sql-database": {"client": "postgres", "host": "localhost", "port": 5432, "database": "postgres", "username": "postgres", "password": "dial-" + sfx},
		"redis":        {"host": "localhost", "port": 6379, "username": "dial" + sfx, "password": "x"},
		"rabbit-mq": {"host": "http://localhost", "port": 15672, "username": "guest", "password": "guest-" + sfx,
			"virtualHost": map[string]any{"name": "/", "permissions": map[string]any{"configure": "^$", "write": "^$", "read": "^$"}}},
		"ldap": {"url": "ldap://localhost:1", "binddn": "cn=admin,dc=example,dc=org", "bindpass": "x",
			"creationLdif":   "dn: cn={{Username}},dc=example,dc=org\nchangetype: add\nobjectClass: person\ncn: {{Username}}\nsn: x\nuserPassword: {{Password}}\n",
			"revocationLdif": "dn: cn={{Username}},dc=example,dc=org\nchangetype: delete\n"},
	}
	chk := &denyLoopback{}
	ctx := provider.WithChecker(context.Background(), chk)
	for typ, in := range cases {
		reg, ok := provider.Lookup(typ)
		if !ok {
			t.Fatalf("no provider %s", typ)
		}
		raw, _ := json.Marshal(in)
		p, err := reg.New(raw)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		chk.checked = nil
		err = p.Validate(ctx)
		if err == nil || !strings.Contains(err.Error(), errDenied.Error()) || len(chk.checked) == 0 {
			t.Errorf("%s: Validate = %v after checking %v; want the check's denial", typ, err, chk.checked)
		}
	}
}

var errDenied = errors.New("denied by the test's check")

type denyLoopback struct {
	mu      sync.Mutex
	checked []netip.Addr
}

func (d *denyLoopback) CheckAddr(a netip.Addr) error {
	d.mu.Lock()
	d.checked = append(d.checked, a)
	d.mu.Unlock()
	if a.Unmap().IsLoopback() {
		return errDenied
	}
	return nil
}
