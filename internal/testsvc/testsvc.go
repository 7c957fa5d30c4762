// Package testsvc gives tests the machine's real services (Redis, RabbitMQ with
// its management API) and a throwaway OpenLDAP slapd and OpenSSH sshd of their
// own. A missing service skips the test locally and fails it under CI=true.
package testsvc

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Need skips (or, under CI=true, fails) the test when err says a service is missing.
func Need(t testing.TB, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true (scripts/services prepares it): %v", what, err)
	}
	t.Skipf("%s unavailable: %v", what, err)
}

// Suffix is a random lower-case hex string for unique names.
func Suffix() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// Redis is the machine's Redis; its default user has no password.
func Redis(t testing.TB) (host string, port int) {
	t.Helper()
	Need(t, dial("127.0.0.1:6379"), "Redis at 127.0.0.1:6379")
	return "127.0.0.1", 6379
}

// RabbitMQ is the machine's RabbitMQ: AMQP on 5672 and the management API on
// 15672, both as guest/guest.
func RabbitMQ(t testing.TB) (amqpAddr, mgmtURL string) {
	t.Helper()
	Need(t, dial("127.0.0.1:5672"), "RabbitMQ at 127.0.0.1:5672")
	var err error
	for i := 0; i < 20; i++ {
		var req *http.Request
		req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:15672/api/whoami", nil)
		req.SetBasicAuth("guest", "guest")
		var res *http.Response
		if res, err = http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return "127.0.0.1:5672", "http://127.0.0.1:15672"
			}
			err = fmt.Errorf("GET /api/whoami: %s", res.Status)
		}
		time.Sleep(250 * time.Millisecond)
	}
	Need(t, err, "RabbitMQ management API at 127.0.0.1:15672 (rabbitmq-plugins enable rabbitmq_management)")
	return "", ""
}

// LDAP is a running throwaway slapd.
type LDAP struct {
	URL      string // ldap://127.0.0.1:<port>
	BindDN   string
	BindPass string
	BaseDN   string // holds ou=people, created empty
	People   string // ou=people,<BaseDN>
	cmd      *exec.Cmd
}

// LDAPOption changes the throwaway server.
type LDAPOption func(*ldapOpts)

type ldapOpts struct{ cert *Cert }

// LDAPTLS gives the server a certificate, for StartTLS on its ldap:// port.
func LDAPTLS(c Cert) LDAPOption { return func(o *ldapOpts) { o.cert = &c } }

// Stop kills the server (the test's cleanup does it too).
func (l *LDAP) Stop() {
	if l.cmd != nil && l.cmd.Process != nil {
		l.cmd.Process.Kill()
		l.cmd.Wait()
		l.cmd = nil
	}
}

// StartLDAP starts slapd from Debian's package with a fresh mdb database in a
// temporary directory on a free loopback port, seeded with the base entry and
// ou=people. It is killed and its directory removed at cleanup.
func StartLDAP(t testing.TB, opts ...LDAPOption) *LDAP {
	t.Helper()
	_, err := os.Stat("/usr/sbin/slapd")
	Need(t, err, "OpenLDAP slapd (Debian package slapd)")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := &LDAP{BaseDN: "dc=lockbox,dc=test", BindDN: "cn=admin,dc=lockbox,dc=test", BindPass: "admin-" + Suffix()}
	l.People = "ou=people," + l.BaseDN
	var o ldapOpts
	for _, f := range opts {
		f(&o)
	}
	tlsConf := ""
	if o.cert != nil {
		tlsConf = fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", o.cert.CAFile, o.cert.CertFile, o.cert.KeyFile)
	}
	conf := tlsConf + fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
`, dir, l.BaseDN, l.BindDN, l.BindPass)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	l.URL = "ldap://127.0.0.1:" + strconv.Itoa(port)
	// -d 0 keeps slapd in the foreground so the test owns the process.
	l.cmd = exec.Command("/usr/sbin/slapd", "-d", "0", "-f", filepath.Join(dir, "slapd.conf"), "-h", l.URL+"/")
	var out strings.Builder
	l.cmd.Stdout, l.cmd.Stderr = &out, &out
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(l.Stop)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for dial(addr) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := l.Bind(l.BindDN, l.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := ldap.NewAddRequest(l.BaseDN, nil)
	base.Attribute("objectClass", []string{"dcObject", "organization"})
	base.Attribute("dc", []string{"lockbox"})
	base.Attribute("o", []string{"lockbox"})
	people := ldap.NewAddRequest(l.People, nil)
	people.Attribute("objectClass", []string{"organizationalUnit"})
	people.Attribute("ou", []string{"people"})
	for _, r := range []*ldap.AddRequest{base, people} {
		if err := c.Add(r); err != nil {
			t.Fatalf("seed %s: %v", r.DN, err)
		}
	}
	return l
}

// Bind opens a connection to the server bound as dn.
func (l *LDAP) Bind(dn, pass string) (*ldap.Conn, error) {
	c, err := ldap.DialURL(l.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return nil, err
	}
	if err := c.Bind(dn, pass); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Exists reports whether the entry dn exists (searched as the admin).
func (l *LDAP) Exists(t testing.TB, dn string) bool {
	t.Helper()
	c, err := l.Bind(l.BindDN, l.BindPass)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"dn"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// RabbitAPI sends one request to the machine's RabbitMQ management API as
// guest and returns the status.
func RabbitAPI(t testing.TB, method, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:15672/api"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
