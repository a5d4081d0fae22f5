package dataplane

import (
	"fmt"
	"sync"
)

// registry holds the live rooms. A room is live while at least one session
// holds a reference; the last release drops it (its history stays in the
// RoomStore). References are counted here, under the registry's lock, so
// dropping a room can never race with a session joining it; the room's own
// lock is never taken while the registry's is held.
type registry struct {
	stores RoomStore
	srv    *Server

	mu    sync.Mutex
	rooms map[string]*room
}

func newRegistry(srv *Server, stores RoomStore) *registry {
	return &registry{srv: srv, stores: stores, rooms: make(map[string]*room)}
}

// acquire returns the live room, making it live if needed, with a
// reference the caller must release.
func (g *registry) acquire(name string) (*room, error) {
	g.mu.Lock()
	if r, ok := g.rooms[name]; ok {
		r.refs++
		g.mu.Unlock()
		return r, nil
	}
	g.mu.Unlock()

	// Opening may do I/O (a durable store), so not under the lock. Two
	// sessions racing here get the same history from the RoomStore.
	store, err := g.stores.Open(name)
	if err != nil {
		return nil, fmt.Errorf("dataplane: open room %s: %w", name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.rooms[name]
	if !ok {
		r = newRoom(g.srv, name, store)
		g.rooms[name] = r
	}
	r.refs++
	return r, nil
}

// release drops a reference taken by acquire.
func (g *registry) release(r *room) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.refs--
	if r.refs == 0 {
		delete(g.rooms, r.name)
	}
}

// live returns the live rooms (for Stats).
func (g *registry) live() []*room {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*room, 0, len(g.rooms))
	for _, r := range g.rooms {
		out = append(out, r)
	}
	return out
}
