package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"google.golang.org/protobuf/proto"
)

func newTestKEK(t *testing.T) (*KEK, []byte) {
	t.Helper()
	text, err := GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	return kek, text
}

func TestGenerateAndParseKEK(t *testing.T) {
	kek, text := newTestKEK(t)
	if len(text) != 65 || text[64] != '\n' {
		t.Fatalf("text form is %d bytes, want 64 hex + newline", len(text))
	}
	raw, err := hex.DecodeString(string(text[:64]))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if want := hex.EncodeToString(sum[:8]); kek.ID() != want {
		t.Fatalf("kek id %q, want %q", kek.ID(), want)
	}
	other, _ := newTestKEK(t)
	if other.ID() == kek.ID() {
		t.Fatal("two generated KEKs share an id")
	}
	for _, form := range [][]byte{text[:64], text, append(bytes.Clone(text[:64]), '\r', '\n')} {
		again, err := ParseKEK(form)
		if err != nil || again.ID() != kek.ID() {
			t.Fatalf("ParseKEK(%d bytes) = %v, %v", len(form), again, err)
		}
	}
}

func TestParseKEKRejects(t *testing.T) {
	_, text := newTestKEK(t)
	secret := string(text[:64])
	for name, in := range map[string]string{
		"empty":        "",
		"short":        secret[:63],
		"long":         secret + "0",
		"not hex":      "zz" + secret[2:],
		"two newlines": secret + "\n\n",
		"spaces":       " " + secret[1:],
	} {
		_, err := ParseKEK([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if len(in) > 8 && strings.Contains(err.Error(), in[2:34]) {
			t.Errorf("%s: error quotes the key material: %v", name, err)
		}
	}
	if _, err := NewKEK(make([]byte, 31)); err == nil {
		t.Error("NewKEK accepted 31 bytes")
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	kek, _ := newTestKEK(t)
	k, err := Generate(rtPurpose, t0)
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Clone(k.GetPrivateSeed())
	if err := kek.Seal(k); err != nil {
		t.Fatal(err)
	}
	if len(k.GetPrivateSeed()) != 0 || len(k.GetSealedSeed()) != SealedSeedSize || k.GetKekId() != kek.ID() || !Sealed(k) {
		t.Fatalf("sealed key: private %d bytes, sealed %d bytes, kek_id %q", len(k.GetPrivateSeed()), len(k.GetSealedSeed()), k.GetKekId())
	}
	if bytes.Contains(k.GetSealedSeed(), seed) {
		t.Fatal("sealed seed contains the seed in the clear")
	}
	wire, err := proto.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wire, seed) {
		t.Fatal("the encoded key contains the seed")
	}
	got, err := Seed(k, kek)
	if err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("Seed = %x, %v; want the original seed", got, err)
	}
	if err := kek.Seal(k); err == nil {
		t.Fatal("sealing a sealed key succeeded")
	}
	// Two seals of the same seed differ (random nonce).
	k2 := proto.Clone(k).(*statev1.Key)
	k2.SealedSeed, k2.KekId, k2.PrivateSeed = nil, "", bytes.Clone(seed)
	if err := kek.Seal(k2); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k2.GetSealedSeed(), k.GetSealedSeed()) {
		t.Fatal("two seals of one seed are equal: the nonce is not random")
	}
}

func TestSeedRefusals(t *testing.T) {
	kek, _ := newTestKEK(t)
	other, _ := newTestKEK(t)
	k, _ := Generate(opPurpose, t0)
	seed := bytes.Clone(k.GetPrivateSeed())
	if err := kek.Seal(k); err != nil {
		t.Fatal(err)
	}
	want := "keyring: key " + k.GetKid() + " is sealed with KEK " + kek.ID() + "; start with --kek-file holding that key"
	for name, with := range map[string]*KEK{"no kek": nil, "other kek": other} {
		_, err := Seed(k, with)
		if !errors.Is(err, ErrSealed) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want ErrSealed with %q", name, err, want)
		}
	}
	tampered := proto.Clone(k).(*statev1.Key)
	tampered.SealedSeed[20] ^= 1
	moved := proto.Clone(k).(*statev1.Key)
	moved.Kid = "op-000000000000"
	short := proto.Clone(k).(*statev1.Key)
	short.SealedSeed = short.SealedSeed[:40]
	both := proto.Clone(k).(*statev1.Key)
	both.PrivateSeed = bytes.Clone(seed)
	for name, bad := range map[string]*statev1.Key{"tampered": tampered, "moved to another kid": moved, "short": short, "plain and sealed": both} {
		_, err := Seed(bad, kek)
		if err == nil {
			t.Errorf("%s: opened", name)
			continue
		}
		if errors.Is(err, ErrSealed) {
			t.Errorf("%s: reported as a missing KEK: %v", name, err)
		}
		if strings.Contains(err.Error(), hex.EncodeToString(seed)) {
			t.Errorf("%s: error leaks the seed", name)
		}
	}
}

// TestSignerWithMixedKeyring: plain keys sign without a KEK, sealed ones
// only with theirs, and the choice of signer never depends on the KEK.
func TestSignerWithMixedKeyring(t *testing.T) {
	kek, _ := newTestKEK(t)
	plain := key(t, opPurpose, active, 0, 10, 0)
	sealed := key(t, opPurpose, active, 0, 20, 0)
	if err := kek.Seal(sealed); err != nil {
		t.Fatal(err)
	}
	keys := []*statev1.Key{plain, sealed}
	now := t0.Add(15 * 1e6) // 15 ms: only the plain key is active
	if kid, _, err := SignerWith(keys, opPurpose, now, nil); err != nil || kid != plain.GetKid() {
		t.Fatalf("plain key before the sealed one activates: %q, %v", kid, err)
	}
	now = t0.Add(30 * 1e6)
	if _, _, err := Signer(keys, opPurpose, now); !errors.Is(err, ErrSealed) {
		t.Fatalf("Signer without KEK on a sealed signer: %v", err)
	}
	kid, priv, err := SignerWith(keys, opPurpose, now, kek)
	if err != nil || kid != sealed.GetKid() {
		t.Fatalf("SignerWith = %q, %v", kid, err)
	}
	pub, err := VerifyKey(keys, opPurpose, kid, now)
	if err != nil || !ed25519.Verify(pub, []byte("m"), ed25519.Sign(priv, []byte("m"))) {
		t.Fatalf("signature of the opened sealed key does not verify: %v", err)
	}
	// Verification needs no KEK.
	if _, err := VerifyKey(keys, opPurpose, sealed.GetKid(), now); err != nil {
		t.Fatal(err)
	}
}

func TestNewestAndSupersededBy(t *testing.T) {
	old := key(t, opPurpose, active, 0, 10, 0)
	older := key(t, opPurpose, vonly, 0, 5, 0)
	other := key(t, rtPurpose, active, 0, 50, 0)
	next := key(t, opPurpose, pre, 40, 100, 0)
	keys := []*statev1.Key{older, old, other, next}
	if got := Newest(keys, opPurpose, t0.Add(50*1e6)); got != next {
		t.Fatalf("Newest = %v, want the pending prepublished key", got.GetKid())
	}
	if got := Newest(keys[:3], opPurpose, t0.Add(50*1e6)); got != old {
		t.Fatalf("Newest without successor = %v", got.GetKid())
	}
	if got := Newest(nil, opPurpose, t0); got != nil {
		t.Fatal("Newest of nothing")
	}
	old.SupersededUnixMs = next.GetActivateUnixMs()
	other.SupersededUnixMs = next.GetActivateUnixMs() // another purpose: not this rotation's
	if got := SupersededBy(keys, next); len(got) != 1 || got[0] != old.GetKid() {
		t.Fatalf("SupersededBy = %v, want [%s]", got, old.GetKid())
	}
}

// FuzzParseKEK: the KEK file is read from disk; whatever it holds, parsing
// never panics, and an accepted text is exactly 64 hex digits.
func FuzzParseKEK(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32)))
	f.Add([]byte(strings.Repeat("0", 64) + "\n"))
	f.Add([]byte("not a key"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		kek, err := ParseKEK(in)
		if err != nil {
			return
		}
		trimmed := bytes.TrimRight(in, "\r\n")
		if len(trimmed) != 64 {
			t.Fatalf("accepted %d characters", len(trimmed))
		}
		if len(kek.ID()) != KEKIDLen {
			t.Fatalf("kek id %q", kek.ID())
		}
	})
}

// FuzzSeed: a sealed seed comes from replicated state; whatever bytes a
// record holds, opening it never panics and never answers a wrong-size seed.
func FuzzSeed(f *testing.F) {
	raw := bytes.Repeat([]byte{7}, KEKSize)
	kek, err := NewKEK(raw)
	if err != nil {
		f.Fatal(err)
	}
	k, _ := Generate(opPurpose, t0)
	if err := kek.Seal(k); err != nil {
		f.Fatal(err)
	}
	f.Add(k.GetSealedSeed(), k.GetKid(), kek.ID())
	f.Add([]byte{}, "op-x", "")
	f.Add(make([]byte, SealedSeedSize), "op-y", kek.ID())
	f.Fuzz(func(t *testing.T, sealed []byte, kid, kekID string) {
		seed, err := Seed(&statev1.Key{Kid: kid, SealedSeed: sealed, KekId: kekID}, kek)
		if err == nil && len(seed) != ed25519.SeedSize {
			t.Fatalf("opened a %d-byte seed", len(seed))
		}
	})
}
