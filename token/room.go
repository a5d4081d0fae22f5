package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// roomDomain separates room-token signatures from every other use of a
// room key (SPEC section 3, the reference's domain string).
const roomDomain = "nodalmerge-room-token-v1"

// RoomToken is a room token in its wire form, the hello.token object
// (SPEC section 3): a room key's signature granting one peer the listed
// capability classes and path grants in one room until Expiry.
type RoomToken struct {
	// PeerPubkey is the hex of the 32-byte Ed25519 key of the peer the
	// token is for.
	PeerPubkey string `json:"peer_pubkey"`
	// Expiry is in Unix seconds; the token is valid while now < Expiry.
	Expiry uint64 `json:"expiry"`
	// Caps are capability classes and read:/write: path grants.
	Caps []string `json:"caps"`
	// Sig is the hex of the 64-byte Ed25519 signature over
	// RoomSigningMessage. A secret of sorts: log ID(), never Sig.
	Sig string `json:"sig"`
	// Kid, when set, names the one key the token verifies under (ext).
	Kid string `json:"kid,omitempty"`
}

// RoomSigningMessage returns the bytes a room key signs (SPEC section 3,
// byte-exact with the reference):
//
//	"nodalmerge-room-token-v1" 0x00 room 0x00 peer(32) expiry(u64 LE) 0x00 caps
//
// where caps are sorted byte-wise and joined by '\n' (nothing for an empty
// list). caps is not modified. The encoding is unambiguous only for caps
// that ValidateRoomCaps accepts (no '\n', no empty cap), which is why
// verification refuses the others as malformed. It panics if peer is not
// 32 bytes: the layout has no length prefix, so a wrong-length key is a
// programming error, as it is for ed25519.Sign.
func RoomSigningMessage(room string, peer ed25519.PublicKey, expiry uint64, caps []string) []byte {
	if len(peer) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("token: room signing message: peer key is %d bytes, want %d", len(peer), ed25519.PublicKeySize))
	}
	sorted := slices.Clone(caps)
	slices.Sort(sorted) // Go string order is byte-wise
	n := len(roomDomain) + 1 + len(room) + 1 + ed25519.PublicKeySize + 8 + 1
	for i, c := range sorted {
		if i > 0 {
			n++
		}
		n += len(c)
	}
	msg := make([]byte, 0, n)
	msg = append(msg, roomDomain...)
	msg = append(msg, 0)
	msg = append(msg, room...)
	msg = append(msg, 0)
	msg = append(msg, peer...)
	msg = binary.LittleEndian.AppendUint64(msg, expiry)
	msg = append(msg, 0)
	for i, c := range sorted {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, c...)
	}
	return msg
}

// SignRoom signs a room token for peer in room with priv, valid until
// expiry (Unix seconds). The token's Caps are a sorted copy of caps
// (never nil, so the JSON says [] rather than null); hex is lower case.
// Callers validate caps first with ValidateRoomCaps: a token with invalid
// caps is signed but never verifies. It panics, like ed25519.Sign, if priv
// or peer has the wrong length.
func SignRoom(priv ed25519.PrivateKey, room string, peer ed25519.PublicKey, expiry uint64, caps []string, kid string) RoomToken {
	sig := ed25519.Sign(priv, RoomSigningMessage(room, peer, expiry, caps))
	sorted := slices.Clone(caps)
	if sorted == nil {
		sorted = []string{}
	}
	slices.Sort(sorted)
	return RoomToken{
		PeerPubkey: hex.EncodeToString(peer),
		Expiry:     expiry,
		Caps:       sorted,
		Sig:        hex.EncodeToString(sig),
		Kid:        kid,
	}
}

// RoomTokenID is a room token's id (SPEC section 3): the hex of the first
// 16 bytes of SHA-256 over the 64 signature bytes. It names the token in
// revocations, logs and audit events without revealing the signature,
// and it is the same whatever the case of the signature's hex.
func RoomTokenID(sig []byte) string {
	sum := sha256.Sum256(sig)
	return hex.EncodeToString(sum[:16])
}

// ID returns RoomTokenID of the token's signature, or "" when Sig is not
// 128 hex characters (such a token never verifies).
func (t *RoomToken) ID() string {
	sig, ok := decodeHex(t.Sig, ed25519.SignatureSize)
	if !ok {
		return ""
	}
	return RoomTokenID(sig)
}

// decodeHex decodes exactly n bytes of hex, either case (the reference
// accepts both; the bytes, not the text, are what is signed and hashed).
func decodeHex(s string, n int) ([]byte, bool) {
	if len(s) != 2*n {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
