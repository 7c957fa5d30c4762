package api

import "net/http"

// identityRoutes serves machine identities.
func (s *Server) identityRoutes(m *http.ServeMux) {
}
