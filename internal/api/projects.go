package api

import "net/http"

// projectRoutes serves organizations' projects, environments and folders.
func (s *Server) projectRoutes(m *http.ServeMux) {
}
