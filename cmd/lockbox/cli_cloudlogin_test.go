package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc/cloudtest"
)

// cloudCLI is a server whose login methods reach the local AWS STS, with an
// identity, and a CLI pointed at it.
func cloudCLI(t *testing.T) (*apptest.Env, *cliEnv, *cloudtest.STS) {
	t.Helper()
	sts := cloudtest.NewSTS(t)
	e := apptest.Bootstrapped(t, store.SQLite, apptest.Options{AuthRootCAs: sts.Roots, AuthResolve: sts.Resolve()})
	return e, newCLI(t, strings.TrimPrefix(e.URL, "http://")), sts
}

// loginWorks proves a token printed by login --plain is the identity's,
// minted by method, and accepted by the server.
func loginWorks(t *testing.T, e *apptest.Env, out, identityID, method string) {
	t.Helper()
	tok := strings.TrimSpace(out)
	e.Must(t, 200, "GET", "/api/v1/identities/details", tok, nil)
	parts := strings.Split(tok, ".")
	var claims struct{ IdentityID, AuthMethod string }
	if len(parts) != 3 {
		t.Fatalf("login --plain printed %q", redact(tok))
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(payload, &claims); claims.IdentityID != identityID || claims.AuthMethod != method {
		t.Fatalf("token of %+v, want %s by %s", claims, identityID, method)
	}
}

// `lockbox login --method aws-iam` signs GetCallerIdentity with the
// environment's AWS credentials; the local STS checks the signature with the
// AWS SDK's own signer, so the login passes only if the CLI signed it right
// and lockbox forwarded it untouched.
func TestCLIAWSIAMLogin(t *testing.T) {
	e, c, sts := cloudCLI(t)
	id, _ := e.NewIdentity(t, "ec2-app", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{
		"allowedAccountIds": cloudtest.AWSAccount, "allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-*"})
	awsEnv := cloudtest.AWSEnv(t.TempDir())

	out := c.must(awsEnv, "login", "--method", "aws-iam", "--machine-identity-id", id, "--plain")
	loginWorks(t, e, out, id, "aws-auth")
	if sts.Hits.Load() != 1 {
		t.Fatalf("STS hits %d, want 1", sts.Hits.Load())
	}
	// Signed for the global endpoint (the identity's default stsEndpoint)
	// from another region: the scope is the global endpoint's region,
	// us-east-1, which the stand-in STS, like AWS, insists on; a default
	// port is signed as AWS signs it, without it.
	euEnv := append(cloudtest.AWSEnv(t.TempDir()), "AWS_REGION=eu-west-1")
	for _, ep := range []string{"https://sts.amazonaws.com/", "https://STS.amazonaws.com:443/"} {
		loginWorks(t, e, c.must(euEnv, "login", "--method", "aws-iam", "--machine-identity-id", id, "--aws-sts-endpoint", ep, "--plain"), id, "aws-auth")
	}
	if r := c.run(euEnv, "login", "--method", "aws-iam", "--machine-identity-id", id, "--aws-sts-endpoint", "https://user:pw@sts.amazonaws.com/"); r.code == 0 || strings.Contains(r.stderr, "pw") {
		t.Fatalf("endpoint with user information: exit %d, %s", r.code, r.stderr)
	}

	// A wrong secret key: STS refuses the signature, the login fails.
	wrong := append(cloudtest.AWSEnv(t.TempDir()), "AWS_SECRET_ACCESS_KEY=not-the-key")
	if r := c.run(wrong, "login", "--method", "aws-iam", "--machine-identity-id", id); r.code == 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("login with a wrong key: exit %d, %s", r.code, r.stderr)
	}
	// A request signed for a host the identity does not trust is never sent.
	before := sts.Hits.Load()
	if r := c.run(awsEnv, "login", "--method", "aws-iam", "--machine-identity-id", id, "--aws-sts-endpoint", "https://sts.eu-west-1.example/"); r.code == 0 || !strings.Contains(r.stderr, "STS endpoint") {
		t.Fatalf("login signed for another host: exit %d, %s", r.code, r.stderr)
	}
	if sts.Hits.Load() != before {
		t.Fatal("a request signed for another host reached STS")
	}
	noRegion := append(cloudtest.AWSEnv(t.TempDir()), "AWS_REGION=")
	if r := c.run(noRegion, "login", "--method", "aws-iam", "--machine-identity-id", id); r.code == 0 || !strings.Contains(r.stderr, "AWS_REGION") {
		t.Fatalf("login without a region: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run(awsEnv, "login", "--method", "aws-iam", "--machine-identity-id", id, "--aws-sts-endpoint", "http://"+cloudtest.STSHost+"/"); r.code == 0 || !strings.Contains(r.stderr, "https") {
		t.Fatalf("login with an http endpoint: exit %d, %s", r.code, r.stderr)
	}
}

// metadataServer stands in for a cloud's instance metadata service: path
// answers (with the required header only) what token returns for the
// request, and counts the answers.
func metadataServer(t *testing.T, path, header, value string, token func(*http.Request) string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.Header.Get(header) != value {
			http.Error(w, "missing metadata header", http.StatusForbidden)
			return
		}
		n.Add(1)
		w.Write([]byte(token(r)))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// `lockbox login --method gcp-id-token` takes the instance's identity token
// from the metadata server (GCE_METADATA_HOST), with the identity as
// audience; `--method gcp-iam` signs with a service-account key file.
func TestCLIGCPLogins(t *testing.T) {
	e, c, _ := cloudCLI(t)
	g := cloudtest.NewGoogleKeys(t)

	gce, _ := e.NewIdentity(t, "gce-vm", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/gcp-auth/identities/"+gce, e.Token, map[string]any{"type": "gce",
		"allowedServiceAccounts": cloudtest.GCPAccount, "certsUrl": g.Srv.URL + "/oauth2/v1/certs", "caCert": g.CAPEM})
	var audience atomic.Value
	md, served := metadataServer(t, "/computeMetadata/v1/instance/service-accounts/default/identity", "Metadata-Flavor", "Google",
		func(r *http.Request) string {
			if r.URL.Query().Get("format") != "full" {
				return "not-full"
			}
			audience.Store(r.URL.Query().Get("audience"))
			return g.Google.Sign(t, cloudtest.GCEClaims(r.URL.Query().Get("audience")))
		})
	mdEnv := []string{"GCE_METADATA_HOST=" + strings.TrimPrefix(md.URL, "http://")}
	loginWorks(t, e, c.must(mdEnv, "login", "--method", "gcp-id-token", "--machine-identity-id", gce, "--plain"), gce, "gcp-auth")
	if served.Load() != 1 || audience.Load() != gce {
		t.Fatalf("metadata answered %d times, for audience %v", served.Load(), audience.Load())
	}
	// A bound's refusal reaches the user with its reason.
	other, _ := e.NewIdentity(t, "other-vm", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/gcp-auth/identities/"+other, e.Token, map[string]any{"type": "gce",
		"allowedServiceAccounts": "someone@proj-1.iam.gserviceaccount.com", "certsUrl": g.Srv.URL + "/oauth2/v1/certs", "caCert": g.CAPEM})
	if r := c.run(mdEnv, "login", "--method", "gcp-id-token", "--machine-identity-id", other); r.code == 0 || !strings.Contains(r.stderr, "service account") {
		t.Fatalf("login of a bounded-out account: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run([]string{"GCE_METADATA_HOST=127.0.0.1:1"}, "login", "--method", "gcp-id-token", "--machine-identity-id", gce); r.code == 0 || !strings.Contains(r.stderr, "metadata service") {
		t.Fatalf("login without a metadata server: exit %d, %s", r.code, r.stderr)
	}

	iam, _ := e.NewIdentity(t, "gcp-sa", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/gcp-auth/identities/"+iam, e.Token, map[string]any{"type": "iam",
		"allowedServiceAccounts": cloudtest.GCPAccount, "serviceAccountCertsUrl": g.Srv.URL + "/service_accounts/v1/metadata/x509/", "caCert": g.CAPEM})
	sa := g.Accounts[cloudtest.GCPAccount]
	der, err := x509.MarshalPKCS8PrivateKey(sa.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	kj, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": cloudtest.GCPAccount, "private_key_id": sa.Kid,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	os.WriteFile(keyFile, kj, 0o600)
	loginWorks(t, e, c.must(nil, "login", "--method", "gcp-iam", "--machine-identity-id", iam, "--service-account-key-file-path", keyFile, "--plain"), iam, "gcp-auth")
	loginWorks(t, e, c.must([]string{"INFISICAL_GCP_IAM_SERVICE_ACCOUNT_KEY_FILE_PATH=" + keyFile}, "login", "--method", "gcp-iam", "--machine-identity-id", iam, "--plain"), iam, "gcp-auth")

	// The same key file claiming another account: its key is not that account's.
	kj2, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": cloudtest.GCPBatchAccount, "private_key_id": sa.Kid,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	os.WriteFile(keyFile, kj2, 0o600)
	if r := c.run(nil, "login", "--method", "gcp-iam", "--machine-identity-id", iam, "--service-account-key-file-path", keyFile); r.code == 0 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("login as another account: exit %d, %s", r.code, r.stderr)
	}
	os.WriteFile(keyFile, []byte(`{"client_email":"x"}`), 0o600)
	if r := c.run(nil, "login", "--method", "gcp-iam", "--machine-identity-id", iam, "--service-account-key-file-path", keyFile); r.code == 0 || !strings.Contains(r.stderr, "private_key") {
		t.Fatalf("login with a broken key file: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run(nil, "login", "--method", "gcp-iam", "--machine-identity-id", iam); r.code == 0 || !strings.Contains(r.stderr, "--service-account-key-file-path") {
		t.Fatalf("login without a key file: exit %d, %s", r.code, r.stderr)
	}
}

// `lockbox login --method azure` takes the managed identity's token from the
// instance metadata service (LOCKBOX_AZURE_IMDS_URL) for --azure-resource.
func TestCLIAzureLogin(t *testing.T) {
	e, c, _ := cloudCLI(t)
	a := cloudtest.NewEntra(t)
	id, _ := e.NewIdentity(t, "azure-vm", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/azure-auth/identities/"+id, e.Token, a.Config())
	var resource, clientID atomic.Value
	imds, _ := metadataServer(t, "/metadata/identity/oauth2/token", "Metadata", "true", func(r *http.Request) string {
		resource.Store(r.URL.Query().Get("resource"))
		clientID.Store(r.URL.Query().Get("client_id"))
		b, _ := json.Marshal(map[string]string{"access_token": a.Signer.Sign(t, cloudtest.AzureClaims()), "token_type": "Bearer"})
		return string(b)
	})
	env := []string{"LOCKBOX_AZURE_IMDS_URL=" + imds.URL}
	loginWorks(t, e, c.must(env, "login", "--method", "azure", "--machine-identity-id", id, "--plain"), id, "azure-auth")
	if resource.Load() != cloudtest.AzureResource || clientID.Load() != "" {
		t.Fatalf("asked IMDS for resource %q client %q", resource.Load(), clientID.Load())
	}
	c.must(env, "login", "--method", "azure", "--machine-identity-id", id, "--azure-client-id", "uami-1", "--plain")
	if clientID.Load() != "uami-1" {
		t.Fatalf("user-assigned identity: client_id %q", clientID.Load())
	}
	// The principal outside the configuration's bound is refused with the reason.
	e.Must(t, 200, "PATCH", "/api/v1/auth/azure-auth/identities/"+id, e.Token, map[string]any{"allowedServicePrincipalIds": "00000000-0000-0000-0000-0000000000aa"})
	if r := c.run(env, "login", "--method", "azure", "--machine-identity-id", id); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "principal") {
		t.Fatalf("login of a bounded-out principal: exit %d, %s", r.code, r.stderr)
	}
}
