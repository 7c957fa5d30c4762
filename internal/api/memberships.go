package api

import "net/http"

// membershipRoutes serves project identity memberships and custom project roles.
func (s *Server) membershipRoutes(m *http.ServeMux) {
}
