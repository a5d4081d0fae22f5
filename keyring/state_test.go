package keyring

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// at is t0 plus ms milliseconds.
func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// abs turns an offset from t0 into the absolute ms stored in a key (0 stays
// 0, meaning "unset").
func abs(off int64) int64 {
	if off == 0 {
		return 0
	}
	return t0.UnixMilli() + off
}

// TestStateTransitions walks every rule of State at the instants where it
// changes: one millisecond before, at, and after.
func TestStateTransitions(t *testing.T) {
	type times struct{ activate, superseded, retire int64 } // offsets, 0 = unset
	for _, tc := range []struct {
		name   string
		stored statev1.KeyState
		times  times
		now    int64
		want   statev1.KeyState
	}{
		{"active, no times", active, times{}, 0, active},
		{"active before its activation is prepublished", active, times{100, 0, 0}, 99, pre},
		{"active at its activation", active, times{100, 0, 0}, 100, active},
		{"prepublished before activation", pre, times{100, 0, 0}, 99, pre},
		{"prepublished at activation becomes active", pre, times{100, 0, 0}, 100, active},
		{"prepublished after activation", pre, times{100, 0, 0}, 101, active},
		{"prepublished without activation waits for promotion", pre, times{}, 1e9, pre},
		{"before supersession still active", active, times{0, 200, 300}, 199, active},
		{"at supersession verify-only", active, times{0, 200, 300}, 200, vonly},
		{"just before retire_after verify-only", active, times{0, 200, 300}, 299, vonly},
		{"at retire_after retired", active, times{0, 200, 300}, 300, retired},
		{"after retire_after retired", active, times{0, 200, 300}, 301, retired},
		{"superseded with no grace retires at once", active, times{0, 200, 200}, 200, retired},
		{"superseded while still prepublished", pre, times{100, 50, 0}, 60, vonly},
		{"retire_after alone retires an active key", active, times{0, 0, 300}, 300, retired},
		{"stored verify-only without times stays", vonly, times{}, 1e9, vonly},
		{"stored verify-only before retire_after", vonly, times{0, 0, 300}, 299, vonly},
		{"stored verify-only at retire_after", vonly, times{0, 0, 300}, 300, retired},
		{"stored verify-only ignores a future supersession", vonly, times{0, 500, 0}, 0, vonly},
		{"stored retired with future times stays retired", retired, times{1e6, 1e6, 1e6}, 0, retired},
		{"unspecified stays unspecified", unspec, times{}, 0, unspec},
		{"out-of-range state is unspecified", statev1.KeyState(42), times{}, 0, unspec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &statev1.Key{State: tc.stored, ActivateUnixMs: abs(tc.times.activate),
				SupersededUnixMs: abs(tc.times.superseded), RetireAfterUnixMs: abs(tc.times.retire)}
			if got := State(k, at(tc.now)); got != tc.want {
				t.Fatalf("State = %s, want %s", StateName(got), StateName(tc.want))
			}
			// The room-key rule is the same except that room keys have no
			// scheduled activation.
			rk := &statev1.RoomKey{State: tc.stored, SupersededUnixMs: abs(tc.times.superseded), RetireAfterUnixMs: abs(tc.times.retire)}
			want := tc.want
			if want == pre || (want == active && tc.stored == pre) {
				want = tc.stored
			}
			if got := RoomKeyState(rk, at(tc.now)); got != want {
				t.Fatalf("RoomKeyState = %s, want %s", StateName(got), StateName(want))
			}
		})
	}
}

// TestRotationHandOver: the instant the new key activates is the instant
// the old one stops signing; the old one verifies until its grace ends.
func TestRotationHandOver(t *testing.T) {
	old := key(t, opPurpose, active, 0, 1, 0)
	next := key(t, opPurpose, pre, 10, 1000, 0)
	old.SupersededUnixMs = next.ActivateUnixMs
	old.RetireAfterUnixMs = next.ActivateUnixMs + 500
	keys := []*statev1.Key{old, next}

	for _, tc := range []struct {
		now        int64
		signer     *statev1.Key
		oldVerify  bool
		nextVerify bool
	}{
		{999, old, true, true}, // prepublished: verifies before it signs
		{1000, next, true, true},
		{1499, next, true, true},
		{1500, next, false, true},
	} {
		kid, _, err := Signer(keys, opPurpose, at(tc.now))
		if err != nil || kid != tc.signer.GetKid() {
			t.Errorf("at +%d: signer %q, %v; want %q", tc.now, kid, err, tc.signer.GetKid())
		}
		_, err = VerifyKey(keys, opPurpose, old.GetKid(), at(tc.now))
		if (err == nil) != tc.oldVerify {
			t.Errorf("at +%d: old key verify err %v, want verifies=%v", tc.now, err, tc.oldVerify)
		}
		_, err = VerifyKey(keys, opPurpose, next.GetKid(), at(tc.now))
		if (err == nil) != tc.nextVerify {
			t.Errorf("at +%d: new key verify err %v, want verifies=%v", tc.now, err, tc.nextVerify)
		}
	}
	// Retired explicitly: neither signs nor verifies, whatever its times.
	next.State = retired
	if _, _, err := Signer(keys, opPurpose, at(2000)); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("signer after retiring every key: %v", err)
	}
	if _, err := VerifyKey(keys, opPurpose, next.GetKid(), at(2000)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retired key verifies: %v", err)
	}
}

func TestSignsNowOrLater(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		stored                       statev1.KeyState
		activate, superseded, retire int64
		want                         bool
	}{
		{"active", active, 0, 0, 0, true},
		{"prepublished, scheduled", pre, 100, 0, 0, true},
		{"prepublished, no activation", pre, 0, 0, 0, false},
		{"prepublished, superseded before it activates", pre, 100, 50, 0, false},
		{"prepublished, superseded at activation", pre, 100, 100, 0, false},
		{"prepublished, retires before it activates", pre, 100, 0, 90, false},
		{"active now, superseded later", active, 0, 100, 200, true},
		{"verify-only", vonly, 0, 0, 0, false},
		{"retired", retired, 0, 0, 0, false},
	} {
		k := &statev1.Key{State: tc.stored, ActivateUnixMs: abs(tc.activate), SupersededUnixMs: abs(tc.superseded), RetireAfterUnixMs: abs(tc.retire)}
		if got := SignsNowOrLater(k, at(10)); got != tc.want {
			t.Errorf("%s: SignsNowOrLater = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRoomKeyID(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pub)
	want := "rk-" + hex.EncodeToString(sum[:])[:12]
	if got := RoomKeyID(pub); got != want {
		t.Fatalf("RoomKeyID = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^rk-[0-9a-f]{12}$`).MatchString(want) {
		t.Fatalf("room kid %q has the wrong shape", want)
	}
	if KeyID(rtPurpose, pub) == want || KeyID(opPurpose, pub) == want {
		t.Fatal("room kid collides with a cluster kid of the same key")
	}
}

func roomKey(t *testing.T, kid string, state statev1.KeyState, superseded, retire int64) *statev1.RoomKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &statev1.RoomKey{Kid: kid, PublicKey: pub, State: state, AddedUnixMs: t0.UnixMilli(),
		SupersededUnixMs: abs(superseded), RetireAfterUnixMs: abs(retire)}
}

func TestRoomVerifyKeys(t *testing.T) {
	a := roomKey(t, "a", active, 0, 0)
	b := roomKey(t, "b", active, 100, 200) // rotated out: verify-only until +200
	c := roomKey(t, "c", retired, 0, 0)
	d := roomKey(t, "d", pre, 0, 0)
	bad := roomKey(t, "bad", active, 0, 0)
	bad.PublicKey = bad.PublicKey[:16]
	keys := []*statev1.RoomKey{a, b, c, d, bad}

	names := func(pubs []ed25519.PublicKey) []string {
		var out []string
		for _, p := range pubs {
			for _, k := range keys {
				if ed25519.PublicKey(k.GetPublicKey()).Equal(p) {
					out = append(out, k.GetKid())
				}
			}
		}
		return out
	}
	for _, tc := range []struct {
		kid  string
		now  int64
		want []string
	}{
		{"", 0, []string{"a", "b", "d"}},
		{"", 199, []string{"a", "b", "d"}},
		{"", 200, []string{"a", "d"}},
		{"b", 150, []string{"b"}},
		{"b", 200, nil},
		{"c", 0, nil},
		{"bad", 0, nil},
		{"nope", 0, nil},
	} {
		got := names(RoomVerifyKeys(keys, tc.kid, at(tc.now)))
		if len(got) != len(tc.want) {
			t.Errorf("kid %q at +%d: %v, want %v", tc.kid, tc.now, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("kid %q at +%d: %v, want %v", tc.kid, tc.now, got, tc.want)
			}
		}
	}
	pubs := RoomVerifyKeys(keys, "a", at(0))
	pubs[0][0] ^= 0xff
	if pubs[0][0] == a.GetPublicKey()[0] {
		t.Fatal("RoomVerifyKeys returned the state's own slice")
	}
}

func TestClusterRoomVerifyKeys(t *testing.T) {
	rt1 := key(t, rtPurpose, active, 0, 0, 0)
	rt2 := key(t, rtPurpose, active, 0, 0, 0)
	rt2.SupersededUnixMs, rt2.RetireAfterUnixMs = abs(100), abs(200)
	op := key(t, opPurpose, active, 0, 0, 0)
	gone := key(t, rtPurpose, retired, 0, 0, 0)
	keys := []*statev1.Key{rt1, rt2, op, gone}
	if got := ClusterRoomVerifyKeys(keys, "", at(150)); len(got) != 2 {
		t.Fatalf("at +150: %d keys, want rt1 and rt2", len(got))
	}
	if got := ClusterRoomVerifyKeys(keys, "", at(200)); len(got) != 1 || !ed25519.PublicKey(rt1.GetPublicKey()).Equal(got[0]) {
		t.Fatalf("at +200: %d keys, want rt1 only", len(got))
	}
	for _, kid := range []string{op.GetKid(), gone.GetKid(), "unknown"} {
		if got := ClusterRoomVerifyKeys(keys, kid, at(0)); got != nil {
			t.Errorf("kid %s: %d keys, want none", kid, len(got))
		}
	}
	if got := ClusterRoomVerifyKeys(keys, rt2.GetKid(), at(0)); len(got) != 1 || !ed25519.PublicKey(rt2.GetPublicKey()).Equal(got[0]) {
		t.Fatal("kid filter did not pick rt2")
	}
}
