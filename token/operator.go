package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// MaxClockSkew is how far in the future iat (and nbf) may be: clocks of
// the minting node and the verifying node may differ by this much.
const MaxClockSkew = 60 * time.Second

// maxKidLen bounds the kid header; real kids are 15 bytes ("op-" + 12 hex).
const maxKidLen = 128

// KeyFunc returns the Ed25519 public key that verifies tokens with the given
// kid, or an error wrapping keyring.ErrUnknownKey when no such key may
// verify now (typically keyring.VerifyKey over the replicated keyring).
type KeyFunc func(kid string) (ed25519.PublicKey, error)

// MintOperator signs c with priv under kid. It refuses the cluster.node
// capability, empty required claims and an expiry not after issue time.
// Times are truncated to whole seconds (the JWT NumericDate precision), and
// an empty ID is replaced by a random 16-byte hex token id.
func MintOperator(kid string, priv ed25519.PrivateKey, c OperatorClaims) (string, error) {
	switch {
	case kid == "" || len(kid) > maxKidLen:
		return "", fmt.Errorf("token: mint: kid must be 1..%d bytes", maxKidLen)
	case len(priv) != ed25519.PrivateKeySize:
		return "", errors.New("token: mint: not an Ed25519 private key")
	case c.ClusterID == "":
		return "", errors.New("token: mint: cluster id (iss) is empty")
	case c.Subject == "":
		return "", errors.New("token: mint: subject (sub) is empty")
	case c.IssuedAt.IsZero() || c.ExpiresAt.IsZero():
		return "", errors.New("token: mint: issued-at and expires-at are required")
	case !c.ExpiresAt.Truncate(time.Second).After(c.IssuedAt.Truncate(time.Second)):
		return "", errors.New("token: mint: expires-at must be after issued-at")
	case HasCap(c.Caps, CapClusterNode):
		return "", fmt.Errorf("token: mint: capability %s is held only by node certificates", CapClusterNode)
	case slicesHasEmpty(c.Caps) || slicesHasEmpty(c.Rooms):
		return "", errors.New("token: mint: caps and rooms must not contain empty strings")
	}
	if c.ID == "" {
		id, err := NewID()
		if err != nil {
			return "", fmt.Errorf("token: mint: %w", err)
		}
		c.ID = id
	}
	caps := c.Caps
	if caps == nil {
		caps = []string{} // caps is required on the wire, even when empty
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &wireClaims{
		Issuer:    c.ClusterID,
		Subject:   c.Subject,
		Caps:      caps,
		Rooms:     c.Rooms,
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		ID:        c.ID,
	})
	t.Header["kid"] = kid
	s, err := t.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("token: mint %s: sign: %w", c.ID, err)
	}
	if len(s) > MaxTokenBytes {
		return "", fmt.Errorf("token: mint %s: token would be %d bytes, over the %d-byte limit", c.ID, len(s), MaxTokenBytes)
	}
	return s, nil
}

// NewID returns a random 16-byte hex token id (the jti). Callers that must
// log or answer the id of a token they mint choose it with NewID and pass
// it in OperatorClaims.ID.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random token id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func slicesHasEmpty(s []string) bool {
	for _, v := range s {
		if v == "" {
			return true
		}
	}
	return false
}

// parser is stateless once built; it is constructed per call anyway so the
// package holds no globals. Strict decoding rejects non-canonical base64
// (so no two encodings of one token both verify); claims validation is
// ours (see validate).
func newParser() *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithStrictDecoding(),
		jwt.WithoutClaimsValidation(),
	)
}

// VerifyOperator checks raw (the JWT, without "Bearer ") and returns its
// claims. Order: shape and size; header (alg EdDSA, kid present, no crit);
// key lookup through keys; signature; then claims (required fields, no
// cluster.node, iss == clusterID, now < exp, iat and nbf not more than
// MaxClockSkew ahead). Claim-based reasons are reported only for tokens
// whose signature verified, so a forger learns nothing from them.
func VerifyOperator(raw string, keys KeyFunc, clusterID string, now time.Time) (*OperatorClaims, error) {
	if raw == "" {
		return nil, fail(ReasonMissing, nil)
	}
	if err := checkShape(raw); err != nil {
		return nil, err
	}
	kid, herr := checkHeader(raw[:strings.IndexByte(raw, '.')])
	if herr != nil {
		return nil, herr
	}
	var keyErr error
	var wc wireClaims
	_, err := newParser().ParseWithClaims(raw, &wc, func(*jwt.Token) (any, error) {
		pub, err := keys(kid)
		if err != nil {
			keyErr = err
			return nil, err
		}
		if len(pub) != ed25519.PublicKeySize {
			keyErr = fmt.Errorf("key %s is not an Ed25519 public key", kid)
			return nil, keyErr
		}
		return pub, nil
	})
	switch {
	case keyErr != nil:
		return nil, fail(ReasonUnknownKey, keyErr)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, fail(ReasonBadSignature, errors.New("signature does not verify"))
	case err != nil:
		return nil, fail(ReasonMalformed, err)
	}
	return validate(&wc, clusterID, now)
}

// jwsHeader is the part of the JOSE header we look at.
type jwsHeader struct {
	Alg  *string         `json:"alg"`
	Kid  *string         `json:"kid"`
	Typ  *string         `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// checkHeader validates the JOSE header before the library sees the token,
// so that alg and kid problems get precise reasons. Only "EdDSA" is
// accepted ("none", HS256 and every other alg are malformed here; the
// parser's WithValidMethods is a second line); "crit" is refused because
// we implement no header extensions (RFC 7515 §4.1.11).
func checkHeader(seg string) (string, *Error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return "", malformed("header is not base64url")
	}
	var h jwsHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return "", malformed("header is not a JSON object")
	}
	switch {
	case h.Alg == nil:
		return "", malformed("header has no alg")
	case *h.Alg != jwt.SigningMethodEdDSA.Alg():
		return "", malformed("alg is not EdDSA")
	case h.Kid == nil || *h.Kid == "":
		return "", malformed("header has no kid")
	case len(*h.Kid) > maxKidLen:
		return "", malformed("kid is too long")
	case h.Typ != nil && !strings.EqualFold(*h.Typ, "JWT"):
		return "", malformed("typ is not JWT")
	case h.Crit != nil:
		return "", malformed("header has crit extensions")
	}
	return *h.Kid, nil
}

// validate checks the claims of a token whose signature verified.
func validate(wc *wireClaims, clusterID string, now time.Time) (*OperatorClaims, error) {
	switch {
	case wc.Issuer == "":
		return nil, malformed("missing claim iss")
	case wc.Subject == "":
		return nil, malformed("missing claim sub")
	case wc.Caps == nil:
		return nil, malformed("missing claim caps")
	case wc.IssuedAt == nil:
		return nil, malformed("missing claim iat")
	case wc.ExpiresAt == nil:
		return nil, malformed("missing claim exp")
	case wc.ID == "":
		return nil, malformed("missing claim jti")
	case slicesHasEmpty(wc.Caps) || slicesHasEmpty(wc.Rooms):
		return nil, malformed("empty string in caps or rooms")
	case HasCap(wc.Caps, CapClusterNode):
		return nil, malformed("capability " + CapClusterNode + " is not allowed in tokens")
	case wc.Issuer != clusterID:
		return nil, fail(ReasonWrongCluster, nil)
	case !now.Before(wc.ExpiresAt.Time):
		return nil, fail(ReasonExpired, nil)
	case wc.IssuedAt.After(now.Add(MaxClockSkew)):
		return nil, malformed("iat is in the future")
	case wc.NotBefore != nil && wc.NotBefore.After(now.Add(MaxClockSkew)):
		return nil, malformed("token is not valid yet (nbf)")
	}
	c := &OperatorClaims{
		ClusterID: wc.Issuer,
		Subject:   wc.Subject,
		IssuedAt:  wc.IssuedAt.Time,
		ExpiresAt: wc.ExpiresAt.Time,
		ID:        wc.ID,
	}
	if len(wc.Caps) > 0 {
		c.Caps = wc.Caps
	}
	if len(wc.Rooms) > 0 {
		c.Rooms = wc.Rooms
	}
	return c, nil
}

// KeyringKeyFunc returns a KeyFunc over one read of the replicated
// keyring: operator-purpose keys that may verify at now (see
// keyring.VerifyKey). Build it per request so rotation and retirement
// apply to the very next call.
func KeyringKeyFunc(keys []*statev1.Key, now time.Time) KeyFunc {
	return func(kid string) (ed25519.PublicKey, error) {
		return keyring.VerifyKey(keys, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, kid, now)
	}
}
