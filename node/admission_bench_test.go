package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/protocol"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// BenchmarkAdmission is the node's cost of admitting one hello to a room
// locked to its own key: token parse, one Ed25519 verification, the
// replicated reads (lock, keys, revocations) and the grant.
func BenchmarkAdmission(b *testing.B) {
	cfg := testConfig(b.TempDir())
	cfg.MetricsAddr = ""
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop(context.Background())
	roomPub, roomKey, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	for _, cmd := range []*statev1.Command{
		{Kind: &statev1.Command_PutRoomKey{PutRoomKey: &statev1.PutRoomKey{Room: "bench", Key: &statev1.RoomKey{
			Kid: keyring.RoomKeyID(roomPub), PublicKey: roomPub, State: statev1.KeyState_KEY_STATE_ACTIVE, AddedUnixMs: now.UnixMilli()}}}},
		{Kind: &statev1.Command_SetRoomLock{SetRoomLock: &statev1.SetRoomLock{Room: "bench", Mode: statev1.LockMode_LOCK_MODE_OWN_KEYS}}},
	} {
		cmd.ProposedUnixMs = now.UnixMilli()
		if _, err := n.Store().Apply(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	peerPub, peer, _ := ed25519.GenerateKey(nil)
	_ = peer
	tok := token.SignRoom(roomKey, "bench", peerPub, uint64(now.Add(time.Hour).Unix()), []string{"room.admin", "read:world/**"}, keyring.RoomKeyID(roomPub))
	raw, _ := json.Marshal(tok)
	h := &protocol.Hello{Pubkey: tok.PeerPubkey, Token: raw}
	a := &admission{store: n.Store(), now: time.Now, failed: func(string) {}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.admit("bench", h); err != nil {
			b.Fatal(err)
		}
	}
}
