package token

import "errors"

// Reasons are stable strings: they are sent verbatim in gRPC
// UNAUTHENTICATED messages ("auth: " + Reason) and used as the reason label
// of nodalmerge_auth_failures_total, so they must never change casually and
// never contain token contents.
const (
	ReasonMissing      = "missing bearer token"
	ReasonMalformed    = "malformed token"
	ReasonUnknownKey   = "unknown key id"
	ReasonBadSignature = "signature verification failed"
	ReasonExpired      = "token has expired"
	ReasonWrongCluster = "token issued for another cluster"
)

// Room-token reasons (SPEC section 3). The data plane sends them as
// {"type":"error","msg":"auth: " + Reason}; the texts are the reference
// server's, byte for byte (the dash in ReasonRoomLocked is U+2014).
// ReasonExpired, ReasonBadSignature and ReasonUnknownKey above are shared
// with operator tokens: their texts are the same.
const (
	// ReasonRoomLocked is for a locked room whose hello carries no token
	// (ParseRoomToken answers it for an absent or null token).
	ReasonRoomLocked = "room is locked — include a capability token in hello"
	// ReasonPeerMismatch: the token was minted for another peer.
	ReasonPeerMismatch = "token peer_pubkey does not match connecting peer"
	// ReasonRevoked is for the caller's revocation check, which needs the
	// replicated state and so is not made by VerifyRoom.
	ReasonRevoked = "token revoked"
	// MalformedFieldPrefix starts the reason of a room token whose field is
	// missing or ill-formed; the field's JSON name follows
	// (see MalformedField). "token" names the object as a whole.
	MalformedFieldPrefix = "malformed token field: "
)

// JSON names of the room-token fields, as they appear after
// MalformedFieldPrefix. FieldToken stands for the whole object.
const (
	FieldToken      = "token"
	FieldPeerPubkey = "peer_pubkey"
	FieldExpiry     = "expiry"
	FieldCaps       = "caps"
	FieldSig        = "sig"
	FieldKid        = "kid"
)

// MalformedField returns the reason for a malformed room-token field.
func MalformedField(field string) string { return MalformedFieldPrefix + field }

// RoomReasons lists every reason a room-token check can end with, in a
// stable order, so that callers can start their failure counters at zero
// (SPEC section 5) with a bounded label set.
func RoomReasons() []string {
	return []string{
		ReasonRoomLocked, ReasonExpired, ReasonBadSignature, ReasonPeerMismatch,
		MalformedField(FieldToken), MalformedField(FieldPeerPubkey), MalformedField(FieldExpiry),
		MalformedField(FieldCaps), MalformedField(FieldSig), MalformedField(FieldKid),
		ReasonRevoked, ReasonUnknownKey,
	}
}

// Error is a token failure. Reason is one of the Reason constants; Err, when
// set, says more for logs. Err is always built by this package from fixed
// phrases, claim names, key ids and the parser's own messages, never from
// the token's signature or the raw token.
type Error struct {
	Reason string
	Err    error
}

// Error returns the reason, followed by the detail when there is one.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap exposes the detail, so errors.Is(err, keyring.ErrUnknownKey) works.
func (e *Error) Unwrap() error { return e.Err }

func fail(reason string, err error) *Error { return &Error{Reason: reason, Err: err} }

func malformed(detail string) *Error { return fail(ReasonMalformed, errors.New(detail)) }

// malformedField fails a room token on one field; detail is a fixed phrase.
func malformedField(field, detail string) *Error {
	return fail(MalformedField(field), errors.New(detail))
}
