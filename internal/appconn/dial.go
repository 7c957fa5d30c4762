package appconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// DialTimeout bounds one connection attempt and the work done on it.
const DialTimeout = 15 * time.Second

// Redact removes the given secrets, and anything shaped like URL
// credentials, from a driver's error text. A server may echo a statement cut
// short (MySQL's "near '...'" keeps 80 characters), leaving part of a
// password: text still holding any 8 consecutive characters of a secret is
// withheld whole.
func Redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	for _, s := range secrets {
		for i := 0; i+partial <= len(s); i++ {
			if strings.Contains(msg, s[i:i+partial]) {
				return "the server's error text was withheld: it held part of a password"
			}
		}
	}
	msg = passwordInURL().ReplaceAllString(msg, "://***@")
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}

// partial is the shortest piece of a secret Redact looks for.
const partial = 8

var passwordInURL = lazyre.New(`://[^@/\s]*@`)

// TLSConfig is the TLS configuration of a connection with c to serverName:
// TLS 1.2 at least, verified against c.SSLCertificate (PEM CA) or the system roots.
func TLSConfig(c Credentials, serverName string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if c.SSLCertificate != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.SSLCertificate)) {
			return nil, errors.New("sslCertificate is not a PEM certificate")
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// LDAPURL parses an ldap:// or ldaps:// URL with a host.
func LDAPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
		return nil, errors.New("url must be ldap://host[:port] or ldaps://host[:port]")
	}
	return u, nil
}

// Host is the host a connection with c reaches.
func Host(app string, c Credentials) string {
	if app == LDAP {
		if u, err := LDAPURL(c.URL); err == nil {
			return u.Hostname()
		}
		return ""
	}
	return c.Host
}
