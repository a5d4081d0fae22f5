package raftstore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func TestSingleNodeInMemory(t *testing.T) {
	p := pkitest.New(t)
	s := openNode(t, p, "n1", "")
	if s.HadState() {
		t.Fatal("fresh in-memory store reports existing state")
	}

	start := time.Now()
	if err := s.BootstrapSingle(); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	leader, err := s.WaitForLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self-elected in %v", time.Since(start))
	if leader != "n1" || !s.IsLeader() {
		t.Fatalf("leader %q, IsLeader %v; want n1, true", leader, s.IsLeader())
	}

	k := newKey(t, "room-1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	initIdx, err := s.Apply(ctx, initCmd("cluster-a"))
	if err != nil {
		t.Fatal(err)
	}
	keyIdx, err := s.Apply(ctx, putKeyCmd(k))
	if err != nil {
		t.Fatal(err)
	}
	if keyIdx <= initIdx {
		t.Fatalf("PutKey index %d not after InitCluster index %d", keyIdx, initIdx)
	}
	memberIdx, err := s.EnsureSelfMember(ctx)
	if err != nil || memberIdx <= keyIdx {
		t.Fatalf("EnsureSelfMember = %d, %v; want an index after %d", memberIdx, err, keyIdx)
	}
	// Unchanged record: nothing proposed.
	if idx, err := s.EnsureSelfMember(ctx); err != nil || idx != 0 {
		t.Fatalf("second EnsureSelfMember = %d, %v; want 0, nil", idx, err)
	}

	if got := s.ClusterID(); got != "cluster-a" {
		t.Fatalf("ClusterID %q", got)
	}
	keys := s.Keys()
	if len(keys) != 1 || keys[0].GetKid() != "room-1" || !proto.Equal(keys[0], k) {
		t.Fatalf("Keys = %v, want [room-1]", keys)
	}
	wantMember := &statev1.Member{NodeId: "n1", RaftAddr: s.RaftAddr(),
		AdminAddr: "127.0.0.1:17879", PublicAddr: "127.0.0.1:17878", Voter: true}
	if m := s.Members(); len(m) != 1 || !proto.Equal(m[0], wantMember) {
		t.Fatalf("Members = %v, want [%v]", m, wantMember)
	}

	st := s.Status()
	if st.State != "leader" || st.LeaderID != "n1" || st.LeaderAddr != s.RaftAddr() || st.NodeID != "n1" {
		t.Fatalf("status %+v", st)
	}
	if st.AppliedIndex < memberIdx || st.CommitIndex < memberIdx || st.Term == 0 {
		t.Fatalf("status applied %d commit %d term %d; want applied, commit >= %d and term > 0",
			st.AppliedIndex, st.CommitIndex, st.Term, memberIdx)
	}
	wantMS := MemberStatus{NodeID: "n1", RaftAddr: s.RaftAddr(), AdminAddr: "127.0.0.1:17879",
		PublicAddr: "127.0.0.1:17878", Voter: true, State: "leader"}
	if len(st.Members) != 1 || st.Members[0] != wantMS {
		t.Fatalf("status members %+v, want [%+v]", st.Members, wantMS)
	}

	// Dump is the canonical whole state.
	want := &statev1.Snapshot{ClusterId: "cluster-a", Members: []*statev1.Member{wantMember}, Keys: []*statev1.Key{k}}
	if d := s.Dump(); !proto.Equal(d, want) {
		t.Fatalf("Dump = %v, want %v", d, want)
	}

	// A rejected command reports ErrRejected with the index it took.
	idx, err := s.Apply(ctx, initCmd("cluster-b"))
	if !errors.Is(err, ErrRejected) || idx <= memberIdx {
		t.Fatalf("second InitCluster = %d, %v; want ErrRejected at an index after %d", idx, err, memberIdx)
	}
	if s.ClusterID() != "cluster-a" {
		t.Fatal("rejected InitCluster changed the cluster id")
	}
	// A malformed command is refused before proposing: no log slot used.
	before := s.Status().CommitIndex
	if _, err := s.Apply(ctx, putKeyCmd(&statev1.Key{Kid: "bad"})); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("malformed PutKey: %v, want ErrInvalidCommand", err)
	}
	if err := s.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if after := s.Status().CommitIndex; after != before+1 { // +1: the barrier's own entry
		t.Fatalf("commit index %d -> %d: a malformed command reached the log", before, after)
	}
}

// TestApplyStampsProposedTime reads the committed entries back from the
// on-disk log: a zero ProposedUnixMs is stamped with the proposal time (on a
// copy, the caller's command is untouched) and an explicit one is kept.
func TestApplyStampsProposedTime(t *testing.T) {
	p := pkitest.New(t)
	dir := t.TempDir()
	s := openNode(t, p, "n1", dir)
	bootstrapLeader(t, s)
	ctx := testContext(t)

	before := time.Now().UnixMilli()
	cmd := initCmd("c")
	stampedIdx, err := s.Apply(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	if cmd.GetProposedUnixMs() != 0 {
		t.Fatal("Apply modified the caller's command")
	}
	explicit := putMemberCmd(&statev1.Member{NodeId: "n9"})
	explicit.ProposedUnixMs = 42
	explicitIdx, err := s.Apply(ctx, explicit)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	disk, err := openDiskStores(logStoreWAL, filepath.Join(dir, "raft"), newHCLogAdapter(testLogger(t), "test"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := disk.close(); err != nil {
			t.Error(err)
		}
	}()
	proposed := func(idx uint64) int64 {
		var l raft.Log
		if err := disk.logs.GetLog(idx, &l); err != nil {
			t.Fatalf("log %d: %v", idx, err)
		}
		var c statev1.Command
		if err := proto.Unmarshal(l.Data, &c); err != nil {
			t.Fatalf("log %d: %v", idx, err)
		}
		return c.GetProposedUnixMs()
	}
	if got := proposed(stampedIdx); got < before || got > after {
		t.Fatalf("stamped ProposedUnixMs %d outside [%d, %d]", got, before, after)
	}
	if got := proposed(explicitIdx); got != 42 {
		t.Fatalf("explicit ProposedUnixMs became %d, want 42", got)
	}
}

func TestClosedStore(t *testing.T) {
	p := pkitest.New(t)
	s := openNode(t, p, "n1", "")
	bootstrapLeader(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("c")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
	if _, err := s.WaitForLeader(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitForLeader after Close: %v, want ErrClosed", err)
	}
	if st := s.Status(); st.State != "shutdown" {
		t.Fatalf("Status after Close: %q, want shutdown", st.State)
	}
}
