package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// sweepInterval is the longest a sweep waits without an event. Revocations,
// key retirements and locks kick a sweep at once when they are applied,
// which is what makes "closed on every node within one second" hold: each
// node applies the entry within a round trip and sweeps. A key whose grace
// ends by the clock alone is swept at its retire_after (the sweep
// schedules itself for the earliest one among its sessions' keys); the
// interval is the backstop.
const sweepInterval = 500 * time.Millisecond

// sweeper closes the sessions whose admission no longer holds (see
// stillValid): revoked tokens and peers and retired keys with 4003,
// tokenless sessions of a locked room with 1008.
type sweeper struct {
	store *raftstore.Store
	data  *dataplane.Server
	now   func() time.Time
	log   *slog.Logger
	kick  chan struct{}
}

func newSweeper(store *raftstore.Store, data *dataplane.Server, now func() time.Time, log *slog.Logger) *sweeper {
	return &sweeper{store: store, data: data, now: now, log: log, kick: make(chan struct{}, 1)}
}

// trigger asks for a sweep now; it never blocks (one pending is enough).
func (s *sweeper) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run sweeps on every trigger, when a session's key stops verifying, and
// at least every sweepInterval, until ctx ends.
func (s *sweeper) run(ctx context.Context) {
	t := time.NewTimer(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		_, next := s.sweep()
		t.Reset(next)
	}
}

// sweep checks every joined session once. The key and lock verdict is
// cached per room and key within one sweep, since a room's sessions share
// it; revocations are per token and peer.
func (s *sweeper) sweep() (closed int, next time.Duration) {
	now := s.now()
	next = sweepInterval
	type verdict struct {
		ok     bool
		code   int
		reason string
		until  time.Time
	}
	type cacheKey struct {
		room, kid string
		token     bool
	}
	cache := map[cacheKey]verdict{}
	n := s.data.CloseSessionsBy(func(info dataplane.SessionInfo) (bool, int, string) {
		if revokedSession(s.store, info, now) {
			return true, dataplane.CloseTokenRevoked, dataplane.ReasonTokenRevoked
		}
		k := cacheKey{info.Room, info.Grant.KeyID, info.Grant.TokenID != ""}
		v, ok := cache[k]
		if !ok {
			v.ok, v.code, v.reason, v.until = trustHolds(s.store, k.room, k.token, k.kid, now)
			cache[k] = v
			if d := v.until.Sub(now); v.ok && !v.until.IsZero() && d < next {
				// A millisecond past retire_after: the key state is
				// computed in whole milliseconds.
				next = max(d+time.Millisecond, 0)
			}
		}
		return !v.ok, v.code, v.reason
	})
	if n > 0 {
		s.log.Info("sessions closed: revoked, key retired or room locked", "sessions", n)
	}
	return n, next
}
