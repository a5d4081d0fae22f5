package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// LiveRooms answers the rooms loaded on this node with their peer counts
// (distinct public keys), for the control plane's list-rooms.
func (s *Server) LiveRooms() map[string]int {
	out := make(map[string]int)
	for _, r := range s.rooms.live() {
		r.mu.Lock()
		out[r.name] = len(r.peers)
		r.mu.Unlock()
	}
	return out
}

// RoomInfo answers a room's highest Lamport and node count when it is
// loaded on this node (live), for describe-room and for set-policy, whose
// new entry takes effect above the room's current Lamport. A room that is
// not loaded answers zeros: its history is not read from disk for this.
func (s *Server) RoomInfo(room string) (maxLamport uint64, nodes int, live bool) {
	for _, r := range s.rooms.live() {
		if r.name == room {
			return r.store.MaxLamport(), r.store.Len(), true
		}
	}
	return 0, 0, false
}

// OpenRoom loads a room (as a session would) and returns its history with
// the function that releases it; the tick runner reads a room through it.
// The room stays loaded until release is called.
func (s *Server) OpenRoom(room string) (history.Store, func(), error) {
	if !validRoomName(room) {
		return nil, nil, fmt.Errorf("dataplane: open room: %s", roomNameHelp)
	}
	r, err := s.rooms.acquire(room)
	if err != nil {
		return nil, nil, fmt.Errorf("dataplane: open room %s: %w", room, err)
	}
	var once sync.Once
	return r.store, func() { once.Do(func() { s.rooms.release(r) }) }, nil
}

// ErrCompactUnsupported is returned by CompactRoom when the room store has
// nothing to compact (the in-memory store).
var ErrCompactUnsupported = errors.New("dataplane: this node's room store does not support compaction")

// Compactor is implemented by room stores that can compact one room's
// stored history.
type Compactor interface {
	Compact(ctx context.Context, room string) (nodes, before, after uint64, err error)
}

// CompactRoom compacts a room's stored history when the RoomStore supports
// it (compact-room).
func (s *Server) CompactRoom(ctx context.Context, room string) (nodes, before, after uint64, err error) {
	if !validRoomName(room) {
		return 0, 0, 0, fmt.Errorf("dataplane: compact room: %s", roomNameHelp)
	}
	c, ok := s.cfg.RoomStore.(Compactor)
	if !ok {
		return 0, 0, 0, ErrCompactUnsupported
	}
	return c.Compact(ctx, room)
}
