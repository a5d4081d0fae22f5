package dataplane

import "time"

// Close codes other packages close sessions with (SPEC section 2), through
// CloseSessions.
const (
	// ClosePolicy (1008) closes a session whose admission no longer holds,
	// e.g. a tokenless session in a room that was just locked.
	ClosePolicy = closePolicy
	// CloseTokenExpired (4002) "token expired": the session's token
	// reached its expiry. The data plane closes these itself (armExpiry).
	CloseTokenExpired = closeTokenExpired
	// CloseTokenRevoked (4003) "token revoked": its token, key or peer was
	// revoked.
	CloseTokenRevoked = 4003
	// ReasonTokenRevoked is the close reason that goes with 4003.
	ReasonTokenRevoked = "token revoked"
	reasonTokenExpired = "token expired"
)

// armExpiry closes the session with 4002 "token expired" when its token
// expires, counting nodalmerge_token_expired_disconnects_total. The wall
// clock (Config.Now) decides how long that is, once: a token's expiry is
// a wall-clock instant, and the timer then runs on the monotonic clock.
func (s *session) armExpiry() {
	if s.grant.Expiry.IsZero() {
		return
	}
	d := s.grant.Expiry.Sub(s.srv.cfg.Now())
	s.expiry = time.AfterFunc(max(d, 0), func() {
		s.abortFirst(closeTokenExpired, reasonTokenExpired, func() {
			s.srv.metrics.tokenExpired.Inc()
			s.log.Info("session closed at token expiry", "token_id", s.grant.TokenID)
		})
	})
}

// disarmExpiry stops the expiry timer of an ended session.
func (s *session) disarmExpiry() {
	if s.expiry != nil {
		s.expiry.Stop()
	}
}
