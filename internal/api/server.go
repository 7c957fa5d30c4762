// Package api is lockbox's HTTP edge: Infisical's REST API on a standard
// library ServeMux. Handlers decode, call one domain function and encode;
// only this package knows HTTP statuses.
package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lockbox-dev/lockbox/internal/authz"
	"github.com/lockbox-dev/lockbox/internal/cache"
	"github.com/lockbox-dev/lockbox/internal/errs"
	"github.com/lockbox-dev/lockbox/internal/lazyre"
)

// Health is what /api/status reports on.
type Health interface {
	Ping(ctx context.Context) error
	SchemaVersion(ctx context.Context) (int64, error)
	Engine() string
}

// Authenticator turns a bearer token into an actor.
type Authenticator interface {
	Authenticate(ctx context.Context, token string, ip, userAgent string) (authz.Actor, error)
	// Recheck reports whether a token that authenticated a long-lived
	// request still would, counting no use.
	Recheck(ctx context.Context, token string, ip, userAgent string) error
}

// Options configures a Server.
type Options struct {
	// SiteURL is the server's public URL (LOCKBOX_SITE_URL), for links it
	// hands out; empty: the address a request reached.
	SiteURL       string
	Version       string
	MaxBodyBytes  int64
	AuthRateLimit int // requests per minute per IP on login and bootstrap
	Logger        *slog.Logger
	Health        Health
	Auth          Authenticator
	Services      Services
	Registry      *prometheus.Registry // nil: a new one
	// TrustedProxies are the peers whose ClientIPHeader names the client;
	// empty trusts none (clientIP).
	TrustedProxies []netip.Prefix
	// ClientIPHeader is "x-real-ip" to read the client from X-Real-IP
	// alone; otherwise X-Forwarded-For alone is read.
	ClientIPHeader string
	// CertHeader is the header in which a trusted proxy forwards a
	// client certificate for certificate login (authmethod.Credential's
	// ProxyCertificate); empty: no header is read. It is opt-in because
	// whoever can send it from a trusted-proxy address can present any
	// certificate (leaf certificates are not secret).
	CertHeader string
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	MetricsToken string
	// SeparateMetrics leaves /metrics off the API (404 there); serve
	// MetricsHandler on a listener of its own instead.
	SeparateMetrics bool
	// Cache is the node's cache generation: each authenticated request
	// begins by checking it against the database (nil: no caching).
	Cache *cache.Gen
	// Web, when set, serves every path outside /api that no API route
	// matches (the dashboard, package web).
	Web http.Handler
}

// Server is the HTTP API.
type Server struct {
	siteURL         string
	mux             *http.ServeMux
	handler         http.Handler
	log             *slog.Logger
	version         string
	maxBody         int64
	health          Health
	auth            Authenticator
	svc             Services
	cache           *cache.Gen
	web             http.Handler
	authRate        *ipLimiter
	trustedProxies  []netip.Prefix
	realIP          bool      // X-Real-IP, not X-Forwarded-For, names the client
	realIPWarned    sync.Once // a trusted proxy sent only the header not read
	clientCertHdr   string
	metricsToken    string
	separateMetrics bool
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec

	// projectLists maps the last segment of GET /api/v1/projects/{id}/{sub}
	// to its handler (see projectSubGet).
	projectLists map[string]func(http.ResponseWriter, *http.Request) error
	// workspaceLists does the same for GET /api/v1/workspace/{id}/{sub}.
	workspaceLists map[string]func(http.ResponseWriter, *http.Request) error
	// workspaceV2Lists does the same for GET /api/v2/workspace/{id}/{sub}.
	workspaceV2Lists map[string]func(http.ResponseWriter, *http.Request) error
	patterns         []string // every registered route (Patterns)

	// streams is cancelled by CloseStreams: open event streams end.
	streams      context.Context
	closeStreams context.CancelFunc
	streamGate   streamGate
}

// New builds the server and its routes.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.AuthRateLimit == 0 {
		o.AuthRateLimit = 60
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		siteURL:          o.SiteURL,
		mux:              http.NewServeMux(),
		log:              o.Logger,
		version:          o.Version,
		maxBody:          o.MaxBodyBytes,
		health:           o.Health,
		auth:             o.Auth,
		svc:              o.Services,
		cache:            o.Cache,
		web:              o.Web,
		authRate:         newIPLimiter(o.AuthRateLimit, time.Minute),
		trustedProxies:   o.TrustedProxies,
		realIP:           strings.EqualFold(o.ClientIPHeader, "x-real-ip"),
		clientCertHdr:    o.CertHeader,
		metricsToken:     o.MetricsToken,
		separateMetrics:  o.SeparateMetrics,
		reg:              o.Registry,
		projectLists:     map[string]func(http.ResponseWriter, *http.Request) error{},
		workspaceLists:   map[string]func(http.ResponseWriter, *http.Request) error{},
		workspaceV2Lists: map[string]func(http.ResponseWriter, *http.Request) error{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lockbox_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lockbox_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
	}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	s.reg.MustRegister(s.requests, s.latency)
	s.routes()
	s.handler = s.withRequestID(s.withClientIP(s.withAccessLog(s.withRecover(http.HandlerFunc(s.dispatch)))))
	return s
}

// CloseStreams ends every open event stream, now and later. Register it with
// http.Server.RegisterOnShutdown: Shutdown waits for handlers, and a stream's
// handler only returns when its stream ends.
func (s *Server) CloseStreams() { s.closeStreams() }

// Registry is where the server's metrics live; other packages may add to it.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// dispatch normalises the path, answers unmatched routes with JSON 404/405,
// and limits request bodies.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		r.URL.RawPath = ""
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" && s.web != nil && r.URL.Path != "/api" && !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics" {
		s.web.ServeHTTP(w, r)
		return
	}
	if pattern == "" {
		// Let the mux write its 405 headers (Allow) into a recorder, then send our body.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{ReqID: requestID(r.Context()), StatusCode: 405,
				Message: fmt.Sprintf("Route %s:%s not found", r.Method, r.URL.Path), Error: "MethodNotAllowed"})
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody{ReqID: requestID(r.Context()), StatusCode: 404,
			Message: fmt.Sprintf("Route %s:%s not found", r.Method, r.URL.Path), Error: "NotFound"})
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	}
	s.mux.ServeHTTP(w, r)
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }

// handle adapts a handler that returns an error.
//
// Answers are not to be stored by any cache (a token, a lease's password, a
// secret's value, a key) unless the handler says otherwise (a CRL), nor
// sniffed as another type than they say.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyActor
	keyClientIP
	keyOverTLS
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func newRequestID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "req-" + string(b)
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

type loggingWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodLabel is method as metrics and the access log name it: one of
// HTTP's methods, or "other". Go's server accepts any token as a method
// (up to the header limit), and a label kept per distinct value would let
// anyone grow the server's memory and /metrics without bound.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// logPath is path cut to 512 bytes for the access log: a path can be as
// long as the header limit allows.
func logPath(path string) string {
	const max = 512
	if len(path) <= max {
		return path
	}
	return strings.ToValidUTF8(path[:max], "") + "…"
}

// withAccessLog logs one line per request: never a body, header, query or token.
func (s *Server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &loggingWriter{ResponseWriter: w}
		next.ServeHTTP(lw, r)
		d := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if lw.status == 0 {
			lw.status = http.StatusOK
		}
		method := methodLabel(r.Method)
		s.requests.WithLabelValues(route, method, fmt.Sprint(lw.status)).Inc()
		s.latency.WithLabelValues(route).Observe(d.Seconds())
		attrs := []slog.Attr{
			slog.String("reqId", requestID(r.Context())),
			slog.String("method", method),
			slog.String("route", route),
			slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", lw.status),
			slog.Int("bytes", lw.bytes),
			slog.Duration("duration", d),
			slog.String("ip", clientIP(r)),
		}
		if r.URL.RawQuery != "" && s.log.Enabled(r.Context(), slog.LevelDebug) {
			attrs = append(attrs, slog.String("query", redactQuery(r.URL.Query())))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// sensitiveParam matches query parameter names, lower-cased without '_' and
// '-', whose values are never logged.
// An OIDC callback's code and state sign a browser in (replayed with a
// state cookie set by hand).
var sensitiveParam = lazyre.New(`token|password|secretvalue|clientsecret|credential|key$|^secret$|^code$|^state$`)

// redactQuery renders a query for the debug log, with sensitive values masked.
func redactQuery(q url.Values) string {
	for k, vs := range q {
		if sensitiveParam().MatchString(strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(k))) {
			for i := range vs {
				vs[i] = "[redacted]"
			}
		}
	}
	return q.Encode()
}

func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "panic", "reqId", requestID(r.Context()), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				s.writeError(w, r, fmt.Errorf("panic: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authed requires a valid bearer token and puts the actor in the context.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		tok, err := bearer(r)
		if err != nil {
			return err
		}
		r = s.synced(r)
		actor, err := s.auth.Authenticate(r.Context(), tok, clientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		err = h(w, r.WithContext(context.WithValue(r.Context(), keyActor, actor)))
		if e, ok := errors.AsType[*errs.Error](err); ok && e.Kind == errs.Forbidden && s.svc.Audit != nil {
			if aerr := s.svc.Audit.Denied(r.Context(), actor, r.Method, r.Pattern, e.Message); aerr != nil {
				s.log.ErrorContext(r.Context(), "audit of a denied request", "err", aerr.Error())
			}
		}
		return err
	})
}

// synced returns r with a context the caches may answer: the database's
// change counter has been read, so nothing committed before now is missed.
// If it cannot be read, r is served uncached.
func (s *Server) synced(r *http.Request) *http.Request {
	ctx, err := s.cache.Begin(r.Context())
	if err != nil {
		s.log.DebugContext(r.Context(), "cache epoch unreadable; request served uncached", "err", err.Error())
		return r
	}
	return r.WithContext(ctx)
}

// actorFrom returns the authenticated actor; only handlers behind authed call it.
func actorFrom(ctx context.Context) authz.Actor {
	a, _ := ctx.Value(keyActor).(authz.Actor)
	return a
}

// bearer extracts the token from "Authorization: Bearer <token>" (scheme case-insensitive).
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errs.Unauthorizedf("Token missing")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", errs.Unauthorizedf("Authorization header must be 'Bearer <token>'")
	}
	return tok, nil
}

// limited applies the per-IP auth rate limit.
func (s *Server) limited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authRate.allow(clientIP(r), time.Now()) {
			s.writeError(w, r, errs.RateLimitedf("Rate limit exceeded. Please try again in 60 seconds"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
