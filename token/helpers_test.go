package token

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

const testCluster = "c-test"

var t0 = time.Unix(1_700_000_000, 0)

// fixture is a real keyring with one active operator key.
type fixture struct {
	keys []*statev1.Key
	kid  string
	priv ed25519.PrivateKey
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	k, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, t0)
	if err != nil {
		t.Fatal(err)
	}
	keys := []*statev1.Key{k}
	kid, priv, err := keyring.Signer(keys, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{keys: keys, kid: kid, priv: priv}
}

func (f *fixture) keyFunc(now time.Time) KeyFunc { return KeyringKeyFunc(f.keys, now) }

func (f *fixture) claims() OperatorClaims {
	return OperatorClaims{
		ClusterID: testCluster,
		Subject:   "alice",
		Caps:      []string{"cluster.read", "room.admin"},
		Rooms:     []string{"team/*"},
		IssuedAt:  t0,
		ExpiresAt: t0.Add(time.Hour),
		ID:        "0123456789abcdef0123456789abcdef",
	}
}

func (f *fixture) mint(t testing.TB, c OperatorClaims) string {
	t.Helper()
	s, err := MintOperator(f.kid, f.priv, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validMap is the claim set of a good token as a map, for hand-made tokens
// that drop or change single claims.
func validMap() map[string]any {
	return map[string]any{
		"iss": testCluster, "sub": "alice", "caps": []string{"cluster.read"},
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "jti": "abc",
	}
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// handmade builds a compact JWS with any header and claims, signed EdDSA
// with priv, bypassing every check MintOperator makes.
func handmade(header, claims any, priv ed25519.PrivateKey) string {
	in := b64(header) + "." + b64(claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// hs256 builds an HS256 token keyed with secret: the classic confusion
// attack uses the verifier's public key as the HMAC secret.
func hs256(header, claims any, secret []byte) string {
	in := b64(header) + "." + b64(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
