package dataplane

import (
	"runtime"
	"sync"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// minVerifyChunk is the fewest nodes one verification task of a larger
// pack checks. A pack is split into one chunk per worker (so a lone large
// pack still uses every core), but never into chunks smaller than this:
// a hand-over costs a wake-up, a signature 50–100 µs.
const minVerifyChunk = 4

// verifier runs the room-independent ingest checks (history.Validator's
// PrepareInto: decode, wall clock, Ed25519) of every room's packs on at
// most GOMAXPROCS long-lived workers, in submission order.
//
// Why not a goroutine per pack, as before: a fresh goroutine's stack is
// too small for the signature check, so every pack paid a stack growth
// and copy (3–5 % of the server's CPU in the fan-out profile), and a
// burst of packs became a burst of runnable goroutines competing with the
// session writers. Workers start on demand and stay until Close (called by
// Server.Shutdown), so an idle server runs none.
type verifier struct {
	v   *history.Validator
	max int

	mu      sync.Mutex
	cond    sync.Cond
	tasks   []verifyTask // FIFO from head
	head    int
	workers int
	idle    int
	closed  bool
	wg      sync.WaitGroup
}

// verifyTask is one chunk of one pack.
type verifyTask struct {
	job    *commitJob
	store  history.Lookup
	lo, hi int
}

func newVerifier(v *history.Validator) *verifier {
	vf := &verifier{v: v, max: runtime.GOMAXPROCS(0)}
	vf.cond.L = &vf.mu
	return vf
}

// submit queues the checks of j's nodes; j.prepared is closed when the
// last chunk is done. After Close the checks run on the caller.
func (vf *verifier) submit(store history.Lookup, j *commitJob) {
	n := len(j.nodes)
	j.checked = make([]history.Checked, n)
	if n == 0 {
		close(j.prepared)
		return
	}
	size := max(minVerifyChunk, (n+vf.max-1)/vf.max)
	chunks := (n + size - 1) / size
	j.chunksLeft.Store(int32(chunks))
	vf.mu.Lock()
	if vf.closed {
		vf.mu.Unlock()
		vf.run(verifyTask{job: j, store: store, lo: 0, hi: n})
		return
	}
	for lo := 0; lo < n; lo += size {
		vf.tasks = append(vf.tasks, verifyTask{job: j, store: store, lo: lo, hi: min(lo+size, n)})
	}
	// Wake idle workers first; start new ones up to max for the rest.
	wake := min(chunks, vf.idle)
	for range wake {
		vf.cond.Signal()
	}
	for start := min(chunks-wake, vf.max-vf.workers); start > 0; start-- {
		vf.workers++
		vf.wg.Add(1)
		go vf.work()
	}
	vf.mu.Unlock()
}

// work runs tasks until Close, then finishes what is queued and exits.
func (vf *verifier) work() {
	defer vf.wg.Done()
	vf.mu.Lock()
	for {
		for vf.head == len(vf.tasks) && !vf.closed {
			vf.idle++
			vf.cond.Wait()
			vf.idle--
		}
		if vf.head == len(vf.tasks) { // closed and drained
			vf.workers--
			vf.mu.Unlock()
			return
		}
		t := vf.tasks[vf.head]
		vf.tasks[vf.head] = verifyTask{}
		vf.head++
		switch {
		case vf.head == len(vf.tasks):
			vf.tasks, vf.head = vf.tasks[:0], 0
		case vf.head >= 1024 && 2*vf.head >= len(vf.tasks):
			// A queue that never drains must not grow without end.
			n := copy(vf.tasks, vf.tasks[vf.head:])
			clear(vf.tasks[n:])
			vf.tasks, vf.head = vf.tasks[:n], 0
		}
		vf.mu.Unlock()
		vf.run(t)
		vf.mu.Lock()
	}
}

// run checks one chunk and closes the job's prepared after its last one.
func (vf *verifier) run(t verifyTask) {
	j := t.job
	vf.v.PrepareInto(t.store, j.nodes[t.lo:t.hi], j.checked[t.lo:t.hi])
	if t.hi-t.lo == len(j.nodes) || j.chunksLeft.Add(-1) == 0 {
		close(j.prepared)
	}
}

// Close stops the workers once the queue is drained and waits for them.
// Later submits run on the caller. It may be called more than once.
func (vf *verifier) Close() {
	vf.mu.Lock()
	vf.closed = true
	vf.cond.Broadcast()
	vf.mu.Unlock()
	vf.wg.Wait()
}
