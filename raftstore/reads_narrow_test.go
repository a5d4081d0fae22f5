package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

func setPolicyCmd(room string, effective uint64, allow bool) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_SetPolicy{SetPolicy: &statev1.SetPolicy{
		Room:  room,
		Entry: &statev1.PolicyEntry{EffectiveLamport: effective, DefaultAllow: allow},
	}}}
}

// TestNarrowPolicyReads: LastPolicyEntry, PolicyEntryAtIndex and ViewRoom
// answer what Room answers, through a real single-node Raft store,
// including an entry the FSM raised above its proposed Lamport; the copies
// they answer are the caller's.
func TestNarrowPolicyReads(t *testing.T) {
	s := openNode(t, pkitest.New(t), "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("cluster-a")); err != nil {
		t.Fatal(err)
	}

	if _, ok := s.LastPolicyEntry("r"); ok {
		t.Fatal("LastPolicyEntry of a room without a record answered an entry")
	}
	if s.ViewRoom("r", func(*statev1.Room) { t.Error("ViewRoom called fn for a missing room") }) {
		t.Fatal("ViewRoom of a missing room answered true")
	}

	first, err := s.Apply(ctx, setPolicyCmd("r", 10, true))
	if err != nil {
		t.Fatal(err)
	}
	// Proposed at or below the last entry: the FSM raises it to 11.
	second, err := s.Apply(ctx, setPolicyCmd("r", 5, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, setPolicyCmd("other", 1, true)); err != nil {
		t.Fatal(err)
	}

	last, ok := s.LastPolicyEntry("r")
	if !ok || last.GetEffectiveLamport() != 11 || last.GetRaftIndex() != second || last.GetDefaultAllow() {
		t.Fatalf("LastPolicyEntry = %v, %v; want the raised second entry (11, index %d, deny)", last, ok, second)
	}
	for _, tc := range []struct {
		index     uint64
		effective uint64
		ok        bool
	}{
		{first, 10, true},
		{second, 11, true},
		{second + 1, 0, false}, // the "other" room's entry
		{first - 1, 0, false},
		{0, 0, false},
	} {
		e, ok := s.PolicyEntryAtIndex("r", tc.index)
		if ok != tc.ok || e.GetEffectiveLamport() != tc.effective || (ok && e.GetRaftIndex() != tc.index) {
			t.Errorf("PolicyEntryAtIndex(r, %d) = %v, %v; want effective %d, %v", tc.index, e, ok, tc.effective, tc.ok)
		}
	}

	// The answers are copies: changing them changes nothing stored.
	last.EffectiveLamport = 99
	if again, _ := s.LastPolicyEntry("r"); again.GetEffectiveLamport() != 11 {
		t.Fatalf("changing LastPolicyEntry's answer changed the store: %d", again.GetEffectiveLamport())
	}

	want, _ := s.Room("r")
	var seen bool
	if !s.ViewRoom("r", func(r *statev1.Room) { seen = proto.Equal(r, want) }) || !seen {
		t.Fatalf("ViewRoom did not show the record Room answers (%v)", want)
	}
}

// TestVerifyingKey: the operator key verifies while its state allows it
// and stops the instant it is retired; a key of another purpose or an
// unknown kid never verifies; the answer is a copy of the public key.
func TestVerifyingKey(t *testing.T) {
	s := openNode(t, pkitest.New(t), "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	const op = statev1.KeyPurpose_KEY_PURPOSE_OPERATOR
	k1 := newKey(t, "op-1", op)
	k2 := newKey(t, "op-2", op)
	room := newKey(t, "room-1", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	if _, err := s.Apply(ctx, initCmd("cluster-a", k1, k2, room)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	pub, err := s.VerifyingKey(op, "op-1", now)
	if err != nil || !bytes.Equal(pub, k1.GetPublicKey()) {
		t.Fatalf("VerifyingKey(op-1) = %x, %v; want its public key", pub, err)
	}
	pub[0] ^= 0xff
	if again, _ := s.VerifyingKey(op, "op-1", now); !bytes.Equal(again, k1.GetPublicKey()) {
		t.Fatal("changing VerifyingKey's answer changed the stored key")
	}
	for _, tc := range []struct {
		purpose statev1.KeyPurpose
		kid     string
	}{{op, "room-1"}, {op, "nope"}, {statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, "op-1"}} {
		if pub, err := s.VerifyingKey(tc.purpose, tc.kid, now); !errors.Is(err, keyring.ErrUnknownKey) || pub != nil {
			t.Errorf("VerifyingKey(%v, %q) = %x, %v; want ErrUnknownKey", tc.purpose, tc.kid, pub, err)
		}
	}

	if _, err := s.Apply(ctx, &statev1.Command{Kind: &statev1.Command_RetireKey{RetireKey: &statev1.RetireKey{Kid: "op-1"}}}); err != nil {
		t.Fatal(err)
	}
	if pub, err := s.VerifyingKey(op, "op-1", time.Now()); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("VerifyingKey of a retired key = %x, %v; want ErrUnknownKey", pub, err)
	}
	if _, err := s.VerifyingKey(op, "op-2", time.Now()); err != nil {
		t.Fatalf("VerifyingKey of the remaining key: %v", err)
	}
}

// TestViewKeys: ViewKeys sees exactly the keys Keys answers, and with a
// kid only that key (or nothing for an unknown kid).
func TestViewKeys(t *testing.T) {
	s := openNode(t, pkitest.New(t), "n1", "")
	bootstrapLeader(t, s)
	ctx := testContext(t)
	a := newKey(t, "rt-a", statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN)
	b := newKey(t, "op-b", statev1.KeyPurpose_KEY_PURPOSE_OPERATOR)
	if _, err := s.Apply(ctx, initCmd("cluster-a", a, b)); err != nil {
		t.Fatal(err)
	}
	seen := map[string][]byte{}
	s.ViewKeys("", func(k *statev1.Key) { seen[k.GetKid()] = bytes.Clone(k.GetPublicKey()) })
	keys := s.Keys()
	if len(seen) != len(keys) {
		t.Fatalf("ViewKeys saw %d keys, Keys answers %d", len(seen), len(keys))
	}
	for _, k := range keys {
		if !bytes.Equal(seen[k.GetKid()], k.GetPublicKey()) {
			t.Fatalf("ViewKeys and Keys disagree on %s", k.GetKid())
		}
	}
	var one []string
	s.ViewKeys("op-b", func(k *statev1.Key) { one = append(one, k.GetKid()) })
	s.ViewKeys("nope", func(k *statev1.Key) { one = append(one, k.GetKid()) })
	if len(one) != 1 || one[0] != "op-b" {
		t.Fatalf("ViewKeys by kid saw %v, want [op-b]", one)
	}
}
