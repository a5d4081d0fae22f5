package raftstore

import (
	"fmt"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Reads are served from this node's FSM: fast, and possibly behind the
// leader. For a linearizable read, call Barrier on the leader first.
// Every result is a deep copy the caller may keep and modify.

// ClusterID is the id fixed by InitCluster, or "" before it.
func (s *Store) ClusterID() string { return s.fsm.getClusterID() }

// Members returns the replicated member records, sorted by node id.
func (s *Store) Members() []*statev1.Member { return s.fsm.getMembers() }

// Keys returns the keyring, sorted by kid. The keys include private seeds:
// callers must never log them (log kids).
func (s *Store) Keys() []*statev1.Key { return s.fsm.getKeys() }

// Dump returns the whole state in canonical form, the same form as a Raft
// snapshot: two replicas with equal state return proto.Equal dumps that
// marshal deterministically to equal bytes. Like Keys, it includes private
// seeds.
func (s *Store) Dump() *statev1.Snapshot { return s.fsm.dump() }

// Snapshot takes a Raft snapshot now (and compacts the log behind it) and
// returns the index it covers. When nothing was applied since the last
// snapshot Raft refuses; the error then wraps raft.ErrNothingNewToSnapshot.
func (s *Store) Snapshot() (uint64, error) {
	f := s.raft.Snapshot()
	if err := f.Error(); err != nil {
		return 0, s.raftError("snapshot", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return 0, fmt.Errorf("raftstore: open snapshot just taken: %w", err)
	}
	_ = rc.Close()
	s.logger.Info("snapshot taken", "index", meta.Index, "term", meta.Term, "bytes", meta.Size)
	return meta.Index, nil
}
