package dataplane

// CloseSessionsBy is CloseSessions with the code and reason chosen per
// session: decide returns close=false to keep a session. It returns how
// many sessions it closed. The node's revocation sweep uses it to close
// revoked tokens with 4003 and tokenless sessions of a newly locked room
// with 1008 in one pass.
func (s *Server) CloseSessionsBy(decide func(SessionInfo) (close bool, code int, reason string)) int {
	n := 0
	for _, sess := range s.snapshot() {
		info := sess.info.Load()
		if info == nil || sess.isClosing() {
			continue
		}
		ok, code, reason := decide(*info)
		if !ok {
			continue
		}
		sess.abortFirst(code, reason, func() {
			n++
			if code == closeTokenExpired {
				s.metrics.tokenExpired.Inc()
			}
		})
	}
	return n
}
