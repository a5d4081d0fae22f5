package raftstore

import (
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// applyRevoke records a revocation. One record is kept per target; a
// revocation never shortens an existing one (a second revoke that ends
// sooner is a no-op), so repeating or racing revokes converge to the
// longest. A revocation that has already lapsed is accepted and dropped
// by the garbage collection that follows every applied command.
func (s *state) applyRevoke(c *statev1.Revoke, now int64) error {
	r := c.GetRevocation()
	r.RevokedUnixMs = now
	t := targetOf(r)
	if old, ok := s.revocations[t]; ok && covers(old, r) {
		return nil
	}
	s.revocations[t] = r
	return nil
}

// covers reports whether revocation a lasts at least as long as b.
func covers(a, b *statev1.Revocation) bool {
	if a.GetUntilUnixMs() == 0 {
		return true
	}
	return b.GetUntilUnixMs() != 0 && a.GetUntilUnixMs() >= b.GetUntilUnixMs()
}

// gcRevocations drops revocations that have lapsed by now. It runs after
// every applied command with the command's proposed time, so every replica
// drops the same records at the same log index.
func (s *state) gcRevocations(now int64) {
	for t, r := range s.revocations {
		if u := r.GetUntilUnixMs(); u > 0 && u <= now {
			delete(s.revocations, t)
		}
	}
}

// isRevoked reports whether a token id, or a peer in a room, is revoked at
// now. Lapsed records still waiting for garbage collection do not count.
func (s *state) isRevoked(tokenID, room string, peer []byte, now time.Time) bool {
	ms := now.UnixMilli()
	active := func(t revTarget) bool {
		r, ok := s.revocations[t]
		return ok && (r.GetUntilUnixMs() == 0 || ms < r.GetUntilUnixMs())
	}
	if tokenID != "" && active(revTarget{tokenID: tokenID}) {
		return true
	}
	return room != "" && len(peer) != 0 && active(revTarget{room: room, peer: string(peer)})
}
