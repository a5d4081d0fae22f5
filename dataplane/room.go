package dataplane

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// room is a live room: its sessions, its peers (one per public key), their
// rate buckets and its history.
//
// mu serialises membership changes and the queueing of everything sent to
// the room's sessions. Holding it while queueing is what gives every
// session one consistent order: a joiner's catch-up is queued before any
// relay it has not seen, and a child is never relayed before its parent.
// Queueing never blocks (a full queue closes that session), so mu is held
// only for in-memory work; signature checks and the store's Put (which
// may fsync) run outside it (ingest.go).
type room struct {
	srv   *Server
	name  string
	store history.Store

	// Guarded by the registry's lock.
	refs    int
	idleGen uint64
	idle    *time.Timer

	mu       sync.Mutex
	sessions map[*session]struct{}
	peers    map[string]*peer
	// limits holds each key's rate bucket; see bucket.
	limits map[string]*bucket

	// The commit queue (ingest.go).
	cmu        sync.Mutex
	pending    []*commitJob
	committing bool
	// The committer's scratch (deliver.go); batchSeq and the sessions'
	// batchMark are guarded by mu.
	wakes    []*session
	items    []outFrame
	acks     [][]byte
	relays   []*relayFrames
	batchSeq uint64
}

// peer is one public key in the room; several sessions of one key are one
// peer (SPEC).
type peer struct {
	info     protocol.PeerInfo // from the key's first session
	sessions int
}

func newRoom(srv *Server, name string, store history.Store) *room {
	return &room{
		srv: srv, name: name, store: store,
		sessions: make(map[*session]struct{}),
		peers:    make(map[string]*peer),
		limits:   make(map[string]*bucket),
	}
}

// join queues the welcome and any catch-up for s, then adds it to the room
// and, for the first session of its key, tells the others.
func (r *room) join(s *session, sub *subscription) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	frontier := r.store.Frontier()
	root := history.Root(frontier)
	known := make([]history.ID, 0, len(s.hello.Frontier))
	missing := make([]string, 0)
	for _, h := range s.hello.Frontier {
		id, err := history.ParseID(h)
		if err != nil {
			return fmt.Errorf("hello frontier: %w", err) // ParseHello checked it
		}
		if r.store.Has(id) {
			known = append(known, id)
		} else {
			missing = append(missing, h)
		}
	}
	// The server supports no optional sync feature yet, so the logical
	// AND with the client's features is false for each of them.
	caps := make(map[string]bool, len(s.hello.Caps))
	for name := range s.hello.Caps {
		caps[name] = false
	}
	others := make([]protocol.PeerInfo, 0, len(r.peers))
	for _, pk := range slices.Sorted(maps.Keys(r.peers)) {
		if pk != s.pubkey {
			others = append(others, r.peers[pk].info)
		}
	}
	welcome, err := encode(protocol.Welcome{
		Root:         root,
		Frontier:     history.Strings(frontier),
		Missing:      missing,
		Caps:         caps,
		ServerPubkey: r.srv.pubHex,
		Peers:        others,
	})
	if err != nil {
		return err
	}
	item := outFrame{data: welcome}
	if nodes := r.store.Missing(known); len(nodes) > 0 {
		item.catchUp = &catchUp{from: r.srv.pubHex, root: root, nodes: nodes, sub: sub}
	}
	// One queue slot however long the history: the queue bounds live
	// traffic a peer falls behind on, not the size of its catch-up.
	s.enqueue(item)
	s.sub = sub
	s.limit = r.bucketFor(s.pubkey)
	r.sessions[s] = struct{}{}
	if len(r.sessions) == 1 {
		r.srv.metrics.rooms.Inc()
	}
	if p, ok := r.peers[s.pubkey]; ok {
		p.sessions++
		return nil
	}
	info := protocol.PeerInfo{Pubkey: s.pubkey, PeerID: s.hello.PeerID, PeerType: s.hello.PeerType}
	r.peers[s.pubkey] = &peer{info: info, sessions: 1}
	r.srv.metrics.peers.Inc()
	joined, err := encode(protocol.PeerJoined{From: info.Pubkey, Pubkey: info.Pubkey, PeerID: info.PeerID, PeerType: info.PeerType})
	if err != nil {
		return err
	}
	r.broadcast(joined, s)
	return nil
}

// bucketFor returns the key's rate bucket, nil when no limit is set.
// Caller holds mu.
func (r *room) bucketFor(pubkey string) *bucket {
	if r.srv.limits.off() {
		return nil
	}
	b, ok := r.limits[pubkey]
	if !ok {
		b = newBucket(r.srv.limits, time.Now())
		r.limits[pubkey] = b
	}
	return b
}

// leave removes s; the last session of a key announces peer-left.
func (r *room) leave(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sessions[s]; !ok {
		return
	}
	delete(r.sessions, s)
	if len(r.sessions) == 0 {
		r.srv.metrics.rooms.Dec()
	}
	p := r.peers[s.pubkey]
	if p.sessions--; p.sessions > 0 {
		return
	}
	delete(r.peers, s.pubkey)
	r.srv.metrics.peers.Dec()
	// Forget the bucket only once it has refilled: a peer that floods,
	// leaves and comes back must not start with a fresh allowance.
	if b := r.limits[s.pubkey]; b != nil && b.full(r.srv.limits, time.Now()) {
		delete(r.limits, s.pubkey)
	}
	left, err := encode(protocol.PeerLeft{From: p.info.Pubkey, Pubkey: p.info.Pubkey, PeerID: p.info.PeerID, PeerType: p.info.PeerType})
	if err != nil {
		r.srv.log.Error("encode peer-left", "room", r.name, "err", err)
		return
	}
	r.broadcast(left, nil)
}

// broadcast queues one encoded frame to every session but except.
// Caller holds mu.
func (r *room) broadcast(frame []byte, except *session) {
	for o := range r.sessions {
		if o != except {
			o.send(frame)
		}
	}
}

// answerRequest queues to s every node that known does not cover and its
// subscription matches. Nothing is sent when nothing is missing, as for
// catch-up. Done under mu so the answer is ordered with the relays.
func (r *room) answerRequest(s *session, known []history.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nodes := r.store.Missing(known)
	if len(nodes) == 0 {
		return
	}
	s.enqueue(outFrame{catchUp: &catchUp{from: r.srv.pubHex, root: history.Root(r.store.Frontier()), nodes: nodes, sub: s.sub}})
}

// subscribe replaces s's subscription and confirms it.
func (r *room) subscribe(s *session, sub *subscription, patterns []string) {
	b, err := encode(protocol.SubscribeAck{Patterns: patterns})
	if err != nil {
		r.srv.log.Error("encode subscribe-ack", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.sub = sub
	s.send(b)
}

// relayToOthers queues a frame to every other session of the room.
func (r *room) relayToOthers(s *session, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcast(frame, s)
}

// relayToKey queues a frame to every session of pubkey but s; false when
// the key has no session in the room.
func (r *room) relayToKey(s *session, pubkey string, frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.peers[pubkey]; !ok {
		return false
	}
	for o := range r.sessions {
		if o != s && o.pubkey == pubkey {
			o.send(frame)
		}
	}
	return true
}

// counts returns the room's sessions, peers and stored nodes.
func (r *room) counts() (sessions, peers, nodes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions), len(r.peers), r.store.Len()
}
