package raftstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Apply proposes cmd and waits until this node has applied it, returning
// the log index it was applied at. If ProposedUnixMs is 0 it is stamped
// with the current time (on a copy; cmd is not modified), so that applying
// stays deterministic on every replica.
//
// Errors: ErrInvalidCommand for malformed commands (nothing is proposed),
// *NotLeaderError / ErrNoLeader on a non-leader, ErrRejected (with the
// index) when the FSM refuses the command, ErrLeadershipLost or a context
// error when the outcome is unknown.
//
// Concurrent callers go straight to Raft, which batches whatever is queued
// into one log write and one fsync; serialising here would cost a disk
// flush per command.
func (s *Store) Apply(ctx context.Context, cmd *statev1.Command) (uint64, error) {
	if cmd == nil {
		return 0, fmt.Errorf("raftstore: apply: %w: nil command", ErrInvalidCommand)
	}
	if cmd.GetProposedUnixMs() == 0 {
		cmd = proto.Clone(cmd).(*statev1.Command)
		cmd.ProposedUnixMs = time.Now().UnixMilli()
	}
	if err := validateCommand(cmd); err != nil {
		return 0, fmt.Errorf("raftstore: apply: %w", err)
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return 0, fmt.Errorf("raftstore: apply: marshal %s: %w", commandKind(cmd), err)
	}
	if len(data) > maxCommandBytes {
		return 0, fmt.Errorf("raftstore: apply: %w: %s is %d bytes, limit %d",
			ErrInvalidCommand, commandKind(cmd), len(data), maxCommandBytes)
	}
	if err := s.requireLeader(); err != nil {
		return 0, fmt.Errorf("raftstore: apply: %w", err)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return 0, fmt.Errorf("raftstore: apply: %w", err)
	}
	f := s.raft.Apply(data, timeout)
	if err := s.wait(ctx, "apply "+commandKind(cmd), f); err != nil {
		return 0, err
	}
	if rerr, ok := f.Response().(error); ok && rerr != nil {
		return f.Index(), fmt.Errorf("raftstore: apply: %w", rerr)
	}
	if urgent(cmd) {
		// Followers learn that an entry is committed from the next
		// AppendEntries, which without traffic is the next heartbeat (up to
		// a tenth of the heartbeat timeout, 50 ms here, plus scheduling). A
		// barrier entry sends that message now, so a revocation closes
		// sessions on every node about one round trip after the call
		// rather than a heartbeat later. Its future is not waited for: the
		// caller's answer does not depend on it, and Raft owns it.
		s.raft.Barrier(timeout)
	}
	return f.Index(), nil
}

// urgent reports the commands whose effect on other nodes should not wait
// for a heartbeat: those that close sessions (revocations, key
// retirements and rotations, locks, evictions).
func urgent(cmd *statev1.Command) bool {
	switch cmd.GetKind().(type) {
	case *statev1.Command_Revoke, *statev1.Command_RetireKey, *statev1.Command_RetireRoomKey,
		*statev1.Command_RotateRoomKey, *statev1.Command_SetRoomLock, *statev1.Command_EvictPeer:
		return true
	}
	return false
}

// Barrier waits until every entry committed before it has been applied
// here, and proves this node was still leader. After it returns, reads
// from this node are linearizable as of the call.
func (s *Store) Barrier(ctx context.Context) error {
	if err := s.requireLeader(); err != nil {
		return fmt.Errorf("raftstore: barrier: %w", err)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return fmt.Errorf("raftstore: barrier: %w", err)
	}
	return s.wait(ctx, "barrier", s.raft.Barrier(timeout))
}

// EnsureSelfMember makes this node's member record match its current
// addresses, applying PutMember only when the record is missing or stale.
// It returns the index applied at, or 0 when nothing needed changing.
// Leader only: the record marks the node a voter, which the leader is.
func (s *Store) EnsureSelfMember(ctx context.Context) (uint64, error) {
	if err := s.requireLeader(); err != nil {
		return 0, fmt.Errorf("raftstore: ensure self member: %w", err)
	}
	want := &statev1.Member{
		NodeId:     s.cfg.NodeID,
		RaftAddr:   s.RaftAddr(),
		AdminAddr:  s.cfg.AdminAddr,
		PublicAddr: s.cfg.PublicAddr,
		Voter:      true,
	}
	have := s.fsm.getMember(s.cfg.NodeID)
	if have != nil {
		want.Draining = have.GetDraining() // SetDrain owns it; PutMember keeps it
		if proto.Equal(have, want) {
			return 0, nil
		}
	}
	idx, err := s.Apply(ctx, &statev1.Command{Kind: &statev1.Command_PutMember{
		PutMember: &statev1.PutMember{Member: want},
	}})
	if err != nil {
		return 0, fmt.Errorf("raftstore: ensure self member: %w", err)
	}
	s.logger.Info("member record updated", "raft_addr", want.RaftAddr,
		"admin_addr", want.AdminAddr, "public_addr", want.PublicAddr, "index", idx)
	return idx, nil
}

// AddVoter adds a voting member to the Raft configuration, or updates the
// address of one already in it (a node restarted on another address joins
// again), and waits until the change is committed. A voter already at
// that address is left alone, so a repeated join costs no log entry.
// Leader only.
func (s *Store) AddVoter(ctx context.Context, nodeID, raftAddr string) error {
	if err := validateNodeID(nodeID); err != nil {
		return fmt.Errorf("raftstore: add voter: %w: %w", ErrInvalidCommand, err)
	}
	if err := validateAdvertise(raftAddr); err != nil {
		return fmt.Errorf("raftstore: add voter %s: %w: raft address %w", nodeID, ErrInvalidCommand, err)
	}
	if err := s.requireLeader(); err != nil {
		return fmt.Errorf("raftstore: add voter %s: %w", nodeID, err)
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return s.raftError("add voter "+nodeID, err)
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == nodeID && srv.Suffrage == raft.Voter {
			if string(srv.Address) == raftAddr {
				return nil
			}
			s.logger.Info("voter re-addressed", "node", nodeID, "old_raft_addr", string(srv.Address), "raft_addr", raftAddr)
		}
	}
	return s.changeConfig(ctx, "add voter "+nodeID, func(timeout time.Duration) raft.IndexFuture {
		return s.raft.AddVoter(raft.ServerID(nodeID), raft.ServerAddress(raftAddr), 0, timeout)
	})
}

// RemoveServer removes a member from the Raft configuration and waits
// until the change is committed. Leader only. The member record in the FSM
// is left to the caller (a separate RemoveMember command).
func (s *Store) RemoveServer(ctx context.Context, nodeID string) error {
	if nodeID == "" {
		return fmt.Errorf("raftstore: remove server: %w: empty node id", ErrInvalidCommand)
	}
	return s.changeConfig(ctx, "remove server "+nodeID, func(timeout time.Duration) raft.IndexFuture {
		return s.raft.RemoveServer(raft.ServerID(nodeID), 0, timeout)
	})
}

func (s *Store) changeConfig(ctx context.Context, op string, start func(time.Duration) raft.IndexFuture) error {
	if err := s.requireLeader(); err != nil {
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
	timeout, err := enqueueTimeout(ctx)
	if err != nil {
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
	f := start(timeout)
	if err := s.wait(ctx, op, f); err != nil {
		return err
	}
	s.logger.Info("raft configuration changed", "change", op, "index", f.Index())
	return nil
}
