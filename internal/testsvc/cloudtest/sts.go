package cloudtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/lockbox-dev/lockbox/internal/authmethod/awsauth"
)

// The AWS principal of the tests: an EC2 instance's role session.
const (
	STSHost       = "sts.us-east-1.amazonaws.com" // the Go SDK signs for sts.<AWS_REGION>.amazonaws.com
	STSGlobalHost = "sts.amazonaws.com"           // the global endpoint, in us-east-1
	AWSAccount    = "123456789012"
	AWSAccessKey  = "AKIDLOCKBOXTEST00001"
	AWSSecretKey  = "lockbox-test-secret-access-key/0123456789"
	AWSCallerARN  = "arn:aws:sts::123456789012:assumed-role/app-web/i-0abc123"
	AWSCallerUser = "AROAEXAMPLEID:i-0abc123"
	GetCallerBody = awsauth.GetCallerIdentityBody
)

// STS answers GetCallerIdentity for requests signed with the test
// credentials, as AWS STS does: it recomputes the SigV4 signature with the
// AWS SDK for Go v2's own signer over the request as received (host, signed
// headers, body) and refuses a wrong signature, a date more than 15 minutes
// off, a scope of another region than its hosts' (us-east-1), another host
// or another action, so a login succeeds only if lockbox
// forwarded the client's signed request unchanged.
type STS struct {
	Hits  atomic.Int64
	Srv   *httptest.Server
	Roots *x509.CertPool // the CA of Srv's certificate, which names STSHost
}

// NewSTS starts the endpoint on loopback.
func NewSTS(t testing.TB) *STS {
	t.Helper()
	s := &STS{}
	s.Srv, s.Roots = TLSServerFor(t, http.HandlerFunc(s.serve), STSHost, STSGlobalHost)
	return s
}

// Resolve maps STSHost and the default global endpoint (checked when a
// configuration is saved) to the local endpoint, so no name is ever looked up.
func (s *STS) Resolve() map[string]netip.AddrPort {
	ap := netip.MustParseAddrPort(s.Srv.Listener.Addr().String())
	return map[string]netip.AddrPort{STSHost: ap, STSGlobalHost: ap}
}

func stsError(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code></Error></ErrorResponse>`, code)
}

func (s *STS) serve(w http.ResponseWriter, r *http.Request) {
	s.Hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || (r.Host != STSHost && r.Host != STSGlobalHost) {
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
	if len(scope) != 5 || scope[0] != AWSAccessKey {
		stsError(w, 403, "InvalidClientTokenId")
		return
	}
	if scope[2] != "us-east-1" {
		stsError(w, 403, "SignatureDoesNotMatch") // AWS: "Credential should be scoped to a valid region"
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
	creds := aws.Credentials{AccessKeyID: AWSAccessKey, SecretAccessKey: AWSSecretKey}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), "sts", scope[2], at); err != nil ||
		!hmac.Equal([]byte(again.Header.Get("Authorization")), []byte(auth)) {
		stsError(w, 403, "SignatureDoesNotMatch")
		return
	}
	if string(body) != GetCallerBody {
		stsError(w, 400, "InvalidAction")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, AWSCallerARN, AWSCallerUser, AWSAccount)
}

// AWSEnv is the environment that gives an AWS SDK the test credentials and
// keeps it from looking anywhere else (files, instance metadata); dir is a
// scratch directory.
func AWSEnv(dir string) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + AWSAccessKey, "AWS_SECRET_ACCESS_KEY=" + AWSSecretKey, "AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1", "AWS_PROFILE=", "AWS_CONFIG_FILE=" + dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE=" + dir + "/credentials", "AWS_EC2_METADATA_DISABLED=true"}
}
