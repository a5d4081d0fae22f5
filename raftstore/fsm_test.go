package raftstore

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// fsmApply feeds cmd to f as Raft would (a committed log entry) and
// returns the FSM's response as an error.
func fsmApply(t testing.TB, f *fsm, index uint64, cmd *statev1.Command) error {
	t.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	resp := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
	if resp == nil {
		return nil
	}
	err, ok := resp.(error)
	if !ok {
		t.Fatalf("Apply returned %T, want error or nil", resp)
	}
	return err
}

func mustApply(t testing.TB, f *fsm, index uint64, cmd *statev1.Command) {
	t.Helper()
	if err := fsmApply(t, f, index, cmd); err != nil {
		t.Fatalf("apply %s at %d: %v", commandKind(cmd), index, err)
	}
}

func newTestFSM() *fsm { return newFSM(slog.New(slog.DiscardHandler), nil) }

func TestFSMAppliesEachCommand(t *testing.T) {
	f := newTestFSM()
	k1 := newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	k2 := newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)
	n1 := &statev1.Member{NodeId: "n1", RaftAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2", PublicAddr: "127.0.0.1:3", Voter: true}
	n2 := &statev1.Member{NodeId: "n2", RaftAddr: "127.0.0.1:4", Voter: true}

	mustApply(t, f, 1, initCmd("c-1", k1))
	if got := f.getClusterID(); got != "c-1" {
		t.Fatalf("cluster id %q, want c-1", got)
	}
	mustApply(t, f, 2, putMemberCmd(n2))
	mustApply(t, f, 3, putMemberCmd(n1))
	mustApply(t, f, 4, putKeyCmd(k2))

	want := &statev1.Snapshot{ClusterId: "c-1", Members: []*statev1.Member{n1, n2}, Keys: []*statev1.Key{k1, k2}}
	if got := f.dump(); !proto.Equal(got, want) {
		t.Fatalf("dump after puts:\n got %v\nwant %v", got, want)
	}

	// PutKey replaces by kid; PutMember replaces by node id.
	k1v := proto.Clone(k1).(*statev1.Key)
	k1v.State = statev1.KeyState_KEY_STATE_VERIFY_ONLY
	k1v.RetireAfterUnixMs = 1_800_000_000_000
	mustApply(t, f, 5, putKeyCmd(k1v))
	n1b := proto.Clone(n1).(*statev1.Member)
	n1b.AdminAddr = "127.0.0.1:9"
	mustApply(t, f, 6, putMemberCmd(n1b))
	mustApply(t, f, 7, removeMemberCmd("n2"))
	// Removing an absent member converges instead of failing.
	mustApply(t, f, 8, removeMemberCmd("n2"))

	want = &statev1.Snapshot{ClusterId: "c-1", Members: []*statev1.Member{n1b}, Keys: []*statev1.Key{k1v, k2}}
	if got := f.dump(); !proto.Equal(got, want) {
		t.Fatalf("dump after replace/remove:\n got %v\nwant %v", got, want)
	}
}

func TestFSMInitClusterTwiceRejected(t *testing.T) {
	f := newTestFSM()
	mustApply(t, f, 1, initCmd("first", newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)))
	before := f.dump()

	err := fsmApply(t, f, 2, initCmd("second", newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)))
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("second InitCluster: err %v, want ErrRejected", err)
	}
	if !strings.Contains(err.Error(), `"first"`) {
		t.Errorf("error %q does not name the existing cluster", err)
	}
	if after := f.dump(); !proto.Equal(before, after) {
		t.Fatalf("rejected InitCluster changed state:\nbefore %v\nafter  %v", before, after)
	}
}

func TestFSMRejectsMalformedCommands(t *testing.T) {
	good := newKey(t, "good", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	other := newKey(t, "other", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	mutKey := func(mut func(k *statev1.Key)) *statev1.Key {
		k := proto.Clone(good).(*statev1.Key)
		mut(k)
		return k
	}
	cases := []struct {
		name string
		cmd  *statev1.Command
	}{
		{"no kind", &statev1.Command{ProposedUnixMs: 5}},
		{"init empty cluster id", initCmd("")},
		{"init duplicate kid", initCmd("c", good, proto.Clone(good).(*statev1.Key))},
		{"init bad key", initCmd("c", mutKey(func(k *statev1.Key) { k.Kid = "" }))},
		{"put member nil", &statev1.Command{Kind: &statev1.Command_PutMember{PutMember: &statev1.PutMember{}}}},
		{"put member empty id", putMemberCmd(&statev1.Member{RaftAddr: "127.0.0.1:1"})},
		{"remove member empty id", removeMemberCmd("")},
		{"put key nil", &statev1.Command{Kind: &statev1.Command_PutKey{PutKey: &statev1.PutKey{}}}},
		{"key empty kid", putKeyCmd(mutKey(func(k *statev1.Key) { k.Kid = "" }))},
		{"key no purpose", putKeyCmd(mutKey(func(k *statev1.Key) { k.Purpose = 0 }))},
		{"key no state", putKeyCmd(mutKey(func(k *statev1.Key) { k.State = 0 }))},
		{"key short public", putKeyCmd(mutKey(func(k *statev1.Key) { k.PublicKey = k.PublicKey[:31] }))},
		{"key short seed", putKeyCmd(mutKey(func(k *statev1.Key) { k.PrivateSeed = k.PrivateSeed[:31] }))},
		{"key seed of another key", putKeyCmd(mutKey(func(k *statev1.Key) { k.PrivateSeed = other.PrivateSeed }))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			mustApply(t, f, 1, putMemberCmd(&statev1.Member{NodeId: "n1"}))
			before := f.dump()
			err := fsmApply(t, f, 2, tc.cmd)
			if !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("err %v, want ErrInvalidCommand", err)
			}
			// Key material must never reach an error string.
			for _, k := range []*statev1.Key{good, other} {
				if bytes.Contains([]byte(err.Error()), k.PrivateSeed) {
					t.Fatalf("error leaks a private seed: %q", err)
				}
			}
			if after := f.dump(); !proto.Equal(before, after) {
				t.Fatalf("rejected command changed state: %v", after)
			}
			// Store.Apply runs the same check before proposing.
			if err := validateCommand(tc.cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("validateCommand: %v, want ErrInvalidCommand", err)
			}
		})
	}

	t.Run("undecodable entry", func(t *testing.T) {
		f := newTestFSM()
		resp := f.Apply(&raft.Log{Index: 1, Data: []byte{0xff, 0xff, 0xff}})
		if err, _ := resp.(error); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("Apply(garbage) = %v, want ErrInvalidCommand", resp)
		}
	})
}

func TestFSMReadsReturnCopies(t *testing.T) {
	f := newTestFSM()
	k := newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	mustApply(t, f, 1, initCmd("c", k))
	mustApply(t, f, 2, putMemberCmd(&statev1.Member{NodeId: "n1", AdminAddr: "a"}))
	before := mustMarshal(t, f.dump())

	f.getKeys()[0].PrivateSeed[0] ^= 0xff
	f.getKeys()[0].Kid = "changed"
	f.getMembers()[0].AdminAddr = "changed"
	d := f.dump()
	d.ClusterId = "changed"
	d.Keys[0].PublicKey[0] ^= 0xff
	d.Members[0].NodeId = "changed"
	f.getMember("n1").Voter = true

	if after := mustMarshal(t, f.dump()); !bytes.Equal(before, after) {
		t.Fatal("mutating read results changed the FSM state")
	}
}

// memSink is a raft.SnapshotSink writing to memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func snapshotBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v after Persist", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func TestFSMSnapshotRestoreRoundTrip(t *testing.T) {
	keys := []*statev1.Key{
		newKey(t, "k3", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR),
		newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN),
		newKey(t, "k2", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN),
	}
	members := []*statev1.Member{
		{NodeId: "n2", RaftAddr: "127.0.0.1:2", Voter: true},
		{NodeId: "n3", RaftAddr: "127.0.0.1:3"},
		{NodeId: "n1", RaftAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:11", Voter: true},
	}
	src := newTestFSM()
	mustApply(t, src, 1, initCmd("c-rt", keys[0]))
	idx := uint64(2)
	for _, m := range members {
		mustApply(t, src, idx, putMemberCmd(m))
		idx++
	}
	for _, k := range keys[1:] {
		mustApply(t, src, idx, putKeyCmd(k))
		idx++
	}
	data := snapshotBytes(t, src)

	// Restore into a fresh FSM that already holds unrelated state: Restore
	// replaces, it does not merge.
	dst := newTestFSM()
	mustApply(t, dst, 1, putMemberCmd(&statev1.Member{NodeId: "stale"}))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	want, got := src.dump(), dst.dump()
	if !proto.Equal(want, got) {
		t.Fatalf("restored state differs:\nwant %v\n got %v", want, got)
	}
	if !bytes.Equal(mustMarshal(t, want), mustMarshal(t, got)) {
		t.Fatal("restored state is not byte-equal under deterministic marshal")
	}
	if !bytes.Equal(data, snapshotBytes(t, dst)) {
		t.Fatal("snapshot of restored FSM differs from the original snapshot")
	}
	// Sorted, whatever the insertion order.
	for i, id := range []string{"n1", "n2", "n3"} {
		if got.Members[i].GetNodeId() != id {
			t.Fatalf("members not sorted: %v", got.Members)
		}
	}
	for i, kid := range []string{"k1", "k2", "k3"} {
		if got.Keys[i].GetKid() != kid {
			t.Fatalf("keys not sorted: %v", got.Keys)
		}
	}
}

func TestFSMRestoreRejectsBadSnapshotKeepsState(t *testing.T) {
	k := newKey(t, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	dupMember := mustMarshal(t, &statev1.Snapshot{ClusterId: "x", Members: []*statev1.Member{{NodeId: "a"}, {NodeId: "a"}}})
	dupKey := mustMarshal(t, &statev1.Snapshot{ClusterId: "x", Keys: []*statev1.Key{k, k}})
	badKey := mustMarshal(t, &statev1.Snapshot{ClusterId: "x", Keys: []*statev1.Key{{Kid: "short"}}})
	for name, data := range map[string][]byte{
		"garbage":          {0xff, 0xff, 0xff, 0xff},
		"duplicate member": dupMember,
		"duplicate kid":    dupKey,
		"invalid key":      badKey,
	} {
		t.Run(name, func(t *testing.T) {
			f := newTestFSM()
			mustApply(t, f, 1, initCmd("keep", k))
			before := f.dump()
			if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
				t.Fatal("Restore accepted a bad snapshot")
			}
			if after := f.dump(); !proto.Equal(before, after) {
				t.Fatalf("failed Restore changed state: %v", after)
			}
		})
	}
}
