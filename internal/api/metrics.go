package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lockbox-dev/lockbox/internal/errs"
)

// metricsHandler serves the registry, behind the metrics token when one is set.
func (s *Server) metricsHandler() http.Handler {
	// Scrapes at once are bounded (503 beyond): each reads the database for
	// the lease gauge, and by default anyone may scrape.
	h := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4})
	if s.metricsToken == "" {
		return h
	}
	want := sha256.Sum256([]byte(s.metricsToken))
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		tok, err := bearer(r)
		if err != nil {
			return err
		}
		// Hashing first makes the comparison constant-time in the length too.
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return errs.Unauthorizedf("Invalid metrics token")
		}
		h.ServeHTTP(w, r)
		return nil
	})
}

// MetricsHandler answers GET /metrics (and 404 for anything else) for a
// listener of its own; see Options.SeparateMetrics.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	return s.withRequestID(mux)
}
