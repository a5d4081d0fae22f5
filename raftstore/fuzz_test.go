package raftstore

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// FuzzFSMApply feeds arbitrary log entry bytes to the FSM. It must never
// panic, must answer nil or an error, and whatever state results must
// survive a snapshot/restore round trip unchanged.
func FuzzFSMApply(f *testing.F) {
	k := newKey(f, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	for _, cmd := range []*statev1.Command{
		initCmd("c", k),
		putKeyCmd(k),
		putMemberCmd(&statev1.Member{NodeId: "n1", RaftAddr: "127.0.0.1:1", Voter: true}),
		removeMemberCmd("n1"),
		{},
	} {
		b, err := proto.Marshal(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newTestFSM()
		resp := m.Apply(&raft.Log{Index: 1, Data: data})
		if resp != nil {
			if _, ok := resp.(error); !ok {
				t.Fatalf("Apply returned %T", resp)
			}
		}
		snap := snapshotBytes(t, m)
		r := newTestFSM()
		if err := r.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("state reached through Apply does not restore: %v", err)
		}
		if !proto.Equal(m.dump(), r.dump()) {
			t.Fatal("restored state differs")
		}
	})
}

// FuzzFSMRestore feeds arbitrary snapshot bytes to Restore. It must never
// panic; an accepted snapshot must re-snapshot to a stable canonical form.
func FuzzFSMRestore(f *testing.F) {
	k := newKey(f, "k1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	f.Add(mustMarshal(f, &statev1.Snapshot{ClusterId: "c", Keys: []*statev1.Key{k},
		Members: []*statev1.Member{{NodeId: "n1"}, {NodeId: "n0"}}}))
	f.Add(mustMarshal(f, &statev1.Snapshot{}))
	f.Add([]byte{0x0a, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newTestFSM()
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			return
		}
		once := snapshotBytes(t, m)
		r := newTestFSM()
		if err := r.Restore(io.NopCloser(bytes.NewReader(once))); err != nil {
			t.Fatalf("canonical snapshot does not restore: %v", err)
		}
		if !bytes.Equal(once, snapshotBytes(t, r)) {
			t.Fatal("canonical snapshot is not stable")
		}
	})
}
