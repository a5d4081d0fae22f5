package loadgen

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// fieldOf answers the field of a *ConfigError, or "" for another error.
func fieldOf(err error) string {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Field
	}
	return ""
}

func TestParseRoomKeySeed(t *testing.T) {
	seed := strings.Repeat("07", ed25519.SeedSize)
	k, err := parseRoomKeySeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(seed)
	want := ed25519.NewKeyFromSeed(raw).Public().(ed25519.PublicKey)
	if !k.pub.Equal(want) || k.kid != keyring.RoomKeyID(want) || !strings.HasPrefix(k.kid, "rk-") {
		t.Fatalf("key from seed: pub %x kid %q", k.pub, k.kid)
	}
	// Upper-case hex is the same seed.
	if k2, err := parseRoomKeySeed(strings.ToUpper(strings.Repeat("ab", 32))); err != nil || k2.kid != keyring.RoomKeyID(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xab}, 32)).Public().(ed25519.PublicKey)) {
		t.Fatalf("upper-case seed: %v", err)
	}
	// No seed: a fresh key each time.
	a, errA := parseRoomKeySeed("")
	b, errB := parseRoomKeySeed("")
	if errA != nil || errB != nil || a.pub.Equal(b.pub) || a.kid == b.kid {
		t.Fatalf("fresh keys: %v %v, equal %v", errA, errB, a.pub.Equal(b.pub))
	}
	secret := strings.Repeat("5e", 31) + "zz"
	for _, bad := range []string{"00", strings.Repeat("0", 63), strings.Repeat("0", 66), secret} {
		_, err := parseRoomKeySeed(bad)
		if fieldOf(err) != "RoomKeySeed" {
			t.Errorf("seed of %d chars: error %v, want a RoomKeySeed ConfigError", len(bad), err)
		}
		if err != nil && len(bad) > 4 && strings.Contains(err.Error(), bad[:8]) {
			t.Errorf("the error repeats the seed: %v", err)
		}
	}
}

// TestRoomKeySign: the token the tool sends is what the server admits:
// it parses, names the key's kid and the peer, and verifies for that room
// and peer only, under the room key.
func TestRoomKeySign(t *testing.T) {
	k, err := parseRoomKeySeed("")
	if err != nil {
		t.Fatal(err)
	}
	peer, _, _ := ed25519.GenerateKey(nil)
	other, _, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	raw, tok, err := k.sign("game-1", peer, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := token.ParseRoomToken(raw)
	if err != nil {
		t.Fatalf("the server's parser refuses the token: %v (%s)", err, raw)
	}
	if parsed.Kid != k.kid || parsed.PeerPubkey != hex.EncodeToString(peer) || len(parsed.Caps) != 0 || parsed.ID() != tok.ID() || tok.ID() == "" {
		t.Fatalf("parsed %+v, signed %+v", parsed, tok)
	}
	keys := []ed25519.PublicKey{k.pub}
	if err := token.VerifyRoom(parsed, "game-1", peer, keys, now); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := token.VerifyRoom(parsed, "game-2", peer, keys, now); err == nil {
		t.Error("the token verifies for another room")
	}
	if err := token.VerifyRoom(parsed, "game-1", other, keys, now); err == nil {
		t.Error("the token verifies for another peer")
	}
	if err := token.VerifyRoom(parsed, "game-1", peer, keys, now.Add(2*time.Hour)); err == nil {
		t.Error("the token verifies after its expiry")
	}
}

// FuzzRoomKeySeed: any text either makes a key or a RoomKeySeed
// ConfigError that does not repeat it, and never panics.
func FuzzRoomKeySeed(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("00", 32), strings.Repeat("Ff", 32), strings.Repeat("g", 64), "0x" + strings.Repeat("0", 62), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseRoomKeySeed(s)
		if err != nil {
			if fieldOf(err) != "RoomKeySeed" {
				t.Fatalf("error %v is not a RoomKeySeed ConfigError", err)
			}
			// The text depends on the length only, never on the digits.
			if _, ref := parseRoomKeySeed(strings.Repeat("x", len(s))); ref == nil || ref.Error() != err.Error() {
				t.Fatalf("error %q depends on the seed's content (a seed of x's: %v)", err, ref)
			}
			return
		}
		if len(k.priv) != ed25519.PrivateKeySize || k.kid != keyring.RoomKeyID(k.pub) {
			t.Fatalf("key %d bytes, kid %q", len(k.priv), k.kid)
		}
	})
}

func TestAdminTargetValidate(t *testing.T) {
	ok := AdminTarget{Addrs: []string{"127.0.0.1:7879"}, TLS: &tls.Config{}, Token: "t"}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod   func(*AdminTarget)
		field string
	}{
		{func(a *AdminTarget) { a.Addrs = nil }, "Addrs"},
		{func(a *AdminTarget) { a.Addrs = []string{"nohost"} }, "Addrs"},
		{func(a *AdminTarget) { a.TLS = nil }, "TLS"},
		{func(a *AdminTarget) { a.Token = " " }, "Token"},
	} {
		a := ok
		c.mod(&a)
		if got := fieldOf(a.validate()); got != c.field {
			t.Errorf("want a %s error, got field %q", c.field, got)
		}
	}
}
