package keyring

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"google.golang.org/protobuf/proto"
)

const (
	opPurpose = statev1.KeyPurpose_KEY_PURPOSE_OPERATOR
	rtPurpose = statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN
	pre       = statev1.KeyState_KEY_STATE_PREPUBLISHED
	active    = statev1.KeyState_KEY_STATE_ACTIVE
	vonly     = statev1.KeyState_KEY_STATE_VERIFY_ONLY
	retired   = statev1.KeyState_KEY_STATE_RETIRED
	unspec    = statev1.KeyState_KEY_STATE_UNSPECIFIED
)

var t0 = time.UnixMilli(1_700_000_000_000)

// key makes a real key in the given state; created/activate/retire are
// offsets in ms from t0 (activate 0 and retire 0 mean "unset").
func key(t *testing.T, purpose statev1.KeyPurpose, state statev1.KeyState, created, activate, retire int64) *statev1.Key {
	t.Helper()
	k, err := Generate(purpose, t0)
	if err != nil {
		t.Fatal(err)
	}
	k.State = state
	k.CreatedUnixMs = t0.UnixMilli() + created
	k.ActivateUnixMs = 0
	if activate != 0 {
		k.ActivateUnixMs = t0.UnixMilli() + activate
	}
	if retire != 0 {
		k.RetireAfterUnixMs = t0.UnixMilli() + retire
	}
	return k
}

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		purpose statev1.KeyPurpose
		prefix  string
	}{{opPurpose, "op-"}, {rtPurpose, "rt-"}} {
		k, err := Generate(tc.purpose, t0)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(k.GetPublicKey())
		if want := tc.prefix + hex.EncodeToString(sum[:])[:12]; k.GetKid() != want {
			t.Errorf("kid %q, want %q", k.GetKid(), want)
		}
		if !regexp.MustCompile(`^(op|rt)-[0-9a-f]{12}$`).MatchString(k.GetKid()) {
			t.Errorf("kid %q has the wrong shape", k.GetKid())
		}
		if k.GetState() != active || k.GetPurpose() != tc.purpose || k.GetCreatedUnixMs() != t0.UnixMilli() {
			t.Errorf("generated key fields: %v %v %d", k.GetState(), k.GetPurpose(), k.GetCreatedUnixMs())
		}
		priv := ed25519.NewKeyFromSeed(k.GetPrivateSeed())
		sig := ed25519.Sign(priv, []byte("m"))
		if !ed25519.Verify(k.GetPublicKey(), []byte("m"), sig) {
			t.Error("seed and public key do not belong together")
		}
	}
	a, _ := Generate(opPurpose, t0)
	b, _ := Generate(opPurpose, t0)
	if a.GetKid() == b.GetKid() {
		t.Error("two generated keys share a kid")
	}
	if _, err := Generate(statev1.KeyPurpose_KEY_PURPOSE_UNSPECIFIED, t0); err == nil {
		t.Error("Generate accepted an unspecified purpose")
	}
}

// TestVerifyKeyRules walks every state and time rule of VerifyKey.
func TestVerifyKeyRules(t *testing.T) {
	const sec = int64(1000)
	for _, tc := range []struct {
		name    string
		state   statev1.KeyState
		retire  int64 // offset ms, 0 = unset
		nowOff  int64
		purpose statev1.KeyPurpose // asked purpose; key is operator
		ok      bool
	}{
		{"prepublished verifies", pre, 0, 0, opPurpose, true},
		{"active verifies", active, 0, 0, opPurpose, true},
		{"verify-only without retire_after verifies", vonly, 0, 1e9, opPurpose, true},
		{"verify-only before retire_after verifies", vonly, 10 * sec, 10*sec - 1, opPurpose, true},
		{"verify-only at retire_after does not", vonly, 10 * sec, 10 * sec, opPurpose, false},
		{"verify-only after retire_after does not", vonly, 10 * sec, 11 * sec, opPurpose, false},
		{"retired does not", retired, 0, 0, opPurpose, false},
		{"retired with future retire_after still does not", retired, 1e9, 0, opPurpose, false},
		{"unspecified state does not", unspec, 0, 0, opPurpose, false},
		{"wrong purpose does not", active, 0, 0, rtPurpose, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key(t, opPurpose, tc.state, 0, 0, tc.retire)
			other := key(t, opPurpose, active, 0, 0, 0)
			keys := []*statev1.Key{other, k}
			pub, err := VerifyKey(keys, tc.purpose, k.GetKid(), t0.Add(time.Duration(tc.nowOff)*time.Millisecond))
			if tc.ok {
				if err != nil {
					t.Fatalf("VerifyKey: %v", err)
				}
				if !ed25519.PublicKey(k.GetPublicKey()).Equal(pub) {
					t.Fatal("returned another key's public key")
				}
				pub[0] ^= 0xff // a caller scribbling on the result must not change state
				if pub[0] == k.GetPublicKey()[0] {
					t.Fatal("VerifyKey returned the state's own slice")
				}
				return
			}
			if !errors.Is(err, ErrUnknownKey) || pub != nil {
				t.Fatalf("VerifyKey = %v, %v; want ErrUnknownKey", pub, err)
			}
		})
	}
}

func TestVerifyKeyUnknownAndMalformed(t *testing.T) {
	k := key(t, opPurpose, active, 0, 0, 0)
	for _, kid := range []string{"", "op-000000000000", strings.Repeat("x", 5000)} {
		_, err := VerifyKey([]*statev1.Key{k}, opPurpose, kid, t0)
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("kid %.20q: %v", kid, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("error for a long kid is %d bytes: untrusted input is not clipped", len(err.Error()))
		}
	}
	bad := proto.Clone(k).(*statev1.Key)
	bad.PublicKey = bad.PublicKey[:31]
	if _, err := VerifyKey([]*statev1.Key{bad}, opPurpose, bad.GetKid(), t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("short public key: %v", err)
	}
	if _, err := VerifyKey(nil, opPurpose, k.GetKid(), t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("empty keyring: %v", err)
	}
}

// TestSignerRules walks which key signs in every state and time combination.
func TestSignerRules(t *testing.T) {
	type spec struct {
		state             statev1.KeyState
		created, activate int64
		purpose           statev1.KeyPurpose
	}
	for _, tc := range []struct {
		name   string
		keys   []spec
		nowOff int64
		want   int // index of the signing key, -1 = none
	}{
		{"single active signs", []spec{{active, 0, 0, opPurpose}}, 0, 0},
		{"prepublished without activation does not sign", []spec{{pre, 0, 0, opPurpose}}, 1e9, -1},
		{"prepublished before activation does not sign", []spec{{pre, 0, 100, opPurpose}}, 99, -1},
		{"prepublished at activation signs", []spec{{pre, 0, 100, opPurpose}}, 100, 0},
		{"verify-only does not sign", []spec{{vonly, 0, 0, opPurpose}}, 0, -1},
		{"retired does not sign", []spec{{retired, 0, 0, opPurpose}}, 0, -1},
		{"unspecified does not sign", []spec{{unspec, 0, 0, opPurpose}}, 0, -1},
		{"other purpose does not sign", []spec{{active, 0, 0, rtPurpose}}, 0, -1},
		{"newest active wins", []spec{{active, 0, 10, opPurpose}, {active, 0, 20, opPurpose}}, 30, 1},
		{"newest by creation when activation unset", []spec{{active, 20, 0, opPurpose}, {active, 10, 0, opPurpose}}, 30, 0},
		{"activated prepublished supersedes active", []spec{{active, 0, 10, opPurpose}, {pre, 5, 50, opPurpose}}, 60, 1},
		{"pending prepublished leaves active signing", []spec{{active, 0, 10, opPurpose}, {pre, 5, 50, opPurpose}}, 40, 0},
		{"verify-only newer than active is skipped", []spec{{active, 0, 10, opPurpose}, {vonly, 0, 90, opPurpose}}, 100, 0},
		{"other purpose newer is skipped", []spec{{active, 0, 10, opPurpose}, {active, 0, 90, rtPurpose}}, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []*statev1.Key
			for _, s := range tc.keys {
				keys = append(keys, key(t, s.purpose, s.state, s.created, s.activate, 0))
			}
			kid, priv, err := Signer(keys, opPurpose, t0.Add(time.Duration(tc.nowOff)*time.Millisecond))
			if tc.want < 0 {
				if !errors.Is(err, ErrNoSigningKey) || kid != "" || priv != nil {
					t.Fatalf("Signer = %q, %v; want ErrNoSigningKey", kid, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := keys[tc.want]
			if kid != w.GetKid() {
				t.Fatalf("signer %q, want %q", kid, w.GetKid())
			}
			// The returned key really is that key: its signature verifies
			// under the public key VerifyKey hands out for the kid.
			pub, err := VerifyKey(keys, opPurpose, kid, t0.Add(time.Duration(tc.nowOff)*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if !ed25519.Verify(pub, []byte("x"), ed25519.Sign(priv, []byte("x"))) {
				t.Fatal("signature from Signer does not verify")
			}
		})
	}
}

func TestSignerTieBreakIsDeterministic(t *testing.T) {
	a := key(t, opPurpose, active, 0, 10, 0)
	b := key(t, opPurpose, active, 0, 10, 0)
	want := a.GetKid()
	if b.GetKid() > want {
		want = b.GetKid()
	}
	for _, keys := range [][]*statev1.Key{{a, b}, {b, a}} {
		kid, _, err := Signer(keys, opPurpose, t0.Add(time.Second))
		if err != nil || kid != want {
			t.Fatalf("Signer = %q, %v; want %q whatever the order", kid, err, want)
		}
	}
}

func TestSignerRejectsBadSeed(t *testing.T) {
	k := key(t, opPurpose, active, 0, 0, 0)
	noSeed := proto.Clone(k).(*statev1.Key)
	noSeed.PrivateSeed = nil
	other := key(t, opPurpose, active, 0, 0, 0)
	wrongSeed := proto.Clone(k).(*statev1.Key)
	wrongSeed.PrivateSeed = other.GetPrivateSeed()
	for name, bad := range map[string]*statev1.Key{"no seed": noSeed, "wrong seed": wrongSeed} {
		_, _, err := Signer([]*statev1.Key{bad}, opPurpose, t0)
		if err == nil {
			t.Errorf("%s: Signer succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), hex.EncodeToString(other.GetPrivateSeed())) {
			t.Errorf("%s: error leaks the seed", name)
		}
	}
}

func TestCheckTransition(t *testing.T) {
	all := []statev1.KeyState{unspec, pre, active, vonly, retired}
	allowed := map[[2]statev1.KeyState]bool{
		{unspec, pre}: true, {unspec, active}: true,
		{pre, pre}: true, {pre, active}: true, {pre, vonly}: true, {pre, retired}: true,
		{active, active}: true, {active, vonly}: true, {active, retired}: true,
		{vonly, vonly}: true, {vonly, retired}: true,
		{retired, retired}: true,
	}
	for _, from := range all {
		for _, to := range all {
			err := CheckTransition(from, to)
			if want := allowed[[2]statev1.KeyState{from, to}]; (err == nil) != want {
				t.Errorf("CheckTransition(%s, %s) = %v, want allowed=%v", StateName(from), StateName(to), err, want)
			}
		}
	}
	if CheckTransition(statev1.KeyState(99), retired) == nil {
		t.Error("unknown current state accepted")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		p    statev1.KeyPurpose
		name string
	}{{rtPurpose, "room-token"}, {opPurpose, "operator"}} {
		if got := PurposeName(tc.p); got != tc.name {
			t.Errorf("PurposeName(%v) = %q", tc.p, got)
		}
		if got, err := ParsePurpose(tc.name); err != nil || got != tc.p {
			t.Errorf("ParsePurpose(%q) = %v, %v", tc.name, got, err)
		}
	}
	for _, tc := range []struct {
		s    statev1.KeyState
		name string
	}{{pre, "prepublished"}, {active, "active"}, {vonly, "verify-only"}, {retired, "retired"}} {
		if got := StateName(tc.s); got != tc.name {
			t.Errorf("StateName(%v) = %q", tc.s, got)
		}
		if got, err := ParseState(tc.name); err != nil || got != tc.s {
			t.Errorf("ParseState(%q) = %v, %v", tc.name, got, err)
		}
	}
	for _, bad := range []string{"", "Operator", "room_token", "unspecified"} {
		if _, err := ParsePurpose(bad); err == nil {
			t.Errorf("ParsePurpose(%q) succeeded", bad)
		}
	}
	for _, bad := range []string{"", "Active", "verify_only", "unspecified"} {
		if _, err := ParseState(bad); err == nil {
			t.Errorf("ParseState(%q) succeeded", bad)
		}
	}
	if PurposeName(0) != "unspecified" || PurposeName(7) != "purpose(7)" || StateName(0) != "unspecified" || StateName(9) != "state(9)" {
		t.Error("names of unknown enum values")
	}
}
