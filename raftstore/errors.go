package raftstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers (the control plane) map them to wire codes, so they
// are matched with errors.Is, never by message.
var (
	// ErrNotLeader: this node is not the leader. The error returned is a
	// *NotLeaderError carrying the leader's id and Raft address when known,
	// so that the caller can forward the request.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrNoLeader: no leader is known right now (election in progress or
	// quorum lost). Retryable; never guessed around.
	ErrNoLeader = errors.New("raftstore: no leader")
	// ErrLeadershipLost: this node lost leadership after proposing, so the
	// outcome is unknown: the command may or may not be committed.
	ErrLeadershipLost = errors.New("raftstore: leadership lost, outcome unknown")
	// ErrClosed: the store has been closed (or Raft has shut down).
	ErrClosed = errors.New("raftstore: closed")
	// ErrInvalidCommand: the command is malformed (missing ids, bad key
	// sizes). Detected before proposing and, deterministically, by the FSM.
	ErrInvalidCommand = errors.New("raftstore: invalid command")
	// ErrRejected: the command is well formed but conflicts with the current
	// state (for example a second InitCluster). Decided by the FSM.
	ErrRejected = errors.New("raftstore: command rejected")
)

// NotLeaderError is returned for requests that only the leader may serve.
// errors.Is(err, ErrNotLeader) is true for it.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string // Raft address of the leader
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("raftstore: not the leader (leader is %s at %s)", e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// RejectedError is the FSM refusing a well-formed command because of the
// state it meets ("room "x" has no key that verifies; set-room-key first").
// Reason is written for operators: the control plane shows it as is.
// errors.Is(err, ErrRejected) is true for it.
type RejectedError struct {
	Reason string
}

func (e *RejectedError) Error() string { return "raftstore: rejected: " + e.Reason }

// Is makes errors.Is(err, ErrRejected) hold.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// rejectf builds a *RejectedError. Arguments must never be key material.
func rejectf(format string, args ...any) error {
	return &RejectedError{Reason: fmt.Sprintf(format, args...)}
}
