package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/protocol"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// admission is the data plane's room admission (SPEC section 3), read from
// this node's replicated state, so that a client is judged the same on
// whichever node it reaches:
//
//   - a locked room needs a hello.token that verifies under the room's
//     trust keys: its own keys (mode own-keys) or the cluster keyring's
//     room-token keys (mode cluster); with a kid only that key is tried;
//   - an open room needs no token, and a token there must still verify
//     (under the room's own keys or the cluster's room-token keys) to grant
//     its classes: a bad token is refused, never silently ignored;
//   - a revoked token, or a peer revoked in the room, is refused.
//
// The grant carries the token's classes, path grants, expiry, id and the
// kid of the key that verified it, which the sweeper uses to close the
// session when any of them stops holding.
type admission struct {
	store *raftstore.Store
	now   func() time.Time
	// failed counts a refusal into nodalmerge_auth_failures_total.
	failed func(reason string)
}

// trustKey is one key a room's tokens may verify under, with its kid and
// the time it stops verifying (zero: not scheduled), which is when the
// sweeper must look at its sessions again.
type trustKey struct {
	kid   string
	pub   ed25519.PublicKey
	until time.Time
}

// retireTime is a key's retire_after as a time; zero when unset.
func retireTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// roomKeys reads the keys a room's tokens are judged against, at now: the
// room's own keys and, unless the room is locked to its own keys, the
// cluster's room-token keys; with kid != "" only the key of that kid; each
// kept when keep accepts its effective state. It also answers the room's
// lock mode.
func roomKeys(store *raftstore.Store, room, kid string, now time.Time, keep func(statev1.KeyState) bool) (mode statev1.LockMode, own, cluster []trustKey) {
	mode = statev1.LockMode_LOCK_MODE_OPEN
	add := func(to *[]trustKey, id string, pub []byte, retireAfterMs int64, st statev1.KeyState) {
		if (kid == "" || id == kid) && keep(st) && len(pub) == ed25519.PublicKeySize {
			*to = append(*to, trustKey{kid: id, pub: bytes.Clone(pub), until: retireTime(retireAfterMs)})
		}
	}
	store.ViewRoom(room, func(r *statev1.Room) {
		mode = r.GetLock()
		for _, k := range r.GetKeys() {
			add(&own, k.GetKid(), k.GetPublicKey(), k.GetRetireAfterUnixMs(), keyring.RoomKeyState(k, now))
		}
	})
	if mode != statev1.LockMode_LOCK_MODE_OWN_KEYS {
		store.ViewKeys(kid, func(k *statev1.Key) {
			if k.GetPurpose() == statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN {
				add(&cluster, k.GetKid(), k.GetPublicKey(), k.GetRetireAfterUnixMs(), keyring.State(k, now))
			}
		})
	}
	return mode, own, cluster
}

// trust returns the keys that verify a room's tokens at now (kid != "":
// only that key), by the room's lock mode. Open rooms trust both their own
// keys and the cluster's room-token keys, since a token there only adds
// classes.
func trust(store *raftstore.Store, room, kid string, now time.Time) []trustKey {
	mode, own, cluster := roomKeys(store, room, kid, now, keyring.Verifies)
	switch mode {
	case statev1.LockMode_LOCK_MODE_OWN_KEYS:
		return own
	case statev1.LockMode_LOCK_MODE_CLUSTER:
		return cluster
	default:
		return append(own, cluster...)
	}
}

// retiredSigner reports whether the token names (kid) a key of the room's
// trust that no longer verifies — retired or past its grace — and that
// key did sign it. Only tokens with a kid are looked up: trying every
// retired key of a room for kid-less tokens would make a bad token cost
// one verification per key ever retired.
func retiredSigner(store *raftstore.Store, room string, tok *token.RoomToken, peer []byte, now time.Time) bool {
	if tok.Kid == "" {
		return false
	}
	_, own, cluster := roomKeys(store, room, tok.Kid, now, func(st statev1.KeyState) bool { return !keyring.Verifies(st) })
	retired := append(own, cluster...)
	if len(retired) == 0 {
		return false
	}
	sig, err := hex.DecodeString(tok.Sig)
	return err == nil && ed25519.Verify(retired[0].pub, token.RoomSigningMessage(room, peer, tok.Expiry, tok.Caps), sig)
}

// locked reports whether room needs a token (a cheap read: no keys).
func locked(store *raftstore.Store, room string) bool {
	mode := statev1.LockMode_LOCK_MODE_OPEN
	store.ViewRoom(room, func(r *statev1.Room) { mode = r.GetLock() })
	return mode == statev1.LockMode_LOCK_MODE_OWN_KEYS || mode == statev1.LockMode_LOCK_MODE_CLUSTER
}

// admit is dataplane.Config.Admission.
func (a *admission) admit(room string, h *protocol.Hello) (*dataplane.Grant, error) {
	g, reason := a.check(room, h)
	if reason != "" {
		a.failed(reason)
		return nil, errors.New("auth: " + reason)
	}
	return g, nil
}

// check returns the grant, or the SPEC reason the hello is refused with.
func (a *admission) check(room string, h *protocol.Hello) (*dataplane.Grant, string) {
	now := a.now()
	peer, err := hex.DecodeString(h.Pubkey)
	if err != nil { // ParseHello checked the shape; no token can match it
		return nil, token.ReasonPeerMismatch
	}
	tok, perr := token.ParseRoomToken(h.Token)
	var terr *token.Error
	if perr != nil && !errors.As(perr, &terr) { // ParseRoomToken fails with *token.Error only
		return nil, token.MalformedField(token.FieldToken)
	}
	if tok == nil {
		if perr != nil && terr.Reason != token.ReasonRoomLocked {
			return nil, terr.Reason // a malformed token is refused even in an open room
		}
		if locked(a.store, room) {
			return nil, token.ReasonRoomLocked
		}
		if a.store.IsRevoked("", room, peer, now) {
			return nil, token.ReasonRevoked
		}
		return nil, ""
	}
	keys := trust(a.store, room, tok.Kid, now)
	pubs := make([]ed25519.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.pub
	}
	i, err := token.VerifyRoomKey(tok, room, peer, pubs, now)
	if err != nil {
		if !errors.As(err, &terr) {
			return nil, token.ReasonBadSignature
		}
		if (terr.Reason == token.ReasonUnknownKey || terr.Reason == token.ReasonBadSignature) && retiredSigner(a.store, room, tok, peer, now) {
			// Retiring a key revokes its tokens: say so, rather than
			// "unknown key id" for a key the cluster did know.
			return nil, token.ReasonRevoked
		}
		return nil, terr.Reason
	}
	id := tok.ID()
	if a.store.IsRevoked(id, room, peer, now) {
		return nil, token.ReasonRevoked
	}
	return &dataplane.Grant{
		Caps:    token.CapabilityClasses(tok.Caps),
		Read:    token.ReadGrants(tok.Caps),
		Write:   token.WriteGrants(tok.Caps),
		Expiry:  time.Unix(int64(min(tok.Expiry, uint64(1)<<62)), 0),
		TokenID: id,
		KeyID:   keys[i].kid,
	}, ""
}

// revokedSession reports whether a joined session's token or peer is
// revoked at now (4003).
func revokedSession(store *raftstore.Store, info dataplane.SessionInfo, now time.Time) bool {
	peer, _ := hex.DecodeString(info.Pubkey)
	return store.IsRevoked(info.Grant.TokenID, info.Room, peer, now)
}

// trustHolds reports whether the room still admits a session that joined
// with a token verified by kid (hasToken) or without a token, and the
// close that ends it when not: the key retired, past its grace or no
// longer trusted by the room's lock mode (4003 "token revoked"); a
// tokenless session in a room that is now locked (1008 with the
// locked-room reason). Expiry is the data plane's own timer. While it
// holds, until is when the key stops verifying (zero: not scheduled).
func trustHolds(store *raftstore.Store, room string, hasToken bool, kid string, now time.Time) (ok bool, code int, reason string, until time.Time) {
	if !hasToken {
		if locked(store, room) {
			return false, dataplane.ClosePolicy, "auth: " + token.ReasonRoomLocked, time.Time{}
		}
		return true, 0, "", time.Time{}
	}
	for _, k := range trust(store, room, kid, now) {
		if k.kid == kid {
			return true, 0, "", k.until
		}
	}
	return false, dataplane.CloseTokenRevoked, dataplane.ReasonTokenRevoked, time.Time{}
}
