package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/golang-jwt/jwt/v5"
	"github.com/lockbox-dev/lockbox/internal/authmethod/awsauth"
)

// The cloud logins: the CLI gathers the proof its platform gives it and
// posts it to the method's login route, as Infisical's SDKs do.

const (
	// stsBody is the one request an aws-auth login may carry.
	stsBody = awsauth.GetCallerIdentityBody
	// defaultAzureResource is the resource Infisical's clients ask Azure's
	// instance metadata service for.
	defaultAzureResource = "https://management.azure.com/"
	// metadataLimit bounds what the CLI reads from a metadata service.
	metadataLimit = 64 << 10
)

// awsIAMLoginBody signs an STS GetCallerIdentity request with the AWS
// credentials the environment gives (environment variables, shared
// configuration and credential files, a web-identity token, the container or
// instance role) and returns the aws-auth login body that carries it. The
// request is signed for endpoint when given (an identity configured with
// another stsEndpoint), else for the region's STS host.
func awsIAMLoginBody(ctx context.Context, identityID, endpoint string) (map[string]string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load the AWS configuration: %v", err)
	}
	if endpoint == "" {
		if cfg.Region == "" {
			return nil, errors.New("no AWS region: set AWS_REGION (or a region in the AWS configuration), or pass --aws-sts-endpoint")
		}
		endpoint = "https://sts." + cfg.Region + ".amazonaws.com/"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return nil, errors.New("--aws-sts-endpoint must be an https URL without user information")
	}
	// The host as SigV4 signs it (no default port), which the Host header
	// sent to the server must equal.
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && p != "443" {
		host += ":" + p
	}
	u.Host = host
	region := cfg.Region
	if r, ok := stsRegion(u.Hostname()); ok {
		region = r
	} else if u.Hostname() == "sts.amazonaws.com" || region == "" {
		region = "us-east-1" // the global endpoint's region
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("no AWS credentials: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(stsBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(stsBody))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign the STS request: %v", err)
	}
	headers := map[string]string{"Host": host, "Content-Length": fmt.Sprint(len(stsBody))}
	for k, v := range req.Header {
		headers[k] = v[0]
	}
	hj, _ := json.Marshal(headers)
	return map[string]string{"identityId": identityID, "iamHttpRequestMethod": http.MethodPost,
		"iamRequestBody":    base64.StdEncoding.EncodeToString([]byte(stsBody)),
		"iamRequestHeaders": base64.StdEncoding.EncodeToString(hj)}, nil
}

// stsRegion is the region of a regional STS host (sts.<region>.amazonaws.com
// and its FIPS and China forms).
func stsRegion(host string) (string, bool) {
	parts := strings.Split(strings.ToLower(host), ".")
	if len(parts) >= 4 && (parts[0] == "sts" || parts[0] == "sts-fips") && parts[2] == "amazonaws" {
		return parts[1], true
	}
	return "", false
}

// metadataGet reads a token from a cloud metadata service: a GET with the
// service's header, 5 seconds, a bounded body.
func metadataGet(ctx context.Context, rawURL, header, value string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set(header, value)
	cl := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := cl.Do(req)
	if err != nil {
		return "", fmt.Errorf("the metadata service did not answer (is this running in the cloud?): %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, metadataLimit))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the metadata service answered %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// gcpIDToken asks the GCE metadata server (GCE_METADATA_HOST, as Google's
// libraries honour, else metadata.google.internal) for the instance's
// identity token with the identity id as audience, in the full format that
// carries the instance's project and zone.
func gcpIDToken(ctx context.Context, identityID string) (string, error) {
	host := os.Getenv("GCE_METADATA_HOST")
	if host == "" {
		host = "metadata.google.internal"
	}
	u := "http://" + host + "/computeMetadata/v1/instance/service-accounts/default/identity?audience=" +
		url.QueryEscape(identityID) + "&format=full"
	return metadataGet(ctx, u, "Metadata-Flavor", "Google")
}

// gcpKeyFile is the part of a service-account key file the CLI reads.
type gcpKeyFile struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
}

// gcpIAMToken signs, with a service account's key file, the token a gcp-auth
// identity of type iam accepts: sub the account's email, aud the identity id,
// a 15-minute expiry, the key's id as kid. Google publishes each account's
// public keys, user-managed ones included, which is what the server checks
// it against; unlike Infisical's SDK, no call to Google's IAM API is made.
func gcpIAMToken(path, identityID string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the service-account key file: %v", err)
	}
	var k gcpKeyFile
	if err := json.Unmarshal(raw, &k); err != nil || k.ClientEmail == "" || k.PrivateKey == "" || k.PrivateKeyID == "" {
		return "", errors.New("the service-account key file must be a JSON key with client_email, private_key_id and private_key")
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(k.PrivateKey))
	if err != nil {
		return "", errors.New("the key file's private_key is not a PEM RSA private key")
	}
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": k.ClientEmail, "sub": k.ClientEmail,
		"aud": identityID, "iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()})
	t.Header["kid"] = k.PrivateKeyID
	return t.SignedString(key)
}

// azureToken asks Azure's instance metadata service (LOCKBOX_AZURE_IMDS_URL,
// else http://169.254.169.254) for a managed identity's access token to
// resource; clientID picks a user-assigned identity.
func azureToken(ctx context.Context, resource, clientID string) (string, error) {
	base := strings.TrimSuffix(os.Getenv("LOCKBOX_AZURE_IMDS_URL"), "/")
	if base == "" {
		base = "http://169.254.169.254"
	}
	u := base + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + url.QueryEscape(resource)
	if clientID != "" {
		u += "&client_id=" + url.QueryEscape(clientID)
	}
	body, err := metadataGet(ctx, u, "Metadata", "true")
	if err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.AccessToken == "" {
		return "", errors.New("the metadata service's answer holds no access_token")
	}
	return out.AccessToken, nil
}
