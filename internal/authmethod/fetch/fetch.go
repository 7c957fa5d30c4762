// Package fetch makes the outbound requests of login methods (JWKS, OIDC
// discovery, Kubernetes TokenReviews, AWS STS): only to http(s) URLs an administrator configured (or that the
// configured issuer names), under the server's target policy checked on every
// address dialed, with timeouts, no redirects, no proxy and a size limit.
package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/netaddr"
)

// Limits of one fetch.
const (
	MaxBody = 1 << 20 // bytes of a response body
	Timeout = 10 * time.Second
)

// CheckURL validates an administrator-configured URL: absolute http or https,
// with a host, without user information, whose host the server's policy
// allows. field names it in the error.
func CheckURL(ctx context.Context, env authmethod.Env, field, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return nil, errs.Fieldf(field, "%s must be an http or https URL", field)
	}
	if err := checkHost(ctx, env, u.Hostname()); err != nil {
		return nil, refusal(field, err)
	}
	return u, nil
}

// refusal is the answer to a host the checks refused: the policy's or the
// address's reason, but of a name that did not resolve only that (the
// resolver's answer and address are logged, not shown).
func refusal(field string, err error) error {
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return errs.BadRequest("%s: the host name could not be resolved", field).WithLoggedCause(err)
	}
	return errs.BadRequest("%s: %v", field, err)
}

// resolved is the test address that stands for host, if Env.Resolve names it.
func resolved(env authmethod.Env, host string) (netip.AddrPort, bool) {
	if !env.Loopback || env.Resolve == nil {
		return netip.AddrPort{}, false
	}
	ap, ok := env.Resolve[strings.ToLower(strings.TrimSuffix(host, "."))]
	return ap, ok
}

// CheckHost refuses a configured host name or address (of a URL that is not
// http, such as an LDAP server's) as CheckURL refuses an http URL's: by the
// server's target policy, and loopback unless env allows it. field names it
// in the error.
func CheckHost(ctx context.Context, env authmethod.Env, field, host string) error {
	if err := checkHost(ctx, env, host); err != nil {
		return refusal(field, err)
	}
	return nil
}

func checkHost(ctx context.Context, env authmethod.Env, host string) error {
	if ap, ok := resolved(env, host); ok {
		host = ap.Addr().String()
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if err := checkAddr(env, a); err != nil {
			return err
		}
	} else if strings.EqualFold(host, "localhost") && !env.Loopback {
		return errors.New("loopback addresses are not allowed")
	}
	if env.Policy == nil {
		return nil
	}
	return env.Policy.CheckHost(ctx, host)
}

func checkAddr(env authmethod.Env, a netip.Addr) error {
	// Refused whatever the policy: the server's own host, and link-local
	// addresses where cloud metadata services answer (an IPv4-mapped or
	// NAT64 address as the IPv4 address it reaches).
	if d := netaddr.Dialled(a); (d.IsLoopback() && !env.Loopback) || d.IsUnspecified() || d.IsMulticast() || d.IsLinkLocalUnicast() {
		return fmt.Errorf("address %s is not allowed", a)
	}
	if env.Policy != nil {
		return env.Policy.CheckAddr(a)
	}
	return nil
}

// ParseCA parses a PEM bundle of CA certificates; field names it in errors.
func ParseCA(field, caPEM string) (*x509.CertPool, error) {
	if strings.TrimSpace(caPEM) == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errs.Fieldf(field, "%s must hold PEM certificates", field)
	}
	return pool, nil
}

// Dialer returns a dialer that checks every address it is about to connect
// to (after resolution) as fetches do: the target policy, and never
// link-local, multicast or, unless env allows it, loopback addresses. Methods
// that speak another protocol than HTTP (LDAP) dial with it.
func Dialer(env authmethod.Env) *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return checkAddr(env, ap.Addr())
	}}
}

// Client fetches documents for one method configuration.
type Client struct {
	env authmethod.Env
	hc  *http.Client
}

// NewClient returns a client that trusts caPEM's certificates, or the system's
// roots when caPEM is empty.
func NewClient(env authmethod.Env, caPEM string) (*Client, error) {
	pool, err := ParseCA("caCert", caPEM)
	if err != nil {
		return nil, err
	}
	if pool == nil {
		pool = env.RootCAs // nil outside tests: the system's roots
	}
	d := Dialer(env)
	tr := &http.Transport{
		Proxy: nil, // a proxy would dial for us, past the address check
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				if ap, ok := resolved(env, host); ok {
					addr = ap.String()
				}
			}
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	hc := &http.Client{Transport: capped{tr}, Timeout: Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Client{env: env, hc: hc}, nil
}

// capped bounds every response body to MaxBody, for the libraries that read
// bodies through HTTP() (go-oidc's discovery and keys, oauth2's token
// exchange) as for GetJSON: a hostile server cannot make the reader hold
// more.
type capped struct{ rt http.RoundTripper }

func (c capped) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil && resp.Body != nil {
		resp.Body = &cappedBody{rc: resp.Body, left: MaxBody, host: r.URL.Host}
	}
	return resp, err
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
	host string
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly MaxBody from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("fetch %s: response larger than %d bytes", b.host, MaxBody)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// GetJSON fetches u and decodes its JSON body into v. Its errors name the
// URL's host, never a body.
func (c *Client) GetJSON(ctx context.Context, u string, v any) error {
	return c.doJSON(ctx, http.MethodGet, u, nil, nil, v)
}

// StatusError is an answer whose status is not a success; the body is not read.
type StatusError struct {
	Host, Path string
	Code       int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fetch %s%s: status %d (redirects are not followed)", e.Host, e.Path, e.Code)
}

// PostJSON posts body, encoded as JSON, to u with header (an Authorization
// header, say) and decodes a 2xx answer's JSON body into v. Any other status
// is a *StatusError. Its errors name the URL's host, never a body or a header.
func (c *Client) PostJSON(ctx context.Context, u string, header http.Header, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodPost, u, header, b, v)
}

// Send sends body with exactly header (a "Host" header sets the request's
// host, as a signed request names it; Content-Length is body's) and returns
// a 2xx answer's body; any other status is a *StatusError. It is for
// requests a client signed, such as an AWS GetCallerIdentity, which must
// arrive unchanged. Its errors name the URL's host, never a body or a header.
func (c *Client) Send(ctx context.Context, method, u string, header http.Header, body []byte) ([]byte, error) {
	return c.do(ctx, method, u, header, body, false)
}

func (c *Client) doJSON(ctx context.Context, method, u string, header http.Header, body []byte, v any) error {
	data, err := c.do(ctx, method, u, header, body, true)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		pu, _ := url.Parse(u)
		return fmt.Errorf("fetch %s%s: not JSON: %w", pu.Host, pu.Path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, u string, header http.Header, body []byte, isJSON bool) ([]byte, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return nil, fmt.Errorf("fetch: %q is not an http(s) URL", u)
	}
	if err := checkHost(ctx, c.env, pu.Hostname()); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pu.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, pu.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		if strings.EqualFold(k, "Host") {
			if len(vs) > 0 {
				req.Host = vs[0]
			}
			continue
		}
		req.Header[k] = vs
	}
	if isJSON {
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pu.Host, err)
	}
	defer resp.Body.Close()
	ok := resp.StatusCode == http.StatusOK || (method != http.MethodGet && resp.StatusCode/100 == 2)
	if !ok {
		return nil, &StatusError{Host: pu.Host, Path: pu.Path, Code: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pu.Host, err)
	}
	if len(data) > MaxBody {
		return nil, fmt.Errorf("fetch %s%s: response larger than %d bytes", pu.Host, pu.Path, MaxBody)
	}
	return data, nil
}

// HTTP returns the client's *http.Client, for libraries that take one (an
// OpenID Connect client): its requests are bound by the same policy.
func (c *Client) HTTP() *http.Client { return c.hc }
