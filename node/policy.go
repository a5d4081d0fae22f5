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
// compiled once per change. Ingest asks it once per op path of each node
// under the room's commit, so it must not clone protos or compile globs on
// that path; the replicated timeline (raftstore) stays the one source of
// truth, and the index is rebuilt from it on every SetPolicy and restore.
type policyIndex struct {
	server string // the node's own key (hex): the room's super-peer writes everywhere
	log    *slog.Logger

	mu    sync.RWMutex
	rooms map[string][]compiledEntry // by effective_lamport ascending
}

type compiledEntry struct {
	effective uint64
	allow     bool // the default
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

// update recompiles one room's timeline after a SetPolicy.
func (p *policyIndex) update(room string, timeline []*statev1.PolicyEntry) {
	entries := p.compile(room, timeline)
	p.mu.Lock()
	p.rooms[room] = entries
	p.mu.Unlock()
}

func (p *policyIndex) compile(room string, timeline []*statev1.PolicyEntry) []compiledEntry {
	out := make([]compiledEntry, 0, len(timeline))
	for _, e := range timeline {
		ce := compiledEntry{effective: e.GetEffectiveLamport(), allow: e.GetDefaultAllow()}
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
