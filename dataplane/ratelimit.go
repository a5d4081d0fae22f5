package dataplane

import (
	"sync"
	"time"
)

// bucket is one peer's pair of token buckets in a room: nodes per second
// and decoded bytes per second, each holding at most one second's
// allowance (the SPEC's burst). It is shared by all sessions of the
// peer's key in the room, so opening more sessions buys no more rate, and
// it outlives a disconnect until it has refilled (room.limits), so
// reconnecting does not reset it either.
//
// A charge that does not fit is refused whole: the pack is not partly
// accepted, and the caller closes the session with 4008. A pack larger
// than one second's allowance can therefore never fit, as the SPEC asks.
type bucket struct {
	mu    sync.Mutex
	nodes float64
	bytes float64
	last  time.Time
}

// limits are the configured rates; zero turns one off.
type limits struct {
	nodes float64
	bytes float64
}

func (l limits) off() bool { return l.nodes == 0 && l.bytes == 0 }

func newBucket(l limits, now time.Time) *bucket {
	return &bucket{nodes: l.nodes, bytes: l.bytes, last: now}
}

// take charges nodes and bytes if both fit; now must be monotonic.
func (b *bucket) take(l limits, nodes, bytes int, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(l, now)
	if (l.nodes > 0 && float64(nodes) > b.nodes) || (l.bytes > 0 && float64(bytes) > b.bytes) {
		return false
	}
	if l.nodes > 0 {
		b.nodes -= float64(nodes)
	}
	if l.bytes > 0 {
		b.bytes -= float64(bytes)
	}
	return true
}

// full reports whether the bucket has refilled completely, so forgetting
// it loses nothing.
func (b *bucket) full(l limits, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(l, now)
	return b.nodes >= l.nodes && b.bytes >= l.bytes
}

// refill adds what the elapsed time allows, up to one second's worth.
// Caller holds mu.
func (b *bucket) refill(l limits, now time.Time) {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return
	}
	b.last = now
	b.nodes = min(l.nodes, b.nodes+dt*l.nodes)
	b.bytes = min(l.bytes, b.bytes+dt*l.bytes)
}
