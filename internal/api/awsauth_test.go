package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	infisical "github.com/infisical/go-sdk"

	"github.com/lockbox-dev/lockbox/internal/app/apptest"
	"github.com/lockbox-dev/lockbox/internal/store"
	"github.com/lockbox-dev/lockbox/internal/testsvc/cloudtest"
)

const (
	stsHost       = cloudtest.STSHost
	awsAccount    = cloudtest.AWSAccount
	awsAccessKey  = cloudtest.AWSAccessKey
	awsSecretKey  = cloudtest.AWSSecretKey
	awsCallerARN  = cloudtest.AWSCallerARN
	getCallerBody = cloudtest.GetCallerBody
)

var newLocalSTS = cloudtest.NewSTS

// stsOptions points the server's names for the STS hosts at the local endpoint.
func stsOptions(s *cloudtest.STS) apptest.Options {
	return apptest.Options{AuthRootCAs: s.Roots, AuthResolve: s.Resolve()}
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
		e := apptest.Bootstrapped(t, d, stsOptions(sts))
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
		if sts.Hits.Load() != 1 {
			t.Fatalf("STS hits %d", sts.Hits.Load())
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
		e := apptest.Bootstrapped(t, d, stsOptions(sts))
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
		if sts.Hits.Load() != 1 {
			t.Fatalf("STS hits %d, want the one login", sts.Hits.Load())
		}
	})
}

func TestAWSAuthRefusals(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, stsOptions(sts))
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
			before := sts.Hits.Load()
			r, _ := awsLogin(t, e, c.req.login(t, id))
			assertRefused(t, r, c.check, awsSecretKey)
			if got := sts.Hits.Load() - before; got != map[bool]int64{false: 0, true: 1}[c.forwarded] {
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
	e := apptest.Bootstrapped(t, store.SQLite, stsOptions(sts))
	id, _ := e.NewIdentity(t, "regional", "member")
	e.Must(t, 200, "POST", "/api/v1/auth/aws-auth/identities/"+id, e.Token, map[string]any{"stsEndpoint": "https://" + stsHost + "/",
		"allowedAccountIds": awsAccount})
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
		// Anyone can sign GetCallerIdentity with an account of their own.
		"no bound": {"stsEndpoint": "https://" + stsHost + "/"},
	} {
		id2, _ := e.NewIdentity(t, "cfg-"+strings.ReplaceAll(name, " ", "-"), "member")
		r := e.Do(t, "POST", "/api/v1/auth/aws-auth/identities/"+id2, e.Token, cfg)
		if r.Status != 400 && r.Status != 422 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if sts.Hits.Load() != 1 {
		t.Fatalf("STS hits %d", sts.Hits.Load())
	}
}

func TestAWSAuthUseLimitAndTrustedIPs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, d store.Dialect) {
		sts := newLocalSTS(t)
		e := apptest.Bootstrapped(t, d, stsOptions(sts))
		id, _ := e.NewIdentity(t, "limited", "member")
		base := "/api/v1/auth/aws-auth/identities/" + id
		e.Must(t, 200, "POST", base, e.Token, map[string]any{"accessTokenNumUsesLimit": 2, "allowedAccountIds": awsAccount,
			"accessTokenTrustedIps": []map[string]string{{"ipAddress": "10.0.0.0/8"}}})
		r, _ := awsLogin(t, e, signed{}.login(t, id))
		assertError(t, r, 403, "ForbiddenError")
		if sts.Hits.Load() != 0 {
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
