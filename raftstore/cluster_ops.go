package raftstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands leadership to nodeID (any suitable voter when
// empty) and waits until this node sees a new leader, whose id it returns.
// Leader only. Raft picks the most up-to-date voter for "any"; for a named
// node that is not a voter the error wraps ErrInvalidCommand.
func (s *Store) TransferLeadership(ctx context.Context, nodeID string) (string, error) {
	if err := s.requireLeader(); err != nil {
		return "", fmt.Errorf("raftstore: transfer leadership: %w", err)
	}
	var f raft.Future
	if nodeID == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		addr, err := s.voterAddr(nodeID)
		if err != nil {
			return "", fmt.Errorf("raftstore: transfer leadership: %w", err)
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(nodeID), addr)
	}
	if err := s.wait(ctx, "transfer leadership", f); err != nil {
		return "", err
	}
	id, err := s.waitForLeaderOtherThan(ctx, s.cfg.NodeID)
	if err != nil {
		return "", fmt.Errorf("raftstore: transfer leadership: %w", err)
	}
	s.logger.Info("leadership transferred", "to", id, "requested", nodeID)
	return id, nil
}

// voterAddr returns the Raft address of a voter in the configuration.
func (s *Store) voterAddr(nodeID string) (raft.ServerAddress, error) {
	if nodeID == s.cfg.NodeID {
		return "", fmt.Errorf("%w: node %q is already the leader", ErrInvalidCommand, nodeID)
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", s.raftError("get configuration", err)
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == nodeID {
			if srv.Suffrage != raft.Voter {
				return "", fmt.Errorf("%w: node %q is not a voter", ErrInvalidCommand, nodeID)
			}
			return srv.Address, nil
		}
	}
	return "", fmt.Errorf("%w: node %q is not in the raft configuration", ErrInvalidCommand, nodeID)
}

// waitForLeaderOtherThan waits until a leader other than self is known.
// Once a transfer completed this node has stepped down, so the wait is for
// the new leader's first heartbeat.
func (s *Store) waitForLeaderOtherThan(ctx context.Context, self string) (string, error) {
	return s.waitLeader(ctx, func(id string) bool { return id != self })
}

// TakeSnapshot takes a Raft snapshot now (compacting the log behind it)
// and returns the index and term it covers. Any node may snapshot its own
// log. When nothing was applied since the last snapshot, that snapshot's
// index and term are returned: the operator's intent, a snapshot covering
// the current state, already holds.
func (s *Store) TakeSnapshot(ctx context.Context) (index, term uint64, err error) {
	f := s.raft.Snapshot()
	if werr := s.wait(ctx, "snapshot", f); werr != nil {
		if !errors.Is(werr, raft.ErrNothingNewToSnapshot) {
			return 0, 0, werr
		}
		return s.latestSnapshot()
	}
	meta, rc, err := f.Open()
	if err != nil {
		return 0, 0, fmt.Errorf("raftstore: open snapshot just taken: %w", err)
	}
	_ = rc.Close()
	s.logger.Info("snapshot taken", "index", meta.Index, "term", meta.Term, "bytes", meta.Size)
	return meta.Index, meta.Term, nil
}

// latestSnapshot reports the newest snapshot Raft holds.
func (s *Store) latestSnapshot() (uint64, uint64, error) {
	st := s.raft.Stats()
	var idx, term uint64
	if _, err := fmt.Sscan(st["last_snapshot_index"], &idx); err != nil || idx == 0 {
		return 0, 0, fmt.Errorf("raftstore: snapshot: %w", raft.ErrNothingNewToSnapshot)
	}
	if _, err := fmt.Sscan(st["last_snapshot_term"], &term); err != nil {
		return 0, 0, fmt.Errorf("raftstore: snapshot: read term: %w", err)
	}
	return idx, term, nil
}

// LeaderAdmin returns the current leader's id and admin address from its
// member record, for forwarding writes. ok is false while no leader is
// known or the leader has not recorded an admin address yet.
func (s *Store) LeaderAdmin() (id, adminAddr string, ok bool) {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return "", "", false
	}
	m := s.fsm.getMember(string(lid))
	if m == nil || m.GetAdminAddr() == "" {
		return string(lid), "", false
	}
	return string(lid), m.GetAdminAddr(), true
}

// watchLeader reports leadership changes to fn until Close. Raft's
// observations only wake it: it reads the current leader each time, so a
// dropped observation (the channel is non-blocking) can delay a report but
// never lose the latest state.
func (s *Store) watchLeader(fn func(isLeader bool, leaderID string)) {
	defer close(s.leaderDone)
	wake := make(chan raft.Observation, 1)
	obs := raft.NewObserver(wake, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	var lastLeader bool
	var lastID string
	for {
		_, id := s.raft.LeaderWithID()
		isLeader := id != "" && string(id) == s.cfg.NodeID
		if isLeader != lastLeader || string(id) != lastID {
			lastLeader, lastID = isLeader, string(id)
			s.logger.Debug("leader changed", "leader", lastID, "is_leader", isLeader)
			fn(isLeader, lastID)
		}
		select {
		case <-wake:
		case <-s.closed:
			return
		}
	}
}
