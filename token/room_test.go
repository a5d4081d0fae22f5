package token

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// roomFixture is one room key and one peer with a valid token.
type roomFixture struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	peer ed25519.PublicKey
	tok  RoomToken
	now  time.Time
}

const testRoom = "lobby"

func newRoomFixture(t testing.TB, caps []string, kid string) *roomFixture {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(seedOf("room key"))
	peer := ed25519.NewKeyFromSeed(seedOf("peer")).Public().(ed25519.PublicKey)
	return &roomFixture{
		priv: priv, pub: priv.Public().(ed25519.PublicKey), peer: peer,
		tok: SignRoom(priv, testRoom, peer, uint64(t0.Add(time.Hour).Unix()), caps, kid),
		now: t0,
	}
}

func seedOf(label string) []byte {
	s := make([]byte, ed25519.SeedSize)
	copy(s, label)
	return s
}

func (f *roomFixture) verify(tok *RoomToken) error {
	return VerifyRoom(tok, testRoom, f.peer, []ed25519.PublicKey{f.pub}, f.now)
}

// TestRoomReasonTexts pins the SPEC strings, byte for byte.
func TestRoomReasonTexts(t *testing.T) {
	for got, want := range map[string]string{
		ReasonRoomLocked:           "room is locked \u2014 include a capability token in hello",
		ReasonExpired:              "token has expired",
		ReasonBadSignature:         "signature verification failed",
		ReasonPeerMismatch:         "token peer_pubkey does not match connecting peer",
		MalformedField(FieldCaps):  "malformed token field: caps",
		MalformedField(FieldToken): "malformed token field: token",
		ReasonRevoked:              "token revoked",
		ReasonUnknownKey:           "unknown key id",
	} {
		if got != want {
			t.Errorf("reason %q, want %q", got, want)
		}
	}
	if !strings.Contains(ReasonRoomLocked, "\u2014") || strings.Contains(ReasonRoomLocked, "-") {
		t.Error("the locked reason must use U+2014, not a hyphen")
	}
	seen := map[string]bool{}
	for _, r := range RoomReasons() {
		if seen[r] {
			t.Errorf("RoomReasons repeats %q", r)
		}
		seen[r] = true
	}
	if len(seen) != 12 {
		t.Errorf("RoomReasons has %d reasons, want 12", len(seen))
	}
}

func TestSignRoomWireForm(t *testing.T) {
	f := newRoomFixture(t, nil, "")
	raw, err := json.Marshal(f.tok)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"peer_pubkey":"` + hex.EncodeToString(f.peer) + `","expiry":` + "1700003600" + `,"caps":[],"sig":"` + f.tok.Sig + `"}`
	if string(raw) != want {
		t.Fatalf("wire form\n got %s\nwant %s", raw, want)
	}
	in := []string{"write:b/**", "room.admin", "read:a/**"}
	tok := SignRoom(f.priv, testRoom, f.peer, 1, in, "rk-1")
	if !slices.Equal(tok.Caps, []string{"read:a/**", "room.admin", "write:b/**"}) || in[0] != "write:b/**" {
		t.Fatalf("caps %q (input %q): want a sorted copy", tok.Caps, in)
	}
	if raw, _ := json.Marshal(tok); !strings.HasSuffix(string(raw), `,"kid":"rk-1"}`) {
		t.Fatalf("kid missing from %s", raw)
	}
}

func TestRoomSigningMessageLayout(t *testing.T) {
	peer := make(ed25519.PublicKey, 32)
	for i := range peer {
		peer[i] = byte(i)
	}
	got := RoomSigningMessage("r", peer, 0x0102030405060708, []string{"b", "a"})
	want := "nodalmerge-room-token-v1\x00r\x00" + string(peer) + "\x08\x07\x06\x05\x04\x03\x02\x01\x00a\nb"
	if string(got) != want {
		t.Fatalf("message %q\nwant    %q", got, want)
	}
	if empty := RoomSigningMessage("r", peer, 0, nil); empty[len(empty)-1] != 0 {
		t.Fatalf("empty caps: message must end with the 0x00 separator, got %q", empty)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a 31-byte peer key did not panic")
		}
	}()
	RoomSigningMessage("r", peer[:31], 0, nil)
}

func TestParseRoomToken(t *testing.T) {
	f := newRoomFixture(t, []string{"room.admin"}, "")
	peer, sig := f.tok.PeerPubkey, f.tok.Sig
	obj := func(extra string) string {
		return `{"peer_pubkey":"` + peer + `","expiry":1700003600,"sig":"` + sig + `"` + extra + `}`
	}
	for _, tc := range []struct {
		name, raw, reason string
	}{
		{"absent", ``, ReasonRoomLocked},
		{"null", ` null `, ReasonRoomLocked},
		{"a string", `"tok"`, MalformedField(FieldToken)},
		{"an array", `[]`, MalformedField(FieldToken)},
		{"a number", `1`, MalformedField(FieldToken)},
		{"bad JSON", `{"peer_pubkey":`, MalformedField(FieldToken)},
		{"oversized", obj(`,"x":"` + strings.Repeat("a", MaxTokenBytes) + `"`), MalformedField(FieldToken)},
		{"empty object", `{}`, MalformedField(FieldPeerPubkey)},
		{"peer null", `{"peer_pubkey":null,"expiry":1,"sig":"` + sig + `"}`, MalformedField(FieldPeerPubkey)},
		{"peer not hex", `{"peer_pubkey":"` + strings.Repeat("g", 64) + `","expiry":1,"sig":"` + sig + `"}`, MalformedField(FieldPeerPubkey)},
		{"peer short", `{"peer_pubkey":"` + peer[:62] + `","expiry":1,"sig":"` + sig + `"}`, MalformedField(FieldPeerPubkey)},
		{"peer a number", `{"peer_pubkey":7,"expiry":1,"sig":"` + sig + `"}`, MalformedField(FieldPeerPubkey)},
		{"keys are case-sensitive", `{"PEER_PUBKEY":"` + peer + `","expiry":1,"sig":"` + sig + `"}`, MalformedField(FieldPeerPubkey)},
		{"expiry missing", `{"peer_pubkey":"` + peer + `","sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"expiry a string", `{"peer_pubkey":"` + peer + `","expiry":"1","sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"expiry negative", `{"peer_pubkey":"` + peer + `","expiry":-1,"sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"expiry fraction", `{"peer_pubkey":"` + peer + `","expiry":1.0,"sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"expiry exponent", `{"peer_pubkey":"` + peer + `","expiry":1e9,"sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"expiry over u64", `{"peer_pubkey":"` + peer + `","expiry":18446744073709551616,"sig":"` + sig + `"}`, MalformedField(FieldExpiry)},
		{"sig missing", `{"peer_pubkey":"` + peer + `","expiry":1}`, MalformedField(FieldSig)},
		{"sig short", `{"peer_pubkey":"` + peer + `","expiry":1,"sig":"` + sig[:126] + `"}`, MalformedField(FieldSig)},
		{"caps a string", obj(`,"caps":"room.admin"`), MalformedField(FieldCaps)},
		{"caps with a number", obj(`,"caps":["room.admin",1]`), MalformedField(FieldCaps)},
		{"caps with an empty cap", obj(`,"caps":[""]`), MalformedField(FieldCaps)},
		{"caps with a newline", obj(`,"caps":["a\nb"]`), MalformedField(FieldCaps)},
		{"caps with cluster.node", obj(`,"caps":["cluster.node"]`), MalformedField(FieldCaps)},
		{"caps with an empty glob", obj(`,"caps":["read:"]`), MalformedField(FieldCaps)},
		{"caps too long", obj(`,"caps":["` + strings.Repeat("c", MaxRoomCapBytes+1) + `"]`), MalformedField(FieldCaps)},
		{"too many caps", obj(`,"caps":[` + strings.Repeat(`"c",`, MaxRoomCaps) + `"c"]`), MalformedField(FieldCaps)},
		{"kid a number", obj(`,"caps":[],"kid":7`), MalformedField(FieldKid)},
		{"kid too long", obj(`,"kid":"` + strings.Repeat("k", 129) + `"`), MalformedField(FieldKid)},
		{"first bad field wins", `{"peer_pubkey":1,"expiry":"x","sig":2}`, MalformedField(FieldPeerPubkey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseRoomToken(json.RawMessage(tc.raw))
			if err == nil {
				t.Fatalf("accepted: %+v", tok)
			}
			if r := reasonOf(t, err); r != tc.reason {
				t.Fatalf("reason %q (%v), want %q", r, err, tc.reason)
			}
			if strings.Contains(err.Error(), sig[:32]) {
				t.Fatalf("error %q echoes the signature", err)
			}
		})
	}

	for _, tc := range []struct {
		name, raw string
		caps      []string
		kid       string
	}{
		{"caps absent", obj(``), []string{}, ""},
		{"caps null, kid null", obj(`,"caps":null,"kid":null`), []string{}, ""},
		{"caps and kid", obj(`,"caps":["room.admin"],"kid":"rk-1"`), []string{"room.admin"}, "rk-1"},
		{"empty kid is no kid", obj(`,"caps":["room.admin"],"kid":""`), []string{"room.admin"}, ""},
		{"unknown fields ignored", obj(`,"caps":["room.admin"],"capability_profile_version":"v2"`), []string{"room.admin"}, ""},
		{"upper-case hex", strings.Replace(obj(`,"caps":["room.admin"]`), sig, strings.ToUpper(sig), 1), []string{"room.admin"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseRoomToken(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if tok.PeerPubkey != peer || tok.Sig != sig || tok.Expiry != 1700003600 || tok.Kid != tc.kid || !slices.Equal(tok.Caps, tc.caps) || tok.Caps == nil {
				t.Fatalf("parsed %+v", tok)
			}
		})
	}
	// Absent caps are no caps: a token signed with none verifies that way.
	g := newRoomFixture(t, nil, "")
	tok, err := ParseRoomToken(json.RawMessage(`{"peer_pubkey":"` + g.tok.PeerPubkey + `","expiry":1700003600,"sig":"` + g.tok.Sig + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.verify(tok); err != nil {
		t.Fatalf("token without caps: %v", err)
	}
}

// TestVerifyRoomOrder pins the documented order of checks on tokens that
// fail several of them at once.
func TestVerifyRoomOrder(t *testing.T) {
	f := newRoomFixture(t, []string{"room.admin"}, "")
	stranger := ed25519.NewKeyFromSeed(seedOf("stranger")).Public().(ed25519.PublicKey)
	otherKey := ed25519.NewKeyFromSeed(seedOf("other room key")).Public().(ed25519.PublicKey)
	expiredAt := time.Unix(int64(f.tok.Expiry), 0)
	forged := f.tok
	forged.Sig = strings.Repeat("00", 64)
	badPeer := f.tok
	badPeer.PeerPubkey = "zz" + badPeer.PeerPubkey[2:]
	withKid := f.tok
	withKid.Kid = "rk-missing"

	for _, tc := range []struct {
		name       string
		tok        *RoomToken
		connecting ed25519.PublicKey
		keys       []ed25519.PublicKey
		now        time.Time
		want       string
	}{
		{"no token", nil, f.peer, []ed25519.PublicKey{f.pub}, f.now, ReasonRoomLocked},
		{"malformed before peer mismatch", &badPeer, stranger, []ed25519.PublicKey{f.pub}, f.now, MalformedField(FieldPeerPubkey)},
		{"peer mismatch before expiry", &f.tok, stranger, []ed25519.PublicKey{f.pub}, expiredAt, ReasonPeerMismatch},
		{"connecting key of the wrong length", &f.tok, f.peer[:31], []ed25519.PublicKey{f.pub}, f.now, ReasonPeerMismatch},
		{"expiry before signature", &forged, f.peer, []ed25519.PublicKey{f.pub}, expiredAt, ReasonExpired},
		{"expiry before unknown key", &withKid, f.peer, nil, expiredAt, ReasonExpired},
		{"kid with no candidate", &withKid, f.peer, nil, f.now, ReasonUnknownKey},
		{"no kid, no candidate", &f.tok, f.peer, nil, f.now, ReasonBadSignature},
		{"wrong key", &f.tok, f.peer, []ed25519.PublicKey{otherKey}, f.now, ReasonBadSignature},
		{"forged signature", &forged, f.peer, []ed25519.PublicKey{f.pub}, f.now, ReasonBadSignature},
		{"other room", &f.tok, f.peer, []ed25519.PublicKey{f.pub}, f.now, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := testRoom
			if tc.want == "" {
				room, tc.want = "lobby2", ReasonBadSignature
			}
			wantReason(t, VerifyRoom(tc.tok, room, tc.connecting, tc.keys, tc.now), tc.want)
		})
	}

	// Any candidate may verify; keys of the wrong length are skipped.
	keys := []ed25519.PublicKey{otherKey, f.pub[:16], f.pub}
	if err := VerifyRoom(&f.tok, testRoom, f.peer, keys, f.now); err != nil {
		t.Fatalf("third candidate: %v", err)
	}
	// Valid while now < expiry, to the nanosecond.
	if err := VerifyRoom(&f.tok, testRoom, f.peer, keys, expiredAt.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("one nanosecond before expiry: %v", err)
	}
	// The wire order of caps does not matter: verifiers sort.
	multi := newRoomFixture(t, []string{"a", "b", "c"}, "")
	multi.tok.Caps = []string{"c", "a", "b"}
	if err := multi.verify(&multi.tok); err != nil {
		t.Fatalf("reordered caps: %v", err)
	}
	// Adding, dropping or changing a cap breaks the signature.
	for _, caps := range [][]string{{"a", "b"}, {"a", "b", "c", "d"}, {"a", "b", "C"}, {"a", "b", "c", "c"}} {
		c := multi.tok
		c.Caps = caps
		wantReason(t, multi.verify(&c), ReasonBadSignature)
	}
}

func TestExpired(t *testing.T) {
	for _, tc := range []struct {
		expiry uint64
		now    time.Time
		want   bool
	}{
		{100, time.Unix(99, 999_999_999), false},
		{100, time.Unix(100, 0), true},
		{100, time.Unix(101, 0), true},
		{0, time.Unix(0, 0), true},
		{0, time.Unix(-1, 0), false},
		{1<<64 - 1, time.Unix(1<<62, 0), false},
	} {
		if got := Expired(tc.expiry, tc.now); got != tc.want {
			t.Errorf("Expired(%d, %v) = %v", tc.expiry, tc.now.Unix(), got)
		}
	}
}

func TestRoomTokenID(t *testing.T) {
	f := newRoomFixture(t, nil, "")
	id := f.tok.ID()
	if len(id) != 32 || strings.Contains(f.tok.Sig, id) {
		t.Fatalf("id %q", id)
	}
	upper := f.tok
	upper.Sig = strings.ToUpper(upper.Sig)
	if upper.ID() != id {
		t.Fatal("the id depends on the case of the hex")
	}
	bad := f.tok
	bad.Sig = "xyz"
	if bad.ID() != "" {
		t.Fatalf("malformed sig has id %q", bad.ID())
	}
}

func TestGrants(t *testing.T) {
	caps := []string{"room.admin", "read:world/**", "write:intent/*", "readme", "read:chat", "policy.admin", "write:"}
	if got := ReadGrants(caps); !slices.Equal(got, []string{"world/**", "chat"}) {
		t.Errorf("ReadGrants = %q", got)
	}
	if got := WriteGrants(caps); !slices.Equal(got, []string{"intent/*", ""}) {
		t.Errorf("WriteGrants = %q", got)
	}
	if got := CapabilityClasses(caps); !slices.Equal(got, []string{"room.admin", "readme", "policy.admin"}) {
		t.Errorf("CapabilityClasses = %q", got)
	}
	if ReadGrants([]string{"room.admin"}) != nil || WriteGrants(nil) != nil || CapabilityClasses([]string{"read:x"}) != nil {
		t.Error("no grants must be nil (no limit)")
	}
}

func TestValidateRoomCaps(t *testing.T) {
	if err := ValidateRoomCaps([]string{"room.admin", "read:**", "write:a/b", "\u00e9"}); err != nil {
		t.Fatal(err)
	}
	if err := ValidateRoomCaps(nil); err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][]string{{""}, {"a\nb"}, {"\xff"}, {"read:"}, {"write:"}, {CapClusterNode}, {strings.Repeat("x", MaxRoomCapBytes+1)}, make([]string, MaxRoomCaps+1)} {
		if err := ValidateRoomCaps(caps); err == nil {
			t.Errorf("accepted %.40q", caps)
		}
	}
}
