package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate: a server one for 127.0.0.1, or a client one.
func (ca *testCA) issue(t *testing.T, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts ca and, if cert is given, presents it.
func httpsClient(ca *testCA, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c := &tls.Config{RootCAs: pool}
	if cert != nil {
		// Presented whatever CAs the server asks for (Go's client would
		// otherwise send none that does not match them).
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c, ForceAttemptHTTP2: true}}
}

// With LOCKBOX_TLS_CERT_FILE and _KEY_FILE the API is served over TLS
// (HTTP/2 offered); with LOCKBOX_TLS_CLIENT_CA_FILE a client certificate is
// optional but must chain to those CAs; SIGHUP serves a renewed certificate
// to new connections without a restart.
func TestServerServesTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients.pem")
	c, k := serverCA.issue(t, 100, true)
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, caFile, clientCA.pem)

	addr := freeAddr(t)
	cmd := exec.Command(binary, "server", "--listen", addr)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LOCKBOX_TLS_CERT_FILE="+certFile, "LOCKBOX_TLS_KEY_FILE="+keyFile, "LOCKBOX_TLS_CLIENT_CA_FILE="+caFile)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				line <- sc.Text()
			}
		}
	}()
	select {
	case l := <-line:
		if !strings.Contains(l, "https://"+addr) {
			t.Fatalf("start-up line %q does not say https", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start:\n%s", stderr.String())
	}

	get := func(cl *http.Client) (*http.Response, error) {
		resp, err := cl.Get("https://" + addr + "/api/status")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(httpsClient(serverCA, nil))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https without a client certificate: %v %v", resp, err)
	}
	if resp.ProtoMajor != 2 || resp.TLS.Version < tls.VersionTLS12 || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 100 {
		t.Fatalf("proto %s, TLS version %x, serial %v", resp.Proto, resp.TLS.Version, resp.TLS.PeerCertificates[0].SerialNumber)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + addr + "/api/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS listener")
		}
	}
	// A client certificate from the client CA is accepted; one from another CA is not.
	cc, ck := clientCA.issue(t, 7, false)
	good, _ := tls.X509KeyPair(cc, ck)
	if resp, err := get(httpsClient(serverCA, &good)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("https with a trusted client certificate: %v %v", resp, err)
	}
	oc, ok := otherCA.issue(t, 8, false)
	bad, _ := tls.X509KeyPair(oc, ok)
	if resp, err := get(httpsClient(serverCA, &bad)); err == nil {
		t.Fatalf("a client certificate of an unknown CA was accepted: %d", resp.StatusCode)
	}

	// A broken file on reload keeps the certificate in use; a renewed one is served after SIGHUP.
	writeFile(t, certFile, []byte("not a certificate"))
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, stderr, "TLS reload failed")
	if resp, err := get(httpsClient(serverCA, nil)); err != nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 100 {
		t.Fatalf("after a failed reload: %v %v", resp, err)
	}
	c2, k2 := serverCA.issue(t, 200, true)
	writeFile(t, certFile, c2)
	writeFile(t, keyFile, k2)
	cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, stderr, "TLS certificate reloaded")
	if resp, err := get(httpsClient(serverCA, nil)); err != nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 200 {
		t.Fatalf("after reload: %v %v", resp, err)
	}
	if strings.Contains(stderr.String(), "PRIVATE KEY") {
		t.Fatal("the log holds key material")
	}
	stopServer(t, cmd, stderr)
}

func waitLog(t *testing.T, stderr *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(stderr.String(), want) {
			return
		}
	}
	t.Fatalf("log never said %q:\n%s", want, stderr.String())
}

// TLS settings that cannot work stop the server at start with one line.
func TestBadTLSSettingsExitTwo(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "ca")
	c, k := ca.issue(t, 1, true)
	certFile, keyFile, junk := filepath.Join(dir, "c"), filepath.Join(dir, "k"), filepath.Join(dir, "junk")
	writeFile(t, certFile, c)
	writeFile(t, keyFile, k)
	writeFile(t, junk, []byte("junk"))
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"certificate without key", []string{"LOCKBOX_TLS_CERT_FILE=" + certFile}, "both a certificate file and a key file"},
		{"client CA without TLS", []string{"LOCKBOX_TLS_CLIENT_CA_FILE=" + certFile}, "needs the server to serve TLS"},
		{"key that is not a key", []string{"LOCKBOX_TLS_CERT_FILE=" + certFile, "LOCKBOX_TLS_KEY_FILE=" + junk}, "TLS certificate"},
		{"client CA file with no certificate", []string{"LOCKBOX_TLS_CERT_FILE=" + certFile, "LOCKBOX_TLS_KEY_FILE=" + keyFile,
			"LOCKBOX_TLS_CLIENT_CA_FILE=" + junk}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, "server", "--listen", freeAddr(t))
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			ee, isExit := err.(*exec.ExitError)
			if !isExit || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output:\n%s", err, out)
			}
			if strings.Contains(string(out), "BEGIN") {
				t.Fatalf("output quotes a PEM file:\n%s", out)
			}
		})
	}
}
