package dataplane

import (
	"crypto/ed25519"
	"maps"
	"slices"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// maxPipelinedPacks bounds how many packs of one session may be in
// flight (verifying or waiting for their commit) at once.
const maxPipelinedPacks = 16

// commitJob is one pack on its way through verification, commit,
// acknowledgement and relay.
type commitJob struct {
	from     *session // nil: the server itself (Publish)
	incoming int
	nodes    []*syncv1.Node

	checked  []history.Checked
	prepared chan struct{} // closed once checked is set

	// Set by the commit, read after done is closed.
	res  *history.Result
	err  error
	done chan struct{}
}

func newCommitJob(from *session, nodes []*syncv1.Node) *commitJob {
	return &commitJob{from: from, incoming: len(nodes), nodes: nodes, prepared: make(chan struct{}), done: make(chan struct{})}
}

// ingest queues a pack from s for commit and starts verifying it, without
// waiting: the session's reader goes on to the next frame, so a publisher
// with several packs in flight has them verified in parallel on every
// core while earlier ones commit. Commits (and so acks and relays) stay
// in arrival order. A session may have maxPipelinedPacks in flight; any
// other message first waits for them (session.settle), so replies keep
// the order of the requests.
func (r *room) ingest(s *session, nodes []*syncv1.Node) {
	s.inflight <- struct{}{}
	s.packs.Add(1)
	j := newCommitJob(s, nodes)
	r.submit(j)
	go r.prepare(j)
}

// prepare runs the room-independent checks (signatures: the costly part)
// with no lock held.
func (r *room) prepare(j *commitJob) {
	j.checked = r.srv.validator.Prepare(r.store, j.nodes)
	close(j.prepared)
}

// submit appends j to the room's commit queue, starting the committer if
// it is idle. Jobs are committed in submission order.
func (r *room) submit(j *commitJob) {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	r.pending = append(r.pending, j)
	if !r.committing {
		r.committing = true
		go r.runCommits()
	}
}

// runCommits is the room's committer while there is work: it takes
// everything queued as one batch, waits for the batch's verification, and
// commits it: one Resolve per pack in order, then ONE store Put for the
// whole batch (one fsync with a durable store), then the acks and relays
// in order. While a batch is stored, new packs verify and queue up for
// the next one, so a slow disk costs latency, not throughput. It exits
// when the queue is empty; the next submit starts a new one.
func (r *room) runCommits() {
	for {
		r.cmu.Lock()
		if len(r.pending) == 0 {
			r.committing = false
			r.cmu.Unlock()
			return
		}
		batch := r.pending
		r.pending = nil
		r.cmu.Unlock()
		for _, j := range batch {
			<-j.prepared
		}
		r.commitBatch(batch)
	}
}

// overlay is the store as the next pack of a batch must see it: the
// batch's earlier packs count as stored (parents, duplicates, max Lamport)
// although the batch is stored in one Put at the end.
type overlay struct {
	store history.Store
	added map[history.ID]struct{}
	max   uint64
}

func (o *overlay) Has(id history.ID) bool {
	if _, ok := o.added[id]; ok {
		return true
	}
	return o.store.Has(id)
}

func (o *overlay) MaxLamport() uint64 { return max(o.store.MaxLamport(), o.max) }

// commitBatch resolves, stores, acknowledges and relays a batch of packs.
// Only one commitBatch runs per room at a time (runCommits), so the store
// it reads is the store it writes.
func (r *room) commitBatch(batch []*commitJob) {
	defer func() {
		for _, j := range batch {
			close(j.done)
			if s := j.from; s != nil {
				<-s.inflight
				s.packs.Done()
			}
		}
	}()
	start := time.Now()
	ov := &overlay{store: r.store, added: make(map[history.ID]struct{})}
	check := r.writeCheck()
	var all []history.Accepted
	for _, j := range batch {
		j.res = r.srv.validator.ResolveWith(ov, j.checked, check)
		for _, a := range j.res.Accepted {
			ov.added[a.ID] = struct{}{}
			ov.max = max(ov.max, a.Lamport)
		}
		all = append(all, j.res.Accepted...)
		r.countRejections(j.res)
	}
	var before []history.ID
	var err error
	if len(all) > 0 {
		before = r.store.Frontier()
		// Durable when it returns (RoomStore contract): the acks below
		// only count nodes that are stored.
		err = r.store.Put(all)
	}
	r.srv.metrics.mergeBatch.Observe(time.Since(start).Seconds())
	if err != nil {
		// Nothing was acknowledged, so the clients may simply resend.
		r.srv.log.Error("store pack", "room", r.name, "nodes", len(all), "err", err)
	} else {
		r.srv.metrics.accepted.Add(float64(len(all)))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	frontier := make(map[history.ID]struct{}, len(before)+len(all))
	for _, id := range before {
		frontier[id] = struct{}{}
	}
	for _, j := range batch {
		if err != nil {
			j.err = err
			if j.from != nil {
				j.from.sendError("internal error: pack not stored")
			}
			continue
		}
		for _, a := range j.res.Accepted {
			for _, p := range a.Parents {
				delete(frontier, p)
			}
			frontier[a.ID] = struct{}{}
		}
		r.deliver(j, frontier)
	}
}

// writeCheck adapts the configured WritePolicy to the validator.
func (r *room) writeCheck() history.WriteCheck {
	p := r.srv.cfg.WritePolicy
	if p == nil {
		return nil
	}
	return func(c *history.Checked) string {
		author := ed25519.PublicKey(c.Tx.GetAuthor())
		for _, op := range c.Tx.GetOps() {
			if !p.AllowWrite(r.name, author, c.Tx.GetLamport(), op.GetPath()) {
				return "policy denies write to " + op.GetPath()
			}
		}
		return ""
	}
}

func (r *room) countRejections(res *history.Result) {
	for _, v := range res.Verdicts {
		switch v.Reason {
		case history.ReasonLamport:
			r.srv.metrics.lamportRejected.WithLabelValues(lamportReasonCeiling).Inc()
		case history.ReasonWallClock:
			r.srv.metrics.lamportRejected.WithLabelValues(lamportReasonWallClock).Inc()
		}
	}
}

// deliver acknowledges j to its sender and relays its new nodes to every
// other session, with the room's root after j. Caller holds mu.
func (r *room) deliver(j *commitJob, frontier map[history.ID]struct{}) {
	if s := j.from; s != nil {
		ack := protocol.PackAck{Incoming: j.incoming, Rejections: make([]protocol.Rejection, 0)}
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
		if b, err := encode(ack); err != nil {
			r.srv.log.Error("encode pack-ack", "err", err)
		} else {
			s.send(b)
		}
	}
	if len(j.res.Accepted) == 0 {
		return
	}
	from := r.srv.pubHex
	if j.from != nil {
		from = j.from.pubkey
	}
	rf := &relayFrames{room: r, from: from, root: history.Root(slices.Collect(maps.Keys(frontier))), accepted: j.res.Accepted}
	for o := range r.sessions {
		if o == j.from {
			continue // a broadcast is not echoed to its sender
		}
		if frame := rf.forSub(o.sub); frame != nil {
			o.send(frame)
		}
	}
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
	b := rf.encode(func(a history.Accepted) bool { return a.Tx == nil || sub.matches(opPaths(a.Tx)) })
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
	b, err := encodePack(rf.from, rf.root, nodes)
	if err != nil {
		rf.room.srv.log.Error("encode relay", "room", rf.room.name, "err", err)
		return nil
	}
	return b
}
