package dataplane

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// room is a live room: its sessions, its peers (one per public key) and its
// history.
//
// mu serialises membership changes, the Resolve+Put of each pack and the
// queueing of what they produce. Holding it while queueing is what gives
// every session one consistent order: a joiner's catch-up is queued before
// any relay it has not seen, and a child is never relayed before its parent.
// Queueing never blocks (a full queue closes that session), so the lock is
// held only for in-memory work. Signature checks run before taking it.
type room struct {
	srv   *Server
	name  string
	store history.Store
	refs  int // guarded by the registry's lock

	mu       sync.Mutex
	sessions map[*session]struct{}
	peers    map[string]*peer
}

// peer is one public key in the room; several sessions of one key are one
// peer (SPEC).
type peer struct {
	info     protocol.PeerInfo // from the key's first session
	sessions int
}

func newRoom(srv *Server, name string, store history.Store) *room {
	return &room{srv: srv, name: name, store: store, sessions: make(map[*session]struct{}), peers: make(map[string]*peer)}
}

// join queues the welcome and any catch-up for s, then adds it to the room
// and, for the first session of its key, tells the others.
func (r *room) join(s *session) error {
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
	frames := [][]byte{welcome}
	if nodes := r.store.Missing(known); len(nodes) > 0 {
		catchUp, err := encodePacks(r.srv.pubHex, root, nodes)
		if err != nil {
			return fmt.Errorf("catch-up: %w", err)
		}
		frames = append(frames, catchUp...)
	}
	// One queue slot however long the history: the queue bounds live
	// traffic a peer falls behind on, not the size of its catch-up.
	s.sendBatch(frames)
	s.patterns = s.hello.Subscribe
	r.sessions[s] = struct{}{}
	if p, ok := r.peers[s.pubkey]; ok {
		p.sessions++
		return nil
	}
	info := protocol.PeerInfo{Pubkey: s.pubkey, PeerID: s.hello.PeerID, PeerType: s.hello.PeerType}
	r.peers[s.pubkey] = &peer{info: info, sessions: 1}
	joined, err := encode(protocol.PeerJoined{From: info.Pubkey, Pubkey: info.Pubkey, PeerID: info.PeerID, PeerType: info.PeerType})
	if err != nil {
		return err
	}
	r.broadcast(joined, s)
	return nil
}

// leave removes s; the last session of a key announces peer-left.
func (r *room) leave(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sessions[s]; !ok {
		return
	}
	delete(r.sessions, s)
	p := r.peers[s.pubkey]
	if p.sessions--; p.sessions > 0 {
		return
	}
	delete(r.peers, s.pubkey)
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

// ingest validates and stores a pack from s, acknowledges it to s, and
// relays the newly stored nodes to every other session as one pack.
func (r *room) ingest(s *session, nodes []*syncv1.Node) {
	v := r.srv.validator
	checked := v.Prepare(r.store, nodes) // signatures: the costly part, unlocked

	r.mu.Lock()
	defer r.mu.Unlock()
	res := v.Resolve(r.store, checked)
	if err := r.store.Put(res.Accepted); err != nil {
		// Nothing was acknowledged, so the client may simply resend.
		r.srv.log.Error("store pack", "room", r.name, "nodes", len(res.Accepted), "err", err)
		s.sendError("internal error: pack not stored")
		return
	}
	ack := protocol.PackAck{Incoming: len(nodes), Rejections: make([]protocol.Rejection, 0)}
	for _, vd := range res.Verdicts {
		if vd.Reason == "" {
			ack.Accepted++
			continue
		}
		ack.Rejected++
		ack.Rejections = append(ack.Rejections, protocol.Rejection{ID: vd.ID.String(), Reason: vd.Reason})
	}
	if ack.Rejected > 0 {
		s.log.Debug("pack nodes rejected", "pubkey", s.pubkey, "rejected", ack.Rejected, "first_reason", ack.Rejections[0].Reason)
	}
	b, err := encode(ack)
	if err != nil {
		r.srv.log.Error("encode pack-ack", "err", err)
		return
	}
	s.send(b)
	if len(res.Accepted) == 0 {
		return
	}
	fresh := make([]*syncv1.Node, len(res.Accepted))
	for i, a := range res.Accepted {
		fresh[i] = a.Node
	}
	packed, err := history.EncodePack(fresh)
	if err != nil {
		r.srv.log.Error("encode relay", "room", r.name, "err", err)
		return
	}
	relay, err := encode(protocol.Pack{From: s.pubkey, Nodes: packed, Root: history.Root(r.store.Frontier())})
	if err != nil {
		r.srv.log.Error("encode relay", "room", r.name, "err", err)
		return
	}
	r.broadcast(relay, s)
}

// answerRequest queues to s every node that known does not cover. Nothing
// is sent when nothing is missing, as for catch-up.
func (r *room) answerRequest(s *session, known []history.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nodes := r.store.Missing(known)
	if len(nodes) == 0 {
		return
	}
	frames, err := encodePacks(r.srv.pubHex, history.Root(r.store.Frontier()), nodes)
	if err != nil {
		r.srv.log.Error("encode request answer", "room", r.name, "err", err)
		s.sendError("internal error: request not answered")
		return
	}
	s.sendBatch(frames)
}

// subscribe records s's patterns and confirms them.
func (r *room) subscribe(s *session, patterns []string) {
	b, err := encode(protocol.SubscribeAck{Patterns: patterns})
	if err != nil {
		r.srv.log.Error("encode subscribe-ack", "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.patterns = patterns
	s.send(b)
}

// counts returns the room's sessions, peers and stored nodes.
func (r *room) counts() (sessions, peers, nodes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions), len(r.peers), r.store.Len()
}
