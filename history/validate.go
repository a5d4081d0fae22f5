package history

import (
	"crypto/ed25519"
	"math"
	"runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// Rejection reasons, stable strings sent to clients in pack-ack.
const (
	ReasonMalformed     = "malformed transaction"
	ReasonLamport       = "lamport too far ahead"
	ReasonWallClock     = "wall clock too far ahead"
	ReasonSignature     = "bad signature"
	ReasonMissingParent = "missing parent"
)

// Defaults of the SPEC's ingest limits.
const (
	DefaultLamportWindow uint64        = 1 << 20
	DefaultClockSkew     time.Duration = 24 * time.Hour
)

// minNodesPerWorker keeps tiny packs on the calling goroutine. A goroutine
// costs about a microsecond to start and a signature about 50 µs to check,
// so anything beyond a few nodes is worth spreading over every CPU: a lone
// publisher then gets all cores, not one.
const minNodesPerWorker = 4

// Lookup is the part of a store the validator reads. Has must be safe to
// call concurrently (Prepare verifies in parallel and reads without the
// room's ingest lock).
type Lookup interface {
	Has(ID) bool
	MaxLamport() uint64
}

// Validator runs the SPEC ingest chain. The zero value uses the SPEC
// defaults and the real clock.
//
// Checking is split in two so the expensive part runs without the room's
// lock: Prepare does everything that depends only on the node (decode, wall
// clock, signature) and may run concurrently for many packs of one room;
// Resolve does what depends on the room (duplicates, Lamport ceiling,
// parents) and must be serialised with Put by the caller. Each node's
// reason is the first failure in SPEC order whichever phase found it.
type Validator struct {
	// LamportWindow is how far above the room's highest Lamport a node may
	// be; 0 means DefaultLamportWindow.
	LamportWindow uint64
	// ClockSkew is how far ahead of Now a node's wall clock may be; 0 means
	// DefaultClockSkew.
	ClockSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Checked is one node after Prepare.
type Checked struct {
	Node *syncv1.Node
	ID   ID
	// Tx is the decoded transaction; nil when malformed. Later checks (room
	// policy on op paths) read it.
	Tx      *syncv1.Transaction
	Parents []ID // unique, in the order the transaction lists them

	malformed bool
	wallAhead bool
	badSig    bool
	stored    bool // already in the store when prepared: signature not verified
}

// Verdict is the outcome for one input node.
type Verdict struct {
	ID ID
	// Reason is empty when the node was accepted.
	Reason string
	// Duplicate is set on accepted nodes that were already stored, or that
	// appeared earlier in the same pack: accepted idempotently, not stored
	// or relayed again.
	Duplicate bool
}

// Accepted is a node that passed every check and is new to the store.
type Accepted struct {
	Node    *syncv1.Node
	ID      ID
	Lamport uint64
	Parents []ID
	// Tx is the decoded transaction (set by Resolve; nil in an Accepted
	// built by hand), so that relays can filter on op paths without
	// decoding again.
	Tx *syncv1.Transaction
}

// Result is the outcome of validating one pack.
type Result struct {
	// Verdicts has one entry per input node, in input order.
	Verdicts []Verdict
	// Accepted lists the new nodes, parents before children, ready for
	// Store.Put.
	Accepted []Accepted
}

// Counts returns how many input nodes were accepted (new or duplicate) and
// rejected; they sum to len(Verdicts).
func (r *Result) Counts() (accepted, rejected int) {
	for _, v := range r.Verdicts {
		if v.Reason == "" {
			accepted++
		} else {
			rejected++
		}
	}
	return accepted, rejected
}

// Validate is Prepare followed by Resolve, for callers that hold the room's
// lock anyway.
func (v *Validator) Validate(l Lookup, nodes []*syncv1.Node) *Result {
	return v.Resolve(l, v.Prepare(l, nodes))
}

// Prepare runs the room-independent checks of every node. Nodes already in
// the store (per l.Has) skip signature verification: the stored copy was
// verified and the id commits to the content. Large packs are verified on
// all CPUs.
func (v *Validator) Prepare(l Lookup, nodes []*syncv1.Node) []Checked {
	out := make([]Checked, len(nodes))
	limit := v.wallLimitMs()
	workers := min(runtime.GOMAXPROCS(0), len(nodes)/minNodesPerWorker)
	if workers <= 1 {
		for i, n := range nodes {
			out[i] = check(l, n, limit)
		}
		return out
	}
	var wg sync.WaitGroup
	per := (len(nodes) + workers - 1) / workers
	for start := 0; start < len(nodes); start += per {
		end := min(start+per, len(nodes))
		wg.Go(func() {
			for i := start; i < end; i++ {
				out[i] = check(l, nodes[i], limit)
			}
		})
	}
	wg.Wait()
	return out
}

// PrepareInto runs Prepare's checks of nodes on the calling goroutine,
// writing each node's outcome to the same index of out (len(out) must be
// len(nodes)). It lets a caller spread one pack over workers of its own,
// in chunks, instead of Prepare's goroutines: a goroutine started for a
// verify grows its stack for it every time (the Ed25519 code needs more
// than a new goroutine has), a long-lived worker only once.
func (v *Validator) PrepareInto(l Lookup, nodes []*syncv1.Node, out []Checked) {
	limit := v.wallLimitMs()
	for i, n := range nodes {
		out[i] = check(l, n, limit)
	}
}

// wallLimitMs is the latest acceptable wall_ms.
func (v *Validator) wallLimitMs() uint64 {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.ClockSkew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	ms := now().Add(skew).UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// check runs decode, wall clock and signature on one node.
func check(l Lookup, n *syncv1.Node, wallLimitMs uint64) Checked {
	c := Checked{Node: n, ID: NodeID(n)}
	if l != nil && l.Has(c.ID) {
		c.stored = true
		return c
	}
	tx := new(syncv1.Transaction)
	if err := proto.Unmarshal(n.GetTransactionBytes(), tx); err != nil || len(tx.GetAuthor()) != ed25519.PublicKeySize {
		c.malformed = true
		return c
	}
	seen := make(map[ID]struct{}, len(tx.GetParents()))
	for _, p := range tx.GetParents() {
		pid, ok := idFromBytes(p)
		if !ok {
			c.malformed = true
			return c
		}
		if _, dup := seen[pid]; !dup {
			seen[pid] = struct{}{}
			c.Parents = append(c.Parents, pid)
		}
	}
	c.Tx = tx
	c.wallAhead = tx.GetWallMs() > wallLimitMs
	sig := n.GetSignature()
	c.badSig = len(sig) != ed25519.SignatureSize || !ed25519.Verify(tx.GetAuthor(), c.ID[:], sig)
	return c
}

// WriteCheck is the room's write policy as Resolve applies it: it returns
// "" to allow a node, or the rejection reason. It sees only nodes that
// passed every earlier check, parents included.
type WriteCheck func(c *Checked) (reason string)

// Resolve applies the room-dependent checks to prepared nodes and orders the
// new ones parents-first. The caller must hold the room's ingest lock from
// Resolve until the accepted nodes are stored, so that the store it reads is
// the one it writes. Order inside a pack does not matter: parents are
// resolved to a fixpoint (Kahn's algorithm) over the whole pack.
func (v *Validator) Resolve(l Lookup, checked []Checked) *Result {
	return v.ResolveWith(l, checked, nil)
}

// ResolveWith is Resolve with a write policy, the last check of the SPEC
// chain: a node whose parents are all present is then offered to allow, and
// a denied node is rejected with allow's reason. Its children in the pack
// end as "missing parent", as for any rejected parent. A nil allow allows
// everything.
func (v *Validator) ResolveWith(l Lookup, checked []Checked, allow WriteCheck) *Result {
	res := &Result{Verdicts: make([]Verdict, len(checked))}
	ceiling := lamportCeiling(l.MaxLamport(), v.window())

	// First copy of each id still in the running; later copies follow it.
	primary := make(map[ID]int, len(checked))
	var pending []int
	for i := range checked {
		c := &checked[i]
		res.Verdicts[i].ID = c.ID
		if c.stored || l.Has(c.ID) {
			res.Verdicts[i].Duplicate = true
			continue
		}
		if reason := c.statelessReason(ceiling); reason != "" {
			res.Verdicts[i].Reason = reason
			continue
		}
		if _, dup := primary[c.ID]; dup {
			continue // settled after the primary below
		}
		primary[c.ID] = i
		pending = append(pending, i)
	}

	// need[i]: parents of pending node i not yet accepted; waiters[p]: pending
	// nodes waiting on parent p.
	need := make(map[int]int, len(pending))
	waiters := make(map[ID][]int)
	var ready []int
	for _, i := range pending {
		for _, p := range checked[i].Parents {
			if l.Has(p) {
				continue
			}
			// A parent that is neither stored nor pending can never arrive
			// in this pack; the node stays waiting and ends as missing.
			need[i]++
			waiters[p] = append(waiters[p], i)
		}
		if need[i] == 0 {
			ready = append(ready, i)
		}
	}
	accepted := make(map[int]bool, len(pending))
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		c := &checked[i]
		if allow != nil {
			if reason := allow(c); reason != "" {
				res.Verdicts[i].Reason = reason
				continue // its waiters never become ready
			}
		}
		accepted[i] = true
		res.Accepted = append(res.Accepted, Accepted{Node: c.Node, ID: c.ID, Lamport: c.Tx.GetLamport(), Parents: c.Parents, Tx: c.Tx})
		for _, w := range waiters[c.ID] {
			if need[w]--; need[w] == 0 {
				ready = append(ready, w)
			}
		}
	}
	for _, i := range pending {
		if !accepted[i] && res.Verdicts[i].Reason == "" {
			res.Verdicts[i].Reason = ReasonMissingParent
		}
	}

	// Later copies of an id share the fate of the first.
	for i := range checked {
		if res.Verdicts[i].Duplicate || res.Verdicts[i].Reason != "" {
			continue
		}
		p, ok := primary[checked[i].ID]
		if !ok || p == i {
			continue
		}
		if accepted[p] {
			res.Verdicts[i].Duplicate = true
		} else {
			res.Verdicts[i].Reason = res.Verdicts[p].Reason
		}
	}
	return res
}

// statelessReason returns the first failure in SPEC order among the checks
// that do not involve parents: id/bytes, Lamport ceiling, wall clock,
// signature.
func (c *Checked) statelessReason(ceiling uint64) string {
	switch {
	case c.malformed:
		return ReasonMalformed
	case c.Tx.GetLamport() > ceiling:
		return ReasonLamport
	case c.wallAhead:
		return ReasonWallClock
	case c.badSig:
		return ReasonSignature
	}
	return ""
}

func (v *Validator) window() uint64 {
	if v.LamportWindow == 0 {
		return DefaultLamportWindow
	}
	return v.LamportWindow
}

// lamportCeiling is max+window without wrapping around.
func lamportCeiling(max, window uint64) uint64 {
	if max > math.MaxUint64-window {
		return math.MaxUint64
	}
	return max + window
}
