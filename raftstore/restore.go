package raftstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// stateFromSnapshot validates a decoded snapshot completely and builds the
// state from it. It accepts exactly what applying commands can produce
// (plus any order of the top-level lists, which dump sorts anyway), so a
// restored replica satisfies the same invariants as one that replayed the
// log. The snapshot's messages are taken over, not copied.
func stateFromSnapshot(snap *statev1.Snapshot) (*state, error) {
	s := newState()
	s.clusterID = snap.GetClusterId()
	for _, m := range snap.GetMembers() {
		if err := validateMember(m); err != nil {
			return nil, fmt.Errorf("member: %w", err)
		}
		if _, dup := s.members[m.GetNodeId()]; dup {
			return nil, fmt.Errorf("duplicate member %q", m.GetNodeId())
		}
		s.members[m.GetNodeId()] = m
	}
	for _, k := range snap.GetKeys() {
		if err := validateKey(k); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if _, dup := s.keys[k.GetKid()]; dup {
			return nil, fmt.Errorf("duplicate kid %q", k.GetKid())
		}
		s.keys[k.GetKid()] = k
	}
	for _, r := range snap.GetRooms() {
		if err := validateStoredRoom(r); err != nil {
			return nil, err
		}
		if _, dup := s.rooms[r.GetName()]; dup {
			return nil, fmt.Errorf("duplicate room %q", r.GetName())
		}
		s.rooms[r.GetName()] = r
	}
	for _, r := range snap.GetRevocations() {
		if err := validateRevocation(r); err != nil {
			return nil, fmt.Errorf("revocation: %w", err)
		}
		t := targetOf(r)
		if _, dup := s.revocations[t]; dup {
			return nil, errors.New("duplicate revocation target")
		}
		s.revocations[t] = r
	}
	for _, t := range snap.GetTicks() {
		if err := validateTick(t); err != nil {
			return nil, fmt.Errorf("tick: %w", err)
		}
		if _, dup := s.ticks[t.GetRoom()]; dup {
			return nil, fmt.Errorf("duplicate tick for room %q", t.GetRoom())
		}
		s.ticks[t.GetRoom()] = t
	}
	return s, nil
}

// validateStoredRoom checks a room record against the invariants of state:
// a valid name and lock, keys with unique kids and unique public keys
// sorted by kid, a strictly ascending policy timeline, a sorted placement
// without duplicates, valid registered queries sorted by name.
func validateStoredRoom(r *statev1.Room) error {
	if err := validateRoom(r.GetName()); err != nil {
		return err
	}
	name := clipq(r.GetName())
	if err := validateLockMode(r.GetLock()); err != nil {
		return fmt.Errorf("room %s: %w", name, err)
	}
	if len(r.GetKeys()) > maxRoomKeys {
		return fmt.Errorf("room %s has %d keys, more than %d", name, len(r.GetKeys()), maxRoomKeys)
	}
	pubs := make(map[string]bool, len(r.GetKeys()))
	for i, k := range r.GetKeys() {
		if err := validateNewRoomKey(k); err != nil {
			return fmt.Errorf("room %s: %w", name, err)
		}
		if k.GetKid() == "" {
			return fmt.Errorf("room %s: key without kid", name)
		}
		if s := k.GetState(); s < statev1.KeyState_KEY_STATE_PREPUBLISHED || s > statev1.KeyState_KEY_STATE_RETIRED {
			return fmt.Errorf("room %s: key %s has invalid state %d", name, clipq(k.GetKid()), int32(s))
		}
		if i > 0 && r.GetKeys()[i-1].GetKid() >= k.GetKid() {
			return fmt.Errorf("room %s: keys not sorted by kid or duplicated", name)
		}
		if pubs[string(k.GetPublicKey())] {
			return fmt.Errorf("room %s: public key used twice", name)
		}
		pubs[string(k.GetPublicKey())] = true
	}
	for i, e := range r.GetPolicy() {
		if err := validatePolicyEntry(e); err != nil {
			return fmt.Errorf("room %s: policy: %w", name, err)
		}
		if i > 0 && r.GetPolicy()[i-1].GetEffectiveLamport() >= e.GetEffectiveLamport() {
			return fmt.Errorf("room %s: policy timeline not strictly ascending", name)
		}
	}
	for _, id := range r.GetPlacement() {
		if err := validateNodeID(id); err != nil {
			return fmt.Errorf("room %s: placement: %w", name, err)
		}
	}
	if !slices.IsSortedFunc(r.GetPlacement(), cmp.Compare[string]) || len(slices.Compact(slices.Clone(r.GetPlacement()))) != len(r.GetPlacement()) {
		return fmt.Errorf("room %s: placement not sorted or duplicated", name)
	}
	if err := validateStoredQueries(r.GetQueries()); err != nil {
		return fmt.Errorf("room %s: %w", name, err)
	}
	return nil
}
