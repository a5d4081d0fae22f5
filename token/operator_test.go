package token

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

func reasonOf(t *testing.T, err error) string {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *token.Error", err, err)
	}
	return te.Reason
}

func TestMintVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := f.claims()
	c.IssuedAt = t0.Add(500 * time.Millisecond) // truncated to the second
	raw := f.mint(t, c)
	got, err := VerifyOperator(raw, f.keyFunc(t0), testCluster, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := f.claims()
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("claims\n got %+v\nwant %+v", *got, want)
	}
	// Through the header form as gRPC metadata carries it.
	fromHeader, err := ParseBearer("Bearer " + raw)
	if err != nil || fromHeader != raw {
		t.Fatalf("ParseBearer = %q, %v", fromHeader, err)
	}
}

func TestMintFillsID(t *testing.T) {
	f := newFixture(t)
	c := f.claims()
	c.ID = ""
	c.Rooms, c.Caps = nil, nil
	a, err := VerifyOperator(f.mint(t, c), f.keyFunc(t0), testCluster, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := VerifyOperator(f.mint(t, c), f.keyFunc(t0), testCluster, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(a.ID) || a.ID == b.ID {
		t.Fatalf("generated ids %q %q", a.ID, b.ID)
	}
	if a.Caps != nil || a.Rooms != nil {
		t.Fatalf("empty caps/rooms came back as %v %v", a.Caps, a.Rooms)
	}
}

func TestMintRefuses(t *testing.T) {
	f := newFixture(t)
	for name, mutate := range map[string]func(*OperatorClaims){
		"cluster.node":    func(c *OperatorClaims) { c.Caps = append(c.Caps, "cluster.node") },
		"no cluster":      func(c *OperatorClaims) { c.ClusterID = "" },
		"no subject":      func(c *OperatorClaims) { c.Subject = "" },
		"no iat":          func(c *OperatorClaims) { c.IssuedAt = time.Time{} },
		"no exp":          func(c *OperatorClaims) { c.ExpiresAt = time.Time{} },
		"exp before iat":  func(c *OperatorClaims) { c.ExpiresAt = c.IssuedAt.Add(-time.Second) },
		"exp same second": func(c *OperatorClaims) { c.ExpiresAt = c.IssuedAt.Add(900 * time.Millisecond) },
		"empty cap":       func(c *OperatorClaims) { c.Caps = []string{""} },
		"empty room":      func(c *OperatorClaims) { c.Rooms = []string{""} },
		"oversized":       func(c *OperatorClaims) { c.Rooms = []string{strings.Repeat("r", MaxTokenBytes)} },
	} {
		c := f.claims()
		mutate(&c)
		if s, err := MintOperator(f.kid, f.priv, c); err == nil {
			t.Errorf("%s: minted %q", name, s)
		}
	}
	if _, err := MintOperator("", f.priv, f.claims()); err == nil {
		t.Error("minted without kid")
	}
	if _, err := MintOperator(f.kid, f.priv[:10], f.claims()); err == nil {
		t.Error("minted with a truncated key")
	}
}

// TestEveryReason reaches each Reason through VerifyOperator or ParseBearer.
func TestEveryReason(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	good := f.mint(t, f.claims())
	now := t0.Add(time.Minute)

	otherCluster := f.claims()
	otherCluster.ClusterID = "c-other"

	// A key that claims f's kid but is another key: the signature fails.
	impostor := handmade(map[string]any{"alg": "EdDSA", "kid": f.kid}, validMap(), other.priv)

	for _, tc := range []struct {
		name, raw string
		now       time.Time
		want      string
	}{
		{"missing", "", now, ReasonMissing},
		{"malformed", "not-a-token", now, ReasonMalformed},
		{"unknown key", other.mint(t, other.claims()), now, ReasonUnknownKey},
		{"bad signature", impostor, now, ReasonBadSignature},
		{"expired at exp", good, t0.Add(time.Hour), ReasonExpired},
		{"expired after exp", good, t0.Add(2 * time.Hour), ReasonExpired},
		{"wrong cluster", f.mint(t, otherCluster), now, ReasonWrongCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := VerifyOperator(tc.raw, f.keyFunc(tc.now), testCluster, tc.now)
			if err == nil || c != nil {
				t.Fatalf("verified: %+v", c)
			}
			if got := reasonOf(t, err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	if _, err := VerifyOperator(good, f.keyFunc(now), testCluster, t0.Add(time.Hour-time.Second)); err != nil {
		t.Fatalf("one second before exp: %v", err)
	}
	_, err := VerifyOperator(other.mint(t, other.claims()), f.keyFunc(now), testCluster, now)
	if !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("unknown key error does not wrap keyring.ErrUnknownKey: %v", err)
	}
}

func TestForeignAlgorithmsRejected(t *testing.T) {
	f := newFixture(t)
	pub := ed25519.PublicKey(f.keys[0].GetPublicKey())
	claims := validMap()
	for name, raw := range map[string]string{
		"alg none":          b64(map[string]any{"alg": "none", "kid": f.kid}) + "." + b64(claims) + ".",
		"alg none with sig": b64(map[string]any{"alg": "none", "kid": f.kid}) + "." + b64(claims) + ".AAAA",
		"HS256 with pubkey": hs256(map[string]any{"alg": "HS256", "kid": f.kid}, claims, pub),
		"alg Ed25519":       handmade(map[string]any{"alg": "Ed25519", "kid": f.kid}, claims, f.priv),
		"alg eddsa":         handmade(map[string]any{"alg": "eddsa", "kid": f.kid}, claims, f.priv),
		"no alg":            handmade(map[string]any{"kid": f.kid}, claims, f.priv),
	} {
		_, err := VerifyOperator(raw, f.keyFunc(t0), testCluster, t0)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if r := reasonOf(t, err); r != ReasonMalformed {
			t.Errorf("%s: reason %q (%v)", name, r, err)
		}
	}
}

func TestHandmadeTokens(t *testing.T) {
	f := newFixture(t)
	hdr := map[string]any{"alg": "EdDSA", "kid": f.kid, "typ": "JWT"}
	with := func(k string, v any) map[string]any {
		m := validMap()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	hdrWith := func(k string, v any) map[string]any {
		m := map[string]any{"alg": "EdDSA", "kid": f.kid}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name           string
		header, claims any
		want           string // "" = accepted
	}{
		{"valid handmade", hdr, validMap(), ""},
		{"caps empty list is present", hdr, with("caps", []string{}), ""},
		{"iat 59s ahead", hdr, with("iat", t0.Add(59*time.Second).Unix()), ""},
		{"iat 61s ahead", hdr, with("iat", t0.Add(61*time.Second).Unix()), ReasonMalformed},
		{"nbf ahead", hdr, with("nbf", t0.Add(time.Hour).Unix()), ReasonMalformed},
		{"nbf past", hdr, with("nbf", t0.Add(-time.Hour).Unix()), ""},
		{"cluster.node cap", hdr, with("caps", []string{"cluster.read", "cluster.node"}), ReasonMalformed},
		{"missing iss", hdr, with("iss", nil), ReasonMalformed},
		{"missing sub", hdr, with("sub", nil), ReasonMalformed},
		{"missing caps", hdr, with("caps", nil), ReasonMalformed},
		{"null caps", hdr, with("caps", []string(nil)), ReasonMalformed},
		{"missing iat", hdr, with("iat", nil), ReasonMalformed},
		{"missing exp", hdr, with("exp", nil), ReasonMalformed},
		{"missing jti", hdr, with("jti", nil), ReasonMalformed},
		{"caps not a list", hdr, with("caps", "cluster.read"), ReasonMalformed},
		{"exp a string", hdr, with("exp", "tomorrow"), ReasonMalformed},
		{"empty cap string", hdr, with("caps", []string{""}), ReasonMalformed},
		{"claims not an object", hdr, []string{"x"}, ReasonMalformed},
		{"no kid", hdrWith("kid", nil), validMap(), ReasonMalformed},
		{"empty kid", hdrWith("kid", ""), validMap(), ReasonMalformed},
		{"numeric kid", hdrWith("kid", 7), validMap(), ReasonMalformed},
		{"crit header", hdrWith("crit", []string{"exp"}), validMap(), ReasonMalformed},
		{"typ not JWT", hdrWith("typ", "at+jwt"), validMap(), ReasonMalformed},
		{"header not object", []int{1}, validMap(), ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := handmade(tc.header, tc.claims, f.priv)
			c, err := VerifyOperator(raw, f.keyFunc(t0), testCluster, t0)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if r := reasonOf(t, err); r != tc.want {
				t.Fatalf("reason %q (%v), want %q", r, err, tc.want)
			}
		})
	}
}

// TestTamperingRejected changes every byte of a token, one at a time.
func TestTamperingRejected(t *testing.T) {
	f := newFixture(t)
	raw := f.mint(t, f.claims())
	for i := 0; i < len(raw); i++ {
		for _, repl := range []byte{'A', 'B', 'x', '.', '-'} {
			if raw[i] == repl {
				continue
			}
			bad := raw[:i] + string(repl) + raw[i+1:]
			if c, err := VerifyOperator(bad, f.keyFunc(t0), testCluster, t0); err == nil {
				t.Fatalf("byte %d changed to %q still verifies: %+v", i, repl, c)
			}
		}
	}
	// Dropping or appending characters is tampering too.
	for _, bad := range []string{raw[1:], raw[:len(raw)-1], raw + "A", "A" + raw} {
		if _, err := VerifyOperator(bad, f.keyFunc(t0), testCluster, t0); err == nil {
			t.Fatalf("modified token %q verifies", bad)
		}
	}
}

func TestOversizedRejectedBeforeParsing(t *testing.T) {
	calls := 0
	keys := func(string) (ed25519.PublicKey, error) { calls++; return nil, keyring.ErrUnknownKey }
	raw := strings.Repeat("a", MaxTokenBytes) + ".b.c"
	_, err := VerifyOperator(raw, keys, testCluster, t0)
	if reasonOf(t, err) != ReasonMalformed || calls != 0 {
		t.Fatalf("oversized: %v, key lookups %d", err, calls)
	}
}

// TestRotation follows a key through the keyring states: a token stays
// valid through the grace period and dies with the key.
func TestRotation(t *testing.T) {
	f := newFixture(t)
	raw := f.mint(t, f.claims())
	next, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	old := f.keys[0]
	old.State = statev1.KeyState_KEY_STATE_VERIFY_ONLY
	old.RetireAfterUnixMs = t0.Add(10 * time.Minute).UnixMilli()
	keys := []*statev1.Key{old, next}

	if kid, _, _ := keyring.Signer(keys, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, t0.Add(2*time.Second)); kid != next.GetKid() {
		t.Fatalf("signer after rotation is %q", kid)
	}
	during := t0.Add(5 * time.Minute)
	if _, err := VerifyOperator(raw, KeyringKeyFunc(keys, during), testCluster, during); err != nil {
		t.Fatalf("old token during grace: %v", err)
	}
	after := t0.Add(10 * time.Minute)
	_, err = VerifyOperator(raw, KeyringKeyFunc(keys, after), testCluster, after)
	if err == nil || reasonOf(t, err) != ReasonUnknownKey {
		t.Fatalf("old token after grace: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Reason: ReasonExpired}
	if e.Error() != ReasonExpired || e.Unwrap() != nil {
		t.Fatalf("%q", e.Error())
	}
	inner := errors.New("detail")
	e = &Error{Reason: ReasonMalformed, Err: inner}
	if e.Error() != "malformed token: detail" || !errors.Is(e, inner) {
		t.Fatalf("%q", e.Error())
	}
	// A rejected token's error never echoes the token or its signature.
	f := newFixture(t)
	raw := f.mint(t, f.claims())
	sig := raw[strings.LastIndexByte(raw, '.')+1:]
	for _, bad := range []string{raw[:len(raw)-2] + "AA", raw + "x"} {
		_, err := VerifyOperator(bad, f.keyFunc(t0), "other", t0)
		if err == nil || strings.Contains(err.Error(), sig[:20]) || strings.Contains(err.Error(), raw[:30]) {
			t.Fatalf("error %q echoes token material", err)
		}
	}
}
