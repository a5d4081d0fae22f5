package history

import (
	"fmt"
	"sync"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// MemStore is an in-memory Store. Nodes are kept in arrival order, which is
// a topological order because Put only takes nodes whose parents are
// already there; Missing relies on that to answer parents-first without
// sorting.
type MemStore struct {
	mu         sync.RWMutex
	nodes      map[ID]*memEntry
	order      []ID
	frontier   map[ID]struct{}
	maxLamport uint64
}

type memEntry struct {
	node    *syncv1.Node
	parents []ID
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{nodes: make(map[ID]*memEntry), frontier: make(map[ID]struct{})}
}

// Has reports whether id is stored.
func (s *MemStore) Has(id ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.nodes[id]
	return ok
}

// Get returns the stored node with this id.
func (s *MemStore) Get(id ID) (*syncv1.Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.nodes[id]
	if !ok {
		return nil, false
	}
	return e.node, true
}

// Put stores nodes, parents first; see Store.Put.
func (s *MemStore) Put(nodes []Accepted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Check the whole batch first so a bad batch stores nothing.
	batch := make(map[ID]struct{}, len(nodes))
	for _, a := range nodes {
		for _, p := range a.Parents {
			_, stored := s.nodes[p]
			_, earlier := batch[p]
			if !stored && !earlier {
				return fmt.Errorf("%w: node %s names parent %s", ErrMissingParent, a.ID, p)
			}
		}
		batch[a.ID] = struct{}{}
	}
	for _, a := range nodes {
		if _, dup := s.nodes[a.ID]; dup {
			continue
		}
		s.nodes[a.ID] = &memEntry{node: a.Node, parents: a.Parents}
		s.order = append(s.order, a.ID)
		for _, p := range a.Parents {
			delete(s.frontier, p)
		}
		// A new node has no children yet: its children would have needed
		// it stored first.
		s.frontier[a.ID] = struct{}{}
		s.maxLamport = max(s.maxLamport, a.Lamport)
	}
	return nil
}

// Frontier returns the childless nodes, sorted.
func (s *MemStore) Frontier() []ID {
	s.mu.RLock()
	out := make([]ID, 0, len(s.frontier))
	for id := range s.frontier {
		out = append(out, id)
	}
	s.mu.RUnlock()
	SortIDs(out)
	return out
}

// MaxLamport returns the highest Lamport stored (0 when empty).
func (s *MemStore) MaxLamport() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxLamport
}

// Len returns the number of stored nodes.
func (s *MemStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

// Missing returns what a holder of known lacks, parents first.
func (s *MemStore) Missing(known []ID) []*syncv1.Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.coversFrontier(known) {
		return nil
	}
	// have = known and all their ancestors (walked over stored nodes only).
	have := make(map[ID]struct{}, len(s.nodes))
	stack := make([]ID, 0, len(known))
	for _, id := range known {
		if _, ok := s.nodes[id]; ok {
			stack = append(stack, id)
		}
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, seen := have[id]; seen {
			continue
		}
		have[id] = struct{}{}
		stack = append(stack, s.nodes[id].parents...)
	}
	out := make([]*syncv1.Node, 0, len(s.order)-len(have))
	for _, id := range s.order {
		if _, ok := have[id]; !ok {
			out = append(out, s.nodes[id].node)
		}
	}
	return out
}

// coversFrontier is the common reconnect case: the holder already has every
// frontier node and so everything. Caller holds mu.
func (s *MemStore) coversFrontier(known []ID) bool {
	if len(known) < len(s.frontier) {
		return false
	}
	set := make(map[ID]struct{}, len(known))
	for _, id := range known {
		set[id] = struct{}{}
	}
	for id := range s.frontier {
		if _, ok := set[id]; !ok {
			return false
		}
	}
	return true
}
