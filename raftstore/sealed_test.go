package raftstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// TestFSMSealedKeys: a rotation may carry its seed sealed (--kek-file); the
// state machine accepts it without any KEK, keeps it sealed, snapshots it
// sealed, and the key signs with the KEK and verifies without one.
func TestFSMSealedKeys(t *testing.T) {
	text, err := keyring.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := keyring.ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	x := newFx(t)
	next := newKey(t, "op-sealed", opPurpose)
	seed := bytes.Clone(next.GetPrivateSeed())
	if err := kek.Seal(next); err != nil {
		t.Fatal(err)
	}
	x.ok(t0+10, rotateKeyCmd(proto.Clone(next).(*statev1.Key), 1000))
	got := x.key("op-sealed")
	if len(got.GetPrivateSeed()) != 0 || !bytes.Equal(got.GetSealedSeed(), next.GetSealedSeed()) || got.GetKekId() != kek.ID() {
		t.Fatal("the stored key is not the sealed key as proposed")
	}
	if bytes.Contains(mustMarshal(t, x.f.dump()), seed) {
		t.Fatal("the state holds the sealed key's seed in the clear")
	}
	now := time.UnixMilli(t0 + 20)
	if kid, _, err := keyring.SignerWith(x.f.getKeys(), opPurpose, now, kek); err != nil || kid != "op-sealed" {
		t.Fatalf("signer with the KEK = %q, %v", kid, err)
	}
	if _, _, err := keyring.Signer(x.f.getKeys(), opPurpose, now); !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("signer without the KEK: %v", err)
	}
	if _, err := keyring.VerifyKey(x.f.getKeys(), opPurpose, "op-sealed", now); err != nil {
		t.Fatalf("verification needs no KEK: %v", err)
	}
}

func TestFSMSealedKeysInvalid(t *testing.T) {
	text, _ := keyring.GenerateKEK()
	kek, _ := keyring.ParseKEK(text)
	sealed := newKey(t, "op-s", opPurpose)
	seed := bytes.Clone(sealed.GetPrivateSeed())
	if err := kek.Seal(sealed); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(k *statev1.Key)) *statev1.Key {
		k := proto.Clone(sealed).(*statev1.Key)
		f(k)
		return k
	}
	for _, tc := range []struct {
		name   string
		key    *statev1.Key
		reason string
	}{
		{"plain and sealed", mut(func(k *statev1.Key) { k.PrivateSeed = bytes.Clone(seed) }), "both a plain and a sealed seed"},
		{"short sealed seed", mut(func(k *statev1.Key) { k.SealedSeed = k.SealedSeed[:59] }), "sealed seed is 59 bytes"},
		{"kek id without seed", mut(func(k *statev1.Key) { k.SealedSeed = nil }), "sealed seed is 0 bytes"},
		{"sealed seed without kek id", mut(func(k *statev1.Key) { k.KekId = "" }), "kek_id"},
		{"upper-case kek id", mut(func(k *statev1.Key) { k.KekId = "ABCDEF0123456789" }), "kek_id"},
		{"short kek id", mut(func(k *statev1.Key) { k.KekId = "abc" }), "kek_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFx(t)
			cmd := rotateKeyCmd(tc.key, 0)
			x.refused(t0, cmd, ErrInvalidCommand, tc.reason)
			if err := validateCommand(cmd); err == nil || bytes.Contains([]byte(err.Error()), seed) {
				t.Fatalf("validateCommand: %v", err)
			}
		})
	}
}
