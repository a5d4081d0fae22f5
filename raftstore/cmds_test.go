package raftstore

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// t0 is the proposed time of the first command in FSM tests.
const t0 = int64(1_700_000_000_000)

// at stamps cmd with a proposed time and returns it.
func at(ms int64, cmd *statev1.Command) *statev1.Command {
	cmd.ProposedUnixMs = ms
	return cmd
}

func pubKey(t testing.TB) []byte {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func rotateKeyCmd(k *statev1.Key, graceMs int64) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_RotateKey{RotateKey: &statev1.RotateKey{NewKey: k, GraceMs: graceMs}}}
}

func retireKeyCmd(kid string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_RetireKey{RetireKey: &statev1.RetireKey{Kid: kid}}}
}

func putRoomKeyCmd(room, kid string, pub []byte) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PutRoomKey{PutRoomKey: &statev1.PutRoomKey{
		Room: room, Key: &statev1.RoomKey{Kid: kid, PublicKey: pub}}}}
}

func rotateRoomKeyCmd(room, kid string, pub []byte, graceMs int64) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_RotateRoomKey{RotateRoomKey: &statev1.RotateRoomKey{
		Room: room, NewKey: &statev1.RoomKey{Kid: kid, PublicKey: pub}, GraceMs: graceMs}}}
}

func retireRoomKeyCmd(room, kid string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_RetireRoomKey{RetireRoomKey: &statev1.RetireRoomKey{Room: room, Kid: kid}}}
}

func lockCmd(room string, mode statev1.LockMode) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_SetRoomLock{SetRoomLock: &statev1.SetRoomLock{Room: room, Mode: mode}}}
}

func policyCmd(room string, lamport uint64, defaultAllow bool, rules ...*statev1.PolicyRule) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_SetPolicy{SetPolicy: &statev1.SetPolicy{Room: room,
		Entry: &statev1.PolicyEntry{EffectiveLamport: lamport, DefaultAllow: defaultAllow, Rules: rules}}}}
}

func revokeCmd(r *statev1.Revocation) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_Revoke{Revoke: &statev1.Revoke{Revocation: r}}}
}

func putTickCmd(room string, intervalMs uint32, prefix string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PutTick{PutTick: &statev1.PutTick{Tick: &statev1.TickSchedule{
		Room: room, IntervalMs: intervalMs, IntentPrefix: prefix}}}}
}

func deleteTickCmd(room string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_DeleteTick{DeleteTick: &statev1.DeleteTick{Room: room}}}
}

func placeCmd(room string, ids ...string) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_PlaceRoom{PlaceRoom: &statev1.PlaceRoom{Room: room, NodeIds: ids}}}
}

func drainCmd(id string, draining bool) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_SetDrain{SetDrain: &statev1.SetDrain{NodeId: id, Draining: draining}}}
}

func evictCmd(room string, peer []byte) *statev1.Command {
	return &statev1.Command{Kind: &statev1.Command_EvictPeer{EvictPeer: &statev1.EvictPeer{Room: room, PeerPubkey: peer}}}
}
