package dataplane

import (
	"sync"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// RoomStore gives each room its history. It outlives the live room: when the
// last session leaves, the room (sessions, peers) is dropped from the
// registry but its history stays in the RoomStore, so the next joiner
// catches up. A durable implementation (--store) and unloading of idle
// rooms (--idle-timeout) come later behind this interface.
type RoomStore interface {
	// Open returns the room's history, creating an empty one if needed.
	// It is called when a room becomes live, with no lock of the data
	// plane held.
	Open(room string) (history.Store, error)
}

// MemRoomStore keeps every room's history in memory for the life of the
// process.
type MemRoomStore struct {
	mu    sync.Mutex
	rooms map[string]*history.MemStore
}

// NewMemRoomStore returns an empty in-memory RoomStore.
func NewMemRoomStore() *MemRoomStore {
	return &MemRoomStore{rooms: make(map[string]*history.MemStore)}
}

// Open returns the room's store, creating it on first use.
func (m *MemRoomStore) Open(room string) (history.Store, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rooms[room]
	if !ok {
		s = history.NewMemStore()
		m.rooms[room] = s
	}
	return s, nil
}
