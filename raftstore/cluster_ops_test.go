package raftstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func TestReadIndexAndWaitApplied(t *testing.T) {
	stores, _ := startCluster(t)
	n1, n2, n3 := stores[0], stores[1], stores[2]
	ctx := testContext(t)
	if _, err := n1.Apply(ctx, initCmd("ri")); err != nil {
		t.Fatal(err)
	}
	idx, err := n1.Apply(ctx, putRoomKeyCmd("r", "a", pubKey(t)))
	if err != nil {
		t.Fatal(err)
	}

	// The first ReadIndex of a term commits a barrier, so the index it
	// returns is past the last command and names an entry that never
	// reaches the FSM: WaitApplied must still return.
	ri, err := n1.ReadIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ri <= idx {
		t.Fatalf("read index %d not past the last write %d", ri, idx)
	}
	for _, s := range []*Store{n2, n3} {
		if err := s.WaitApplied(ctx, ri); err != nil {
			t.Fatalf("%s: %v", s.NodeID(), err)
		}
		// Linearizable: the follower now reflects the write.
		if r, ok := s.Room("r"); !ok || len(r.GetKeys()) != 1 {
			t.Fatalf("%s after WaitApplied: room %v, %v", s.NodeID(), r, ok)
		}
	}
	// Later calls in the same term cost no log entry.
	before := n1.raft.LastIndex()
	ri2, err := n1.ReadIndex(ctx)
	if err != nil || ri2 < ri {
		t.Fatalf("second ReadIndex = %d, %v", ri2, err)
	}
	if after := n1.raft.LastIndex(); after != before {
		t.Fatalf("second ReadIndex wrote to the log (%d -> %d)", before, after)
	}

	// A write applied on the leader: WaitApplied on a follower returns
	// once it is there, and the follower's dump equals the leader's.
	idx3, err := n1.Apply(ctx, putTickCmd("r", 50, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := n3.WaitApplied(ctx, idx3); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMarshal(t, n1.Dump()), mustMarshal(t, n3.Dump())) {
		t.Fatal("follower differs from leader after WaitApplied")
	}

	// Followers refuse ReadIndex and name the leader.
	_, err = n2.ReadIndex(ctx)
	var nle *NotLeaderError
	if !errors.As(err, &nle) || nle.LeaderID != "n1" {
		t.Fatalf("ReadIndex on follower: %v, want *NotLeaderError naming n1", err)
	}
	// An index nobody reaches: the context decides.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := n2.WaitApplied(short, ri+1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied far ahead: %v, want deadline exceeded", err)
	}

	// LeaderAdmin: only once the leader has a member record.
	if id, _, ok := n2.LeaderAdmin(); ok || id != "n1" {
		t.Fatalf("LeaderAdmin before the member record = %q, %v", id, ok)
	}
	mi, err := n1.EnsureSelfMember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.WaitApplied(ctx, mi); err != nil {
		t.Fatal(err)
	}
	if id, admin, ok := n2.LeaderAdmin(); !ok || id != "n1" || admin != "127.0.0.1:17879" {
		t.Fatalf("LeaderAdmin = %q, %q, %v", id, admin, ok)
	}
}

func TestWaitAppliedClosed(t *testing.T) {
	p := pkitest.New(t)
	s := openNode(t, p, "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	errc := make(chan error, 1)
	go func() { errc <- s.WaitApplied(ctx, 1<<40) }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitApplied on close: %v, want ErrClosed", err)
	}
}

func TestTransferLeadership(t *testing.T) {
	stores, recs := startCluster(t)
	n1, n2 := stores[0], stores[1]
	ctx := testContext(t)

	if _, err := n2.TransferLeadership(ctx, "n3"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer from a follower: %v", err)
	}
	for _, bad := range []string{"n9", "n1"} {
		if _, err := n1.TransferLeadership(ctx, bad); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("transfer to %s: %v, want ErrInvalidCommand", bad, err)
		}
	}
	got, err := n1.TransferLeadership(ctx, "n2")
	if err != nil || got != "n2" {
		t.Fatalf("transfer to n2 = %q, %v", got, err)
	}
	if id, err := n2.WaitForLeader(ctx); err != nil || id != "n2" {
		t.Fatalf("n2 sees leader %q, %v", id, err)
	}
	recs[1].await(ctx, "n2 to report leading", func() bool { return contains(recs[1].leaders, "true:n2") })
	recs[0].await(ctx, "n1 to report n2", func() bool { return contains(recs[0].leaders, "false:n2") })

	// The new leader serves writes; "any" picks another voter.
	if _, err := n2.Apply(ctx, initCmd("moved")); err != nil {
		t.Fatal(err)
	}
	got, err = n2.TransferLeadership(ctx, "")
	if err != nil || (got != "n1" && got != "n3") {
		t.Fatalf("transfer to any = %q, %v", got, err)
	}
}

func TestTakeSnapshot(t *testing.T) {
	p := pkitest.New(t)
	dir := t.TempDir()
	s := openNode(t, p, "n1", dir)
	bootstrapLeader(t, s)
	ctx := testContext(t)
	idx, err := s.Apply(ctx, initCmd("snap"))
	if err != nil {
		t.Fatal(err)
	}
	si, term, err := s.TakeSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si < idx || term != s.Status().Term {
		t.Fatalf("snapshot at %d term %d, want >= %d and term %d", si, term, idx, s.Status().Term)
	}
	snaps, err := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshot dir: %d entries, %v", len(snaps), err)
	}
	// Nothing new: the existing snapshot is reported, not an error.
	si2, term2, err := s.TakeSnapshot(ctx)
	if err != nil || si2 != si || term2 != term {
		t.Fatalf("second TakeSnapshot = %d, %d, %v; want %d, %d", si2, term2, err, si, term)
	}
}

// TestAddVoterReaddress: a voter restarted on another port rejoins with
// AddVoter (same id, new address); the configuration follows and the
// node catches up. Repeating the join costs no log entry.
func TestAddVoterReaddress(t *testing.T) {
	p := pkitest.New(t)
	ctx := testContext(t)
	dir3 := t.TempDir()
	n1 := openNode(t, p, "n1", t.TempDir())
	n2 := openNode(t, p, "n2", t.TempDir())
	n3 := openNode(t, p, "n3", dir3)
	bootstrapLeader(t, n1)
	for _, s := range []*Store{n2, n3} {
		if err := n1.AddVoter(ctx, s.NodeID(), s.RaftAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n1.Apply(ctx, initCmd("readdr")); err != nil {
		t.Fatal(err)
	}
	oldAddr := n3.RaftAddr()
	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	// Written while n3 is away.
	idx, err := n1.Apply(ctx, putTickCmd("r", 100, ""))
	if err != nil {
		t.Fatal(err)
	}

	n3b := openNode(t, p, "n3", dir3) // a new ephemeral port
	if n3b.RaftAddr() == oldAddr {
		t.Skip("the OS reused the port; nothing to re-address")
	}
	if err := n1.AddVoter(ctx, "n3", n3b.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, m := range n1.Status().Members {
		if m.NodeID == "n3" {
			addr = m.RaftAddr
		}
	}
	if addr != n3b.RaftAddr() {
		t.Fatalf("configuration has n3 at %q, want %q", addr, n3b.RaftAddr())
	}
	if err := n3b.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if len(n3b.Ticks()) != 1 {
		t.Fatal("re-addressed node did not catch up")
	}
	before := n1.raft.LastIndex()
	if err := n1.AddVoter(ctx, "n3", n3b.RaftAddr()); err != nil {
		t.Fatal(err)
	}
	if after := n1.raft.LastIndex(); after != before {
		t.Fatalf("repeated AddVoter wrote to the log (%d -> %d)", before, after)
	}
	// The member record follows through the FSM as usual.
	if _, err := n1.Apply(ctx, putMemberCmd(&statev1.Member{NodeId: "n3", RaftAddr: n3b.RaftAddr(), Voter: true})); err != nil {
		t.Fatal(err)
	}
}
