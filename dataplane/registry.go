package dataplane

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// errShutDown is returned by acquire once the data plane has shut down.
var errShutDown = errors.New("dataplane: shut down")

// registry holds the loaded rooms. A room is referenced by its sessions
// (and by Publish while it runs); when the last reference goes, an idle
// timer starts, and when it fires with the room still unreferenced the
// room is dropped and RoomStore.Release is called. References are counted
// under the registry's lock, so unloading can never race with a session
// joining; the room's own lock is never taken while the registry's is held.
//
// Open and Release of one room never overlap: a room being released is
// marked, and acquiring it waits for the release to finish before opening
// it again. ops counts every RoomStore call in flight so that close can
// wait for them: after close returns, the RoomStore is not touched again.
type registry struct {
	srv    *Server
	stores RoomStore
	idle   time.Duration

	mu        sync.Mutex
	rooms     map[string]*room
	releasing map[string]chan struct{}
	closed    bool
	ops       sync.WaitGroup
}

func newRegistry(srv *Server, stores RoomStore, idle time.Duration) *registry {
	return &registry{srv: srv, stores: stores, idle: idle, rooms: make(map[string]*room), releasing: make(map[string]chan struct{})}
}

// acquire returns the loaded room, loading it if needed, with a reference
// the caller must release.
func (g *registry) acquire(name string) (*room, error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, errShutDown
		}
		if ch, ok := g.releasing[name]; ok {
			g.mu.Unlock()
			<-ch
			continue
		}
		if r, ok := g.rooms[name]; ok {
			g.ref(r)
			g.mu.Unlock()
			return r, nil
		}
		g.ops.Add(1)
		g.mu.Unlock()
		return g.load(name)
	}
}

// load opens a room's store (not under the lock: it may do I/O). Two
// sessions racing here get the same history from the RoomStore; the first
// to register the room wins.
func (g *registry) load(name string) (*room, error) {
	defer g.ops.Done()
	store, err := g.stores.Open(name)
	if err != nil {
		return nil, fmt.Errorf("dataplane: open room %s: %w", name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errShutDown
	}
	r, ok := g.rooms[name]
	if !ok {
		r = newRoom(g.srv, name, store)
		g.rooms[name] = r
	}
	g.ref(r)
	return r, nil
}

// ref takes a reference and cancels any pending unload. Caller holds mu.
func (g *registry) ref(r *room) {
	r.refs++
	r.idleGen++ // a timer that already fired sees the change and backs off
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
}

// release drops a reference taken by acquire; the last one starts the
// idle timer.
func (g *registry) release(r *room) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r.refs--
	if r.refs > 0 || g.closed {
		return
	}
	r.idleGen++
	gen := r.idleGen
	r.idle = time.AfterFunc(g.idle, func() { g.unload(r, gen) })
}

// unload drops an idle room and releases its store, unless it was
// acquired again (or the registry closed) since the timer was set.
func (g *registry) unload(r *room, gen uint64) {
	g.mu.Lock()
	if g.closed || r.refs > 0 || r.idleGen != gen || g.rooms[r.name] != r {
		g.mu.Unlock()
		return
	}
	delete(g.rooms, r.name)
	r.idle = nil
	done := make(chan struct{})
	g.releasing[r.name] = done
	g.ops.Add(1)
	g.mu.Unlock()

	if err := g.stores.Release(r.name); err != nil {
		g.srv.log.Error("release idle room", "room", r.name, "err", err)
	} else {
		g.srv.log.Debug("idle room unloaded", "room", r.name)
	}

	g.mu.Lock()
	delete(g.releasing, r.name)
	close(done)
	g.mu.Unlock()
	g.ops.Done()
}

// close stops every idle timer, forgets the rooms and waits for RoomStore
// calls in flight. Later acquires fail; later releases only count down.
func (g *registry) close() {
	g.mu.Lock()
	g.closed = true
	for _, r := range g.rooms {
		if r.idle != nil {
			r.idle.Stop()
			r.idle = nil
		}
	}
	g.rooms = make(map[string]*room)
	g.mu.Unlock()
	g.ops.Wait()
}

// live returns the loaded rooms (for Stats).
func (g *registry) live() []*room {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*room, 0, len(g.rooms))
	for _, r := range g.rooms {
		out = append(out, r)
	}
	return out
}
