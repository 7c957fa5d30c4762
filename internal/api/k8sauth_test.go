package api_test

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// saToken is a service-account token the fake cluster knows.
type saToken struct {
	username  string
	audiences []string
	// selfReview: the token's service account may create TokenReviews, so
	// it can review itself (no reviewer token configured).
	selfReview bool
}

// fakeCluster is a Kubernetes API server's TokenReview endpoint over TLS on
// loopback. It takes reviews from a bearer it trusts (reviewer, or a token
// allowed to self-review), answers authenticated for the tokens it knows
// and unauthenticated for any other. Like an API server that does not scope
// reviews by audience, it answers a token's own audiences, so the login
// method's audience check is what refuses a foreign audience.
type fakeCluster struct {
	srv      *httptest.Server
	caPEM    string
	reviewer string
	tokens   map[string]saToken

	mu        sync.Mutex
	reviews   int
	bearers   []string
	audiences [][]string
}

func newFakeCluster(t *testing.T, reviewer string, tokens map[string]saToken) *fakeCluster {
	t.Helper()
	c := &fakeCluster{reviewer: reviewer, tokens: tokens}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	c.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw}))
	return c
}

func (c *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var req struct {
		APIVersion, Kind string
		Spec             struct {
			Token     string
			Audiences []string
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Kind != "TokenReview" || req.APIVersion != "authentication.k8s.io/v1" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	c.mu.Lock()
	c.reviews++
	c.bearers = append(c.bearers, bearer)
	c.audiences = append(c.audiences, req.Spec.Audiences)
	c.mu.Unlock()
	if bearer != c.reviewer && !c.tokens[bearer].selfReview {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
		return
	}
	status := map[string]any{"authenticated": false, "error": "[invalid bearer token, token lookup failed]", "user": map[string]any{}}
	if sa, ok := c.tokens[req.Spec.Token]; ok {
		status = map[string]any{"authenticated": true, "audiences": sa.audiences,
			"user": map[string]any{"username": sa.username, "uid": "u-1", "groups": []string{"system:serviceaccounts"}}}
	}
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
}

func (c *fakeCluster) last() (reviews int, bearer string, audiences []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reviews == 0 {
		return 0, "", nil
	}
	return c.reviews, c.bearers[len(c.bearers)-1], c.audiences[len(c.audiences)-1]
}

const testReviewer = "reviewer-jwt-6a1f0c3e-do-not-leak"

func clusterTokens() map[string]saToken {
	aud := []string{"https://kubernetes.default.svc", "lockbox"}
	return map[string]saToken{
		"sa-web":       {username: "system:serviceaccount:apps:web", audiences: aud, selfReview: true},
		"sa-staging":   {username: "system:serviceaccount:staging-eu:web", audiences: aud},
		"sa-kube":      {username: "system:serviceaccount:kube-system:web", audiences: aud},
		"sa-db":        {username: "system:serviceaccount:apps:db", audiences: aud},
		"sa-vault-aud": {username: "system:serviceaccount:apps:web", audiences: []string{"vault"}},
		"user-alice":   {username: "alice", audiences: aud},
	}
}

func kubernetesConfig(c *fakeCluster) map[string]any {
	return map[string]any{"kubernetesHost": c.srv.URL, "caCert": c.caPEM, "tokenReviewerJwt": testReviewer,
		"allowedNamespaces": "apps,  staging-* ", "allowedNames": "web", "allowedAudience": "lockbox"}
}

// assertNoReviewer fails if the reviewer token is anywhere in r's body.
func assertNoReviewer(t *testing.T, what string, body []byte) {
	t.Helper()
	if strings.Contains(string(body), testReviewer) {
		t.Fatalf("%s shows the token reviewer JWT: %s", what, body)
	}
}

func TestKubernetesAuthLoginAndChecks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "k8s-workload", "member")
		cluster := newFakeCluster(t, testReviewer, clusterTokens())
		base := "/api/v1/auth/kubernetes-auth/identities/" + id
		cfg := kubernetesConfig(cluster)
		cfg["accessTokenTTL"], cfg["accessTokenMaxTTL"] = 600, 1200
		// Without the cluster's CA its certificate is not trusted: the review fails, 401.
		delete(cfg, "caCert")
		r := e.Must(t, 200, "POST", base, e.Token, cfg)
		assertNoReviewer(t, "attach", r.Body)
		r, _ = methodLogin(t, e, "kubernetes-auth", id, "sa-web")
		assertRefused(t, r, "TokenReview failed", "sa-web")

		r = e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"caCert": cluster.caPEM, "tokenReviewerJwt": testReviewer})
		assertNoReviewer(t, "update", r.Body)
		var got struct{ IdentityKubernetesAuth map[string]any }
		r = e.Must(t, 200, "GET", base, e.Token, nil)
		assertNoReviewer(t, "get", r.Body)
		r.Decode(t, &got)
		k := got.IdentityKubernetesAuth
		if k["kubernetesHost"] != cluster.srv.URL || k["allowedNamespaces"] != "apps, staging-*" || k["allowedNames"] != "web" ||
			k["allowedAudience"] != "lockbox" || k["tokenReviewMode"] != "api" || k["caCert"] != strings.TrimSpace(cluster.caPEM) ||
			k["identityId"] != id || k["accessTokenTTL"] != 600.0 {
			t.Fatalf("configuration %v", k)
		}
		if _, ok := k["tokenReviewerJwt"]; ok {
			t.Fatalf("tokenReviewerJwt returned: %v", k)
		}
		// Stored sealed: the plaintext is not in the database.
		stored, err := e.DB.AuthConfig(t.Context(), id, "kubernetes-auth")
		if err != nil || strings.Contains(string(stored.Config), testReviewer) || !strings.Contains(string(stored.Config), "_sealed") {
			t.Fatalf("stored configuration %s %v", stored.Config, err)
		}
		var ident struct {
			Identity struct {
				Identity struct{ AuthMethods []string }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/identities/"+id, e.Token, nil).Decode(t, &ident)
		if !slices.Contains(ident.Identity.Identity.AuthMethods, "kubernetes-auth") {
			t.Fatalf("authMethods %v", ident.Identity.Identity.AuthMethods)
		}

		for _, tok := range []string{"sa-web", "sa-staging"} {
			r, out := methodLogin(t, e, "kubernetes-auth", id, tok)
			if r.Status != 200 || out.ExpiresIn != 600 || out.AccessTokenMaxTTL != 1200 || out.TokenType != "Bearer" {
				t.Fatalf("login %s: %d %s", tok, r.Status, r.Body)
			}
			if c := jwtClaims(t, out.AccessToken); c["authMethod"] != "kubernetes-auth" || c["identityId"] != id {
				t.Fatalf("token claims %v", c)
			}
			e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		}
		if _, bearer, aud := cluster.last(); bearer != testReviewer || !slices.Equal(aud, []string{"lockbox"}) {
			t.Fatalf("review sent with bearer %q, audiences %v", bearer, aud)
		}

		refused := []struct{ tok, check string }{
			{"sa-unknown", "not authenticated"},
			{"sa-kube", "namespace not allowed"},
			{"sa-db", "name not allowed"},
			{"sa-vault-aud", "audience not allowed"},
			{"user-alice", "not a service account"},
		}
		for _, c := range refused {
			r, _ := methodLogin(t, e, "kubernetes-auth", id, c.tok)
			assertRefused(t, r, c.check, c.tok)
			assertNoReviewer(t, c.tok+" refusal", r.Body)
		}

		// A reviewer token the cluster refuses: 401 naming the reviewer, not a 500.
		r = e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"tokenReviewerJwt": "revoked-reviewer"})
		assertNoReviewer(t, "update", r.Body)
		if strings.Contains(string(r.Body), "revoked-reviewer") {
			t.Fatalf("update shows the new reviewer: %s", r.Body)
		}
		r, _ = methodLogin(t, e, "kubernetes-auth", id, "sa-web")
		assertRefused(t, r, "token reviewer JWT (status 401)", "sa-web")
		if strings.Contains(string(r.Body), "revoked-reviewer") {
			t.Fatal("the refusal shows the reviewer token")
		}

		// Without a reviewer token the workload's own token reviews itself (as Infisical).
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"tokenReviewerJwt": ""})
		if r, _ := methodLogin(t, e, "kubernetes-auth", id, "sa-web"); r.Status != 200 {
			t.Fatalf("self-review login: %d %s", r.Status, r.Body)
		}
		if _, bearer, _ := cluster.last(); bearer != "sa-web" {
			t.Fatalf("self-review bearer %q", bearer)
		}
		r, _ = methodLogin(t, e, "kubernetes-auth", id, "sa-staging") // may not create TokenReviews
		assertRefused(t, r, "token reviewer JWT (status 401)", "sa-staging")

		// An update that does not name the reviewer token keeps the sealed one.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"tokenReviewerJwt": testReviewer})
		// Pointing the review at another host needs the reviewer token again:
		// an editor who cannot read it must not have it sent elsewhere.
		r = e.Do(t, "PATCH", base, e.Token, map[string]any{"kubernetesHost": "https://127.0.0.2:6443"})
		assertError(t, r, 422, "ValidationFailure")
		if !strings.Contains(string(r.Body), "tokenReviewerJwt must be given again") {
			t.Fatalf("host change without the reviewer token: %s", r.Body)
		}
		// So does changing or dropping the CA the host is verified with: the
		// token would go to whoever the new CA (or the system's) vouches for.
		for _, ca := range []string{"", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"} {
			r = e.Do(t, "PATCH", base, e.Token, map[string]any{"caCert": ca})
			assertError(t, r, 422, "ValidationFailure")
			if !strings.Contains(string(r.Body), "tokenReviewerJwt must be given again") {
				t.Fatalf("CA change without the reviewer token: %s", r.Body)
			}
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedNames": "web, api-*"})
		if r, _ := methodLogin(t, e, "kubernetes-auth", id, "sa-staging"); r.Status != 200 {
			t.Fatalf("login after partial update: %d %s", r.Status, r.Body)
		}
		if _, bearer, _ := cluster.last(); bearer != testReviewer {
			t.Fatalf("bearer after partial update %q", bearer)
		}

		// Every refusal is audited with its check; no audit event holds the reviewer token.
		var evs struct {
			AuditLogs []struct {
				Event struct{ Metadata map[string]any }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-kubernetes-auth-failed&limit=100", e.Token, nil).Decode(t, &evs)
		seen := map[string]bool{}
		for _, l := range evs.AuditLogs {
			seen[fmt.Sprint(l.Event.Metadata["check"])] = true
		}
		for _, want := range []string{"review", "authenticated", "namespace", "name", "audience", "username", "reviewer"} {
			if !seen[want] {
				t.Fatalf("no failed login audited for check %s: %v", want, seen)
			}
		}
		all := e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?limit=1000", e.Token, nil)
		assertNoReviewer(t, "audit log", all.Body)
		if !strings.Contains(string(all.Body), "update-identity-kubernetes-auth") || !strings.Contains(string(all.Body), `"namespace":"staging-eu"`) {
			t.Fatalf("audit log lacks the update or the login's service account: %.2000s", all.Body)
		}
		e.Must(t, 200, "DELETE", base, e.Token, nil)
		r, _ = methodLogin(t, e, "kubernetes-auth", id, "sa-web")
		assertError(t, r, 404, "NotFound")
	})
}

func TestKubernetesAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		id, _ := e.NewIdentity(t, "k8s-limited", "member")
		cluster := newFakeCluster(t, testReviewer, clusterTokens())
		base := "/api/v1/auth/kubernetes-auth/identities/" + id
		cfg := kubernetesConfig(cluster)
		cfg["accessTokenNumUsesLimit"] = 2
		cfg["accessTokenTrustedIps"] = []map[string]string{{"ipAddress": "10.0.0.0/8"}}
		e.Must(t, 200, "POST", base, e.Token, cfg)
		r, _ := methodLogin(t, e, "kubernetes-auth", id, "sa-web")
		assertError(t, r, 403, "ForbiddenError")
		if n, _, _ := cluster.last(); n != 0 {
			t.Fatalf("%d reviews sent for a caller outside the trusted IPs", n)
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}}})
		r, out := methodLogin(t, e, "kubernetes-auth", id, "sa-web")
		if r.Status != 200 {
			t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
	})
}

func TestKubernetesAuthConfigurationIsValidated(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, memberTok := e.NewIdentity(t, "k8s-cfg", "member")
	base := "/api/v1/auth/kubernetes-auth/identities/" + id
	for name, body := range map[string]map[string]any{
		"no host":      {"tokenReviewerJwt": "x"},
		"not http":     {"kubernetesHost": "file:///etc/passwd"},
		"query":        {"kubernetesHost": "https://127.0.0.1:6443?x=1"},
		"bad CA":       {"kubernetesHost": "https://127.0.0.1:6443", "caCert": "nope"},
		"gateway mode": {"kubernetesHost": "https://127.0.0.1:6443", "tokenReviewMode": "gateway"},
	} {
		if r := e.Do(t, "POST", base, e.Token, body); r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	assertError(t, e.Do(t, "POST", base, e.Token, map[string]any{"kubernetesHost": "169.254.169.254"}), 400, "BadRequest")
	assertError(t, e.Do(t, "POST", base, memberTok, map[string]any{"kubernetesHost": "https://127.0.0.1:6443"}), 403, "PermissionDenied")
	// A bare host is https, as in Infisical.
	var got struct{ IdentityKubernetesAuth map[string]any }
	e.Must(t, 200, "POST", base, e.Token, map[string]any{"kubernetesHost": "127.0.0.1:6443/"}).Decode(t, &got)
	if got.IdentityKubernetesAuth["kubernetesHost"] != "https://127.0.0.1:6443" {
		t.Fatalf("host %v", got.IdentityKubernetesAuth["kubernetesHost"])
	}
}

func TestGoSDKKubernetesAuthLogin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		e := apptest.Bootstrapped(t, d)
		p := createProject(t, e, e.Token, map[string]any{"projectName": "k8s-sdk"})
		e.Must(t, 200, "POST", "/api/v3/secrets/raw/DB_PASSWORD", e.Token, map[string]any{"workspaceId": p.ID, "environment": "dev", "secretValue": "s3cret"})
		id, _ := e.NewIdentity(t, "k8s-sdk", "member")
		addMember(t, e, p.ID, id, map[string]any{"role": "viewer"})
		cluster := newFakeCluster(t, testReviewer, clusterTokens())
		e.Must(t, 200, "POST", "/api/v1/auth/kubernetes-auth/identities/"+id, e.Token, kubernetesConfig(cluster))

		// The service-account token as the kubelet projects it: a file.
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, []byte("sa-web\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sdk := newSDK(t, e)
		cred, err := sdk.Auth().KubernetesAuthLogin(id, path)
		if err != nil || cred.AccessToken == "" || cred.TokenType != "Bearer" {
			t.Fatalf("SDK Kubernetes login: %+v %v", cred, err)
		}
		sec, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "DB_PASSWORD", ProjectID: p.ID, Environment: "dev"})
		if err != nil || sec.SecretValue != "s3cret" {
			t.Fatalf("SDK read after Kubernetes login: %+v %v", sec, err)
		}
		// A token the cluster does not know: the server's refusal reaches the SDK's error.
		if err := os.WriteFile(path, []byte("sa-unknown"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = newSDK(t, e).Auth().KubernetesAuthLogin(id, path)
		if err == nil || !strings.Contains(err.Error(), "not authenticated") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("SDK refused login error: %v", err)
		}
	})
}

// TestATokenSettingsChangeKeepsTheStoredConfiguration: a PATCH of the token
// settings alone leaves the sealed configuration as stored, so logins in
// flight go through (before, a configuration with a sealed field, the
// reviewer JWT here, was sealed again on every PATCH, and a login in flight
// was refused as if the configuration had changed).
func TestATokenSettingsChangeKeepsTheStoredConfiguration(t *testing.T) {
	e := apptest.Bootstrapped(t, store.SQLite)
	id, _ := e.NewIdentity(t, "k8s-settings", "member")
	cluster := newFakeCluster(t, testReviewer, clusterTokens())
	base := "/api/v1/auth/kubernetes-auth/identities/" + id
	e.Must(t, 200, "POST", base, e.Token, kubernetesConfig(cluster))
	stored := func() string {
		c, err := e.DB.AuthConfig(t.Context(), id, "kubernetes-auth")
		if err != nil {
			t.Fatal(err)
		}
		return string(c.Config)
	}
	before := stored()
	e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTTL": 3600})
	if stored() != before {
		t.Fatal("a PATCH of the token TTL alone sealed the configuration again")
	}
	e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedNamespaces": "other"})
	if stored() == before {
		t.Fatal("a PATCH of the configuration left it as stored")
	}
}
