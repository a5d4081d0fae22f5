package raftstore

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// fsm is the replicated state machine over state (state.go).
//
// Raft calls Apply, Snapshot and Restore from one goroutine; reads come from
// any goroutine, hence the RWMutex. Stored messages are owned by the fsm and
// never handed out: every read returns a deep copy, so no caller can change
// replicated state behind Raft's back.
type fsm struct {
	logger *slog.Logger

	// applied is the index of the last log entry given to Apply. Raft's own
	// AppliedIndex is advanced by a different goroutine than the one that
	// applies, so it can differ from the FSM for a moment; this one cannot.
	applied atomic.Uint64
	// progress wakes WaitApplied callers after every apply and restore.
	progress notifier
	// events delivers OnApply/OnRestore to observers; nil without hooks.
	events *dispatcher
	// snapshotIndex reports the index of the snapshot being restored (see
	// latestSnapshotIndex); nil in unit tests of the bare fsm.
	snapshotIndex func() (uint64, bool)

	mu sync.RWMutex
	s  *state
}

func newFSM(logger *slog.Logger, events *dispatcher) *fsm {
	return &fsm{logger: logger, events: events, s: newState()}
}

var _ raft.FSM = (*fsm)(nil)

// Apply decodes and applies one committed log entry. It returns nil on
// success or an error (wrapping ErrInvalidCommand or ErrRejected) for a
// command it refuses; every replica refuses the same entries because the
// decision depends only on the entry and the state before it. Store.Apply
// hands that error back to the proposer.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.progress.broadcast()
	defer f.applied.Store(l.Index)
	var cmd statev1.Command
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		f.logger.Warn("raft log entry is not a command", "index", l.Index, "error", err)
		return fmt.Errorf("%w: decode: %v", ErrInvalidCommand, err)
	}
	// The observer gets its own copy, taken before apply keeps (and may
	// later change) parts of cmd.
	var observed *statev1.Command
	if f.events != nil && f.events.onApply != nil {
		observed = proto.Clone(&cmd).(*statev1.Command)
	}
	if err := f.apply(&cmd, l.Index); err != nil {
		f.logger.Info("command rejected", "index", l.Index, "kind", commandKind(&cmd), "error", err)
		return err
	}
	f.logger.Debug("command applied", "index", l.Index, "kind", commandKind(&cmd))
	if observed != nil {
		f.events.enqueue(event{index: l.Index, cmd: observed})
	}
	return nil
}

// apply changes state for one decoded command, the entry at log index.
// It owns cmd from here on (it was decoded for this call), so it may keep
// its sub-messages.
func (f *fsm) apply(cmd *statev1.Command, index uint64) error {
	if err := validateCommand(cmd); err != nil {
		return err
	}
	now := cmd.GetProposedUnixMs()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	var err error
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_InitCluster:
		if err = s.applyInitCluster(k.InitCluster); err == nil {
			f.logger.Info("cluster initialised", "cluster_id", s.clusterID, "kids", kidsOf(k.InitCluster.GetKeys()))
		}
	case *statev1.Command_PutMember:
		err = s.applyPutMember(k.PutMember)
	case *statev1.Command_RemoveMember:
		err = s.applyRemoveMember(k.RemoveMember)
	case *statev1.Command_PutKey:
		key := k.PutKey.GetKey()
		s.keys[key.GetKid()] = key
		f.logger.Info("key stored", "kid", key.GetKid(), "purpose", key.GetPurpose().String(), "state", key.GetState().String())
	case *statev1.Command_RotateKey:
		if err = s.applyRotateKey(k.RotateKey, now); err == nil {
			nk := k.RotateKey.GetNewKey()
			f.logger.Info("key rotated in", "kid", nk.GetKid(), "purpose", nk.GetPurpose().String(),
				"activate_unix_ms", nk.GetActivateUnixMs(), "grace_ms", k.RotateKey.GetGraceMs())
		}
	case *statev1.Command_RetireKey:
		if err = s.applyRetireKey(k.RetireKey, now); err == nil {
			f.logger.Info("key retired", "kid", k.RetireKey.GetKid())
		}
	case *statev1.Command_PutRoomKey:
		err = s.applyPutRoomKey(k.PutRoomKey, now)
	case *statev1.Command_RotateRoomKey:
		err = s.applyRotateRoomKey(k.RotateRoomKey, now)
	case *statev1.Command_RetireRoomKey:
		err = s.applyRetireRoomKey(k.RetireRoomKey, now)
	case *statev1.Command_SetRoomLock:
		err = s.applySetRoomLock(k.SetRoomLock, now)
	case *statev1.Command_SetPolicy:
		err = s.applySetPolicy(k.SetPolicy, now, index)
	case *statev1.Command_Revoke:
		err = s.applyRevoke(k.Revoke, now)
	case *statev1.Command_PutTick:
		err = s.applyPutTick(k.PutTick, now)
	case *statev1.Command_DeleteTick:
		err = s.applyDeleteTick(k.DeleteTick)
	case *statev1.Command_PlaceRoom:
		err = s.applyPlaceRoom(k.PlaceRoom, now)
	case *statev1.Command_SetDrain:
		err = s.applySetDrain(k.SetDrain)
	case *statev1.Command_EvictPeer:
		// An event, not a state change: observers act on it (OnApply).
	case *statev1.Command_PutQuery:
		err = s.applyPutQuery(k.PutQuery, now, index)
	default:
		err = fmt.Errorf("%w: unknown command kind", ErrInvalidCommand)
	}
	if err != nil {
		return err
	}
	if now > 0 {
		s.gcRevocations(now)
	}
	return nil
}

func kidsOf(keys []*statev1.Key) []string {
	kids := make([]string, 0, len(keys))
	for _, k := range keys {
		kids = append(kids, k.GetKid())
	}
	return kids
}

// read runs fn under the read lock. fn must copy whatever it returns.
func (f *fsm) read(fn func(s *state)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.s)
}

// dump is the canonical whole state (see state.dump).
func (f *fsm) dump() (out *statev1.Snapshot) {
	f.read(func(s *state) { out = s.dump() })
	return out
}

func (f *fsm) getClusterID() (id string) {
	f.read(func(s *state) { id = s.clusterID })
	return id
}

func (f *fsm) getMembers() (out []*statev1.Member) {
	f.read(func(s *state) { out = sortedMembers(s.members) })
	return out
}

// getMember returns a copy of a member record, or nil.
func (f *fsm) getMember(nodeID string) (out *statev1.Member) {
	f.read(func(s *state) {
		if m, ok := s.members[nodeID]; ok {
			out = proto.Clone(m).(*statev1.Member)
		}
	})
	return out
}

func (f *fsm) getKeys() (out []*statev1.Key) {
	f.read(func(s *state) { out = sortedKeys(s.keys) })
	return out
}
