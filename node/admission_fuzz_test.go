package node

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/protocol"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// FuzzAdmission feeds arbitrary hello.token bytes to the admission of a
// real node for a room locked to its own key. It must never panic; a
// refusal is "auth: " plus one of SPEC section 3's reasons; an admission
// happens only for a token that verifies independently under the room's
// key for the connecting peer, and grants exactly its caps.
func FuzzAdmission(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	roomKey := ed25519.NewKeyFromSeed(seed)
	roomPub := roomKey.Public().(ed25519.PublicKey)
	n := lockedRoomNode(f, "fz", roomPub)
	now := time.Now()
	peerSeed := make([]byte, ed25519.SeedSize)
	peerSeed[0] = 9
	peer := ed25519.NewKeyFromSeed(peerSeed).Public().(ed25519.PublicKey)
	peerHex := hex.EncodeToString(peer)
	a := &admission{store: n.Store(), now: time.Now, failed: func(string) {}}
	reasons := token.RoomReasons()

	far := uint64(now.Add(24 * 365 * time.Hour).Unix())
	for _, caps := range [][]string{nil, {"room.admin"}, {"read:world/**", "write:intent/**"}} {
		tok := token.SignRoom(roomKey, "fz", peer, far, caps, keyring.RoomKeyID(roomPub))
		b, _ := json.Marshal(tok)
		f.Add(b)
		tok.Kid = ""
		b, _ = json.Marshal(tok)
		f.Add(b)
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"peer_pubkey":"` + peerHex + `","expiry":1,"caps":[],"sig":"00"}`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, raw []byte) {
		h := &protocol.Hello{Pubkey: peerHex, Token: json.RawMessage(raw)}
		if !json.Valid(raw) {
			h.Token = nil // ParseHello hands admission valid JSON only
		}
		g, err := a.admit("fz", h)
		if err != nil {
			msg := err.Error()
			reason, ok := strings.CutPrefix(msg, "auth: ")
			if !ok || !slices.Contains(reasons, reason) {
				t.Fatalf("refusal %q is not a SPEC reason", msg)
			}
			return
		}
		tok, perr := token.ParseRoomToken(h.Token)
		if perr != nil || token.VerifyRoom(tok, "fz", peer, []ed25519.PublicKey{roomPub}, time.Now()) != nil {
			t.Fatalf("admitted a token that does not verify: %s", raw)
		}
		if g == nil || g.TokenID != tok.ID() || g.KeyID != keyring.RoomKeyID(roomPub) ||
			!slices.Equal(g.Caps, token.CapabilityClasses(tok.Caps)) || g.Expiry.Unix() != int64(min(tok.Expiry, uint64(1)<<62)) {
			t.Fatalf("grant %+v does not match token %s", g, raw)
		}
	})
}
