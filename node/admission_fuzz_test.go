package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
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
	cfg := testConfig(f.TempDir())
	cfg.MetricsAddr = ""
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := n.Stop(sctx); err != nil {
			f.Error(err)
		}
	})
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	roomKey := ed25519.NewKeyFromSeed(seed)
	roomPub := roomKey.Public().(ed25519.PublicKey)
	now := time.Now()
	for _, cmd := range []*statev1.Command{
		{Kind: &statev1.Command_PutRoomKey{PutRoomKey: &statev1.PutRoomKey{Room: "fz", Key: &statev1.RoomKey{
			Kid: keyring.RoomKeyID(roomPub), PublicKey: roomPub, State: statev1.KeyState_KEY_STATE_ACTIVE, AddedUnixMs: now.UnixMilli()}}}},
		{Kind: &statev1.Command_SetRoomLock{SetRoomLock: &statev1.SetRoomLock{Room: "fz", Mode: statev1.LockMode_LOCK_MODE_OWN_KEYS}}},
	} {
		cmd.ProposedUnixMs = now.UnixMilli()
		if _, err := n.Store().Apply(ctx, cmd); err != nil {
			f.Fatal(err)
		}
	}
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
