package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/client"
)

// The real binary serving TLS logs an identity in with a client certificate
// (TLS Certificate Auth); the certificate header is ignored from a peer that
// is not a trusted proxy.
func TestTLSCertAuthLoginAgainstTheBinary(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := newTestCA(t, "server CA"), newTestCA(t, "client CA")
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
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitLog(t, stderr, "lockbox listening")
	base := "https://" + addr

	ctx := context.Background()
	admin := client.New(base, "")
	admin.HTTP = httpsClient(serverCA, nil)
	boot, err := admin.Bootstrap(ctx, "a@b.co", "pw", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	admin.Token = boot.Identity.Credentials.Token
	var created struct {
		Identity struct{ ID string } `json:"identity"`
	}
	if err := admin.Do(ctx, "POST", "/api/v1/identities", map[string]any{"name": "tls-workload",
		"organizationId": boot.Organization.ID, "role": "member"}, &created); err != nil {
		t.Fatal(err)
	}
	id := created.Identity.ID
	if err := admin.Do(ctx, "POST", "/api/v1/auth/tls-cert-auth/identities/"+id, map[string]any{"caCertificate": string(clientCA.pem),
		"allowedCommonNames": "leaf"}, nil); err != nil {
		t.Fatal(err)
	}

	cc, ck := clientCA.issue(t, 7, false)
	pair, _ := tls.X509KeyPair(cc, ck)
	login := func(cl *http.Client, header map[string]string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/v1/auth/tls-cert-auth/login", bytes.NewReader([]byte(`{"identityId":"`+id+`"}`)))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	st, out := login(httpsClient(serverCA, &pair), nil)
	if st != 200 || out["tokenType"] != "Bearer" {
		t.Fatalf("login with a client certificate: %d %v", st, out)
	}
	workload := client.New(base, out["accessToken"].(string))
	workload.HTTP = httpsClient(serverCA, nil)
	var det map[string]any
	if err := workload.Do(ctx, "GET", "/api/v1/identities/details", nil, &det); err != nil {
		t.Fatalf("the issued token: %v", err)
	}

	// No certificate, and a forged header from a peer that is no trusted proxy.
	for _, h := range []map[string]string{nil, {"X-Identity-Tls-Cert-Auth-Client-Cert": url.PathEscape(string(cc))}} {
		st, out := login(httpsClient(serverCA, nil), h)
		if st != 401 || !strings.Contains(out["message"].(string), "no client certificate") {
			t.Fatalf("login without a certificate: %d %v", st, out)
		}
	}
	stopServer(t, cmd, stderr)
}
