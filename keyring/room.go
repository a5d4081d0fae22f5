package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// roomKidPrefix marks kids derived for room keys, apart from the cluster
// keyring's "rt-" and "op-", so a kid in a log says which keyring it names.
const roomKidPrefix = "rk"

// RoomKeyID derives the kid of a room's own key: "rk-<12 hex of
// sha256(pub)>", the same scheme as KeyID. set-room-key uses it when the
// operator gives no kid.
func RoomKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return roomKidPrefix + "-" + hex.EncodeToString(sum[:])[:kidHexLen]
}

// RoomVerifyKeys returns the public keys of a room's own keys that verify
// at now (see RoomKeyState), in the order given; with kid != "" only the
// key with that kid is considered. Keys with a malformed public key are
// skipped (fail closed). The slices are copies.
func RoomVerifyKeys(keys []*statev1.RoomKey, kid string, now time.Time) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, k := range keys {
		if kid != "" && k.GetKid() != kid {
			continue
		}
		if !Verifies(RoomKeyState(k, now)) || len(k.GetPublicKey()) != ed25519.PublicKeySize {
			continue
		}
		out = append(out, bytes.Clone(k.GetPublicKey()))
	}
	return out
}

// ClusterRoomVerifyKeys is RoomVerifyKeys for rooms locked to the cluster
// keyring: the cluster's room-token keys that verify at now.
func ClusterRoomVerifyKeys(keys []*statev1.Key, kid string, now time.Time) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, k := range keys {
		if k.GetPurpose() != statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN {
			continue
		}
		if kid != "" && k.GetKid() != kid {
			continue
		}
		if !Verifies(State(k, now)) || len(k.GetPublicKey()) != ed25519.PublicKeySize {
			continue
		}
		out = append(out, bytes.Clone(k.GetPublicKey()))
	}
	return out
}
