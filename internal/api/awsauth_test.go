package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
)

// The AWS principal of the tests: an EC2 instance's role session.
const (
	stsHost       = "sts.us-east-1.amazonaws.com" // the Go SDK signs for sts.<AWS_REGION>.amazonaws.com
	awsAccount    = "123456789012"
	awsAccessKey  = "AKIDLOCKBOXTEST00001"
	awsSecretKey  = "lockbox-test-secret-access-key/0123456789"
	awsCallerARN  = "arn:aws:sts::123456789012:assumed-role/app-web/i-0abc123"
	awsCallerUser = "AROAEXAMPLEID:i-0abc123"
	getCallerBody = "Action=GetCallerIdentity&Version=2011-06-15"
)

// localSTS answers GetCallerIdentity for requests signed with the test
// credentials, as AWS STS does: it recomputes the SigV4 signature with the
// AWS SDK for Go v2's own signer over the request as received (host, signed
// headers, body) and refuses a wrong signature, a date more than 15 minutes
// off, another host or another action, so a login succeeds only if lockbox
// forwarded the client's signed request unchanged.
type localSTS struct {
	hits  atomic.Int64
	srv   *httptest.Server
	roots *x509.CertPool
}

func newLocalSTS(t *testing.T) *localSTS {
	t.Helper()
	s := &localSTS{}
	s.srv, s.roots = tlsServerFor(t, stsHost, http.HandlerFunc(s.serve))
	return s
}

// options points the server's names for stsHost and the default global
// endpoint (checked when a configuration is saved) at the local endpoint,
// so no name is ever looked up.
func (s *localSTS) options() apptest.Options {
	ap := netip.MustParseAddrPort(s.srv.Listener.Addr().String())
	return apptest.Options{AuthRootCAs: s.roots, AuthResolve: map[string]netip.AddrPort{stsHost: ap, "sts.amazonaws.com": ap}}
}

func stsError(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code></Error></ErrorResponse>`, code)
}

func (s *localSTS) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Host != stsHost {
		stsError(w, 403, "SignatureDoesNotMatch")
		return
	}
	auth := r.Header.Get("Authorization")
	rest, _ := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	var cred, signed string
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] != awsAccessKey {
		stsError(w, 403, "InvalidClientTokenId")
		return
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(at).Abs() > 15*time.Minute {
		stsError(w, 403, "SignatureDoesNotMatch") // AWS: "Signature expired"
		return
	}
	// Re-sign the request as received with the AWS SDK's signer.
	again, _ := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: awsAccessKey, SecretAccessKey: awsSecretKey}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), "sts", scope[2], at); err != nil ||
		!hmac.Equal([]byte(again.Header.Get("Authorization")), []byte(auth)) {
		stsError(w, 403, "SignatureDoesNotMatch")
		return
	}
	if string(body) != getCallerBody {
		stsError(w, 400, "InvalidAction")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, awsCallerARN, awsCallerUser, awsAccount)
}

// tlsServerFor starts a TLS server whose certificate, from a fresh CA,
// names host, and returns the CA as a pool.
func tlsServerFor(t *testing.T, host string, h http.Handler) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lockbox test CA"}, IsCA: true,
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

// signed is a GetCallerIdentity request as a client signs it.
type signed struct {
	host, region, secret, body string
	at                         time.Time
	sentBody                   string // sent in place of body when set
	sentHost                   string // Host header sent in place of host when set
}

// login builds the login body the way the Go SDK's AwsIamAuthLogin does.
func (s signed) login(t *testing.T, identityID string) map[string]string {
	t.Helper()
	if s.host == "" {
		s.host = stsHost
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.secret == "" {
		s.secret = awsSecretKey
	}
	if s.body == "" {
		s.body = getCallerBody
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	req, _ := http.NewRequest(http.MethodPost, "https://"+s.host+"/", strings.NewReader(s.body))
	sum := sha256.Sum256([]byte(s.body))
	creds := aws.Credentials{AccessKeyID: awsAccessKey, SecretAccessKey: s.secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sts", s.region, s.at); err != nil {
		t.Fatal(err)
	}
	sent := s.body
	if s.sentBody != "" {
		sent = s.sentBody
	}
	h := map[string]string{}
	for k, v := range req.Header {
		h[k] = v[0]
	}
	h["Host"] = s.host
	if s.sentHost != "" {
		h["Host"] = s.sentHost
	}
	h["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
	h["Content-Length"] = fmt.Sprint(len(sent))
	hj, _ := json.Marshal(h)
	return map[string]string{"identityId": identityID, "iamHttpRequestMethod": http.MethodPost,
		"iamRequestBody": base64.StdEncoding.EncodeToString([]byte(sent)), "iamRequestHeaders": base64.StdEncoding.EncodeToString(hj)}
}

func awsLogin(t *testing.T, e *apptest.Env, body map[string]string) (apptest.Response, loginOut) {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/auth/aws-auth/login", "", body)
	var out loginOut
	if r.Status == 200 {
		r.Decode(t, &out)
	}
	return r, out
}

// setAWSEnv gives the process the credentials the Go SDK reads, and keeps
// it from looking anywhere else (files, instance metadata).
func setAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", awsAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// The real Go SDK v0.8.0 logs in with AwsIamAuthLogin (SigV4-signed by
// aws-sdk-go-v2 for sts.us-east-1.amazonaws.com from the environment's
// credentials) and reads a secret; the configuration keeps Infisical's
// default stsEndpoint, under which a request signed for the region's
// endpoint goes there — here, through the test's Resolve hook, to the local
// STS, which verifies the signature.
func TestGoSDKAWSAuthLoginReadSecret(t *testing.T) {
	setAWSEnv(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, sts.options())
		p := createProject(t, e, e.Token, map[string]any{"projectName": "sdk-aws-login"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "s3cret-from-lockbox")
		id, _ := projectMember(t, e, p.ID, "ec2-app", "viewer")
		var attached struct{ IdentityAwsAuth map[string]any }
		e.Must(t, 200, "POST", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{
			"allowedAccountIds": " 123456789012 ,111122223333", "allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-*"}).Decode(t, &attached)
		if a := attached.IdentityAwsAuth; a["stsEndpoint"] != "https://sts.amazonaws.com/" || a["allowedAccountIds"] != "123456789012, 111122223333" {
			t.Fatalf("attached %v", a)
		}

		sdk := newSDK(t, e)
		cred, err := sdk.Auth().AwsIamAuthLogin(id)
		if err != nil || cred.AccessToken == "" || cred.TokenType != "Bearer" {
			t.Fatalf("SDK login: %+v %v", cred, err)
		}
		if sts.hits.Load() != 1 {
			t.Fatalf("STS hits %d", sts.hits.Load())
		}
		got, err := sdk.Secrets().Retrieve(infisical.RetrieveSecretOptions{SecretKey: "DB_PASSWORD", ProjectID: p.ID, Environment: "dev"})
		if err != nil || got.SecretValue != "s3cret-from-lockbox" {
			t.Fatalf("SDK read: %+v %v", got, err)
		}

		// A principal outside the bounds surfaces the reason through the SDK.
		e.Must(t, 200, "PATCH", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{"allowedPrincipalArns": "arn:aws:iam::123456789012:role/db"})
		_, err = newSDK(t, e).Auth().AwsIamAuthLogin(id)
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "principal ARN not allowed") {
			t.Fatalf("SDK refused login: %v", err)
		}
	})
}

// The real Node SDK 5.0.2 logs in with auth().awsIamAuth.login() (signed by
// @smithy/signature-v4 for sts.us-east-1.amazonaws.com from the
// environment's credentials) and reads a secret, as the Go SDK does above.
func TestNodeSDKAWSIAMLogin(t *testing.T) {
	dir := nodeSDKDir(t)
	setAWSEnv(t)
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, sts.options())
		p := createProject(t, e, e.Token, map[string]any{"projectName": "node-aws-login"})
		putSecret(t, e, e.Token, p.ID, "dev", "/", "DB_PASSWORD", "from-node-aws")
		id, _ := projectMember(t, e, p.ID, "node-ec2-app", "viewer")
		e.Must(t, 200, "POST", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{
			"allowedAccountIds": "123456789012", "allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-*"})
		cmd := exec.Command("node", "awsiam.mjs")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LOCKBOX_URL="+e.URL, "IDENTITY_ID="+id, "PROJECT_ID="+p.ID)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node awsiam.mjs: %v\n%s", err, stderr.String())
		}
		var got struct {
			LoggedIn bool
			Value    string
		}
		if err := json.Unmarshal(out, &got); err != nil || !got.LoggedIn || got.Value != "from-node-aws" {
			t.Fatalf("node output %q: %v", out, err)
		}
		if sts.hits.Load() != 1 {
			t.Fatalf("STS hits %d, want the one login", sts.hits.Load())
		}
	})
}

func TestAWSAuthRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, sts.options())
		id, _ := e.NewIdentity(t, "ec2", "member")
		base := "/api/v1/auth/aws-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"allowedAccountIds": awsAccount,
			"allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-web, arn:aws:iam::123456789012:user/ci"})

		r, out := awsLogin(t, e, signed{}.login(t, id))
		if r.Status != 200 || out.AccessToken == "" {
			t.Fatalf("valid login: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)

		for _, c := range []struct {
			name, check string
			req         signed
			forwarded   bool // whether the request reaches STS
		}{
			// lockbox's own checks: nothing is sent.
			{"another action", "not STS GetCallerIdentity", signed{body: "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/admin"}, false},
			{"extra parameter", "not STS GetCallerIdentity", signed{sentBody: getCallerBody + "&RoleArn=x"}, false},
			{"signed for another host", "not signed for this configuration's STS endpoint", signed{host: "sts.attacker.example"}, false},
			{"host of another region", "not signed for this configuration's STS endpoint", signed{host: "sts.eu-west-1.amazonaws.com"}, false},
			{"old date", "X-Amz-Date", signed{at: time.Now().Add(-20 * time.Minute)}, false},
			{"future date", "X-Amz-Date", signed{at: time.Now().Add(20 * time.Minute)}, false},
			// STS's: lockbox forwards, the signature does not verify.
			{"tampered body", "STS refused", signed{sentBody: "Version=2011-06-15&Action=GetCallerIdentity"}, true},
			{"wrong secret key", "STS refused", signed{secret: "not-the-secret"}, true},
			{"host header rewritten", "STS refused", signed{host: "sts.attacker.example", sentHost: stsHost}, true},
		} {
			before := sts.hits.Load()
			r, _ := awsLogin(t, e, c.req.login(t, id))
			assertRefused(t, r, c.check, awsSecretKey)
			if got := sts.hits.Load() - before; got != map[bool]int64{false: 0, true: 1}[c.forwarded] {
				t.Fatalf("%s: %d requests reached STS", c.name, got)
			}
		}

		// A bad method or undecodable fields are refusals, never 5xx.
		for _, mod := range []func(m map[string]string){
			func(m map[string]string) { m["iamHttpRequestMethod"] = "GET" },
			func(m map[string]string) { m["iamRequestHeaders"] = "not base64!" },
			func(m map[string]string) { m["iamRequestBody"] = "%%%" },
		} {
			body := signed{}.login(t, id)
			mod(body)
			r, _ := awsLogin(t, e, body)
			assertError(t, r, 401, "UnauthorizedError")
		}

		// Account and principal bounds, on STS's answer.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedAccountIds": "999999999999"})
		r, _ = awsLogin(t, e, signed{}.login(t, id))
		assertRefused(t, r, "account ID not allowed", "")
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedAccountIds": "", "allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-db"})
		r, _ = awsLogin(t, e, signed{}.login(t, id))
		assertRefused(t, r, "principal ARN not allowed", "")
		// The assumed-role session matches its role's glob.
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"allowedPrincipalArns": "arn:aws:iam::123456789012:role/app-*"})
		if r, _ := awsLogin(t, e, signed{}.login(t, id)); r.Status != 200 {
			t.Fatalf("glob login: %d %s", r.Status, r.Body)
		}

		var failed struct {
			AuditLogs []struct {
				Event struct{ Metadata map[string]any }
			}
		}
		e.Must(t, 200, "GET", "/api/v1/organization/audit-logs?eventType=login-identity-aws-auth-failed&limit=100", e.Token, nil).Decode(t, &failed)
		checks := map[string]int{}
		for _, l := range failed.AuditLogs {
			checks[fmt.Sprint(l.Event.Metadata["check"])]++
		}
		for _, c := range []string{"action", "host", "date", "signature", "account", "principal", "method"} {
			if checks[c] == 0 {
				t.Fatalf("no audited refusal for %s: %v", c, checks)
			}
		}
		if strings.Contains(fmt.Sprint(failed), awsSecretKey) {
			t.Fatal("audit holds the secret key")
		}
	})
}

// An explicit stsEndpoint accepts requests signed for its host only.
func TestAWSAuthExplicitEndpoint(t *testing.T) {
	sts := newLocalSTS(t)
	e := apptest.Bootstrapped(t, store.SQLite, sts.options())
	id, _ := e.NewIdentity(t, "regional", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{"stsEndpoint": "https://" + stsHost + "/"})
	if r, _ := awsLogin(t, e, signed{}.login(t, id)); r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	r, _ := awsLogin(t, e, signed{host: "sts.eu-west-1.amazonaws.com", region: "eu-west-1"}.login(t, id))
	assertRefused(t, r, "not signed for this configuration's STS endpoint", "")
	for name, cfg := range map[string]map[string]any{
		"http endpoint":  {"stsEndpoint": "http://" + stsHost + "/"},
		"bad account":    {"allowedAccountIds": "12345"},
		"bad arn":        {"allowedPrincipalArns": "arn:aws:s3:::bucket"},
		"endpoint typed": {"stsEndpoint": 5},
	} {
		id2, _ := e.NewIdentity(t, "cfg-"+strings.ReplaceAll(name, " ", "-"), "member")
		r := e.Do(t, "POST", "/api/v1/auth/aws-auth/identities/"+id2, e.Token, cfg)
		if r.Status != 400 && r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if sts.hits.Load() != 1 {
		t.Fatalf("STS hits %d", sts.hits.Load())
	}
}

func TestAWSAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, sts.options())
		id, _ := e.NewIdentity(t, "limited", "member")
		base := "/api/v1/auth/aws-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"accessTokenNumUsesLimit": 2,
			"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}})
		r, _ := awsLogin(t, e, signed{}.login(t, id))
		assertError(t, r, 403, "ForbiddenError")
		if sts.hits.Load() != 0 {
			t.Fatal("a caller outside the trusted IPs made the server call STS")
		}
		e.Must(t, 200, "PATCH", base, e.Token, map[string]any{"accessTokenTrustedIps": []map[string]string{{"ipAddress": "127.0.0.1"}}})
		r, out := awsLogin(t, e, signed{}.login(t, id))
		if r.Status != 200 {
			t.Fatalf("login from a trusted IP: %d %s", r.Status, r.Body)
		}
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		e.Must(t, 200, "GET", "/api/v1/identities/details", out.AccessToken, nil)
		assertError(t, e.Do(t, "GET", "/api/v1/identities/details", out.AccessToken, nil), 401, "UnauthorizedError")
	})
}
