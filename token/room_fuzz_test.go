package token

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func roomReasonSet() map[string]bool {
	m := map[string]bool{}
	for _, r := range RoomReasons() {
		m[r] = true
	}
	return m
}

// FuzzParseRoomToken: never panics; every error is a *Error with a room
// reason; an accepted token survives a JSON round trip unchanged, and
// VerifyRoom finds nothing malformed in it.
func FuzzParseRoomToken(f *testing.F) {
	fx := newRoomFixture(f, []string{"room.admin", "read:world/**"}, "rk-1")
	good, err := json.Marshal(fx.tok)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`null`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"peer_pubkey":"` + fx.tok.PeerPubkey + `","expiry":1e3,"sig":"` + fx.tok.Sig + `"}`))
	f.Add([]byte(`{"peer_pubkey":"` + fx.tok.PeerPubkey + `","expiry":18446744073709551615,"caps":null,"sig":"` + strings.ToUpper(fx.tok.Sig) + `","kid":null}`))
	f.Add([]byte(`{"peer_pubkey":"` + fx.tok.PeerPubkey + `","expiry":1,"caps":["a\nb"],"sig":"` + fx.tok.Sig + `"}`))
	f.Add([]byte(`[1,2]`))
	reasons := roomReasonSet()
	nobody := make(ed25519.PublicKey, ed25519.PublicKeySize-1) // no token names a 31-byte key
	f.Fuzz(func(t *testing.T, raw []byte) {
		tok, err := ParseRoomToken(raw)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || !reasons[te.Reason] || te.Reason == ReasonExpired || te.Reason == ReasonBadSignature {
				t.Fatalf("error %v has an unexpected type or reason", err)
			}
			return
		}
		again, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseRoomToken(again)
		if err != nil || !reflect.DeepEqual(back, tok) {
			t.Fatalf("round trip of %s: %+v, %v; first %+v", again, back, err, tok)
		}
		// Parse and verify agree on what is well-formed: with a connecting
		// key that matches nothing, the first check after the field checks
		// (the peer's) is where verify stops.
		if err := VerifyRoom(tok, testRoom, nobody, nil, t0); err == nil || reasonOf(t, err) != ReasonPeerMismatch {
			t.Fatalf("parsed token fails verify's field checks: %v", err)
		}
	})
}

// FuzzVerifyRoom signs a token for fuzzed room, caps and expiry, checks
// it verifies exactly while now < expiry, then changes one thing (room,
// peer, expiry, a cap or a signature bit) and checks it is refused.
func FuzzVerifyRoom(f *testing.F) {
	f.Add("lobby", "room.admin,read:world/**", uint64(1700003600), int64(1700000000), uint8(0), uint16(3))
	f.Add("", "", uint64(0), int64(-5), uint8(1), uint16(0))
	f.Add("a\x00b", "a\nb", uint64(1<<63), int64(1<<40), uint8(2), uint16(63))
	f.Add("r", "x,,y", uint64(10), int64(10), uint8(3), uint16(511))
	f.Add("\xff", "\u00e9,Z", uint64(1<<64-1), int64(0), uint8(4), uint16(100))
	fx := newRoomFixture(f, nil, "")
	stranger := ed25519.NewKeyFromSeed(seedOf("stranger")).Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, room, capList string, expiry uint64, nowSec int64, mutate uint8, pos uint16) {
		if nowSec > 1<<62 || nowSec < -(1<<62) {
			return
		}
		now := time.Unix(nowSec, 0)
		var caps []string
		if capList != "" {
			caps = strings.Split(capList, ",")
		}
		tok := SignRoom(fx.priv, room, fx.peer, expiry, caps, "")
		keys := []ed25519.PublicKey{fx.pub}
		err := VerifyRoom(&tok, room, fx.peer, keys, now)
		if ValidateRoomCaps(caps) != nil {
			if err == nil || reasonOf(t, err) != MalformedField(FieldCaps) {
				t.Fatalf("invalid caps %q: %v", caps, err)
			}
			return
		}
		expired := nowSec >= 0 && uint64(nowSec) >= expiry
		if expired {
			if err == nil || reasonOf(t, err) != ReasonExpired {
				t.Fatalf("expiry %d at %d: %v, want expired", expiry, nowSec, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("fresh token: %v", err)
		}
		// The JSON wire form verifies the same.
		raw, _ := json.Marshal(tok)
		parsed, perr := ParseRoomToken(raw)
		if perr != nil {
			t.Fatalf("parse %s: %v", raw, perr)
		}
		if err := VerifyRoom(parsed, room, fx.peer, keys, now); err != nil {
			t.Fatalf("parsed token: %v", err)
		}

		c := tok
		c.Caps = slices.Clone(tok.Caps)
		connecting, verifyRoom := ed25519.PublicKey(fx.peer), room
		want := ReasonBadSignature
		switch mutate % 5 {
		case 0:
			verifyRoom = room + "x"
		case 1:
			connecting = stranger
			want = ReasonPeerMismatch
		case 2:
			c.Expiry ^= 1 << (pos % 64)
			if nowSec >= 0 && uint64(nowSec) >= c.Expiry {
				want = ReasonExpired
			}
		case 3:
			c.Caps = append(c.Caps, "extra")
		case 4:
			sig := mustHex(t, c.Sig)
			c.Sig = hex.EncodeToString(flipBit(sig, int(pos)%(len(sig)*8)))
		}
		err = VerifyRoom(&c, verifyRoom, connecting, keys, now)
		if err == nil || reasonOf(t, err) != want {
			t.Fatalf("mutation %d: %v, want %q", mutate%5, err, want)
		}
	})
}
