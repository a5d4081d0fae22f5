package tick

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// Value is the current value of a key path.
type Value struct {
	// Blob is set when the winning op was a SetBlob; MediaType then holds
	// its media type. Otherwise the winning op was a MapSet.
	Blob      bool
	Data      []byte
	MediaType string
}

// Equal reports whether two values are the same kind with the same bytes.
func (v Value) Equal(o Value) bool {
	return v.Blob == o.Blob && v.MediaType == o.MediaType && bytes.Equal(v.Data, o.Data)
}

// Entry is one live key path and its value.
type Entry struct {
	Path  string
	Value Value
}

// register is one path's winning write; deleted marks a winning MapDelete
// (a tombstone, kept so that an older Set arriving later cannot revive it).
type register struct {
	at      history.Stamp
	deleted bool
	value   Value
}

// Materializer is a room's last-writer-wins map, kept up to date from a
// history.Store one batch of new nodes at a time. It is not safe for
// concurrent use; the tick loop owns it.
//
// Only map ops take part: MapSet and SetBlob set a path, MapDelete removes
// it. Text and list ops are opaque to the server (it stores and relays them
// without interpreting) and leave the map untouched, as in the reference.
type Materializer struct {
	frontier []history.ID
	regs     map[string]*register
	nodes    int
	skipped  int
}

// NewMaterializer returns an empty materializer.
func NewMaterializer() *Materializer {
	return &Materializer{regs: make(map[string]*register)}
}

// Update applies the nodes of s that the materializer has not seen yet and
// returns how many it applied. The store answers them parents first; the
// new frontier is computed from what was applied rather than read from the
// store afterwards, so a node stored between the two reads is never
// skipped.
func (m *Materializer) Update(s history.Store) int {
	nodes := s.Missing(m.frontier)
	if len(nodes) == 0 {
		return 0
	}
	front := make(map[history.ID]struct{}, len(m.frontier)+1)
	for _, id := range m.frontier {
		front[id] = struct{}{}
	}
	for _, n := range nodes {
		id := history.NodeID(n)
		parents := m.apply(id, n)
		for _, p := range parents {
			delete(front, p)
		}
		front[id] = struct{}{}
	}
	m.frontier = make([]history.ID, 0, len(front))
	for id := range front {
		m.frontier = append(m.frontier, id)
	}
	history.SortIDs(m.frontier)
	m.nodes += len(nodes)
	return len(nodes)
}

// apply folds one node's map ops into the registers and returns its
// parents. A node that does not decode (the store only holds validated
// nodes, so this means a bug elsewhere) changes nothing and is counted.
func (m *Materializer) apply(id history.ID, n *syncv1.Node) []history.ID {
	var tx syncv1.Transaction
	if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil || len(tx.GetAuthor()) != ed25519.PublicKeySize {
		m.skipped++
		return nil
	}
	parents := make([]history.ID, 0, len(tx.GetParents()))
	for _, p := range tx.GetParents() {
		if len(p) == history.IDSize {
			parents = append(parents, history.ID(p))
		}
	}
	at := history.Stamp{Lamport: tx.GetLamport(), Author: [ed25519.PublicKeySize]byte(tx.GetAuthor()), Node: id}
	for _, op := range tx.GetOps() {
		var r register
		switch k := op.GetKind().(type) {
		case *syncv1.Op_Set:
			r = register{at: at, value: Value{Data: k.Set.GetValue()}}
		case *syncv1.Op_SetBlob:
			r = register{at: at, value: Value{Blob: true, Data: k.SetBlob.GetData(), MediaType: k.SetBlob.GetMediaType()}}
		case *syncv1.Op_Delete:
			r = register{at: at, deleted: true}
		default:
			continue // text, list, or an op kind this build does not know
		}
		cur, ok := m.regs[op.GetPath()]
		// Strictly after: when one node writes a path twice the first op
		// wins, exactly as the reference resolves it.
		if !ok || r.at.After(cur.at) {
			m.regs[op.GetPath()] = &r
		}
	}
	return parents
}

// Get returns the current value at path; false when it was never set or
// its last write was a delete.
func (m *Materializer) Get(path string) (Value, bool) {
	r, ok := m.regs[path]
	if !ok || r.deleted {
		return Value{}, false
	}
	return r.value, true
}

// Prefix returns the live entries whose path starts with prefix, sorted by
// path.
func (m *Materializer) Prefix(prefix string) []Entry {
	var out []Entry
	for p, r := range m.regs {
		if !r.deleted && strings.HasPrefix(p, prefix) {
			out = append(out, Entry{Path: p, Value: r.value})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Frontier returns the frontier of the applied history, sorted.
func (m *Materializer) Frontier() []history.ID { return slices.Clone(m.frontier) }

// Nodes returns how many nodes have been applied, and how many of those
// were skipped because they did not decode.
func (m *Materializer) Nodes() (applied, skipped int) { return m.nodes, m.skipped }
