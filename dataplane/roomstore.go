package dataplane

import (
	"sync"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// RoomStore gives each room its history. It outlives the live room: when
// the last session leaves, the room stays in memory for IdleTimeout and is
// then unloaded with Release; its history stays in the RoomStore, so the
// next joiner catches up. The data plane never calls Open and Release of
// one room concurrently, and calls neither after Shutdown has returned.
type RoomStore interface {
	// Open returns the room's history, creating an empty one if needed.
	// It may load from disk; it is called with no data-plane lock held.
	Open(room string) (history.Store, error)
	// Release tells the store that the room has been idle (no session)
	// for IdleTimeout: it may drop the room from memory, keeping its data.
	// The history.Store that Open returned is not used afterwards.
	Release(room string) error
	// Close flushes and closes everything. The node calls it after the
	// data plane has shut down.
	Close() error
}

// MemRoomStore keeps every room's history in memory for the life of the
// process. Release is a no-op: memory is all it has.
type MemRoomStore struct {
	mu    sync.Mutex
	rooms map[string]*history.MemStore
}

var _ RoomStore = (*MemRoomStore)(nil)

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

// Release keeps the history: an in-memory room has nowhere else to live.
func (m *MemRoomStore) Release(string) error { return nil }

// Close does nothing; the histories go with the process.
func (m *MemRoomStore) Close() error { return nil }
