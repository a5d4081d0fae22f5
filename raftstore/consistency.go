package raftstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// waitAppliedPoll is how often WaitApplied re-checks Raft's applied index
// while waiting for entries that never reach the FSM (no-op, barrier and
// configuration entries produce no apply to wake it). Commands wake it at
// once.
const waitAppliedPoll = 10 * time.Millisecond

// ReadIndex returns an index that covers every write committed before the
// call, for a linearizable read: once WaitApplied(ctx, index) returns on
// any node, that node's reads reflect all of them. Leader only (a
// *NotLeaderError or ErrNoLeader elsewhere).
//
// It costs one heartbeat round (raft.VerifyLeader proves no newer leader
// exists after the commit index was read), not a log write, except for the
// first call in each term: a new leader's commit index may not yet cover
// entries its predecessor committed, so it commits a barrier of its own
// term once.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if err := s.requireLeader(); err != nil {
		return 0, fmt.Errorf("raftstore: read index: %w", err)
	}
	if term := s.raft.CurrentTerm(); s.readyTerm.Load() != term {
		if err := s.Barrier(ctx); err != nil {
			return 0, err
		}
		if s.raft.CurrentTerm() == term {
			s.readyTerm.Store(term)
		}
	}
	idx := s.raft.CommitIndex()
	if err := s.wait(ctx, "read index", s.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	return idx, nil
}

// WaitApplied waits until this node's state reflects every log entry up to
// index (from ReadIndex, or the index an Apply returned, possibly on
// another node). It fails only with a context error or ErrClosed.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	var poll <-chan time.Time
	for {
		woken := s.fsm.progress.wait() // before the check: no lost wake-up
		if s.appliedThrough(index) {
			return nil
		}
		if poll == nil {
			t := time.NewTicker(waitAppliedPoll)
			defer t.Stop()
			poll = t.C
		}
		select {
		case <-woken:
		case <-poll:
		case <-s.closed:
			return fmt.Errorf("raftstore: wait applied %d: %w", index, ErrClosed)
		case <-ctx.Done():
			return fmt.Errorf("raftstore: wait applied %d: %w", index, ctx.Err())
		}
	}
}

// appliedThrough reports whether the FSM reflects every entry up to index.
// The FSM knows the last entry it applied (or the snapshot it restored);
// entries after that are either commands it has not applied yet or
// entries that never reach it. Once Raft has handed everything up to index
// to the FSM goroutine (its AppliedIndex), the FSM is done when it has
// applied the last command at or below index. An entry missing from the
// log was compacted behind a snapshot, which the FSM state already covers.
func (s *Store) appliedThrough(index uint64) bool {
	floor := s.fsm.applied.Load()
	if floor >= index {
		return true
	}
	if s.raft.AppliedIndex() < index {
		return false
	}
	var l raft.Log
	for i := index; i > floor; i-- {
		if err := s.logs.GetLog(i, &l); err != nil {
			return true
		}
		if l.Type == raft.LogCommand {
			return s.fsm.applied.Load() >= i
		}
	}
	return true
}
