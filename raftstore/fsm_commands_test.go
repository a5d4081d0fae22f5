package raftstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

const (
	rtPurpose = statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN
	opPurpose = statev1.KeyPurpose_KEY_PURPOSE_OPERATOR
)

// fx is an FSM initialised with one room-token key, one operator key and
// members n1..n3, fed commands as Raft would.
type fx struct {
	t      *testing.T
	f      *fsm
	idx    uint64
	rt, op *statev1.Key
}

func newFx(t *testing.T) *fx {
	x := &fx{t: t, f: newTestFSM(), rt: newKey(t, "rt-1", rtPurpose), op: newKey(t, "op-1", opPurpose)}
	x.ok(t0, initCmd("c", proto.Clone(x.rt).(*statev1.Key), proto.Clone(x.op).(*statev1.Key)))
	for _, id := range []string{"n1", "n2", "n3"} {
		x.ok(t0, putMemberCmd(&statev1.Member{NodeId: id, RaftAddr: "127.0.0.1:1", Voter: true}))
	}
	return x
}

// ok applies cmd proposed at ms and fails the test if it is refused.
func (x *fx) ok(ms int64, cmd *statev1.Command) {
	x.t.Helper()
	x.idx++
	mustApply(x.t, x.f, x.idx, at(ms, cmd))
}

// refused applies cmd, requires it to fail with want and a message
// containing reason, and checks that it changed nothing.
func (x *fx) refused(ms int64, cmd *statev1.Command, want error, reason string) {
	x.t.Helper()
	before := mustMarshal(x.t, x.f.dump())
	x.idx++
	err := fsmApply(x.t, x.f, x.idx, at(ms, cmd))
	if !errors.Is(err, want) {
		x.t.Fatalf("%s: err %v, want %v", commandKind(cmd), err, want)
	}
	if !strings.Contains(err.Error(), reason) {
		x.t.Fatalf("%s: error %q does not say %q", commandKind(cmd), err, reason)
	}
	if !bytes.Equal(before, mustMarshal(x.t, x.f.dump())) {
		x.t.Fatalf("%s: refused command changed the state", commandKind(cmd))
	}
}

func (x *fx) key(kid string) *statev1.Key {
	x.t.Helper()
	for _, k := range x.f.getKeys() {
		if k.GetKid() == kid {
			return k
		}
	}
	x.t.Fatalf("no key %q", kid)
	return nil
}

func (x *fx) room(name string) *statev1.Room {
	x.t.Helper()
	for _, r := range x.f.dump().GetRooms() {
		if r.GetName() == name {
			return r
		}
	}
	x.t.Fatalf("no room %q", name)
	return nil
}

func signerAt(t *testing.T, x *fx, purpose statev1.KeyPurpose, ms int64) string {
	t.Helper()
	kid, _, err := keyring.Signer(x.f.getKeys(), purpose, time.UnixMilli(ms))
	if err != nil {
		return ""
	}
	return kid
}

func TestFSMRotateKey(t *testing.T) {
	x := newFx(t)
	next := newKey(t, "op-2", opPurpose)
	next.State = statev1.KeyState_KEY_STATE_PREPUBLISHED
	next.ActivateUnixMs = t0 + 1000
	next.CreatedUnixMs = 0
	x.ok(t0, rotateKeyCmd(next, 5000))

	nk, old := x.key("op-2"), x.key("op-1")
	if nk.GetState() != statev1.KeyState_KEY_STATE_PREPUBLISHED || nk.GetActivateUnixMs() != t0+1000 || nk.GetCreatedUnixMs() != t0 {
		t.Fatalf("new key stored as %v", nk)
	}
	if old.GetSupersededUnixMs() != t0+1000 || old.GetRetireAfterUnixMs() != t0+6000 {
		t.Fatalf("old key superseded %d retire %d, want +1000, +6000", old.GetSupersededUnixMs()-t0, old.GetRetireAfterUnixMs()-t0)
	}
	if x.key("rt-1").GetSupersededUnixMs() != 0 {
		t.Fatal("rotation touched a key of another purpose")
	}
	// The hand-over happens at the activation instant, by time alone.
	if got := signerAt(t, x, opPurpose, t0+999); got != "op-1" {
		t.Fatalf("signer before activation %q, want op-1", got)
	}
	if got := signerAt(t, x, opPurpose, t0+1000); got != "op-2" {
		t.Fatalf("signer at activation %q, want op-2", got)
	}

	// A second rotation supersedes op-2 but leaves op-1's schedule alone.
	third := newKey(t, "op-3", opPurpose)
	third.ActivateUnixMs = t0 - 50_000 // in the past: clamped to the proposal time
	x.ok(t0+2000, rotateKeyCmd(third, 0))
	if k := x.key("op-3"); k.GetActivateUnixMs() != t0+2000 || k.GetState() != statev1.KeyState_KEY_STATE_ACTIVE {
		t.Fatalf("past activation not clamped: %v", k)
	}
	if k := x.key("op-2"); k.GetSupersededUnixMs() != t0+2000 || k.GetRetireAfterUnixMs() != t0+2000 {
		t.Fatalf("op-2 after second rotation: superseded %d retire %d", k.GetSupersededUnixMs()-t0, k.GetRetireAfterUnixMs()-t0)
	}
	if k := x.key("op-1"); k.GetSupersededUnixMs() != t0+1000 || k.GetRetireAfterUnixMs() != t0+6000 {
		t.Fatal("second rotation changed an already superseded key")
	}

	x.refused(t0+3000, rotateKeyCmd(proto.Clone(third).(*statev1.Key), 0), ErrRejected, `key "op-3" already exists`)
}

func TestFSMRetireKey(t *testing.T) {
	x := newFx(t)
	x.refused(t0, retireKeyCmd("op-1"), ErrRejected, `key "op-1" is the only operator key that can sign; rotate in a new key first`)
	x.refused(t0, retireKeyCmd("nope"), ErrRejected, `no key "nope" in the keyring`)

	// A scheduled (prepublished) successor counts as a future signer.
	next := newKey(t, "op-2", opPurpose)
	next.ActivateUnixMs = t0 + 1000
	x.ok(t0, rotateKeyCmd(next, 60_000))
	x.ok(t0+10, retireKeyCmd("op-1"))
	if k := x.key("op-1"); k.GetState() != statev1.KeyState_KEY_STATE_RETIRED || k.GetRetireAfterUnixMs() != t0+10 {
		t.Fatalf("retired key stored as %v", k)
	}
	if _, err := keyring.VerifyKey(x.f.getKeys(), opPurpose, "op-1", time.UnixMilli(t0+10)); err == nil {
		t.Fatal("retired key still verifies")
	}
	// Retiring again converges; the last signer is still protected.
	x.ok(t0+20, retireKeyCmd("op-1"))
	x.refused(t0+20, retireKeyCmd("op-2"), ErrRejected, "only operator key")
}

func TestFSMRetireNonSigningKeyWithoutSigner(t *testing.T) {
	// A keyring whose only room-token key is verify-only (say it leaked):
	// retiring it must be possible although nothing can sign afterwards.
	x := newFx(t)
	vo := newKey(t, "rt-vo", rtPurpose)
	vo.State = statev1.KeyState_KEY_STATE_VERIFY_ONLY
	x.ok(t0, putKeyCmd(vo))
	x.ok(t0, putKeyCmd(func() *statev1.Key {
		k := proto.Clone(x.rt).(*statev1.Key)
		k.State = statev1.KeyState_KEY_STATE_RETIRED
		return k
	}()))
	x.ok(t0+1, retireKeyCmd("rt-vo"))
}

func TestFSMRoomKeys(t *testing.T) {
	x := newFx(t)
	pubA, pubB, pubC := pubKey(t), pubKey(t), pubKey(t)
	x.ok(t0, putRoomKeyCmd("r", "", pubA))
	derived := keyring.RoomKeyID(pubA)
	r := x.room("r")
	if r.GetLock() != statev1.LockMode_LOCK_MODE_OPEN || r.GetCreatedUnixMs() != t0 || len(r.GetKeys()) != 1 {
		t.Fatalf("room created as %v", r)
	}
	if k := r.GetKeys()[0]; k.GetKid() != derived || k.GetState() != statev1.KeyState_KEY_STATE_ACTIVE || k.GetAddedUnixMs() != t0 || !bytes.Equal(k.GetPublicKey(), pubA) {
		t.Fatalf("room key stored as %v", k)
	}
	x.ok(t0+1, putRoomKeyCmd("r", "b", pubB))
	x.refused(t0+2, putRoomKeyCmd("r", "b", pubC), ErrRejected, `room "r" already has a key "b"`)
	x.refused(t0+2, putRoomKeyCmd("r", "c", pubA), ErrRejected, "keys are never reused")
	if kids := []string{x.room("r").GetKeys()[0].GetKid(), x.room("r").GetKeys()[1].GetKid()}; kids[0] != "b" || kids[1] != derived {
		t.Fatalf("room keys not sorted by kid: %v", kids)
	}

	// Rotation: the new key is active, the others verify for the grace.
	x.ok(t0+100, rotateRoomKeyCmd("r", "c", pubC, 500))
	for _, k := range x.room("r").GetKeys() {
		if k.GetKid() == "c" {
			if k.GetState() != statev1.KeyState_KEY_STATE_ACTIVE || k.GetSupersededUnixMs() != 0 {
				t.Fatalf("rotated-in key %v", k)
			}
			continue
		}
		if k.GetSupersededUnixMs() != t0+100 || k.GetRetireAfterUnixMs() != t0+600 {
			t.Fatalf("rotated-out key %s: superseded %d retire %d", k.GetKid(), k.GetSupersededUnixMs()-t0, k.GetRetireAfterUnixMs()-t0)
		}
	}
	keys := x.room("r").GetKeys()
	if n := len(keyring.RoomVerifyKeys(keys, "", time.UnixMilli(t0+599))); n != 3 {
		t.Fatalf("%d keys verify during grace, want 3", n)
	}
	if n := len(keyring.RoomVerifyKeys(keys, "", time.UnixMilli(t0+600))); n != 1 {
		t.Fatalf("%d keys verify after grace, want 1", n)
	}
	x.refused(t0+200, rotateRoomKeyCmd("r", "d", pubB, 0), ErrRejected, "keys are never reused")

	// Retire.
	x.ok(t0+300, retireRoomKeyCmd("r", "c"))
	if k := x.room("r").GetKeys()[1]; k.GetKid() != "c" || k.GetState() != statev1.KeyState_KEY_STATE_RETIRED || k.GetRetireAfterUnixMs() != t0+300 {
		t.Fatalf("retired room key %v", k)
	}
	x.ok(t0+400, retireRoomKeyCmd("r", "c")) // converges
	x.refused(t0+400, retireRoomKeyCmd("r", "zz"), ErrRejected, `room "r" has no key "zz"`)
	x.refused(t0+400, retireRoomKeyCmd("other", "c"), ErrRejected, `room "other" has no keys`)
}

func TestFSMRoomKeyLimit(t *testing.T) {
	x := newFx(t)
	for i := range maxRoomKeys {
		x.ok(t0+int64(i), putRoomKeyCmd("r", "", pubKey(t)))
	}
	x.refused(t0+1000, putRoomKeyCmd("r", "", pubKey(t)), ErrRejected, "the limit")
}

func TestFSMRoomLock(t *testing.T) {
	x := newFx(t)
	x.refused(t0, lockCmd("r", statev1.LockMode_LOCK_MODE_OWN_KEYS), ErrRejected,
		`room "r" has no key that verifies; set-room-key first`)
	x.ok(t0, lockCmd("r", statev1.LockMode_LOCK_MODE_CLUSTER))
	if got := x.room("r").GetLock(); got != statev1.LockMode_LOCK_MODE_CLUSTER {
		t.Fatalf("lock %v", got)
	}
	x.ok(t0, putRoomKeyCmd("r", "a", pubKey(t)))
	x.ok(t0+1, lockCmd("r", statev1.LockMode_LOCK_MODE_OWN_KEYS))
	x.ok(t0+2, lockCmd("open-room", statev1.LockMode_LOCK_MODE_OPEN))
	if got := x.room("open-room"); got.GetLock() != statev1.LockMode_LOCK_MODE_OPEN || got.GetCreatedUnixMs() != t0+2 {
		t.Fatalf("unlock of a new room: %v", got)
	}
	// A room whose only key was retired cannot be locked to its keys.
	x.ok(t0+3, retireRoomKeyCmd("r", "a"))
	x.refused(t0+4, lockCmd("r", statev1.LockMode_LOCK_MODE_OWN_KEYS), ErrRejected, "no key that verifies")

	// Without a room-token key that verifies, CLUSTER is refused.
	y := newFx(t)
	gone := proto.Clone(y.rt).(*statev1.Key)
	gone.State = statev1.KeyState_KEY_STATE_RETIRED
	y.ok(t0, putKeyCmd(gone))
	y.refused(t0, lockCmd("r", statev1.LockMode_LOCK_MODE_CLUSTER), ErrRejected, "no room-token key that verifies")
}

func TestFSMPolicy(t *testing.T) {
	x := newFx(t)
	author := pubKey(t)
	x.ok(t0, policyCmd("r", 0, true))
	x.ok(t0+5, policyCmd("r", 10, false, &statev1.PolicyRule{PathGlob: "world/**", CanWrite: [][]byte{author}}))
	// Entries at or below the last one (concurrent proposals computed from
	// the same state) are raised to one above it, in log order.
	x.ok(t0+6, policyCmd("r", 10, true))
	x.ok(t0+7, policyCmd("r", 3, true))

	p := x.room("r").GetPolicy()
	if len(p) != 4 || p[0].GetSetUnixMs() != t0 || p[1].GetSetUnixMs() != t0+5 {
		t.Fatalf("policy timeline %v", p)
	}
	for i, want := range []uint64{0, 10, 11, 12} {
		if got := p[i].GetEffectiveLamport(); got != want {
			t.Errorf("entry %d effective at %d, want %d", i, got, want)
		}
	}
	if p[2].GetRaftIndex() == 0 || p[3].GetRaftIndex() <= p[2].GetRaftIndex() {
		t.Errorf("entries do not record increasing raft indexes: %d, %d", p[2].GetRaftIndex(), p[3].GetRaftIndex())
	}
	s := &Store{fsm: x.f}
	for _, tc := range []struct {
		lamport uint64
		want    int64 // set time of the entry in force, 0 = none
	}{{0, t0}, {9, t0}, {10, t0 + 5}, {11, t0 + 6}, {1 << 40, t0 + 7}} {
		e, ok := s.PolicyAt("r", tc.lamport)
		if !ok || e.GetSetUnixMs() != tc.want {
			t.Errorf("PolicyAt(%d) = %v, %v; want entry set at %d", tc.lamport, e, ok, tc.want-t0)
		}
	}
	if _, ok := s.PolicyAt("unknown", 5); ok {
		t.Error("PolicyAt of an unknown room found an entry")
	}
	y := newFx(t)
	y.ok(t0, policyCmd("r", 7, true))
	if _, ok := (&Store{fsm: y.f}).PolicyAt("r", 6); ok {
		t.Error("PolicyAt before the first entry found one")
	}
}

func TestFSMRevoke(t *testing.T) {
	x := newFx(t)
	s := &Store{fsm: x.f}
	peer := pubKey(t)
	x.ok(t0, revokeCmd(&statev1.Revocation{TokenId: "tok-1", UntilUnixMs: t0 + 2000, Actor: "alice ops"}))
	x.ok(t0, revokeCmd(&statev1.Revocation{Room: "r", PeerPubkey: peer}))
	now := time.UnixMilli(t0 + 1)
	if !s.IsRevoked("tok-1", "", nil, now) || !s.IsRevoked("", "r", peer, now) || !s.IsRevoked("tok-x", "r", peer, now) {
		t.Fatal("revocations not in force")
	}
	if s.IsRevoked("tok-2", "r2", peer, now) || s.IsRevoked("", "r", pubKey(t), now) || s.IsRevoked("tok-1", "", nil, time.UnixMilli(t0+2000)) {
		t.Fatal("IsRevoked matched something not revoked (or a lapsed revocation)")
	}

	// A shorter revocation of the same target does not shorten it; a
	// longer one extends it; "forever" wins.
	x.ok(t0+10, revokeCmd(&statev1.Revocation{TokenId: "tok-1", UntilUnixMs: t0 + 1000}))
	if r := s.Revocations()[1]; r.GetTokenId() != "tok-1" || r.GetUntilUnixMs() != t0+2000 || r.GetRevokedUnixMs() != t0 || r.GetActor() != "alice ops" {
		t.Fatalf("shorter revocation replaced the longer: %v", r)
	}
	x.ok(t0+20, revokeCmd(&statev1.Revocation{TokenId: "tok-1", UntilUnixMs: t0 + 3000}))
	if r := s.Revocations()[1]; r.GetUntilUnixMs() != t0+3000 || r.GetRevokedUnixMs() != t0+20 {
		t.Fatalf("longer revocation not recorded: %v", r)
	}
	if n := len(s.Revocations()); n != 2 {
		t.Fatalf("%d revocations, want 2 (deduplicated)", n)
	}

	// Garbage collection runs with the proposed time of any later command.
	x.ok(t0+3000, evictCmd("r", peer))
	revs := s.Revocations()
	if len(revs) != 1 || revs[0].GetRoom() != "r" {
		t.Fatalf("after GC: %v, want only the room/peer revocation", revs)
	}
	// An already lapsed revocation is accepted and gone at once.
	x.ok(t0+4000, revokeCmd(&statev1.Revocation{TokenId: "old", UntilUnixMs: t0 + 3500}))
	if len(s.Revocations()) != 1 {
		t.Fatal("lapsed revocation kept")
	}
}

func TestFSMTicks(t *testing.T) {
	x := newFx(t)
	s := &Store{fsm: x.f}
	x.ok(t0, putTickCmd("r", 50, ""))
	x.ok(t0+1, putTickCmd("a", 10, "in/"))
	ticks := s.Ticks()
	if len(ticks) != 2 || ticks[0].GetRoom() != "a" || ticks[1].GetIntentPrefix() != "intent/" || ticks[1].GetStartedUnixMs() != t0 || ticks[0].GetIntentPrefix() != "in/" {
		t.Fatalf("ticks %v", ticks)
	}
	x.ok(t0+2, putTickCmd("r", 100, "x/")) // replaces
	if tk := s.Ticks()[1]; tk.GetIntervalMs() != 100 || tk.GetStartedUnixMs() != t0+2 {
		t.Fatalf("replaced tick %v", tk)
	}
	x.ok(t0+3, deleteTickCmd("r"))
	x.refused(t0+4, deleteTickCmd("r"), ErrRejected, `no tick for room "r"`)
	if len(s.Ticks()) != 1 {
		t.Fatal("tick not deleted")
	}
	if len(s.Rooms()) != 0 {
		t.Fatal("ticks created room records")
	}
}

func TestFSMTopology(t *testing.T) {
	x := newFx(t)
	s := &Store{fsm: x.f}
	x.ok(t0, placeCmd("r", "n3", "n1", "n3"))
	if p := x.room("r").GetPlacement(); len(p) != 2 || p[0] != "n1" || p[1] != "n3" {
		t.Fatalf("placement %v, want [n1 n3]", p)
	}
	x.refused(t0, placeCmd("r", "n1", "n9"), ErrRejected, `node "n9" is not a member of the cluster`)

	x.ok(t0, drainCmd("n3", true))
	if m, ok := s.Member("n3"); !ok || !m.GetDraining() {
		t.Fatalf("n3 not draining: %v", m)
	}
	x.refused(t0, placeCmd("q", "n3"), ErrRejected, `node "n3" is draining and takes no new rooms`)
	x.ok(t0, placeCmd("r", "n2", "n3")) // n3 keeps a room it already holds
	x.refused(t0, drainCmd("n9", true), ErrRejected, `node "n9" is not a member of the cluster`)

	// A member re-announcing its addresses keeps its drain mark.
	x.ok(t0, putMemberCmd(&statev1.Member{NodeId: "n3", RaftAddr: "127.0.0.1:2", Voter: true}))
	if m, _ := s.Member("n3"); !m.GetDraining() || m.GetRaftAddr() != "127.0.0.1:2" {
		t.Fatalf("re-announced member %v", m)
	}

	x.ok(t0, removeMemberCmd("n3"))
	if p := x.room("r").GetPlacement(); len(p) != 1 || p[0] != "n2" {
		t.Fatalf("placement after removing n3: %v", p)
	}
	x.ok(t0, removeMemberCmd("n2"))
	if p := x.room("r").GetPlacement(); len(p) != 0 {
		t.Fatalf("placement after removing n2: %v (empty means every node)", p)
	}
	x.ok(t0, placeCmd("r")) // explicitly every node
	if _, ok := s.Member("n3"); ok {
		t.Fatal("removed member still readable")
	}
}

func TestFSMEvictPeerChangesNothing(t *testing.T) {
	x := newFx(t)
	before := mustMarshal(t, x.f.dump())
	x.ok(t0, evictCmd("r", pubKey(t)))
	if !bytes.Equal(before, mustMarshal(t, x.f.dump())) {
		t.Fatal("evict_peer changed the state")
	}
}

// TestFSMNewCommandsInvalid: malformed commands of every new kind are
// refused as invalid, by the proposer's check and by the FSM alike.
func TestFSMNewCommandsInvalid(t *testing.T) {
	good := newKey(t, "op-9", opPurpose)
	mutKey := func(mut func(k *statev1.Key)) *statev1.Key {
		k := proto.Clone(good).(*statev1.Key)
		mut(k)
		return k
	}
	pub := pubKey(t)
	long := strings.Repeat("x", 200)
	cases := []struct {
		name   string
		cmd    *statev1.Command
		reason string
	}{
		{"rotate without seed", rotateKeyCmd(mutKey(func(k *statev1.Key) { k.PrivateSeed = nil }), 0), "no private seed"},
		{"rotate bad key", rotateKeyCmd(mutKey(func(k *statev1.Key) { k.PublicKey = k.PublicKey[:5] }), 0), "public key is 5 bytes"},
		{"rotate verify-only key", rotateKeyCmd(mutKey(func(k *statev1.Key) { k.State = statev1.KeyState_KEY_STATE_VERIFY_ONLY }), 0), "cannot start verify-only"},
		{"rotate superseded key", rotateKeyCmd(mutKey(func(k *statev1.Key) { k.SupersededUnixMs = 5 }), 0), "must not carry"},
		{"rotate negative grace", rotateKeyCmd(good, -1), "grace -1 ms"},
		{"rotate huge grace", rotateKeyCmd(good, 1<<62), "grace"},
		{"rotate nil", &statev1.Command{Kind: &statev1.Command_RotateKey{RotateKey: &statev1.RotateKey{}}}, "missing key"},
		{"retire empty kid", retireKeyCmd(""), "empty kid"},
		{"room key bad room", putRoomKeyCmd("a/b", "", pub), "invalid room name"},
		{"room key empty room", putRoomKeyCmd("", "", pub), "invalid room name"},
		{"room key short", putRoomKeyCmd("r", "", pub[:31]), "31 bytes"},
		{"room key kid with space", putRoomKeyCmd("r", "a b", pub), "space"},
		{"room key kid too long", putRoomKeyCmd("r", long, pub), "longer than"},
		{"room key nil", &statev1.Command{Kind: &statev1.Command_PutRoomKey{PutRoomKey: &statev1.PutRoomKey{Room: "r"}}}, "missing room key"},
		{"rotate room key grace", rotateRoomKeyCmd("r", "", pub, -5), "grace"},
		{"retire room key no kid", retireRoomKeyCmd("r", ""), "empty kid"},
		{"lock unspecified", lockCmd("r", statev1.LockMode_LOCK_MODE_UNSPECIFIED), "invalid lock mode"},
		{"lock out of range", lockCmd("r", statev1.LockMode(9)), "invalid lock mode"},
		{"policy nil entry", &statev1.Command{Kind: &statev1.Command_SetPolicy{SetPolicy: &statev1.SetPolicy{Room: "r"}}}, "missing policy entry"},
		{"policy empty glob", policyCmd("r", 1, true, &statev1.PolicyRule{}), "empty path glob"},
		{"policy short author", policyCmd("r", 1, true, &statev1.PolicyRule{PathGlob: "*", CanWrite: [][]byte{pub[:30]}}), "can_write[0] is 30 bytes"},
		{"revoke nil", revokeCmd(nil), "missing revocation"},
		{"revoke nothing", revokeCmd(&statev1.Revocation{}), "neither"},
		{"revoke both", revokeCmd(&statev1.Revocation{TokenId: "t", Room: "r", PeerPubkey: pub}), "both"},
		{"revoke peer without room", revokeCmd(&statev1.Revocation{PeerPubkey: pub}), "invalid room name"},
		{"revoke room without peer", revokeCmd(&statev1.Revocation{Room: "r"}), "peer public key is 0 bytes"},
		{"revoke token id with space", revokeCmd(&statev1.Revocation{TokenId: "a b"}), "space"},
		{"revoke negative until", revokeCmd(&statev1.Revocation{TokenId: "t", UntilUnixMs: -1}), "negative"},
		{"tick nil", &statev1.Command{Kind: &statev1.Command_PutTick{PutTick: &statev1.PutTick{}}}, "missing tick"},
		{"tick too fast", putTickCmd("r", 9, ""), "below the minimum of 10 ms"},
		{"tick bad room", putTickCmd("", 10, ""), "invalid room name"},
		{"tick long prefix", putTickCmd("r", 10, strings.Repeat("p", 300)), "intent prefix"},
		{"delete tick bad room", deleteTickCmd("a b"), "invalid room name"},
		{"place bad node id", placeCmd("r", "n 1"), "node id"},
		{"drain empty id", drainCmd("", true), "node id is required"},
		{"evict short peer", evictCmd("r", pub[:4]), "4 bytes"},
		{"evict bad room", evictCmd("", pub), "invalid room name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newFx(t)
			x.refused(t0, tc.cmd, ErrInvalidCommand, tc.reason)
			if err := validateCommand(tc.cmd); !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("validateCommand: %v", err)
			}
			if bytes.Contains([]byte(validateCommand(tc.cmd).Error()), good.GetPrivateSeed()) {
				t.Fatal("error leaks a private seed")
			}
		})
	}
	t.Run("missing proposed time", func(t *testing.T) {
		x := newFx(t)
		x.refused(0, evictCmd("r", pub), ErrInvalidCommand, "missing proposed time")
	})
}

func TestRejectedErrorCarriesReason(t *testing.T) {
	x := newFx(t)
	x.idx++
	err := fsmApply(t, x.f, x.idx, at(t0, lockCmd("x", statev1.LockMode_LOCK_MODE_OWN_KEYS)))
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrRejected) {
		t.Fatalf("err %T %v, want *RejectedError", err, err)
	}
	if want := `room "x" has no key that verifies; set-room-key first`; rej.Reason != want {
		t.Fatalf("reason %q, want %q", rej.Reason, want)
	}
	if err.Error() != "raftstore: rejected: "+rej.Reason {
		t.Fatalf("message %q", err.Error())
	}
}
