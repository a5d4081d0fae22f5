package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// IsLeader reports whether this node currently believes it is the leader.
// Only a Barrier proves it; this is a cheap hint.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// WaitForLeader blocks until some node is known as leader and returns its
// id. It wakes on Raft's leader observations rather than polling.
func (s *Store) WaitForLeader(ctx context.Context) (string, error) {
	id, err := s.waitLeader(ctx, func(string) bool { return true })
	if err != nil {
		return "", fmt.Errorf("raftstore: wait for leader: %w", err)
	}
	return id, nil
}

// waitLeader blocks until a leader that accept takes is known and returns
// its id; its errors are ErrClosed and ctx's, unwrapped. It wakes on
// Raft's leader observations rather than polling.
func (s *Store) waitLeader(ctx context.Context, accept func(id string) bool) (string, error) {
	wake := make(chan raft.Observation, 1)
	obs := raft.NewObserver(wake, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		// Checked after registering, so a change in between still wakes us.
		if _, id := s.raft.LeaderWithID(); id != "" && accept(string(id)) {
			return string(id), nil
		}
		select {
		case <-wake:
		case <-s.closed:
			return "", ErrClosed
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// leaderError explains why this node cannot serve a leader-only request:
// a *NotLeaderError naming the leader when one is known, else ErrNoLeader.
func (s *Store) leaderError() error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	addr, id := s.raft.LeaderWithID()
	if id == "" {
		return ErrNoLeader
	}
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// requireLeader fails fast on a follower, before anything is proposed.
func (s *Store) requireLeader() error {
	if s.IsLeader() {
		return nil
	}
	return s.leaderError()
}

// raftError maps hashicorp/raft errors to this package's sentinels so that
// callers never import raft to classify a failure.
func (s *Store) raftError(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("raftstore: %s: %w", op, s.leaderError())
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("raftstore: %s: %w", op, ErrLeadershipLost)
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("raftstore: %s: leadership transfer in progress: %w", op, ErrNoLeader)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("raftstore: %s: %w", op, ErrClosed)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raftstore: %s: %w", op, context.DeadlineExceeded)
	default:
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
}

// enqueueTimeout turns the context deadline into Raft's enqueue timeout
// (0 = wait as long as needed).
func enqueueTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return 0, nil
	}
	d := time.Until(dl)
	if d <= 0 {
		return 0, context.DeadlineExceeded
	}
	return d, nil
}

// wait waits for f or ctx and maps Raft's error. Raft futures have no
// cancellation: when ctx ends first the proposal may still commit, so the
// error says the outcome is unknown. The helper goroutine ends when Raft
// resolves the future, which it always does (at the latest on shutdown).
func (s *Store) wait(ctx context.Context, op string, f raft.Future) error {
	var err error
	if ctx.Done() == nil {
		err = f.Error()
	} else {
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			return fmt.Errorf("raftstore: %s: gave up waiting, outcome unknown: %w", op, ctx.Err())
		}
	}
	if err != nil {
		return s.raftError(op, err)
	}
	return nil
}
