package node

import (
	"crypto/ed25519"
	"log/slog"
	"sort"
	"sync"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
)

// policyIndex is the data plane's view of every room's policy timeline,
// compiled once per entry. Ingest asks it once per op path of each node
// under the room's commit, so it must not clone protos or compile globs on
// that path; the replicated timeline (raftstore) stays the one source of
// truth. A timeline only grows at its end (SetPolicy appends), so an
// update compiles just the entries it has not seen and appends them; a
// restore rebuilds everything.
type policyIndex struct {
	server string // the node's own key (hex): the room's super-peer writes everywhere
	log    *slog.Logger

	// wmu serialises writers (update, reset), so an update's read of the
	// compiled timeline and its store of the longer one cannot interleave
	// with another writer's; compilation runs outside mu, so ingest never
	// waits on it.
	wmu sync.Mutex

	mu    sync.RWMutex
	rooms map[string][]compiledEntry // by effective_lamport ascending
}

type compiledEntry struct {
	effective uint64
	raftIndex uint64 // identifies the replicated entry (0 in old state)
	allow     bool   // the default
	rules     []compiledRule
}

type compiledRule struct {
	glob    pathglob.Pattern
	writers map[string]struct{} // raw 32-byte keys as strings
}

func newPolicyIndex(server ed25519.PublicKey, log *slog.Logger) *policyIndex {
	return &policyIndex{server: string(server), log: log, rooms: make(map[string][]compiledEntry)}
}

// reset replaces the whole index from the replicated rooms (start, restore).
func (p *policyIndex) reset(rooms []*statev1.Room) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	next := make(map[string][]compiledEntry, len(rooms))
	for _, r := range rooms {
		if len(r.GetPolicy()) > 0 {
			next[r.GetName()] = p.compile(r.GetName(), r.GetPolicy())
		}
	}
	p.mu.Lock()
	p.rooms = next
	p.mu.Unlock()
}

// update brings one room's compiled timeline up to timeline after a
// SetPolicy. When what is compiled is a prefix of timeline (the same
// number of leading entries, the last one the same replicated entry) only
// the new tail is compiled and appended; anything else (a shorter
// timeline, a different entry) recompiles the room, so the index can
// never drift from the replicated state. It keeps no reference to
// timeline (compiling copies what it needs), so the caller may pass the
// stored timeline under the store's read lock (raftstore ViewRoom)
// instead of a copy.
func (p *policyIndex) update(room string, timeline []*statev1.PolicyEntry) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.RLock()
	cur := p.rooms[room]
	p.mu.RUnlock()
	var next []compiledEntry
	if n := len(cur); n > 0 && n <= len(timeline) && sameEntry(cur[n-1], timeline[n-1]) {
		tail := p.compile(room, timeline[n:])
		if len(tail) > 0 && tail[0].effective <= cur[n-1].effective {
			next = p.compile(room, timeline) // out of order: never expected
		} else {
			// Readers hold slices of at most the old length, so appending
			// in place (when capacity allows) writes only beyond what any
			// reader sees.
			next = append(cur, tail...)
		}
	} else {
		next = p.compile(room, timeline)
	}
	p.mu.Lock()
	p.rooms[room] = next
	p.mu.Unlock()
}

// sameEntry reports whether compiled entry c is the replicated entry e: the
// raft index identifies an entry (entries of old state without one are
// told apart by their effective Lamport, which is unique in a timeline).
func sameEntry(c compiledEntry, e *statev1.PolicyEntry) bool {
	return c.effective == e.GetEffectiveLamport() && c.raftIndex == e.GetRaftIndex()
}

func (p *policyIndex) compile(room string, timeline []*statev1.PolicyEntry) []compiledEntry {
	out := make([]compiledEntry, 0, len(timeline))
	for _, e := range timeline {
		ce := compiledEntry{effective: e.GetEffectiveLamport(), raftIndex: e.GetRaftIndex(), allow: e.GetDefaultAllow()}
		for _, r := range e.GetRules() {
			g, err := pathglob.Compile(r.GetPathGlob())
			if err != nil {
				// The control plane validates globs before proposing; a
				// replicated glob this build cannot compile must not open
				// a path, so the rule matches nothing and allows no one.
				p.log.Error("policy rule glob does not compile; the rule grants nothing", "room", room,
					"effective_lamport", e.GetEffectiveLamport(), "glob", r.GetPathGlob(), "err", err)
				continue
			}
			cr := compiledRule{glob: g, writers: make(map[string]struct{}, len(r.GetCanWrite()))}
			for _, w := range r.GetCanWrite() {
				cr.writers[string(w)] = struct{}{}
			}
			ce.rules = append(ce.rules, cr)
		}
		out = append(out, ce)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].effective < out[j].effective })
	return out
}

// AllowWrite implements dataplane.WritePolicy: the entry in force at the
// node's Lamport decides; its first rule whose glob matches the path
// decides who may write, else its default. A room without entries allows
// every write (SPEC: open by default). The server's own key is the room's
// super-peer (ticks write world/ with it) and is always allowed.
func (p *policyIndex) AllowWrite(room string, author ed25519.PublicKey, lamport uint64, path string) bool {
	if string(author) == p.server {
		return true
	}
	p.mu.RLock()
	entries := p.rooms[room]
	p.mu.RUnlock()
	i := sort.Search(len(entries), func(i int) bool { return entries[i].effective > lamport }) - 1
	if i < 0 {
		return true // before the first entry: no policy yet
	}
	e := entries[i]
	for _, r := range e.rules {
		if r.glob.Match(path) {
			_, ok := r.writers[string(author)]
			return ok
		}
	}
	return e.allow
}
