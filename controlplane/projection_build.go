package controlplane

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// projection is one build of a registered query on this node: the
// room's map restricted to the query's pattern, at the frontier it was
// built from. It is immutable once built.
type projection struct {
	room, name string
	// glob and queryIndex are the definition it was built from (the
	// Raft index of the registration that set it).
	glob       string
	queryIndex uint64
	// entries are the live paths, sorted by path.
	entries    []projectionEntry
	frontier   []history.ID
	root       string
	maxLamport uint64
	nodes      int
	builtAt    time.Time
	// size estimates the memory the projection holds, for the cache bound.
	size int
}

func (p *projection) key() projectionKey { return projectionKey{room: p.room, name: p.name} }

// projectionEntry is one live path and the write that set it.
type projectionEntry struct {
	path      string
	value     []byte
	blob      bool
	mediaType string
	at        history.Stamp
}

// register is a path's winning write so far; deleted marks a winning
// MapDelete, kept as a tombstone so that an older set folded later (the
// store answers parents first, not in stamp order) cannot revive it.
type register struct {
	entry   projectionEntry
	deleted bool
}

// errProjectionTooLarge refuses a build over maxProjectionBytes.
var errProjectionTooLarge = errors.New("projection too large")

// entryOverhead approximates the bytes an entry costs beyond its path,
// value and media type (struct, slice headers, map slot).
const entryOverhead = 128

// foldProjection computes the projection of glob over the room's history
// as st holds it now. Only map ops take part, as in the tick: MapSet and
// SetBlob set a path, MapDelete removes it; text and list ops are opaque
// to the server. The frontier is computed from the nodes folded, not read
// from the store afterwards, so a node stored meanwhile is never
// reported as covered without having been folded.
//
// A stored node that does not decode means a damaged store (ingest
// validated it): the build fails rather than answer a wrong map.
func foldProjection(ctx context.Context, st history.Store, glob pathglob.Pattern) (*projection, error) {
	nodes := st.Missing(nil) // parents first
	regs := make(map[string]*register)
	followed := make(map[history.ID]struct{}, len(nodes))
	ids := make([]history.ID, 0, len(nodes))
	var maxLamport uint64
	size := 0
	for i, n := range nodes {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		d, err := decodeStored(n)
		if err != nil {
			return nil, err
		}
		if len(d.tx.GetAuthor()) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("controlplane: stored node %s has a %d-byte author", d.id, len(d.tx.GetAuthor()))
		}
		ids = append(ids, d.id)
		for _, p := range d.tx.GetParents() {
			if len(p) == history.IDSize {
				followed[history.ID(p)] = struct{}{}
			}
		}
		maxLamport = max(maxLamport, d.tx.GetLamport())
		at := history.Stamp{Lamport: d.tx.GetLamport(), Author: [ed25519.PublicKeySize]byte(d.tx.GetAuthor()), Node: d.id}
		for _, op := range d.tx.GetOps() {
			path := op.GetPath()
			var r register
			switch k := op.GetKind().(type) {
			case *syncv1.Op_Set:
				r.entry = projectionEntry{path: path, value: k.Set.GetValue(), at: at}
			case *syncv1.Op_SetBlob:
				r.entry = projectionEntry{path: path, value: k.SetBlob.GetData(), blob: true, mediaType: k.SetBlob.GetMediaType(), at: at}
			case *syncv1.Op_Delete:
				r = register{entry: projectionEntry{path: path, at: at}, deleted: true}
			default:
				continue // text, list, or an op kind this build does not know
			}
			if !glob.Match(path) {
				continue
			}
			cur, ok := regs[path]
			// Strictly after: when one node writes a path twice its first
			// op wins, as the tick and the reference resolve it.
			if ok && !r.entry.at.After(cur.entry.at) {
				continue
			}
			if ok {
				size -= cur.entry.cost()
			}
			regs[path] = &r
			size += r.entry.cost()
			if size > maxProjectionBytes {
				return nil, errProjectionTooLarge
			}
		}
	}
	p := &projection{maxLamport: maxLamport, nodes: len(nodes)}
	for _, r := range regs {
		if !r.deleted {
			p.entries = append(p.entries, r.entry)
		}
	}
	slices.SortFunc(p.entries, func(a, b projectionEntry) int { return strings.Compare(a.path, b.path) })
	for _, id := range ids {
		if _, ok := followed[id]; !ok {
			p.frontier = append(p.frontier, id)
		}
	}
	history.SortIDs(p.frontier)
	p.root = history.Root(p.frontier)
	for _, e := range p.entries {
		p.size += e.cost()
	}
	p.size += len(p.frontier) * history.IDSize
	return p, nil
}

// cost is what an entry holds in memory, roughly.
func (e projectionEntry) cost() int {
	return len(e.path) + len(e.value) + len(e.mediaType) + entryOverhead
}

// page answers the entries of one read: paths with prefix, from from
// (inclusive), at most limit entries and about maxBytes of them (always
// at least one, so paging makes progress), and the path to read next
// ("" when none is left).
func (p *projection) page(prefix, from string, limit, maxBytes int) (out []projectionEntry, next string) {
	start := max(prefix, from)
	i, _ := slices.BinarySearchFunc(p.entries, start, func(e projectionEntry, s string) int { return strings.Compare(e.path, s) })
	size := 0
	for ; i < len(p.entries); i++ {
		e := p.entries[i]
		if !strings.HasPrefix(e.path, prefix) {
			break
		}
		size += e.cost()
		if len(out) == limit || (len(out) > 0 && size > maxBytes) {
			return out, e.path
		}
		out = append(out, e)
	}
	return out, ""
}
