package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// sweepInterval is how often every session's admission is re-checked
// without an event: it catches keys whose grace ended by the clock alone.
// Revocations, key retirements and locks kick a sweep at once when they
// are applied, which is what makes "closed on every node within one
// second" hold: each node applies the entry within a round trip and sweeps.
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

// run sweeps on every trigger and every sweepInterval until ctx ends.
func (s *sweeper) run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.sweep()
	}
}

// sweep checks every joined session once. The key and lock verdict is
// cached per room and key within one sweep, since a room's sessions share
// it; revocations are per token and peer.
func (s *sweeper) sweep() int {
	now := s.now()
	type verdict struct {
		ok     bool
		code   int
		reason string
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
			v.ok, v.code, v.reason = trustHolds(s.store, k.room, k.token, k.kid, now)
			cache[k] = v
		}
		return !v.ok, v.code, v.reason
	})
	if n > 0 {
		s.log.Info("sessions closed: revoked, key retired or room locked", "sessions", n)
	}
	return n
}
