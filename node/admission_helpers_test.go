package node

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// lockedRoomNode starts a node (no metrics listener) whose room trusts
// roomPub alone and is locked to it, written straight through Raft, for
// the admission benchmark and fuzz target.
func lockedRoomNode(tb testing.TB, room string, roomPub ed25519.PublicKey) *Node {
	tb.Helper()
	cfg := testConfig(tb.TempDir())
	cfg.MetricsAddr = ""
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := n.Stop(sctx); err != nil {
			tb.Error(err)
		}
	})
	now := time.Now()
	for _, cmd := range []*statev1.Command{
		{Kind: &statev1.Command_PutRoomKey{PutRoomKey: &statev1.PutRoomKey{Room: room, Key: &statev1.RoomKey{
			Kid: keyring.RoomKeyID(roomPub), PublicKey: roomPub, State: statev1.KeyState_KEY_STATE_ACTIVE, AddedUnixMs: now.UnixMilli()}}}},
		{Kind: &statev1.Command_SetRoomLock{SetRoomLock: &statev1.SetRoomLock{Room: room, Mode: statev1.LockMode_LOCK_MODE_OWN_KEYS}}},
	} {
		cmd.ProposedUnixMs = now.UnixMilli()
		if _, err := n.Store().Apply(ctx, cmd); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}
