package cloudtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Service accounts GoogleKeys knows.
const (
	GCPAccount      = "api@proj-1.iam.gserviceaccount.com"
	GCPBatchAccount = "batch@proj-1.iam.gserviceaccount.com"
)

// GoogleKeys stands in for www.googleapis.com on loopback, over TLS with its
// own certificate: Google's OAuth2 certificates (/oauth2/v1/certs) and
// service accounts' certificates (/service_accounts/v1/metadata/x509/{email}),
// counting the fetches.
type GoogleKeys struct {
	Srv      *httptest.Server
	CAPEM    string
	Google   Signer
	Accounts map[string]Signer
	Certs    atomic.Int64 // fetches of Google's certificates
	Account  atomic.Int64 // fetches of an account's certificates
}

// NewGoogleKeys starts the endpoint with GCPAccount and GCPBatchAccount.
func NewGoogleKeys(t testing.TB) *GoogleKeys {
	t.Helper()
	g := &GoogleKeys{Google: NewSigner(t, "rsa", "g1"),
		Accounts: map[string]Signer{GCPAccount: NewSigner(t, "rsa", "sa1"), GCPBatchAccount: NewSigner(t, "rsa", "sa2")}}
	gcert := g.Google.CertPEM(t)
	acerts := map[string]string{}
	for email, s := range g.Accounts {
		acerts[email] = s.CertPEM(t)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth2/v1/certs", func(w http.ResponseWriter, r *http.Request) {
		g.Certs.Add(1)
		json.NewEncoder(w).Encode(map[string]string{g.Google.Kid: gcert, "other": "not a certificate"})
	})
	mux.HandleFunc("GET /service_accounts/v1/metadata/x509/{email}", func(w http.ResponseWriter, r *http.Request) {
		g.Account.Add(1)
		email := r.PathValue("email")
		c, ok := acerts[email]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{g.Accounts[email].Kid: c})
	})
	g.Srv = httptest.NewTLSServer(mux)
	t.Cleanup(g.Srv.Close)
	g.CAPEM = caPEM(g.Srv)
	return g
}

// GCEClaims are the claims of a "full" format instance ID token of
// GCPAccount for audience.
func GCEClaims(audience string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": "https://accounts.google.com", "aud": audience, "azp": "1234", "sub": "1234",
		"email": GCPAccount, "email_verified": true, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"google": map[string]any{"compute_engine": map[string]any{"project_id": "proj-1", "project_number": 42,
			"zone": "us-central1-a", "instance_id": "99", "instance_name": "vm-1"}}}
}

// IAMClaims are what the SDK's GcpIamAuthLogin has signJwt sign: sub and
// aud, with the exp that signJwt adds.
func IAMClaims(email, audience string) jwt.MapClaims {
	return jwt.MapClaims{"sub": email, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
}
