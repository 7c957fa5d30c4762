package ldap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/lockbox-dev/lockbox/internal/dynamic/provider"
	"github.com/lockbox-dev/lockbox/internal/testsvc"
)

const creation = `dn: uid={{Username}},ou=people,dc=lockbox,dc=test
objectClass: inetOrgPerson
uid: {{Username}}
cn: {{Username}}
sn: lease
userPassword: {{Password}}

dn: cn=readers,ou=people,dc=lockbox,dc=test
changetype: modify
add: member
member: uid={{Username}},ou=people,dc=lockbox,dc=test
-
`

const revocation = `dn: cn=readers,ou=people,dc=lockbox,dc=test
changetype: modify
delete: member
member: uid={{Username}},ou=people,dc=lockbox,dc=test
-

dn: uid={{Username}},ou=people,dc=lockbox,dc=test
changetype: delete
`

func newProvider(t *testing.T, in map[string]any) provider.Provider {
	t.Helper()
	b, _ := json.Marshal(in)
	p, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// withReaders adds the group the templates put users in.
func withReaders(t *testing.T, srv *testsvc.LDAP) {
	t.Helper()
	c, err := srv.Bind(srv.BindDN, srv.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	g := goldap.NewAddRequest("cn=readers,"+srv.People, nil)
	g.Attribute("objectClass", []string{"groupOfNames"})
	g.Attribute("cn", []string{"readers"})
	g.Attribute("member", []string{srv.BindDN})
	if err := c.Add(g); err != nil {
		t.Fatal(err)
	}
}

func members(t *testing.T, srv *testsvc.LDAP) []string {
	t.Helper()
	c, err := srv.Bind(srv.BindDN, srv.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(goldap.NewSearchRequest("cn=readers,"+srv.People, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"member"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries[0].GetAttributeValues("member")
}

func TestDynamicUserBindsThenIsGone(t *testing.T) {
	srv := testsvc.StartLDAP(t)
	withReaders(t, srv)
	ctx := context.Background()
	p := newProvider(t, map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass,
		"creationLdif": creation, "revocationLdif": revocation})
	if err := p.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	user, pass := "lbx"+testsvc.Suffix(), "Pw"+testsvc.Suffix()
	dn := "uid=" + user + "," + srv.People
	res, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["USERNAME"] != user || res.Data["PASSWORD"] != pass ||
		!slices.Equal(res.Data["DN_ARRAY"].([]string), []string{dn, "cn=readers," + srv.People}) {
		t.Fatalf("data %v", res.Data)
	}
	c, err := srv.Bind(dn, pass)
	if err != nil {
		t.Fatalf("lease credentials do not bind: %v", err)
	}
	c.Close()
	if _, err := srv.Bind(dn, "wrong"); err == nil {
		t.Fatal("wrong password binds")
	}
	if !slices.Contains(members(t, srv), dn) {
		t.Fatal("not added to the group")
	}
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatal(err)
	}
	if srv.Exists(t, dn) || slices.Contains(members(t, srv), dn) {
		t.Fatal("entry or membership left after revoke")
	}
	if _, err := srv.Bind(dn, pass); err == nil {
		t.Fatal("revoked credentials still bind")
	}
	// Revoking again (entry and membership already gone) is success.
	if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil {
		t.Fatal(err)
	}
}

// A creation that fails part-way runs the rollback LDIF.
func TestRollbackOnPartialCreation(t *testing.T) {
	srv := testsvc.StartLDAP(t) // no readers group: the second record fails
	ctx := context.Background()
	rollback := "dn: uid={{Username}},ou=people,dc=lockbox,dc=test\nchangetype: delete\n"
	user := "lbx" + testsvc.Suffix()
	dn := "uid=" + user + "," + srv.People
	for _, rb := range []string{"", rollback} {
		in := map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass,
			"creationLdif": creation, "revocationLdif": revocation}
		if rb != "" {
			in["rollbackLdif"] = rb
		}
		p := newProvider(t, in)
		_, err := p.Create(ctx, provider.CreateRequest{Username: user, Password: "pw"})
		if err == nil || !strings.Contains(err.Error(), "record 2") {
			t.Fatalf("creation should fail at record 2: %v", err)
		}
		if strings.Contains(err.Error(), srv.BindPass) {
			t.Fatal("error leaks the bind password")
		}
		if got := srv.Exists(t, dn); got != (rb == "") {
			t.Fatalf("rollback %q: entry exists = %v", rb, got)
		}
		if rb == "" { // clean up for the next round, as the lease worker would
			if err := p.Revoke(ctx, provider.RevokeRequest{Username: user}); err != nil || srv.Exists(t, dn) {
				t.Fatalf("revoke after failed creation: %v", err)
			}
		}
	}
}

func TestStaticRotation(t *testing.T) {
	srv := testsvc.StartLDAP(t)
	ctx := context.Background()
	dn := "uid=svc," + srv.People
	c, err := srv.Bind(srv.BindDN, srv.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"svc"})
	add.Attribute("sn", []string{"svc"})
	add.Attribute("userPassword", []string{"initial"})
	if err := c.Add(add); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p := newProvider(t, map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass, "credentialType": "static",
		"rotationLdif": "dn: " + dn + "\nchangetype: modify\nreplace: userPassword\nuserPassword: {{Password}}\n-\n"})
	res, err := p.Create(ctx, provider.CreateRequest{Username: "ignored", Password: "Rotated1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["USERNAME"] != dn {
		t.Fatalf("data %v", res.Data)
	}
	if _, err := srv.Bind(dn, "initial"); err == nil {
		t.Fatal("old password still binds")
	}
	if c, err := srv.Bind(dn, "Rotated1"); err != nil {
		t.Fatalf("rotated password: %v", err)
	} else {
		c.Close()
	}
	if err := p.Revoke(ctx, provider.RevokeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Bind(dn, "Rotated1"); err == nil {
		t.Fatal("the lease's password still binds after revoke")
	}
}

func TestStartTLS(t *testing.T) {
	cert := testsvc.NewCert(t)
	srv := testsvc.StartLDAP(t, testsvc.LDAPTLS(cert))
	ctx := context.Background()
	in := map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass, "ca": cert.CAPEM,
		"creationLdif": creation, "revocationLdif": revocation}
	if err := newProvider(t, in).Validate(ctx); err != nil {
		t.Fatalf("StartTLS with the CA: %v", err)
	}
	in["ca"] = testsvc.NewCert(t).CAPEM // another CA: the server is not trusted
	if err := newProvider(t, in).Validate(ctx); err == nil || !strings.Contains(err.Error(), "StartTLS") {
		t.Fatalf("untrusted server: %v", err)
	}
}

func TestValidateWrongBindPassword(t *testing.T) {
	srv := testsvc.StartLDAP(t)
	p := newProvider(t, map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": "not-it-" + testsvc.Suffix(),
		"creationLdif": creation, "revocationLdif": revocation})
	err := p.Validate(context.Background())
	if err == nil || strings.Contains(err.Error(), "not-it-") {
		t.Fatalf("wrong bind password: %v", err)
	}
}

func TestInvalidInputs(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"url": "ldap://127.0.0.1:389", "binddn": "cn=admin,dc=x", "bindpass": "p",
			"creationLdif": creation, "revocationLdif": revocation}
	}
	for name, mutate := range map[string]func(map[string]any){
		"http url":           func(m map[string]any) { m["url"] = "http://127.0.0.1" },
		"url with path":      func(m map[string]any) { m["url"] = "ldap://127.0.0.1/dc=x" },
		"bad binddn":         func(m map[string]any) { m["binddn"] = "not a dn" },
		"no bindpass":        func(m map[string]any) { delete(m, "bindpass") },
		"no creation":        func(m map[string]any) { delete(m, "creationLdif") },
		"password in revoke": func(m map[string]any) { m["revocationLdif"] = "dn: uid={{Password}},dc=x\nchangetype: delete\n" },
		"unknown variable":   func(m map[string]any) { m["creationLdif"] = "dn: uid={{username}},dc=x\nobjectClass: top\n" },
		"url value": func(m map[string]any) {
			m["creationLdif"] = "dn: uid={{Username}},dc=x\njpegPhoto:< file:///etc/passwd\n"
		},
		"modrdn": func(m map[string]any) {
			m["revocationLdif"] = "dn: uid={{Username}},dc=x\nchangetype: modrdn\nnewrdn: uid=y\n"
		},
		"no dn":              func(m map[string]any) { m["creationLdif"] = "objectClass: top\n" },
		"static with create": func(m map[string]any) { m["credentialType"] = "static" },
		"unknown credential": func(m map[string]any) { m["credentialType"] = "ephemeral" },
		"rotation on dynamic": func(m map[string]any) {
			m["rotationLdif"] = "dn: uid=a,dc=x\nchangetype: modify\nreplace: userPassword\nuserPassword: {{Password}}\n-\n"
		},
		"ca not pem":    func(m map[string]any) { m["ca"] = "x" },
		"unknown field": func(m map[string]any) { m["bindPassword"] = "p" },
	} {
		in := base()
		mutate(in)
		b, _ := json.Marshal(in)
		if _, err := New(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEncodePassword(t *testing.T) {
	// "\"pw\"" in UTF-16LE is 22 00 70 00 77 00 22 00.
	if got := EncodePassword("pw"); got != "IgBwAHcAIgA=" {
		t.Fatalf("got %s", got)
	}
}

// TestUnreachableIsMarked: a failure to reach or bind to the directory is
// marked provider.ErrUnreachable (members are shown a fixed text); the
// directory's answer to a record, once bound, is not.
func TestUnreachableIsMarked(t *testing.T) {
	srv := testsvc.StartLDAP(t)
	ctx := context.Background()
	closed := fmt.Sprintf("ldap://127.0.0.1:%d", testsvc.FreePort(t))
	req := provider.CreateRequest{Username: "lbx" + testsvc.Suffix(), Password: "Pw" + testsvc.Suffix()}
	for name, in := range map[string]map[string]any{
		"closed port":    {"url": closed, "binddn": srv.BindDN, "bindpass": srv.BindPass},
		"wrong bindpass": {"url": srv.URL, "binddn": srv.BindDN, "bindpass": "wrong"},
	} {
		in["creationLdif"], in["revocationLdif"] = creation, revocation
		if _, err := newProvider(t, in).Create(ctx, req); !errors.Is(err, provider.ErrUnreachable) {
			t.Errorf("%s: %v, want it marked unreachable", name, err)
		}
	}
	// No readers group: the directory answers noSuchObject to the modify.
	_, err := newProvider(t, map[string]any{"url": srv.URL, "binddn": srv.BindDN, "bindpass": srv.BindPass,
		"creationLdif": creation, "revocationLdif": revocation}).Create(ctx, req)
	if err == nil || errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("the directory's answer: %v, want an error not marked unreachable", err)
	}
}
