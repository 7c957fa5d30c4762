// Package awsauth is the AWS IAM Auth login method: a workload signs an STS
// GetCallerIdentity request with its AWS credentials and hands it to lockbox,
// which checks what it can see (method, action, host, date, signature scheme),
// replays the request unchanged to the configured STS endpoint and holds the
// principal STS names to the configured accounts and principal ARNs.
package awsauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "aws-auth", DisplayName: "AWS Auth", WireKey: "identityAwsAuth",
		NoToken: true, Configure: Configure, New: New})
}

// DefaultSTSEndpoint is Infisical's default stsEndpoint: AWS's global STS
// endpoint, under which requests signed for a regional endpoint
// (sts.<region>.amazonaws.com) are also accepted and replayed there.
const DefaultSTSEndpoint = "https://sts.amazonaws.com/"

// GetCallerIdentityBody is the body of the one STS request a login carries,
// as clients sign it.
const GetCallerIdentityBody = "Action=GetCallerIdentity&Version=2011-06-15"

// Limits.
const (
	// MaxSkew is how far a request's X-Amz-Date may be from the server's
	// clock, as AWS allows: an older signed request is not replayed.
	MaxSkew     = 15 * time.Minute
	maxList     = 4096
	maxEndpoint = 255
	maxHeaders  = 50
	maxBody     = 1024
)

// Config is a stored configuration, in Infisical's field names.
type Config struct {
	STSEndpoint          string `json:"stsEndpoint"`
	AllowedPrincipalArns string `json:"allowedPrincipalArns"`
	AllowedAccountIds    string `json:"allowedAccountIds"`
}

type patch struct {
	STSEndpoint          *string `json:"stsEndpoint"`
	AllowedPrincipalArns *string `json:"allowedPrincipalArns"`
	AllowedAccountIds    *string `json:"allowedAccountIds"`
}

var (
	accountRe = lazyre.New(`^\d{12}$`)
	// arnRe is Infisical's accepted pattern set: users, roles and assumed
	// roles of an account (globs allowed in the name), or the whole account.
	arnRe    = lazyre.New(`^arn:aws(?:-us-gov)?:(iam|sts)::\d{12}:(user/[a-zA-Z0-9_.@+*/-]+|role/[a-zA-Z0-9_.@+*/-]+|assumed-role/[a-zA-Z0-9_.@+*/-]+|\*)$`)
	regionRe = lazyre.New(`^[a-z0-9-]{1,20}$`)
)

// split returns a comma-separated list's non-empty, trimmed members.
func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	c := Config{STSEndpoint: DefaultSTSEndpoint}
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored aws-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, errs.BadRequest("Invalid AWS Auth configuration: %s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid AWS Auth configuration: malformed JSON")
	}
	if p.STSEndpoint != nil {
		c.STSEndpoint = strings.TrimSpace(*p.STSEndpoint)
		if c.STSEndpoint == "" {
			c.STSEndpoint = DefaultSTSEndpoint
		}
	}
	if p.AllowedAccountIds != nil {
		if len(*p.AllowedAccountIds) > maxList {
			return nil, errs.Fieldf("allowedAccountIds", "allowedAccountIds must be at most %d characters", maxList)
		}
		ids := split(*p.AllowedAccountIds)
		for _, id := range ids {
			if !accountRe().MatchString(id) {
				return nil, errs.Fieldf("allowedAccountIds", "Each account ID must be a 12-digit number.")
			}
		}
		c.AllowedAccountIds = strings.Join(ids, ", ")
	}
	if p.AllowedPrincipalArns != nil {
		if len(*p.AllowedPrincipalArns) > maxList {
			return nil, errs.Fieldf("allowedPrincipalArns", "allowedPrincipalArns must be at most %d characters", maxList)
		}
		arns := split(*p.AllowedPrincipalArns)
		for _, a := range arns {
			if !arnRe().MatchString(a) {
				return nil, errs.Fieldf("allowedPrincipalArns", "Each ARN must be in the format of 'arn:aws:iam::123456789012:user/UserName', "+
					"'arn:aws:iam::123456789012:role/RoleName', 'arn:aws:iam::123456789012:*' or "+
					"'arn:aws:sts::123456789012:assumed-role/RoleName' (GovCloud's arn:aws-us-gov: too)")
			}
		}
		c.AllowedPrincipalArns = strings.Join(arns, ", ")
	}
	if c.AllowedAccountIds == "" && c.AllowedPrincipalArns == "" {
		// Infisical allows it; but anyone can sign a GetCallerIdentity
		// request with an AWS account of their own.
		return nil, errs.Fieldf("allowedAccountIds", "allowedAccountIds or allowedPrincipalArns is required: without either, any AWS account could log in")
	}
	if len(c.STSEndpoint) > maxEndpoint {
		return nil, errs.Fieldf("stsEndpoint", "stsEndpoint must be at most %d characters", maxEndpoint)
	}
	u, err := fetch.CheckURL(ctx, env, "stsEndpoint", c.STSEndpoint)
	if err != nil {
		return nil, err
	}
	// The client's signed request (valid for 15 minutes) travels to it.
	if u.Scheme != "https" {
		return nil, errs.Fieldf("stsEndpoint", "stsEndpoint must be an https URL")
	}
	return json.Marshal(c)
}

// Method verifies signed GetCallerIdentity requests for one configuration.
type Method struct {
	env      authmethod.Env
	endpoint *url.URL
	accounts []string
	arns     []string
	client   *fetch.Client
}

var _ authmethod.RequestVerifier = (*Method)(nil)

// New builds the method of a stored configuration.
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode aws-auth configuration: %w", err)
	}
	u, err := url.Parse(c.STSEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("aws-auth: stsEndpoint %q is not a URL", c.STSEndpoint)
	}
	cl, err := fetch.NewClient(env, "")
	if err != nil {
		return nil, err
	}
	return &Method{env: env, endpoint: u, accounts: split(c.AllowedAccountIds), arns: split(c.AllowedPrincipalArns), client: cl}, nil
}

// Verify is not used: the credential is the whole login request.
func (m *Method) Verify(context.Context, string) (authmethod.Verified, error) {
	return authmethod.Verified{}, authmethod.Refuse("request", "Access denied: AWS Auth needs a signed GetCallerIdentity request")
}

// login is the method's part of the login body.
type login struct {
	Method  string `json:"iamHttpRequestMethod"`
	Body    string `json:"iamRequestBody"`
	Headers string `json:"iamRequestHeaders"`
}

// VerifyRequest checks the signed request, replays it to STS and checks the
// principal STS answers with.
func (m *Method) VerifyRequest(ctx context.Context, c authmethod.Credential) (authmethod.Verified, error) {
	var l login
	if err := json.Unmarshal(c.Body, &l); err != nil {
		return authmethod.Verified{}, authmethod.Refuse("request", "Access denied: iamHttpRequestMethod, iamRequestBody and iamRequestHeaders must be strings")
	}
	if l.Method != http.MethodPost {
		return authmethod.Verified{}, authmethod.Refuse("method", "Access denied: iamHttpRequestMethod must be POST")
	}
	body, err := base64.StdEncoding.DecodeString(l.Body)
	if err != nil || len(body) > maxBody {
		return authmethod.Verified{}, authmethod.Refuse("action", "Access denied: iamRequestBody must be a base64 GetCallerIdentity request body")
	}
	if !isGetCallerIdentity(body) {
		return authmethod.Verified{}, authmethod.Refuse("action", "Access denied: the signed request is not STS GetCallerIdentity ("+GetCallerIdentityBody+")")
	}
	header, err := decodeHeaders(l.Headers)
	if err != nil {
		return authmethod.Verified{}, authmethod.Refuse("request", "Access denied: iamRequestHeaders must be the base64 of a JSON object of header names to strings")
	}
	scope, err := parseAuthorization(header.Get("Authorization"))
	if err != nil {
		return authmethod.Verified{}, &authmethod.Refusal{Check: "signature",
			Message: "Access denied: the request is not signed with AWS Signature Version 4 for sts", Err: err}
	}
	target, err := m.target(header.Get("Host"), scope.region)
	if err != nil {
		return authmethod.Verified{}, &authmethod.Refusal{Check: "host",
			Message: "Access denied: the request is not signed for this configuration's STS endpoint", Err: err}
	}
	if err := m.checkDate(header.Get("X-Amz-Date"), scope.date); err != nil {
		return authmethod.Verified{}, &authmethod.Refusal{Check: "date",
			Message: fmt.Sprintf("Access denied: X-Amz-Date must be a signed date within %v of the server's clock", MaxSkew), Err: err}
	}
	id, err := m.callerIdentity(ctx, target, header, body)
	if err != nil {
		return authmethod.Verified{}, err
	}
	if err := m.checkPrincipal(id); err != nil {
		return authmethod.Verified{}, err
	}
	return authmethod.Verified{Metadata: map[string]string{"accountId": id.Account, "arn": id.Arn, "userId": id.UserID}}, nil
}

// isGetCallerIdentity reports whether body is a GetCallerIdentity form with
// nothing else: exactly Action=GetCallerIdentity and Version=2011-06-15.
func isGetCallerIdentity(body []byte) bool {
	q, err := url.ParseQuery(string(body))
	if err != nil || len(q) != 2 {
		return false
	}
	a, v := q["Action"], q["Version"]
	return len(a) == 1 && a[0] == "GetCallerIdentity" && len(v) == 1 && v[0] == "2011-06-15"
}

// hopByHop are headers that belong to one connection, never forwarded.
var hopByHop = map[string]bool{"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Proxy-Authorization": true}

func decodeHeaders(b64 string) (http.Header, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if len(m) > maxHeaders {
		return nil, errors.New("too many headers")
	}
	h := http.Header{}
	for k, v := range m {
		ck := http.CanonicalHeaderKey(k)
		if ck == "" || hopByHop[ck] || strings.ContainsAny(k+v, "\r\n") {
			continue
		}
		h.Add(ck, v)
	}
	return h, nil
}

// scope is an Authorization header's credential scope.
type scope struct{ date, region string }

// parseAuthorization checks an AWS4-HMAC-SHA256 Authorization header for
// service sts whose signed headers include host and x-amz-date.
func parseAuthorization(h string) (scope, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return scope{}, errors.New("not AWS4-HMAC-SHA256")
	}
	var cred, signed, sig string
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "sts" || parts[4] != "aws4_request" || !regionRe().MatchString(parts[2]) {
		return scope{}, errors.New("credential scope is not <key>/<date>/<region>/sts/aws4_request")
	}
	if sig == "" {
		return scope{}, errors.New("no signature")
	}
	var host, date bool
	for _, s := range strings.Split(signed, ";") {
		host = host || s == "host"
		date = date || s == "x-amz-date"
	}
	if !host || !date {
		return scope{}, errors.New("host and x-amz-date are not signed")
	}
	return scope{date: parts[1], region: parts[2]}, nil
}

// target returns the URL the request signed for host goes to: the
// configured endpoint when host is its host; under the default global
// endpoint, also the regional endpoint of the signature's region, as the
// Go SDK signs for sts.<region>.amazonaws.com (Infisical sends those there).
// A request signed for any other host is never sent anywhere.
func (m *Method) target(host, region string) (string, error) {
	host = strings.ToLower(strings.TrimSpace(host))
	if host == "" {
		return "", errors.New("no Host header")
	}
	if host == strings.ToLower(m.endpoint.Host) {
		return m.endpoint.String(), nil
	}
	if strings.EqualFold(m.endpoint.Host, "sts.amazonaws.com") && host == "sts."+region+".amazonaws.com" {
		return "https://" + host + "/", nil
	}
	return "", fmt.Errorf("signed for %q, endpoint %q", host, m.endpoint.Host)
}

func (m *Method) checkDate(amzDate, scopeDate string) error {
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return errors.New("X-Amz-Date missing or malformed")
	}
	if t.Format("20060102") != scopeDate {
		return errors.New("X-Amz-Date is not the credential scope's date")
	}
	now := m.env.Clock()()
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("X-Amz-Date %s is %v from now", amzDate, d.Round(time.Second))
	}
	return nil
}

// identity is what STS says signed the request.
type identity struct{ Arn, Account, UserID string }

type callerIdentityResponse struct {
	Result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
}

func (m *Method) callerIdentity(ctx context.Context, target string, header http.Header, body []byte) (identity, error) {
	out, err := m.client.Send(ctx, http.MethodPost, target, header, body)
	if se, ok := errors.AsType[*fetch.StatusError](err); ok && se.Code/100 == 4 {
		return identity{}, &authmethod.Refusal{Check: "signature",
			Message: fmt.Sprintf("Access denied: AWS STS refused the signed request (status %d)", se.Code), Err: err}
	}
	if err != nil {
		return identity{}, &authmethod.Refusal{Check: "sts", Message: "Access denied: AWS STS could not be reached", Err: err}
	}
	var r callerIdentityResponse
	if err := xml.Unmarshal(out, &r); err != nil || r.Result.Arn == "" || r.Result.Account == "" {
		return identity{}, &authmethod.Refusal{Check: "sts", Message: "Access denied: AWS STS's answer is not a GetCallerIdentity result",
			Err: fmt.Errorf("sts answer: %v", err)}
	}
	return identity{Arn: r.Result.Arn, Account: r.Result.Account, UserID: r.Result.UserID}, nil
}

func (m *Method) checkPrincipal(id identity) error {
	if len(m.accounts) == 0 && len(m.arns) == 0 {
		// Stored before a bound was required: it would let in anyone's.
		return authmethod.Refuse("account", "Access denied: this AWS Auth configuration allows no account; set allowedAccountIds or allowedPrincipalArns")
	}
	if len(m.accounts) > 0 && !contains(m.accounts, id.Account) {
		return authmethod.Refuse("account", "Access denied: AWS account ID not allowed.")
	}
	if len(m.arns) == 0 {
		return nil
	}
	p, err := parseARN(id.Arn)
	if err != nil {
		return &authmethod.Refusal{Check: "principal", Message: "Access denied: AWS principal ARN not recognised", Err: err}
	}
	asIs, asRole := p.format(false), p.format(true)
	for _, pat := range m.arns {
		if glob(pat, asIs) || glob(pat, asRole) {
			return nil
		}
	}
	return authmethod.Refuse("principal", "Access denied: AWS principal ARN not allowed. [principal-arn=%s]", asIs)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// principal is a caller ARN's parts, as Infisical reads them.
type principal struct {
	partition, service, account, typ, name string
}

// parseARN reads arn:<partition>:<iam|sts>::<account>:<type>/[path/]<name>,
// where an assumed role's name is its role (the session is dropped).
func parseARN(arn string) (principal, error) {
	f := strings.Split(arn, ":")
	if len(f) != 6 || f[0] != "arn" || (f[2] != "iam" && f[2] != "sts") {
		return principal{}, fmt.Errorf("unrecognised ARN %q", arn)
	}
	parts := strings.Split(f[5], "/")
	if len(parts) < 2 {
		return principal{}, fmt.Errorf("ARN %q has no type/name", arn)
	}
	p := principal{partition: f[1], service: f[2], account: f[4], typ: parts[0], name: parts[len(parts)-1]}
	switch p.typ {
	case "assumed-role":
		if len(parts) < 3 {
			return principal{}, fmt.Errorf("assumed-role ARN %q has no session", arn)
		}
		p.name = parts[1]
	case "user", "role", "instance-profile":
	default:
		return principal{}, fmt.Errorf("ARN %q has principal type %q", arn, p.typ)
	}
	return p, nil
}

// format is the ARN patterns are matched against: without path or session,
// and with asRole an assumed role as its IAM role
// (arn:aws:sts::ACCT:assumed-role/ROLE/SESSION -> arn:aws:iam::ACCT:role/ROLE).
func (p principal) format(asRole bool) string {
	service, typ := p.service, p.typ
	if asRole {
		service = "iam"
		if typ == "assumed-role" {
			typ = "role"
		}
	}
	return "arn:" + p.partition + ":" + service + "::" + p.account + ":" + typ + "/" + p.name
}

// glob reports whether s matches pattern, where * matches any run of
// characters (slashes too) and everything else itself.
func glob(pattern, s string) bool {
	// Iterative wildcard matching with one backtrack point: linear enough
	// for patterns of at most 4096 characters.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
