package history

import (
	"fmt"
	"sync"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// MemStore is an in-memory Store.
//
// Nodes live in a slice in arrival order, which is a topological order
// because Put only takes nodes whose parents are already there; Missing
// relies on that to answer parents-first without sorting. Parents are kept
// as slice positions, so walking ancestries touches no map and Missing is
// linear in the room with a small constant (a bitset and an int stack).
// Frontier and max Lamport are maintained by Put, never recomputed.
type MemStore struct {
	mu         sync.RWMutex
	index      map[ID]int32
	entries    []memEntry
	frontier   map[ID]struct{}
	maxLamport uint64
}

type memEntry struct {
	node    *syncv1.Node
	parents []int32
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{index: make(map[ID]int32), frontier: make(map[ID]struct{})}
}

// Has reports whether id is stored.
func (s *MemStore) Has(id ID) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.index[id]
	return ok
}

// Get returns the stored node with this id.
func (s *MemStore) Get(id ID) (*syncv1.Node, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.index[id]
	if !ok {
		return nil, false
	}
	return s.entries[i].node, true
}

// Put stores nodes, parents first; see Store.Put.
func (s *MemStore) Put(nodes []Accepted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Check the whole batch first so a bad batch stores nothing.
	batch := make(map[ID]struct{}, len(nodes))
	for _, a := range nodes {
		for _, p := range a.Parents {
			_, stored := s.index[p]
			_, earlier := batch[p]
			if !stored && !earlier {
				return fmt.Errorf("%w: node %s names parent %s", ErrMissingParent, a.ID, p)
			}
		}
		batch[a.ID] = struct{}{}
	}
	for _, a := range nodes {
		if _, dup := s.index[a.ID]; dup {
			continue
		}
		parents := make([]int32, len(a.Parents))
		for i, p := range a.Parents {
			parents[i] = s.index[p]
			delete(s.frontier, p)
		}
		s.index[a.ID] = int32(len(s.entries))
		s.entries = append(s.entries, memEntry{node: a.Node, parents: parents})
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
	return len(s.entries)
}

// Missing returns what a holder of known lacks, parents first.
func (s *MemStore) Missing(known []ID) []*syncv1.Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.coversFrontier(known) {
		return nil
	}
	// have = known and all their ancestors (walked over stored nodes only).
	have := make([]bool, len(s.entries))
	stack := make([]int32, 0, len(known))
	for _, id := range known {
		if i, ok := s.index[id]; ok {
			stack = append(stack, i)
		}
	}
	haveCount := 0
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if have[i] {
			continue
		}
		have[i] = true
		haveCount++
		stack = append(stack, s.entries[i].parents...)
	}
	out := make([]*syncv1.Node, 0, len(s.entries)-haveCount)
	for i := range s.entries {
		if !have[i] {
			out = append(out, s.entries[i].node)
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
