package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// randomCommands generates n commands over a small universe of rooms,
// members, kids, peers and tokens, so that accepts and every kind of
// rejection both happen often. Times advance irregularly.
func randomCommands(t *testing.T, rng *rand.Rand, n int) [][]byte { return randomCommandsTB(t, rng, n) }

// randomCommandsTB is randomCommands for any testing.TB (fuzz seeds).
func randomCommandsTB(t testing.TB, rng *rand.Rand, n int) [][]byte {
	rooms := []string{"r0", "r1", "r2"}
	nodes := []string{"n1", "n2", "n3", "n4"}
	peers := [][]byte{pubKey(t), pubKey(t), pubKey(t)}
	roomPubs := make([][]byte, 12)
	for i := range roomPubs {
		roomPubs[i] = pubKey(t)
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	now := t0
	var out [][]byte
	add := func(cmd *statev1.Command) {
		now += rng.Int64N(3000)
		b, err := proto.Marshal(at(now, cmd))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(initCmd("prop", newKey(t, "rt-0", rtPurpose), newKey(t, "op-0", opPurpose)))
	for i := range n {
		switch rng.IntN(18) {
		case 0:
			add(putMemberCmd(&statev1.Member{NodeId: pick(nodes), RaftAddr: fmt.Sprintf("127.0.0.1:%d", rng.IntN(5)+1), Voter: true}))
		case 1:
			add(removeMemberCmd(pick(nodes)))
		case 2:
			purpose := rtPurpose
			if rng.IntN(2) == 0 {
				purpose = opPurpose
			}
			k := newKey(t, fmt.Sprintf("k-%d", i), purpose)
			k.ActivateUnixMs = now + rng.Int64N(5000)
			add(rotateKeyCmd(k, rng.Int64N(10_000)))
		case 3:
			add(retireKeyCmd(fmt.Sprintf("k-%d", rng.IntN(i+1))))
		case 4:
			add(putRoomKeyCmd(pick(rooms), pick([]string{"", "a", "b"}), roomPubs[rng.IntN(len(roomPubs))]))
		case 5:
			add(rotateRoomKeyCmd(pick(rooms), "", roomPubs[rng.IntN(len(roomPubs))], rng.Int64N(5000)))
		case 6:
			add(retireRoomKeyCmd(pick(rooms), pick([]string{"a", "b"})))
		case 7:
			add(lockCmd(pick(rooms), statev1.LockMode(rng.IntN(3)+1)))
		case 8:
			add(policyCmd(pick(rooms), uint64(rng.IntN(40)), rng.IntN(2) == 0,
				&statev1.PolicyRule{PathGlob: "world/**", CanWrite: [][]byte{peers[rng.IntN(len(peers))]}}))
		case 9:
			add(revokeCmd(&statev1.Revocation{TokenId: fmt.Sprintf("tok-%d", rng.IntN(4)), UntilUnixMs: now + rng.Int64N(8000) - 1000}))
		case 10:
			add(revokeCmd(&statev1.Revocation{Room: pick(rooms), PeerPubkey: peers[rng.IntN(len(peers))], UntilUnixMs: rng.Int64N(2) * (now + rng.Int64N(8000))}))
		case 11:
			add(putTickCmd(pick(rooms), uint32(rng.IntN(100)+5), pick([]string{"", "in/"})))
		case 12:
			add(deleteTickCmd(pick(rooms)))
		case 13:
			add(placeCmd(pick(rooms), pick(nodes), pick(nodes)))
		case 14:
			add(drainCmd(pick(nodes), rng.IntN(2) == 0))
		case 15:
			add(evictCmd(pick(rooms), peers[rng.IntN(len(peers))]))
		case 16:
			add(putKeyCmd(newKey(t, fmt.Sprintf("p-%d", i), rtPurpose)))
		case 17:
			// A few names per room (so re-registration replaces), and now
			// and then a pattern that does not compile.
			add(putQueryCmd(pick(rooms), pick([]string{"q1", "q2", "players"}), pick([]string{"world/**", "intent/*/move", "a//b"})))
		}
	}
	return out
}

// applyRaw applies encoded entries from index first on and returns the
// responses as strings ("" for success).
func applyRaw(f *fsm, first uint64, entries [][]byte) []string {
	out := make([]string, len(entries))
	for i, b := range entries {
		if resp := f.Apply(&raft.Log{Index: first + uint64(i), Type: raft.LogCommand, Data: b}); resp != nil {
			out[i] = resp.(error).Error()
		}
	}
	return out
}

// TestFSMRandomSequences: for random command sequences, (1) two replicas
// applying the same log agree byte for byte, in state and in every answer;
// (2) a replica restored from a snapshot taken midway and fed the rest
// ends in the same state; (3) every reachable state passes the restore
// validation and round-trips through a snapshot byte-equal.
func TestFSMRandomSequences(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			entries := randomCommands(t, rng, 400)
			mid := rng.IntN(len(entries))

			a, b := newTestFSM(), newTestFSM()
			ra := applyRaw(a, 1, entries[:mid])
			snap := snapshotBytes(t, a)
			ra = append(ra, applyRaw(a, uint64(mid)+1, entries[mid:])...)
			rb := applyRaw(b, 1, entries)
			accepted := 0
			for i := range ra {
				if ra[i] != rb[i] {
					t.Fatalf("entry %d: replicas answered %q and %q", i+1, ra[i], rb[i])
				}
				if ra[i] == "" {
					accepted++
				}
			}
			if accepted < len(entries)/4 || accepted == len(entries) {
				t.Fatalf("%d of %d accepted: the generator does not exercise both paths", accepted, len(entries))
			}
			final := mustMarshal(t, a.dump())
			if !bytes.Equal(final, mustMarshal(t, b.dump())) {
				t.Fatal("replicas applying the same log differ")
			}

			c := newTestFSM()
			if err := c.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
				t.Fatalf("midway snapshot does not restore: %v", err)
			}
			rc := applyRaw(c, uint64(mid)+1, entries[mid:])
			for i := range rc {
				if rc[i] != ra[mid+i] {
					t.Fatalf("entry %d after restore answered %q, want %q", mid+i+1, rc[i], ra[mid+i])
				}
			}
			if !bytes.Equal(final, mustMarshal(t, c.dump())) {
				t.Fatal("restored replica diverged")
			}

			d := newTestFSM()
			if err := d.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, a)))); err != nil {
				t.Fatalf("final snapshot does not restore: %v", err)
			}
			if !bytes.Equal(final, mustMarshal(t, d.dump())) {
				t.Fatal("snapshot -> restore -> dump is not byte-equal")
			}
			if len(a.dump().GetRooms()) == 0 || len(a.dump().GetKeys()) < 3 {
				t.Fatal("the sequence built no rooms or keys")
			}
			queries := 0
			for _, r := range a.dump().GetRooms() {
				queries += len(r.GetQueries())
			}
			if queries == 0 {
				t.Fatal("the sequence registered no queries")
			}
		})
	}
}
