package raftstore

import (
	"slices"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Members, placement, drain and ticks.

func (s *state) applyPutMember(c *statev1.PutMember) error {
	m := c.GetMember()
	// A re-announced member keeps its drain mark: PutMember carries
	// addresses (join, restart), SetDrain owns draining.
	if old, ok := s.members[m.GetNodeId()]; ok {
		m.Draining = old.GetDraining()
	}
	s.members[m.GetNodeId()] = m
	return nil
}

// applyRemoveMember drops the member record and the node from every room
// placement. Removing an absent member is a no-op, not an error, so that a
// retried removal (outcome unknown the first time) converges. A placement
// left empty means "every node": a room is never placed nowhere.
func (s *state) applyRemoveMember(c *statev1.RemoveMember) error {
	id := c.GetNodeId()
	delete(s.members, id)
	for _, r := range s.rooms {
		if i, ok := slices.BinarySearch(r.GetPlacement(), id); ok {
			r.Placement = slices.Delete(r.Placement, i, i+1)
		}
	}
	return nil
}

// applyPlaceRoom sets a room's replica set. Every node must be a member;
// a draining node takes no new rooms (it may stay in a placement it is
// already part of).
func (s *state) applyPlaceRoom(c *statev1.PlaceRoom, now int64) error {
	ids := slices.Clone(c.GetNodeIds())
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var current []string
	if r := s.rooms[c.GetRoom()]; r != nil {
		current = r.GetPlacement()
	}
	for _, id := range ids {
		m, ok := s.members[id]
		if !ok {
			return rejectf("node %q is not a member of the cluster", id)
		}
		if _, placed := slices.BinarySearch(current, id); m.GetDraining() && !placed {
			return rejectf("node %q is draining and takes no new rooms", id)
		}
	}
	s.ensureRoom(c.GetRoom(), now).Placement = ids
	return nil
}

func (s *state) applySetDrain(c *statev1.SetDrain) error {
	m, ok := s.members[c.GetNodeId()]
	if !ok {
		return rejectf("node %q is not a member of the cluster", c.GetNodeId())
	}
	m.Draining = c.GetDraining()
	return nil
}

// applyPutTick starts or replaces a room's tick.
func (s *state) applyPutTick(c *statev1.PutTick, now int64) error {
	t := c.GetTick()
	if t.GetIntentPrefix() == "" {
		t.IntentPrefix = defaultIntentPrefix
	}
	t.StartedUnixMs = now
	s.ticks[t.GetRoom()] = t
	return nil
}

func (s *state) applyDeleteTick(c *statev1.DeleteTick) error {
	if _, ok := s.ticks[c.GetRoom()]; !ok {
		return rejectf("no tick for room %q", c.GetRoom())
	}
	delete(s.ticks, c.GetRoom())
	return nil
}
