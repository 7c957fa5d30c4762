package fetch_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
)

// tlsFor starts a TLS server whose certificate, from a fresh CA, names host.
func tlsFor(t *testing.T, host string, h http.Handler) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{host}, NotBefore: ca.NotBefore, NotAfter: ca.NotAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return srv, pool
}

// Send delivers a body and headers as given, the Host header included, to
// a public name that the test's Resolve hook serves from loopback.
func TestSendResolvedName(t *testing.T) {
	type seen struct{ host, sig, body string }
	got := make(chan seen, 1)
	srv, roots := tlsFor(t, "sts.test.example", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, r.Header.Get("X-Sig"), string(b)}
		if r.Header.Get("X-Sig") == "bad" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Write([]byte("<ok/>"))
	}))
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	env := authmethod.Env{Loopback: true, Resolve: map[string]netip.AddrPort{"sts.test.example": addr}, RootCAs: roots}
	c, err := fetch.NewClient(env, "")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Host": {"sts.test.example"}, "X-Sig": {"s1"}}
	out, err := c.Send(t.Context(), http.MethodPost, "https://sts.test.example/", h, []byte("Action=X"))
	if err != nil || string(out) != "<ok/>" {
		t.Fatalf("send: %q, %v", out, err)
	}
	if s := <-got; s != (seen{"sts.test.example", "s1", "Action=X"}) {
		t.Fatalf("server saw %+v", s)
	}
	h.Set("X-Sig", "bad")
	_, err = c.Send(t.Context(), http.MethodPost, "https://sts.test.example/", h, []byte("Action=X"))
	<-got
	if se, ok := errors.AsType[*fetch.StatusError](err); !ok || se.Code != http.StatusForbidden {
		t.Fatalf("refused request: %v", err)
	}

	// Without the test CA the server's certificate is not trusted.
	env.RootCAs = nil
	c, _ = fetch.NewClient(env, "")
	if _, err := c.Send(t.Context(), http.MethodPost, "https://sts.test.example/", h, nil); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
	// Resolve is ignored without Loopback: the mapped loopback address is never dialed.
	env.RootCAs, env.Loopback = roots, false
	env.Policy = denyAtDial{}
	c, _ = fetch.NewClient(env, "")
	if _, err := c.Send(t.Context(), http.MethodPost, "https://sts.test.example/", h, nil); err == nil {
		t.Fatal("resolved name dialed without Loopback")
	}
	select {
	case s := <-got:
		t.Fatalf("server reached: %+v", s)
	default:
	}
}
