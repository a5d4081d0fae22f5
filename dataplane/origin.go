package dataplane

import (
	"net/http"
	"slices"
	"strings"
)

// originAllowed is the browser cross-origin policy. A request without an
// Origin header is not from a browser page and is allowed; a browser page
// may connect when it was served by this scheme and host or its origin is
// listed.
// Checking here, not only in gorilla's CheckOrigin, lets us answer with a
// body that says what to configure.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	norm, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	// Same origin means same scheme too: requestScheme is https on a TLS
	// connection or when a trusted proxy says the client used https.
	if strings.EqualFold(norm, requestScheme(r)+"://"+r.Host) {
		return true
	}
	return slices.Contains(s.cfg.AllowedOrigins, norm)
}
