package raftstore

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// fsm is the replicated state machine: cluster id, members and keyring.
//
// Raft calls Apply, Snapshot and Restore from one goroutine; reads come from
// any goroutine, hence the RWMutex. Stored messages are owned by the fsm and
// never handed out: every read returns a deep copy, so no caller can change
// replicated state behind Raft's back.
type fsm struct {
	logger *slog.Logger

	// applied is the index of the last log entry given to Apply. Raft's own
	// AppliedIndex is advanced by a different goroutine than the one that
	// resolves futures, so it can briefly lag an Apply that has returned;
	// this one cannot.
	applied atomic.Uint64

	mu        sync.RWMutex
	clusterID string
	members   map[string]*statev1.Member // by node id
	keys      map[string]*statev1.Key    // by kid
}

func newFSM(logger *slog.Logger) *fsm {
	return &fsm{
		logger:  logger,
		members: make(map[string]*statev1.Member),
		keys:    make(map[string]*statev1.Key),
	}
}

var _ raft.FSM = (*fsm)(nil)

// Apply decodes and applies one committed log entry. It returns nil on
// success or an error (wrapping ErrInvalidCommand or ErrRejected) for a
// command it refuses; every replica refuses the same entries because the
// decision depends only on the entry and the state before it. Store.Apply
// hands that error back to the proposer.
func (f *fsm) Apply(l *raft.Log) any {
	defer f.applied.Store(l.Index)
	var cmd statev1.Command
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		f.logger.Warn("raft log entry is not a command", "index", l.Index, "error", err)
		return fmt.Errorf("%w: decode: %v", ErrInvalidCommand, err)
	}
	err := f.apply(&cmd)
	if err != nil {
		f.logger.Info("command rejected", "index", l.Index, "kind", commandKind(&cmd), "error", err)
		return err
	}
	f.logger.Debug("command applied", "index", l.Index, "kind", commandKind(&cmd))
	return nil
}

// apply changes state for one decoded command. It owns cmd from here on
// (it was decoded for this call), so it may keep its sub-messages.
func (f *fsm) apply(cmd *statev1.Command) error {
	if err := validateCommand(cmd); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch k := cmd.GetKind().(type) {
	case *statev1.Command_InitCluster:
		if f.clusterID != "" {
			return fmt.Errorf("%w: cluster already initialised as %q", ErrRejected, f.clusterID)
		}
		f.clusterID = k.InitCluster.GetClusterId()
		kids := make([]string, 0, len(k.InitCluster.GetKeys()))
		for _, key := range k.InitCluster.GetKeys() {
			f.keys[key.GetKid()] = key
			kids = append(kids, key.GetKid())
		}
		f.logger.Info("cluster initialised", "cluster_id", f.clusterID, "kids", kids)
	case *statev1.Command_PutMember:
		m := k.PutMember.GetMember()
		f.members[m.GetNodeId()] = m
	case *statev1.Command_RemoveMember:
		// Removing an absent member is a no-op, not an error, so that a
		// retried removal (outcome unknown the first time) converges.
		delete(f.members, k.RemoveMember.GetNodeId())
	case *statev1.Command_PutKey:
		key := k.PutKey.GetKey()
		f.keys[key.GetKid()] = key
		f.logger.Info("key stored", "kid", key.GetKid(), "purpose", key.GetPurpose().String(), "state", key.GetState().String())
	}
	return nil
}

// dump builds the canonical form of the state: repeated fields sorted so
// that equal states marshal (deterministically) to equal bytes. The result
// shares no memory with the fsm.
func (f *fsm) dump() *statev1.Snapshot {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &statev1.Snapshot{
		ClusterId: f.clusterID,
		Members:   sortedMembers(f.members),
		Keys:      sortedKeys(f.keys),
	}
}

func (f *fsm) getClusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.clusterID
}

func (f *fsm) getMembers() []*statev1.Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedMembers(f.members)
}

func (f *fsm) getMember(nodeID string) *statev1.Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.members[nodeID]
	if !ok {
		return nil
	}
	return proto.Clone(m).(*statev1.Member)
}

func (f *fsm) getKeys() []*statev1.Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedKeys(f.keys)
}

// sortedMembers returns deep copies sorted by node id. Caller holds f.mu.
func sortedMembers(in map[string]*statev1.Member) []*statev1.Member {
	out := make([]*statev1.Member, 0, len(in))
	for _, m := range in {
		out = append(out, proto.Clone(m).(*statev1.Member))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetNodeId() < out[j].GetNodeId() })
	return out
}

// sortedKeys returns deep copies sorted by kid. Caller holds f.mu.
func sortedKeys(in map[string]*statev1.Key) []*statev1.Key {
	out := make([]*statev1.Key, 0, len(in))
	for _, k := range in {
		out = append(out, proto.Clone(k).(*statev1.Key))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetKid() < out[j].GetKid() })
	return out
}
