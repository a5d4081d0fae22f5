package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// roomVector is one entry of testdata/room_vectors.json, written by
// testdata/gen_room_vectors.mjs (Node.js crypto, no shared code).
type roomVector struct {
	Name       string   `json:"name"`
	Room       string   `json:"room"`
	RoomSeed   string   `json:"room_seed"`
	RoomPubkey string   `json:"room_pubkey"`
	PeerPubkey string   `json:"peer_pubkey"`
	Expiry     string   `json:"expiry"`
	Caps       []string `json:"caps"`
	Kid        string   `json:"kid"`
	Message    string   `json:"message"`
	Sig        string   `json:"sig"`
	TokenID    string   `json:"token_id"`
	TokenJSON  string   `json:"token_json"`
}

// loaded is a vector with its values decoded.
type loaded struct {
	roomVector
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	peer   ed25519.PublicKey
	expiry uint64
	now    time.Time // a moment at which the token is still valid
}

func loadVectors(t testing.TB) []loaded {
	t.Helper()
	data, err := os.ReadFile("testdata/room_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []roomVector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 10 {
		t.Fatalf("only %d vectors", len(file.Vectors))
	}
	out := make([]loaded, 0, len(file.Vectors))
	for _, v := range file.Vectors {
		seed := mustHex(t, v.RoomSeed)
		peer := mustHex(t, v.PeerPubkey)
		exp, err := strconv.ParseUint(v.Expiry, 10, 64)
		if err != nil {
			t.Fatalf("%s: expiry: %v", v.Name, err)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		out = append(out, loaded{
			roomVector: v, priv: priv, pub: priv.Public().(ed25519.PublicKey),
			peer: peer, expiry: exp, now: validAt(exp),
		})
	}
	return out
}

// validAt is the last whole second at which a token with this expiry is
// valid, kept inside the range time.Unix round-trips.
func validAt(expiry uint64) time.Time {
	const far = 1 << 62
	switch {
	case expiry == 0:
		return time.Unix(-1, 0) // before the epoch: -1 < 0
	case expiry-1 > far:
		return time.Unix(far, 0)
	default:
		return time.Unix(int64(expiry-1), 0)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

// TestRoomVectors: the Go implementation agrees with the independent one
// on the key, the signed bytes, the signature (Ed25519 is deterministic),
// the token id and the wire form.
func TestRoomVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			if got := hex.EncodeToString(v.pub); got != v.RoomPubkey {
				t.Fatalf("public key from seed %s, vector says %s", got, v.RoomPubkey)
			}
			if got := hex.EncodeToString(RoomSigningMessage(v.Room, v.peer, v.expiry, v.Caps)); got != v.Message {
				t.Fatalf("signing message\n got %s\nwant %s", got, v.Message)
			}
			tok := SignRoom(v.priv, v.Room, v.peer, v.expiry, v.Caps, v.Kid)
			want := slices.Clone(v.Caps)
			slices.Sort(want)
			if tok.Sig != v.Sig || tok.PeerPubkey != v.PeerPubkey || tok.Expiry != v.expiry || tok.Kid != v.Kid || !slices.Equal(tok.Caps, want) {
				t.Fatalf("SignRoom = %+v\nvector sig %s caps %q", tok, v.Sig, want)
			}
			if id := RoomTokenID(mustHex(t, v.Sig)); id != v.TokenID || tok.ID() != v.TokenID {
				t.Fatalf("token id %s / %s, want %s", id, tok.ID(), v.TokenID)
			}

			parsed, err := ParseRoomToken(json.RawMessage(v.TokenJSON))
			if err != nil {
				t.Fatalf("parse the generator's wire form: %v", err)
			}
			if parsed.PeerPubkey != v.PeerPubkey || parsed.Expiry != v.expiry || parsed.Sig != v.Sig ||
				parsed.Kid != v.Kid || !slices.Equal(parsed.Caps, v.Caps) {
				t.Fatalf("parsed %+v", parsed)
			}
			keys := []ed25519.PublicKey{v.pub}
			if err := VerifyRoom(parsed, v.Room, v.peer, keys, v.now); err != nil {
				t.Fatalf("generator's token at %v: %v", v.now, err)
			}
			// Our own wire form round-trips and verifies too.
			raw, err := json.Marshal(tok)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseRoomToken(raw)
			if err != nil {
				t.Fatalf("parse %s: %v", raw, err)
			}
			if err := VerifyRoom(again, v.Room, v.peer, keys, v.now); err != nil {
				t.Fatalf("our token: %v", err)
			}
			if v.expiry > 0 && v.expiry <= 1<<62 { // one second later it has expired
				wantReason(t, VerifyRoom(parsed, v.Room, v.peer, keys, validAt(v.expiry).Add(time.Second)), ReasonExpired)
			}
		})
	}
}

// TestRoomVectorBitFlips flips every bit of the room, the peer key, the
// expiry, the caps and the signature of every vector, one at a time, and
// checks each is refused with the reason that change must produce.
func TestRoomVectorBitFlips(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			tok, err := ParseRoomToken(json.RawMessage(v.TokenJSON))
			if err != nil {
				t.Fatal(err)
			}
			keys := []ed25519.PublicKey{v.pub}
			verify := func(tk *RoomToken, room string, connecting ed25519.PublicKey) error {
				return VerifyRoom(tk, room, connecting, keys, v.now)
			}

			for i := 0; i < len(v.Room)*8; i++ {
				room := string(flipBit([]byte(v.Room), i))
				wantReason(t, verify(tok, room, v.peer), ReasonBadSignature)
			}

			for i := 0; i < len(v.peer)*8; i++ {
				other := flipBit(v.peer, i)
				c := *tok
				c.PeerPubkey = hex.EncodeToString(other)
				// Presented by the original peer: not theirs.
				wantReason(t, verify(&c, v.Room, v.peer), ReasonPeerMismatch)
				// Presented by the peer it now names: not what was signed.
				wantReason(t, verify(&c, v.Room, other), ReasonBadSignature)
			}

			nowSec := v.now.Unix()
			for i := 0; i < 64; i++ {
				c := *tok
				c.Expiry ^= 1 << i
				want := ReasonBadSignature
				if nowSec >= 0 && c.Expiry <= uint64(nowSec) {
					want = ReasonExpired
				}
				wantReason(t, verify(&c, v.Room, v.peer), want)
			}

			for ci, capStr := range tok.Caps {
				for i := 0; i < len(capStr)*8; i++ {
					flipped := string(flipBit([]byte(capStr), i))
					c := *tok
					c.Caps = slices.Clone(tok.Caps)
					c.Caps[ci] = flipped
					want := ReasonBadSignature
					if strings.Contains(flipped, "\n") || !utf8.ValidString(flipped) ||
						flipped == CapClusterNode || flipped == "read:" || flipped == "write:" {
						want = MalformedField(FieldCaps)
					}
					wantReason(t, verify(&c, v.Room, v.peer), want)
				}
			}

			sig := mustHex(t, tok.Sig)
			for i := 0; i < len(sig)*8; i++ {
				c := *tok
				c.Sig = hex.EncodeToString(flipBit(sig, i))
				wantReason(t, verify(&c, v.Room, v.peer), ReasonBadSignature)
			}
		})
	}
}

// flipBit returns a copy of b with bit i (counting from the first byte's
// low bit) inverted.
func flipBit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i/8] ^= 1 << (i % 8)
	return c
}

func wantReason(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %q", want)
	}
	if got := reasonOf(t, err); got != want {
		t.Fatalf("reason %q (%v), want %q", got, err, want)
	}
}
