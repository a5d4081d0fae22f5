package node

import (
	"encoding/hex"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

// reactor turns applied Raft commands into local effects on this node:
// the data plane's policy index, session evictions, the tick runner and
// the keyring rotation counter. raftstore calls it from one goroutine in
// log order (OnApply), after a snapshot restore (OnRestore) and on
// leadership changes.
//
// Raft starts applying (log replay) before the data plane exists, so the
// reactor ignores events until start, and start rebuilds everything from
// the replicated reads: nothing is derived from events alone.
type reactor struct {
	log       *slog.Logger
	policy    *policyIndex
	rotations *prometheus.CounterVec

	mu      sync.Mutex
	started bool
	store   *raftstore.Store
	evict   func(room, pubkey string) int
	ticks   *tick.Runner
	// sweep asks for a revocation sweep (sweeper.trigger); it never
	// blocks.
	sweep func()
}

func newReactor(log *slog.Logger, policy *policyIndex) *reactor {
	r := &reactor{
		log:    log,
		policy: policy,
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodalmerge_keyring_rotations_total",
			Help: "Keyring rotations applied on this node, by key purpose.",
		}, []string{"purpose"}),
	}
	for _, p := range []statev1.KeyPurpose{statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR} {
		r.rotations.WithLabelValues(keyring.PurposeName(p))
	}
	return r
}

// start connects the reactor to the running node and resyncs from state.
func (r *reactor) start(store *raftstore.Store, evict func(room, pubkey string) int, ticks *tick.Runner, sweep func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store, r.evict, r.ticks, r.sweep, r.started = store, evict, ticks, sweep, true
	r.resyncLocked()
}

// stop detaches the node's parts; later events are ignored.
func (r *reactor) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = false
	r.evict, r.ticks, r.sweep = nil, nil, nil
}

func (r *reactor) resyncLocked() {
	r.policy.reset(r.store.Rooms())
	r.ticks.Sync(r.store.Ticks(), r.store.IsLeader())
	r.sweep() // a restored snapshot may carry revocations
}

// onApply is raftstore.Config.OnApply.
func (r *reactor) onApply(index uint64, cmd *statev1.Command) {
	if k, ok := cmd.GetKind().(*statev1.Command_RotateKey); ok {
		// Counted from replay too: the counter says how many rotations this
		// node's state machine has applied since the process started.
		r.rotations.WithLabelValues(keyring.PurposeName(k.RotateKey.GetNewKey().GetPurpose())).Inc()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return
	}
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_SetPolicy:
		// Read in place (no clone of the whole room per write); update
		// compiles only the appended entries and keeps no reference.
		name := k.SetPolicy.GetRoom()
		r.store.ViewRoom(name, func(room *statev1.Room) { r.policy.update(name, room.GetPolicy()) })
	case *statev1.Command_EvictPeer:
		room, peer := k.EvictPeer.GetRoom(), hex.EncodeToString(k.EvictPeer.GetPeerPubkey())
		n := r.evict(room, peer)
		r.log.Info("peer evicted", "room", room, "peer", peer, "sessions", n, "raft_index", index)
	case *statev1.Command_PutTick, *statev1.Command_DeleteTick:
		r.ticks.Sync(r.store.Ticks(), r.store.IsLeader())
	case *statev1.Command_Revoke, *statev1.Command_RetireKey, *statev1.Command_RetireRoomKey,
		*statev1.Command_RotateRoomKey, *statev1.Command_SetRoomLock, *statev1.Command_PutRoomKey:
		// Sessions whose token, peer or key this revokes, or that a lock
		// no longer admits, close on this node now (4003 / 1008).
		r.sweep()
	}
}

// onRestore is raftstore.Config.OnRestore.
func (r *reactor) onRestore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		r.resyncLocked()
	}
}

// onLeaderChange is raftstore.Config.OnLeaderChange: the leader runs every
// room's tick, so ticks move with leadership.
func (r *reactor) onLeaderChange(isLeader bool, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		r.ticks.Sync(r.store.Ticks(), isLeader)
	}
}
