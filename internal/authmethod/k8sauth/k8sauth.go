// Package k8sauth is the Kubernetes Auth login method: a workload presents
// its service-account token, the server asks the cluster's API to review it
// (a TokenReview), and the reviewed service account's namespace and name and
// the token's audience are checked against the configuration.
package k8sauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/lockbox-dev/lockbox/internal/authmethod"
	"github.com/lockbox-dev/lockbox/internal/authmethod/fetch"
	"github.com/lockbox-dev/lockbox/internal/authmethod/jwtcheck"
	"github.com/lockbox-dev/lockbox/internal/errs"
)

func init() {
	authmethod.Register(authmethod.Registration{Name: "kubernetes-auth", DisplayName: "Kubernetes Auth",
		WireKey: "identityKubernetesAuth", Configure: Configure, New: New, Secret: []string{"tokenReviewerJwt"}})
}

// TokenReviewPath is where the cluster's API takes TokenReviews, under kubernetesHost.
const TokenReviewPath = "/apis/authentication.k8s.io/v1/tokenreviews"

// ModeAPI is the only token review mode served: the server calls the
// cluster's API itself (Infisical's "gateway" mode needs its gateways).
const ModeAPI = "api"

// Config is a stored configuration, in Infisical's field names.
// TokenReviewerJWT is secret: the server seals it and never returns it.
type Config struct {
	KubernetesHost    string `json:"kubernetesHost"`
	CACert            string `json:"caCert"`
	TokenReviewerJWT  string `json:"tokenReviewerJwt,omitempty"`
	AllowedNamespaces string `json:"allowedNamespaces"`
	AllowedNames      string `json:"allowedNames"`
	AllowedAudience   string `json:"allowedAudience"`
	TokenReviewMode   string `json:"tokenReviewMode"`
}

type patch struct {
	KubernetesHost    *string `json:"kubernetesHost"`
	CACert            *string `json:"caCert"`
	TokenReviewerJWT  *string `json:"tokenReviewerJwt"`
	AllowedNamespaces *string `json:"allowedNamespaces"`
	AllowedNames      *string `json:"allowedNames"`
	AllowedAudience   *string `json:"allowedAudience"`
	TokenReviewMode   *string `json:"tokenReviewMode"`
}

// maxText bounds every configuration field.
const maxText = 16 << 10

// Configure validates an attach (old nil) or an update over old.
func Configure(ctx context.Context, env authmethod.Env, old, body json.RawMessage) (json.RawMessage, error) {
	var c Config
	if old != nil {
		if err := json.Unmarshal(old, &c); err != nil {
			return nil, errs.Internalf(err, "decode stored kubernetes-auth configuration")
		}
	}
	var p patch
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errs.BadRequest("Invalid Kubernetes Auth configuration: %s must be a %s", te.Field, te.Type)
		}
		return nil, errs.BadRequest("Invalid Kubernetes Auth configuration: malformed JSON")
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&c.KubernetesHost, p.KubernetesHost)
	set(&c.CACert, p.CACert)
	set(&c.TokenReviewerJWT, p.TokenReviewerJWT)
	set(&c.AllowedAudience, p.AllowedAudience)
	set(&c.TokenReviewMode, p.TokenReviewMode)
	if p.AllowedNamespaces != nil {
		c.AllowedNamespaces = jwtcheck.JoinPolicy(*p.AllowedNamespaces)
	}
	if p.AllowedNames != nil {
		c.AllowedNames = jwtcheck.JoinPolicy(*p.AllowedNames)
	}
	if c.TokenReviewMode == "" {
		c.TokenReviewMode = ModeAPI
	}
	if c.KubernetesHost != "" && !strings.Contains(c.KubernetesHost, "://") {
		c.KubernetesHost = "https://" + c.KubernetesHost // as Infisical: a bare host is https
	}
	c.KubernetesHost = strings.TrimRight(c.KubernetesHost, "/")
	// The sealed reviewer token goes only to the host it was given for,
	// verified as it was: an update that points the review at another host,
	// or changes or drops the CA the host is verified with, must give the
	// token again, or an editor who cannot read it could have it sent to a
	// server of theirs (as LDAP Auth's bind password).
	if old != nil && c.TokenReviewerJWT != "" && p.TokenReviewerJWT == nil {
		var was Config
		json.Unmarshal(old, &was)
		if was.KubernetesHost != c.KubernetesHost || was.CACert != c.CACert {
			return nil, errs.Fieldf("tokenReviewerJwt", "tokenReviewerJwt must be given again when kubernetesHost or caCert changes")
		}
	}
	if err := c.validate(ctx, env); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

func (c *Config) validate(ctx context.Context, env authmethod.Env) error {
	for _, s := range []struct{ name, v string }{{"kubernetesHost", c.KubernetesHost}, {"caCert", c.CACert},
		{"tokenReviewerJwt", c.TokenReviewerJWT}, {"allowedNamespaces", c.AllowedNamespaces},
		{"allowedNames", c.AllowedNames}, {"allowedAudience", c.AllowedAudience}} {
		if len(s.v) > maxText {
			return errs.Fieldf(s.name, "%s must be at most %d characters", s.name, maxText)
		}
	}
	if c.TokenReviewMode != ModeAPI {
		return errs.Fieldf("tokenReviewMode", "tokenReviewMode must be %q (gateway token review is not supported)", ModeAPI)
	}
	if c.KubernetesHost == "" {
		return errs.Fieldf("kubernetesHost", "kubernetesHost is required")
	}
	u, err := fetch.CheckURL(ctx, env, "kubernetesHost", c.KubernetesHost)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errs.Fieldf("kubernetesHost", "kubernetesHost must not have a query or fragment")
	}
	if _, err := fetch.ParseCA("caCert", c.CACert); err != nil {
		return err
	}
	return nil
}

// Method reviews service-account tokens for one configuration.
type Method struct {
	reviewURL  string
	reviewer   string // empty: the presented token reviews itself
	namespaces []string
	names      []string
	audience   string
	client     *fetch.Client
}

// New builds the method of a stored configuration (secret fields opened).
func New(env authmethod.Env, raw json.RawMessage) (authmethod.Method, error) {
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode kubernetes-auth configuration: %w", err)
	}
	u, err := url.Parse(c.KubernetesHost)
	if err != nil {
		return nil, fmt.Errorf("kubernetes-auth host: %w", err)
	}
	cl, err := fetch.NewClient(env, c.CACert)
	if err != nil {
		return nil, err
	}
	return &Method{reviewURL: u.JoinPath(TokenReviewPath).String(), reviewer: c.TokenReviewerJWT,
		namespaces: jwtcheck.SplitPolicy(c.AllowedNamespaces), names: jwtcheck.SplitPolicy(c.AllowedNames),
		audience: c.AllowedAudience, client: cl}, nil
}

// tokenReview is the TokenReview object of authentication.k8s.io/v1, both
// the request (spec) and the answer (status).
type tokenReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Token     string   `json:"token"`
		Audiences []string `json:"audiences,omitempty"`
	} `json:"spec"`
	Status struct {
		Authenticated bool `json:"authenticated"`
		User          struct {
			Username string `json:"username"`
		} `json:"user"`
		Audiences []string `json:"audiences"`
		Error     string   `json:"error"`
	} `json:"status"`
}

// Verify has the cluster review tok, then checks the service account and
// audience. Refusals name the check: token, reviewer, review, authenticated,
// username, namespace, name, audience.
func (m *Method) Verify(ctx context.Context, tok string) (authmethod.Verified, error) {
	tok = strings.TrimSpace(tok) // a token file may end in a newline
	if tok == "" || len(tok) > jwtcheck.MaxTokenBytes {
		return authmethod.Verified{}, authmethod.Refuse("token", "Access denied: the service account token is empty or longer than %d bytes", jwtcheck.MaxTokenBytes)
	}
	var req tokenReview
	req.APIVersion, req.Kind, req.Spec.Token = "authentication.k8s.io/v1", "TokenReview", tok
	if m.audience != "" {
		req.Spec.Audiences = []string{m.audience}
	}
	bearer := m.reviewer
	if bearer == "" {
		bearer = tok // as Infisical: without a reviewer token, the workload's token reviews itself
	}
	var res tokenReview
	err := m.client.PostJSON(ctx, m.reviewURL, http.Header{"Authorization": {"Bearer " + bearer}}, req, &res)
	if se, ok := errors.AsType[*fetch.StatusError](err); ok && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden) {
		r := authmethod.Refuse("reviewer", "Access denied: the Kubernetes API refused the token reviewer JWT (status %d); "+
			"check that it is valid and that its service account may create TokenReviews (ClusterRole system:auth-delegator)", se.Code)
		r.Err = err
		return authmethod.Verified{}, r
	}
	if err != nil {
		r := authmethod.Refuse("review", "Access denied: the Kubernetes TokenReview failed; check kubernetesHost and caCert")
		r.Err = err
		return authmethod.Verified{}, r
	}
	st := res.Status
	if !st.Authenticated || st.Error != "" {
		r := authmethod.Refuse("authenticated", "Access denied: Kubernetes token not authenticated")
		if st.Error != "" {
			r.Err = errors.New("token review: " + st.Error)
		}
		return authmethod.Verified{}, r
	}
	ns, name, ok := serviceAccount(st.User.Username)
	if !ok {
		return authmethod.Verified{}, authmethod.Refuse("username",
			"Access denied: the reviewed token is not a service account's (system:serviceaccount:<namespace>:<name>)")
	}
	if len(m.namespaces) > 0 && !matchAny(m.namespaces, ns) {
		return authmethod.Verified{}, authmethod.Refuse("namespace", "Access denied: K8s namespace not allowed.")
	}
	if len(m.names) > 0 && !matchAny(m.names, name) {
		return authmethod.Verified{}, authmethod.Refuse("name", "Access denied: K8s name not allowed.")
	}
	if m.audience != "" && !slices.Contains(st.Audiences, m.audience) {
		return authmethod.Verified{}, authmethod.Refuse("audience", "Access denied: K8s audience not allowed.")
	}
	return authmethod.Verified{Metadata: map[string]string{"namespace": ns, "name": name}}, nil
}

// serviceAccount splits "system:serviceaccount:<namespace>:<name>".
func serviceAccount(username string) (ns, name string, ok bool) {
	parts := strings.Split(username, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[2], parts[3], true
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if jwtcheck.Match(p, s) {
			return true
		}
	}
	return false
}
