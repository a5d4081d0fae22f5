package raftstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestDurableRestart: an on-disk node applies state, snapshots, applies
// more, stops, and comes back from the same Dir without bootstrapping. The
// snapshot is restored when Raft starts and the entries after it are
// replayed once the node has re-elected itself.
func TestDurableRestart(t *testing.T) {
	p := pkitest.New(t)
	dir := t.TempDir()
	k1 := newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	k2 := newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)
	k3 := newKey(t, "k3", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)

	s := openNode(t, p, "n1", dir)
	if s.HadState() {
		t.Fatal("empty dir reports existing state")
	}
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("durable", k1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureSelfMember(ctx); err != nil {
		t.Fatal(err)
	}
	k2Idx, err := s.Apply(ctx, putKeyCmd(k2))
	if err != nil {
		t.Fatal(err)
	}
	snapIdx, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snapIdx < k2Idx {
		t.Fatalf("snapshot covers index %d, want >= %d", snapIdx, k2Idx)
	}
	snaps, err := os.ReadDir(filepath.Join(dir, "raft", "snapshots"))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshot dir: %v entries, err %v; want 1 file snapshot", len(snaps), err)
	}
	// After the snapshot: these are only in the log.
	if _, err := s.Apply(ctx, putKeyCmd(k3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, putMemberCmd(&statev1.Member{NodeId: "n2", RaftAddr: "127.0.0.1:9"})); err != nil {
		t.Fatal(err)
	}
	want := s.Dump()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openNode(t, p, "n1", dir)
	if !s2.HadState() {
		t.Fatal("reopened store reports no existing state")
	}
	// Raft restores the snapshot inside Open, and cannot replay the later
	// entries before it has been leader for a while (an election takes at
	// least HeartbeatTimeout): right now the state is exactly the snapshot.
	if got := s2.Keys(); len(got) != 2 || got[0].GetKid() != "k1" || got[1].GetKid() != "k2" {
		t.Fatalf("after snapshot restore, keys = %v; want k1, k2", got)
	}
	if s2.ClusterID() != "durable" {
		t.Fatalf("after snapshot restore, cluster id %q", s2.ClusterID())
	}
	if err := s2.BootstrapSingle(); err == nil {
		t.Fatal("BootstrapSingle succeeded on a store that already belongs to a cluster")
	}

	awaitSelfLeader(t, s2) // the barrier commits, hence replays, everything before it
	got := s2.Dump()
	if !proto.Equal(want, got) {
		t.Fatalf("state after restart:\n got %v\nwant %v", got, want)
	}
	if !bytes.Equal(mustMarshal(t, want), mustMarshal(t, got)) {
		t.Fatal("state after restart not byte-equal")
	}
	if st := s2.Status(); st.AppliedIndex <= snapIdx {
		t.Fatalf("applied index %d not past snapshot %d: log not replayed", st.AppliedIndex, snapIdx)
	}
}

// TestStoreDirLocked: a second Open of the same Dir fails fast (the
// directory's flock) instead of hanging or corrupting the log, for both
// log stores.
func TestStoreDirLocked(t *testing.T) {
	p := pkitest.New(t)
	dir := t.TempDir()
	openNode(t, p, "n1", dir)
	m := p.Node(t, "n1")
	for _, kind := range []logStoreKind{logStoreWAL, logStoreBolt} {
		start := time.Now()
		_, err := Open(Config{NodeID: "n1", Dir: dir, Bind: "127.0.0.1:0",
			ServerTLS: m.NodeServerConfig(), ClientTLS: m.ClientConfig(""), logStore: kind})
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("%s: second Open of a Dir in use: %v", kind, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: second Open took %v to fail", kind, d)
		}
	}
}
