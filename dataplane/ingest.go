package dataplane

import (
	"crypto/ed25519"
	"sync/atomic"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// maxPipelinedPacks bounds how many packs of one session may be in
// flight (verifying or waiting for their commit) at once. 64 is the usual
// client window (the load tool's and Centrifugo's benchmark shape): with
// 16, the rest of such a window waited in the socket, commit batches (and
// so the frames per write) stayed small, and fan-out was 30 % lower. It
// also bounds memory: at most this many decoded frames (each under
// MaxFrameBytes) per session, arriving no faster than the peer's rate
// limit allows.
const maxPipelinedPacks = 64

// commitJob is one pack on its way through verification, commit,
// acknowledgement and relay.
type commitJob struct {
	from     *session // nil: the server itself (Publish)
	incoming int
	nodes    []*syncv1.Node

	checked    []history.Checked
	chunksLeft atomic.Int32  // verification chunks still running (verifier)
	prepared   chan struct{} // closed once checked is set

	// Set by the commit, read after done is closed.
	res  *history.Result
	err  error
	done chan struct{}
}

func newCommitJob(from *session, nodes []*syncv1.Node) *commitJob {
	return &commitJob{from: from, incoming: len(nodes), nodes: nodes, prepared: make(chan struct{}), done: make(chan struct{})}
}

// ingest queues a pack from s for commit and for verification, without
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
	// The room-independent checks (signatures: the costly part) run with
	// no lock held, on the server's verification workers.
	r.srv.verifier.submit(r.store, j)
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
// in order. While a batch is verified and stored, new packs verify and
// queue up for the next one, so a slow disk costs latency, not
// throughput. It exits when the queue is empty; the next submit starts a
// new one.
//
// A batch holds at most maxCommitBatch packs: each session gets its share
// of a batch as one push, so a batch may fill at most a quarter of a
// session's queue, and a reader keeping up is never closed with 4001
// because many packs happened to commit together.
//
// Waiting for the whole batch rather than committing its verified prefix
// at once was measured: the prefix variant halves the packs per batch, so
// every writer flushes twice as often, and throughput drops (CPU, not
// latency, is what a busy room runs out of).
func (r *room) runCommits() {
	var batch []*commitJob
	for {
		r.cmu.Lock()
		if len(r.pending) == 0 {
			r.committing = false
			r.cmu.Unlock()
			return
		}
		n := min(len(r.pending), r.srv.maxCommitBatch)
		batch = append(batch[:0], r.pending[:n]...)
		m := copy(r.pending, r.pending[n:])
		clear(r.pending[m:])
		r.pending = r.pending[:m]
		r.cmu.Unlock()
		for _, j := range batch {
			<-j.prepared
		}
		r.commitBatch(batch)
		clear(batch)
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
	policy := r.writeCheck()
	var all []history.Accepted
	for _, j := range batch {
		j.res = r.srv.validator.ResolveWith(ov, j.checked, withGrant(policy, j.from))
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

	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, j := range batch {
			j.err = err
			if j.from != nil {
				j.from.sendError("internal error: pack not stored")
			}
		}
		return
	}
	r.deliver(batch, before)
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

// withGrant adds the sending session's write: grants to the room's write
// check: a node is rejected alone when one of its op paths is outside
// them ("token grants no write to <path>"), before the room policy.
func withGrant(policy history.WriteCheck, from *session) history.WriteCheck {
	if from == nil || from.grant == nil || from.grant.write == nil {
		return policy
	}
	g := from.grant
	return func(c *history.Checked) string {
		for _, op := range c.Tx.GetOps() {
			if !g.mayWrite(op.GetPath()) {
				return "token grants no write to " + op.GetPath()
			}
		}
		if policy != nil {
			return policy(c)
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
