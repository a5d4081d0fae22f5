package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strconv"
	"strings"
)

// ParseRoomToken decodes hello.token. Every failure is an *Error:
// ReasonRoomLocked when raw is empty or JSON null (the hello has no
// token), otherwise MalformedField(X) naming the first bad field in the
// order token, peer_pubkey, expiry, sig, caps, kid.
//
// Field rules: peer_pubkey a string of 64 hex digits and sig of 128 (either
// case; normalised to lower case); expiry a JSON integer in 0..2^64-1
// written without sign, fraction or exponent; caps absent or null (no
// caps) or an array of strings that ValidateRoomCaps accepts; kid absent,
// null or a string of at most 128 bytes ("" is no kid). Keys are matched exactly (not
// case-insensitively, unlike encoding/json's struct decoding), and unknown
// keys are ignored, as the reference does, so that tokens from newer
// minters still parse; they are not signed, so they grant nothing.
func ParseRoomToken(raw json.RawMessage) (*RoomToken, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, fail(ReasonRoomLocked, nil)
	}
	if len(raw) > MaxTokenBytes {
		return nil, malformedField(FieldToken, "token is larger than the size limit")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil || fields == nil {
		return nil, malformedField(FieldToken, "token is not a JSON object")
	}
	t := &RoomToken{}
	var err *Error
	if t.PeerPubkey, err = hexField(fields, FieldPeerPubkey, ed25519.PublicKeySize); err != nil {
		return nil, err
	}
	if t.Expiry, err = expiryField(fields); err != nil {
		return nil, err
	}
	if t.Sig, err = hexField(fields, FieldSig, ed25519.SignatureSize); err != nil {
		return nil, err
	}
	if t.Caps, err = capsField(fields); err != nil {
		return nil, err
	}
	if t.Kid, err = kidField(fields); err != nil {
		return nil, err
	}
	return t, nil
}

// isNull reports whether a field is absent or JSON null.
func isNull(v json.RawMessage, ok bool) bool { return !ok || string(v) == "null" }

func stringField(fields map[string]json.RawMessage, name string) (string, *Error) {
	v, ok := fields[name]
	if isNull(v, ok) {
		return "", malformedField(name, "missing")
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", malformedField(name, "not a string")
	}
	return s, nil
}

func hexField(fields map[string]json.RawMessage, name string, n int) (string, *Error) {
	s, err := stringField(fields, name)
	if err != nil {
		return "", err
	}
	if _, ok := decodeHex(s, n); !ok {
		return "", malformedField(name, "not "+strconv.Itoa(2*n)+" hex digits")
	}
	return strings.ToLower(s), nil
}

func expiryField(fields map[string]json.RawMessage) (uint64, *Error) {
	v, ok := fields[FieldExpiry]
	if isNull(v, ok) {
		return 0, malformedField(FieldExpiry, "missing")
	}
	// The raw value is valid JSON already; accept only a plain integer, as
	// the reference's as_u64 does (1e3, 1.0 and -1 are refused).
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, malformedField(FieldExpiry, "not an unsigned integer")
		}
	}
	e, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, malformedField(FieldExpiry, "not an unsigned 64-bit integer")
	}
	return e, nil
}

func capsField(fields map[string]json.RawMessage) ([]string, *Error) {
	v, ok := fields[FieldCaps]
	if isNull(v, ok) {
		return []string{}, nil
	}
	var caps []string
	if err := json.Unmarshal(v, &caps); err != nil || caps == nil {
		return nil, malformedField(FieldCaps, "not an array of strings")
	}
	if err := ValidateRoomCaps(caps); err != nil {
		return nil, fail(MalformedField(FieldCaps), err)
	}
	return caps, nil
}

func kidField(fields map[string]json.RawMessage) (string, *Error) {
	v, ok := fields[FieldKid]
	if isNull(v, ok) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", malformedField(FieldKid, "not a string")
	}
	if err := validKid(s); err != nil {
		return "", err
	}
	return s, nil
}

// validKid bounds a kid; it comes from an untrusted token and ends up in
// logs and key lookups. Its characters are not restricted here: kids are
// chosen by whoever sets a room key, and a kid nobody set simply matches
// no key ("unknown key id").
func validKid(s string) *Error {
	if len(s) > maxKidLen {
		return malformedField(FieldKid, "longer than "+strconv.Itoa(maxKidLen)+" bytes")
	}
	return nil
}
