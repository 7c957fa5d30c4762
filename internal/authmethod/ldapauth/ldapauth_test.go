package ldapauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
)

// silentStartTLS is a directory on loopback that accepts StartTLS and then
// sends nothing, holding each connection open until the test ends.
func silentStartTLS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := ber.ReadPacket(c)
				if err != nil || len(req.Children) < 1 {
					return
				}
				msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
				msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, req.Children[0].Value, "id"))
				res := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 24, nil, "ExtendedResponse")
				res.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
				res.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
				res.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnostic"))
				msg.AppendChild(res)
				if _, err := c.Write(msg.Bytes()); err != nil {
					return
				}
				<-done // the TLS handshake never comes
			}()
		}
	}()
	return ln.Addr().String()
}

func testCA(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestASilentDirectoryEndsWithinTheTimeouts: a directory that accepts
// StartTLS and then sends nothing fails a configuration and a login within
// their timeouts, and a login whose request ends stops at once; before, the
// TLS handshake had no deadline and both waited for ever.
func TestASilentDirectoryEndsWithinTheTimeouts(t *testing.T) {
	addr := silentStartTLS(t)
	env := authmethod.Env{Loopback: true}
	body, _ := json.Marshal(map[string]any{"url": "ldap://" + addr, "bindDN": "cn=admin,dc=example", "bindPass": "pw",
		"searchBase": "dc=example", "ldapCaCertificate": testCA(t)})
	within := func(what string, limit time.Duration, fn func() error) {
		t.Helper()
		errc := make(chan error, 1)
		go func() { errc <- fn() }()
		select {
		case err := <-errc:
			if err == nil {
				t.Fatalf("%s against a silent directory succeeded", what)
			}
		case <-time.After(limit):
			t.Fatalf("%s against a silent directory still waits after %v", what, limit)
		}
	}
	within("a configuration", configTimeout+20*time.Second, func() error {
		_, err := Configure(t.Context(), env, nil, body)
		return err
	})
	var c Config
	json.Unmarshal(body, &c)
	c.SearchFilter = DefaultFilter
	raw, _ := json.Marshal(c)
	m, err := New(env, raw)
	if err != nil {
		t.Fatal(err)
	}
	login := authmethod.Credential{Body: json.RawMessage(`{"username":"alice","password":"pw"}`)}
	within("a login", 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := m.(*Method).VerifyRequest(ctx, login)
		return err
	})
	// Ended without a deadline: well before opTimeout.
	within("a login whose request ended", opTimeout/2, func() error {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		_, err := m.(*Method).VerifyRequest(ctx, login)
		return err
	})
}
