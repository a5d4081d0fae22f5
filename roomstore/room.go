package roomstore

import (
	"fmt"
	"sync"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// room is one open room: its history in memory (a MemStore holding only
// durable nodes) plus the nodes on their way to disk.
type room struct {
	s    *Store
	name string

	loaded  chan struct{} // closed once mem or loadErr is set
	mem     *history.MemStore
	loadErr error

	// mu orders Puts of this room into the commit queue and guards pending
	// and released. It is not held while a Put waits for its fsync, so
	// concurrent Puts of one room share a commit.
	mu       sync.Mutex
	pending  map[history.ID]struct{} // queued, not yet durable
	released bool
}

var _ history.Store = (*room)(nil)

func newRoom(s *Store, name string) *room {
	return &room{s: s, name: name, loaded: make(chan struct{}), pending: make(map[history.ID]struct{})}
}

// Put stores nodes, parents first, and returns once they are on disk (or
// were already). Like MemStore.Put it stores nothing when a parent is
// neither stored, queued by an earlier Put, nor earlier in nodes.
func (r *room) Put(nodes []history.Accepted) error {
	if len(nodes) == 0 {
		return nil
	}
	// Encode outside the lock; the frames are cut out again if some nodes
	// turn out to be duplicates.
	var data []byte
	ends := make([]int, len(nodes))
	for i, a := range nodes {
		var err error
		if data, err = appendNodeRecord(data, a); err != nil {
			return fmt.Errorf("roomstore: put in room %q: %w", r.name, err)
		}
		ends[i] = len(data)
	}

	r.mu.Lock()
	if r.released {
		r.mu.Unlock()
		return ErrReleased
	}
	inBatch := make(map[history.ID]struct{}, len(nodes))
	for _, a := range nodes {
		for _, p := range a.Parents {
			if !r.knownLocked(p) {
				if _, ok := inBatch[p]; !ok {
					r.mu.Unlock()
					return fmt.Errorf("%w: node %s names parent %s", history.ErrMissingParent, a.ID, p)
				}
			}
		}
		inBatch[a.ID] = struct{}{}
	}
	fresh := make([]history.Accepted, 0, len(nodes))
	var freshData []byte
	for i, a := range nodes {
		if r.knownLocked(a.ID) {
			continue
		}
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		r.pending[a.ID] = struct{}{}
		fresh = append(fresh, a)
		freshData = append(freshData, data[start:ends[i]]...)
	}
	// A Put whose nodes are all queued by another Put still goes through
	// the queue: it may only return once those are durable too.
	req := &request{room: r, data: freshData, nodes: fresh, done: make(chan error, 1)}
	if err := r.s.c.submit(req); err != nil {
		r.abandonLocked(fresh)
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	return <-req.done
}

// knownLocked reports whether id is durable or queued. Caller holds mu.
func (r *room) knownLocked(id history.ID) bool {
	if _, ok := r.pending[id]; ok {
		return true
	}
	return r.mem.Has(id)
}

// apply is called by the committer, in queue order, once nodes are durable.
func (r *room) apply(nodes []history.Accepted) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandonLocked(nodes)
	if err := r.mem.Put(nodes); err != nil {
		// Put checked the parents against what was durable or queued
		// before it, and the queue is applied in order: unreachable.
		return fmt.Errorf("roomstore: apply to room %q: %w", r.name, err)
	}
	return nil
}

// abandon forgets nodes whose commit failed.
func (r *room) abandon(nodes []history.Accepted) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandonLocked(nodes)
}

func (r *room) abandonLocked(nodes []history.Accepted) {
	for _, a := range nodes {
		delete(r.pending, a.ID)
	}
}

func (r *room) markReleased() {
	r.mu.Lock()
	r.released = true
	r.mu.Unlock()
}

// The reads answer from memory, which holds exactly the durable nodes.

func (r *room) Has(id history.ID) bool                    { return r.mem.Has(id) }
func (r *room) Get(id history.ID) (*syncv1.Node, bool)    { return r.mem.Get(id) }
func (r *room) Frontier() []history.ID                    { return r.mem.Frontier() }
func (r *room) MaxLamport() uint64                        { return r.mem.MaxLamport() }
func (r *room) Len() int                                  { return r.mem.Len() }
func (r *room) Missing(known []history.ID) []*syncv1.Node { return r.mem.Missing(known) }
