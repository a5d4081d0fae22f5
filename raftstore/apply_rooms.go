package raftstore

import (
	"bytes"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
)

// maxRoomKeys bounds a room's key list (retired keys included: they are
// kept so that a retired kid is reported as retired, never reused).
const maxRoomKeys = 256

// ensureRoom returns the room record, creating an open one if the room is
// new. Callers call it only once they have accepted the command.
func (s *state) ensureRoom(name string, now int64) *statev1.Room {
	r, ok := s.rooms[name]
	if !ok {
		r = &statev1.Room{Name: name, Lock: statev1.LockMode_LOCK_MODE_OPEN, CreatedUnixMs: now}
		s.rooms[name] = r
	}
	return r
}

// checkNewRoomKey validates adding k to room r (nil: room not known yet)
// and returns the kid it will have.
func checkNewRoomKey(room string, r *statev1.Room, k *statev1.RoomKey) (string, error) {
	kid := k.GetKid()
	if kid == "" {
		kid = keyring.RoomKeyID(k.GetPublicKey())
	}
	if r == nil {
		return kid, nil
	}
	if _, dup := roomKeyIndex(r, kid); dup {
		return "", rejectf("room %q already has a key %q", room, kid)
	}
	for _, old := range r.GetKeys() {
		// A key once used (perhaps retired because it leaked) never comes back.
		if bytes.Equal(old.GetPublicKey(), k.GetPublicKey()) {
			return "", rejectf("that public key is already key %q of room %q; keys are never reused", old.GetKid(), room)
		}
	}
	if len(r.GetKeys()) >= maxRoomKeys {
		return "", rejectf("room %q already has %d keys, the limit", room, maxRoomKeys)
	}
	return kid, nil
}

func newRoomKey(kid string, k *statev1.RoomKey, now int64) *statev1.RoomKey {
	return &statev1.RoomKey{
		Kid:         kid,
		PublicKey:   k.GetPublicKey(),
		State:       statev1.KeyState_KEY_STATE_ACTIVE,
		AddedUnixMs: now,
	}
}

func (s *state) applyPutRoomKey(c *statev1.PutRoomKey, now int64) error {
	kid, err := checkNewRoomKey(c.GetRoom(), s.rooms[c.GetRoom()], c.GetKey())
	if err != nil {
		return err
	}
	insertRoomKey(s.ensureRoom(c.GetRoom(), now), newRoomKey(kid, c.GetKey(), now))
	return nil
}

// applyRotateRoomKey adds the new key, active at once, and moves every
// other key of the room that still signs-in (not superseded, not retired)
// to verify-only until now + grace.
func (s *state) applyRotateRoomKey(c *statev1.RotateRoomKey, now int64) error {
	kid, err := checkNewRoomKey(c.GetRoom(), s.rooms[c.GetRoom()], c.GetNewKey())
	if err != nil {
		return err
	}
	r := s.ensureRoom(c.GetRoom(), now)
	retireAt := now + c.GetGraceMs()
	nowT := time.UnixMilli(now)
	for _, old := range r.GetKeys() {
		if old.GetSupersededUnixMs() != 0 {
			continue
		}
		switch keyring.RoomKeyState(old, nowT) {
		case statev1.KeyState_KEY_STATE_PREPUBLISHED, statev1.KeyState_KEY_STATE_ACTIVE:
		default:
			continue
		}
		old.SupersededUnixMs = now
		if ra := old.GetRetireAfterUnixMs(); ra == 0 || retireAt < ra {
			old.RetireAfterUnixMs = retireAt
		}
	}
	insertRoomKey(r, newRoomKey(kid, c.GetNewKey(), now))
	return nil
}

// applyRetireRoomKey retires one room key at once. Retiring the last key
// of a room locked to its own keys is allowed on purpose: the key may have
// leaked, and a locked room with no key admits nobody (fail closed).
func (s *state) applyRetireRoomKey(c *statev1.RetireRoomKey, now int64) error {
	r, ok := s.rooms[c.GetRoom()]
	if !ok {
		return rejectf("room %q has no keys", c.GetRoom())
	}
	i, ok := roomKeyIndex(r, c.GetKid())
	if !ok {
		return rejectf("room %q has no key %q", c.GetRoom(), c.GetKid())
	}
	k := r.GetKeys()[i]
	if k.GetState() == statev1.KeyState_KEY_STATE_RETIRED {
		return nil // retrying a retirement converges
	}
	k.State = statev1.KeyState_KEY_STATE_RETIRED
	if ra := k.GetRetireAfterUnixMs(); ra == 0 || ra > now {
		k.RetireAfterUnixMs = now
	}
	return nil
}

// applySetRoomLock refuses a lock nobody could pass: OWN_KEYS needs a room
// key that verifies now, CLUSTER a cluster room-token key that does.
func (s *state) applySetRoomLock(c *statev1.SetRoomLock, now int64) error {
	room := c.GetRoom()
	nowT := time.UnixMilli(now)
	switch c.GetMode() {
	case statev1.LockMode_LOCK_MODE_OWN_KEYS:
		if r := s.rooms[room]; r == nil || len(keyring.RoomVerifyKeys(r.GetKeys(), "", nowT)) == 0 {
			return rejectf("room %q has no key that verifies; set-room-key first", room)
		}
	case statev1.LockMode_LOCK_MODE_CLUSTER:
		keys := make([]*statev1.Key, 0, len(s.keys))
		for _, k := range s.keys {
			keys = append(keys, k)
		}
		if len(keyring.ClusterRoomVerifyKeys(keys, "", nowT)) == 0 {
			return rejectf("the cluster keyring has no room-token key that verifies; rotate one in with keys.rotate first")
		}
	}
	s.ensureRoom(room, now).Lock = c.GetMode()
	return nil
}

// applySetPolicy appends to the room's policy timeline. Entries must come
// in strictly increasing effective_lamport, or two entries would govern the
// same nodes. The control plane proposes one above the room's current
// Lamport; concurrent proposals computed from the same state would collide,
// so an entry at or below the last one is raised to one above it here, in
// log order, identically on every replica. The entry records its log index
// so the proposer can answer the effective_lamport it really got.
func (s *state) applySetPolicy(c *statev1.SetPolicy, now int64, index uint64) error {
	e := c.GetEntry()
	if r := s.rooms[c.GetRoom()]; r != nil && len(r.GetPolicy()) > 0 {
		last := r.GetPolicy()[len(r.GetPolicy())-1]
		if e.GetEffectiveLamport() <= last.GetEffectiveLamport() {
			e.EffectiveLamport = last.GetEffectiveLamport() + 1
		}
	}
	e.SetUnixMs = now
	e.RaftIndex = index
	r := s.ensureRoom(c.GetRoom(), now)
	r.Policy = append(r.Policy, e)
	return nil
}
