package node

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/protocol"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// BenchmarkAdmission is the node's cost of admitting one hello to a room
// locked to its own key: token parse, one Ed25519 verification, the
// replicated reads (lock, keys, revocations) and the grant.
func BenchmarkAdmission(b *testing.B) {
	roomPub, roomKey, _ := ed25519.GenerateKey(nil)
	n := lockedRoomNode(b, "bench", roomPub)
	now := time.Now()
	peerPub, _, _ := ed25519.GenerateKey(nil)
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
