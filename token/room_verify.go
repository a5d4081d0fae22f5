package token

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"time"
)

// VerifyRoom checks a room token for a peer connecting to room at now,
// against the candidate keys the caller chose from the room's trust
// (keyring.RoomVerifyKeys / keyring.ClusterRoomVerifyKeys with t.Kid:
// only the key of that kid when Kid is set, every key that verifies now
// otherwise). Every failure is an *Error; the checks run in this fixed
// order, the reference's, extended at both ends:
//
//  1. nil token: ReasonRoomLocked;
//  2. fields (for tokens built in code rather than by ParseRoomToken):
//     MalformedField of peer_pubkey, sig, caps or kid;
//  3. t.PeerPubkey is not connecting: ReasonPeerMismatch;
//  4. now >= Expiry: ReasonExpired;
//  5. no candidate key: ReasonUnknownKey when t.Kid is set, else
//     ReasonBadSignature (nothing could have signed it);
//  6. no candidate verifies the signature: ReasonBadSignature.
//
// Cheap, key-independent checks come first, so a wrong or stale token
// costs no signature verification. Revocation needs the replicated state
// and is the caller's check, made after VerifyRoom succeeds with
// RoomTokenID / t.ID() and answered with ReasonRevoked.
func VerifyRoom(t *RoomToken, room string, connecting ed25519.PublicKey, keys []ed25519.PublicKey, now time.Time) error {
	_, err := VerifyRoomKey(t, room, connecting, keys, now)
	return err
}

// VerifyRoomKey is VerifyRoom that also says which of keys verified the
// signature (its index), so that a session can be closed when that key is
// retired. On error the index is -1.
func VerifyRoomKey(t *RoomToken, room string, connecting ed25519.PublicKey, keys []ed25519.PublicKey, now time.Time) (int, error) {
	if t == nil {
		return -1, fail(ReasonRoomLocked, nil)
	}
	peer, ok := decodeHex(t.PeerPubkey, ed25519.PublicKeySize)
	if !ok {
		return -1, malformedField(FieldPeerPubkey, "not 64 hex digits")
	}
	sig, ok := decodeHex(t.Sig, ed25519.SignatureSize)
	if !ok {
		return -1, malformedField(FieldSig, "not 128 hex digits")
	}
	if err := ValidateRoomCaps(t.Caps); err != nil {
		return -1, fail(MalformedField(FieldCaps), err)
	}
	if err := validKid(t.Kid); err != nil {
		return -1, err
	}
	if !bytes.Equal(peer, connecting) {
		return -1, fail(ReasonPeerMismatch, nil)
	}
	if Expired(t.Expiry, now) {
		return -1, fail(ReasonExpired, nil)
	}
	if len(keys) == 0 {
		if t.Kid != "" {
			return -1, fail(ReasonUnknownKey, errors.New("no key of the token's kid verifies in this room"))
		}
		return -1, fail(ReasonBadSignature, errors.New("the room has no key that verifies now"))
	}
	msg := RoomSigningMessage(room, peer, t.Expiry, t.Caps)
	for i, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig) {
			return i, nil
		}
	}
	return -1, fail(ReasonBadSignature, errors.New("no candidate key verifies the signature"))
}

// Expired reports whether a room token with this expiry (Unix seconds) is
// expired at now: valid while now < expiry, to the nanosecond (the whole
// second floor(now) < expiry is the same test, since expiry is whole).
func Expired(expiry uint64, now time.Time) bool {
	sec := now.Unix()
	return sec >= 0 && uint64(sec) >= expiry
}
