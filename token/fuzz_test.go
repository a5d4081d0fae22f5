package token

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// FuzzParseBearer: never panics; an accepted value is a token that the
// header form reproduces exactly.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer a.b.c", "bearer   x.y.z", "Basic abc", "Bearer", "Bearer a b", "Bearer a..b", "Bearer \xff.a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		raw, err := ParseBearer(h)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || (te.Reason != ReasonMissing && te.Reason != ReasonMalformed) {
				t.Fatalf("ParseBearer(%q) error %v has an unexpected type or reason", h, err)
			}
			return
		}
		if len(raw) == 0 || len(raw) > MaxTokenBytes {
			t.Fatalf("accepted token of length %d", len(raw))
		}
		again, err := ParseBearer("Bearer " + raw)
		if err != nil || again != raw {
			t.Fatalf("re-parse of %q = %q, %v", raw, again, err)
		}
	})
}

// FuzzVerifyOperator: never panics; every error is a *Error with a known
// reason; a verified token re-verifies to the same claims, and its claims
// minted again verify to the same claims.
func FuzzVerifyOperator(f *testing.F) {
	fx := newFixture(f)
	good := fx.mint(f, fx.claims())
	c := fx.claims()
	c.Rooms, c.Caps = nil, nil
	f.Add(good)
	f.Add(fx.mint(f, c))
	f.Add(handmade(map[string]any{"alg": "EdDSA", "kid": fx.kid}, validMap(), fx.priv))
	f.Add(handmade(map[string]any{"alg": "EdDSA", "kid": fx.kid}, map[string]any{"iss": testCluster, "sub": "s", "caps": []string{}, "iat": 1.5, "exp": 1e10, "jti": "j", "nbf": -1}, fx.priv))
	f.Add(hs256(map[string]any{"alg": "HS256", "kid": fx.kid}, validMap(), fx.keys[0].GetPublicKey()))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	reasons := map[string]bool{ReasonMissing: true, ReasonMalformed: true, ReasonUnknownKey: true, ReasonBadSignature: true, ReasonExpired: true, ReasonWrongCluster: true}
	now := t0.Add(time.Minute)
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := VerifyOperator(raw, fx.keyFunc(now), testCluster, now)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || !reasons[te.Reason] {
				t.Fatalf("error %v has an unexpected type or reason", err)
			}
			return
		}
		again, err := VerifyOperator(raw, fx.keyFunc(now), testCluster, now)
		if err != nil || !reflect.DeepEqual(got, again) {
			t.Fatalf("re-verify: %+v, %v; first %+v", again, err, got)
		}
		remint, err := MintOperator(fx.kid, fx.priv, *got)
		if err != nil {
			// Verified claims that cannot be minted are acceptable only when
			// exp <= iat (iat may be up to MaxClockSkew ahead); anything
			// else is a bug.
			// Re-encoding may also grow a token that was near the size limit.
			if got.ExpiresAt.After(got.IssuedAt) && len(raw) < MaxTokenBytes/2 {
				t.Fatalf("verified claims %+v cannot be minted: %v", got, err)
			}
			return
		}
		back, err := VerifyOperator(remint, fx.keyFunc(now), testCluster, now)
		if err != nil || !reflect.DeepEqual(got, back) {
			t.Fatalf("re-minted claims differ: %+v, %v; want %+v", back, err, got)
		}
	})
}
