package raftstore

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// fuzzBase builds the state fuzzed commands are applied to: a cluster with
// keys, members and a room with a key, a policy, a revocation, a tick and
// a registered query, so that accepting paths are reachable, not only
// rejections. It returns its snapshot and the seed commands of every kind.
func fuzzBase(f *testing.F) ([]byte, []*statev1.Command) {
	rt, op := newKey(f, "rt-1", rtPurpose), newKey(f, "op-1", opPurpose)
	peer, roomPub := pubKey(f), pubKey(f)
	base := newTestFSM()
	for i, cmd := range []*statev1.Command{
		initCmd("fuzz", rt, op),
		putMemberCmd(&statev1.Member{NodeId: "n1", RaftAddr: "127.0.0.1:1", Voter: true}),
		putMemberCmd(&statev1.Member{NodeId: "n2", RaftAddr: "127.0.0.1:2", Voter: true}),
		at(t0, putRoomKeyCmd("r", "a", roomPub)),
		at(t0, policyCmd("r", 5, true)),
		at(t0, revokeCmd(&statev1.Revocation{TokenId: "tok", UntilUnixMs: t0 + 10_000})),
		at(t0, putTickCmd("r", 50, "")),
		at(t0, putQueryCmd("r", "players", "world/player/*")),
	} {
		mustApply(f, base, uint64(i+1), cmd)
	}
	next := newKey(f, "op-2", opPurpose)
	next.ActivateUnixMs = t0 + 1000
	seeds := []*statev1.Command{
		initCmd("c", rt),
		putKeyCmd(rt),
		putMemberCmd(&statev1.Member{NodeId: "n3", RaftAddr: "127.0.0.1:3", Voter: true}),
		removeMemberCmd("n1"),
		at(t0+1, rotateKeyCmd(next, 5000)),
		at(t0+1, retireKeyCmd("op-1")),
		at(t0+1, putRoomKeyCmd("r", "", pubKey(f))),
		at(t0+1, rotateRoomKeyCmd("r", "b", pubKey(f), 1000)),
		at(t0+1, retireRoomKeyCmd("r", "a")),
		at(t0+1, lockCmd("r", statev1.LockMode_LOCK_MODE_OWN_KEYS)),
		at(t0+1, lockCmd("q", statev1.LockMode_LOCK_MODE_CLUSTER)),
		at(t0+1, policyCmd("r", 6, false, &statev1.PolicyRule{PathGlob: "world/*", CanWrite: [][]byte{peer}})),
		at(t0+1, revokeCmd(&statev1.Revocation{Room: "r", PeerPubkey: peer, UntilUnixMs: t0 + 500})),
		at(t0+20_000, revokeCmd(&statev1.Revocation{TokenId: "tok2"})),
		at(t0+1, putTickCmd("q", 10, "in/")),
		at(t0+1, deleteTickCmd("r")),
		at(t0+1, placeCmd("r", "n2", "n1")),
		at(t0+1, drainCmd("n2", true)),
		at(t0+1, evictCmd("r", peer)),
		at(t0+1, putQueryCmd("r", "players", "world/**")),
		at(t0+1, putQueryCmd("q", "intents", "intent/*/move")),
		at(t0+1, putQueryCmd("r", "bad name", "a//b")),
		{},
	}
	return snapshotBytes(f, base), seeds
}

// FuzzFSMApply feeds arbitrary log entry bytes to an FSM holding a small
// but complete state. It must never panic, must answer nil or an error,
// must leave the state unchanged when it answers an error, and whatever
// state results must survive a snapshot/restore round trip byte-equal.
func FuzzFSMApply(f *testing.F) {
	base, seeds := fuzzBase(f)
	for _, cmd := range seeds {
		b, err := proto.Marshal(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newTestFSM()
		if err := m.Restore(io.NopCloser(bytes.NewReader(base))); err != nil {
			t.Fatal(err)
		}
		resp := m.Apply(&raft.Log{Index: 100, Data: data})
		if resp != nil {
			if _, ok := resp.(error); !ok {
				t.Fatalf("Apply returned %T", resp)
			}
			if !bytes.Equal(base, snapshotBytes(t, m)) {
				t.Fatal("a refused command changed the state")
			}
		}
		snap := snapshotBytes(t, m)
		r := newTestFSM()
		if err := r.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatalf("state reached through Apply does not restore: %v", err)
		}
		if !bytes.Equal(snap, snapshotBytes(t, r)) {
			t.Fatal("restored state differs")
		}
	})
}

// FuzzFSMRestore feeds arbitrary snapshot bytes to Restore. It must never
// panic; an accepted snapshot must re-snapshot to a stable canonical form.
func FuzzFSMRestore(f *testing.F) {
	k := newKey(f, "k1", rtPurpose)
	f.Add(mustMarshal(f, &statev1.Snapshot{ClusterId: "c", Keys: []*statev1.Key{k},
		Members: []*statev1.Member{{NodeId: "n1"}, {NodeId: "n0"}}}))
	f.Add(mustMarshal(f, &statev1.Snapshot{}))
	f.Add([]byte{0x0a, 0x01})
	base, _ := fuzzBase(f)
	f.Add(base)
	// A state built by a random command sequence: rooms with rotated and
	// retired keys, policy timelines, placements, revocations, ticks.
	rich := newTestFSM()
	applyRaw(rich, 1, randomCommandsTB(f, rand.New(rand.NewPCG(7, 7)), 300))
	f.Add(snapshotBytes(f, rich))
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
