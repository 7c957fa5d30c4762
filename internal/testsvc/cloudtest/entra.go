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

// The Azure tenant and managed identity of the tests.
const (
	AzureTenant    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	AzurePrincipal = "5c0b7e5c-3d2a-4f36-9a5e-1b2c3d4e5f60"
	AzureResource  = "https://management.azure.com/"
)

// Entra stands in for login.microsoftonline.com on loopback, over TLS with
// its own certificate: each tenant's v1 OpenID configuration (issuer
// https://sts.windows.net/<tenant>/) and key set, counting fetches.
type Entra struct {
	Srv       *httptest.Server
	CAPEM     string
	Signer    Signer
	Discovery atomic.Int64
	Keys      atomic.Int64
}

// NewEntra starts the endpoint.
func NewEntra(t testing.TB) *Entra {
	t.Helper()
	a := &Entra{Signer: NewSigner(t, "rsa", "entra-1")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		a.Discovery.Add(1)
		tenant := r.PathValue("tenant")
		json.NewEncoder(w).Encode(map[string]any{"issuer": "https://sts.windows.net/" + tenant + "/",
			"jwks_uri": a.Srv.URL + "/common/discovery/keys", "token_endpoint": a.Srv.URL + "/" + tenant + "/oauth2/token"})
	})
	mux.HandleFunc("GET /common/discovery/keys", func(w http.ResponseWriter, r *http.Request) {
		a.Keys.Add(1)
		k := a.Signer.JWK()
		k["x5t"] = a.Signer.Kid
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{k}})
	})
	a.Srv = httptest.NewTLSServer(mux)
	t.Cleanup(a.Srv.Close)
	a.CAPEM = caPEM(a.Srv)
	return a
}

// AzureClaims are a managed identity's v1 access token for the resource
// (asked for without the trailing slash, as a custom resource is).
func AzureClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"aud": "https://management.azure.com", "iss": "https://sts.windows.net/" + AzureTenant + "/",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "appid": "a1b2", "appidacr": "2",
		"idp": "https://sts.windows.net/" + AzureTenant + "/", "oid": AzurePrincipal, "sub": AzurePrincipal,
		"tid": AzureTenant, "ver": "1.0"}
}

// Config is an azure-auth configuration that trusts this issuer for
// AzureTenant and AzurePrincipal.
func (a *Entra) Config() map[string]any {
	return map[string]any{"tenantId": AzureTenant, "resource": AzureResource,
		"allowedServicePrincipalIds": AzurePrincipal + ", 00000000-0000-0000-0000-0000000000aa",
		"authorityHost":              a.Srv.URL + "/", "caCert": a.CAPEM}
}
