package controlplane

// CountAuthFailure counts a refused room admission (the WebSocket door's
// authentication) into nodalmerge_auth_failures_total{reason}, next to
// the gRPC door's failures, so one metric shows both doors.
func (s *Server) CountAuthFailure(reason string) { s.metrics.authFailure(reason) }
