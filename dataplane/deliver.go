package dataplane

import (
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// deliver queues a stored batch's pack-acks and relays, under the room
// lock, and then wakes each writer once.
//
// Frames are built once per pack (the ack for its sender, the relay once
// per distinct subscription), then each session gets all of its frames
// of the batch in ONE push, in pack order: its ack where it sent the
// pack, the relay where another session did (a broadcast is not echoed).
// Waking comes last, senders first (their acks free their pipelines), so
// a writer takes the whole batch into one flush instead of waking for its
// first frame; and a session's queue lock is taken once per batch, not
// once per frame. Only the committer calls it, so the scratch slices on
// the room are its own.
func (r *room) deliver(batch []*commitJob, before []history.ID) {
	frontier := make(map[history.ID]struct{}, len(before)+len(batch))
	for _, id := range before {
		frontier[id] = struct{}{}
	}
	acks := r.acks[:0]
	relays := r.relays[:0]
	for _, j := range batch {
		for _, a := range j.res.Accepted {
			for _, p := range a.Parents {
				delete(frontier, p)
			}
			frontier[a.ID] = struct{}{}
		}
		acks = append(acks, r.ackFrame(j))
		relays = append(relays, r.relayOf(j, frontier))
	}

	wakes := r.wakes[:0]
	items := r.items[:0]
	r.mu.Lock()
	r.batchSeq++
	// Senders first, whether or not still members (a sender stays one
	// while its packs are in flight, see session.run; this does not rely
	// on it).
	for _, j := range batch {
		if s := j.from; s != nil && s.batchMark != r.batchSeq {
			s.batchMark = r.batchSeq
			items = framesFor(s, batch, acks, relays, items[:0])
			if len(items) > 0 && s.pushAll(items) {
				wakes = append(wakes, s)
			}
		}
	}
	for o := range r.sessions {
		if o.batchMark == r.batchSeq {
			continue // a sender, done above
		}
		items = framesFor(o, batch, acks, relays, items[:0])
		if len(items) > 0 && o.pushAll(items) {
			wakes = append(wakes, o)
		}
	}
	r.mu.Unlock()
	for _, s := range wakes {
		s.wakeWriter()
	}
	clear(wakes)
	clear(items)
	clear(acks)
	clear(relays)
	r.wakes, r.items, r.acks, r.relays = wakes[:0], items[:0], acks[:0], relays[:0]
}

// framesFor appends to items what session s gets of the batch, in pack
// order.
func framesFor(s *session, batch []*commitJob, acks [][]byte, relays []*relayFrames, items []outFrame) []outFrame {
	for i, j := range batch {
		if j.from == s {
			if acks[i] != nil {
				items = append(items, outFrame{data: acks[i]})
			}
			continue // a broadcast is not echoed to its sender
		}
		if rf := relays[i]; rf != nil {
			if f := rf.forSub(s.sub); f != nil {
				items = append(items, outFrame{data: f})
			}
		}
	}
	return items
}

// ackFrame encodes j's pack-ack; nil for a server Publish (no sender) or
// when it cannot be encoded (logged).
func (r *room) ackFrame(j *commitJob) []byte {
	s := j.from
	if s == nil {
		return nil
	}
	ack := protocol.PackAck{Incoming: j.incoming}
	for _, vd := range j.res.Verdicts {
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
	b, err := encodeAck(ack)
	if err != nil {
		r.srv.log.Error("encode pack-ack", "err", err)
		return nil
	}
	return b
}

// relayOf prepares the relay of j's new nodes with the room's root after
// j; nil when j stored nothing new. Frames are encoded lazily, once per
// subscription that asks.
func (r *room) relayOf(j *commitJob, frontier map[history.ID]struct{}) *relayFrames {
	if len(j.res.Accepted) == 0 {
		return nil
	}
	from := r.srv.pubHex
	if j.from != nil {
		from = j.from.pubkey
	}
	return &relayFrames{room: r, from: from, root: history.Root(slices.Collect(maps.Keys(frontier))), accepted: j.res.Accepted}
}

// relayFrames encodes one relay once per distinct subscription: sessions
// subscribed to everything (the usual case) share one []byte, and sessions
// with the same patterns share their filtered frame.
type relayFrames struct {
	room     *room
	from     string
	root     string
	accepted []history.Accepted

	all      []byte
	allDone  bool
	filtered map[string][]byte // by subscription key; nil value: nothing matched
}

func (rf *relayFrames) forSub(sub *subscription) []byte {
	if sub.all {
		if !rf.allDone {
			rf.all, rf.allDone = rf.encode(func(history.Accepted) bool { return true }), true
		}
		return rf.all
	}
	if b, ok := rf.filtered[sub.key]; ok {
		return b
	}
	b := rf.encode(func(a history.Accepted) bool {
		tx := a.Tx
		if tx == nil {
			if sub.read == nil {
				return true
			}
			// Read grants fail closed: decode rather than deliver a
			// node whose paths are unknown.
			tx = new(syncv1.Transaction)
			if proto.Unmarshal(a.Node.GetTransactionBytes(), tx) != nil {
				return false
			}
		}
		return sub.matches(opPaths(tx))
	})
	if rf.filtered == nil {
		rf.filtered = make(map[string][]byte)
	}
	rf.filtered[sub.key] = b
	return b
}

// encode builds the relay of the accepted nodes keep selects; nil when it
// selects none.
func (rf *relayFrames) encode(keep func(history.Accepted) bool) []byte {
	nodes := make([]*syncv1.Node, 0, len(rf.accepted))
	for _, a := range rf.accepted {
		if keep(a) {
			nodes = append(nodes, a.Node)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	b, err := rf.room.srv.encodePack(rf.from, rf.root, nodes)
	if err != nil {
		rf.room.srv.log.Error("encode relay", "room", rf.room.name, "err", err)
		return nil
	}
	return b
}
