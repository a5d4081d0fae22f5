package controlplane

import (
	"sync"
	"time"
)

// defaultAuditCapacity is how many events a node keeps for audit.list
// when Config.AuditCapacity is 0: enough for a day of a busy operator
// team, about 2 MB.
const defaultAuditCapacity = 10_000

// auditLog keeps the most recent audit events of this node in memory, in
// addition to the Auditor, so that audit.list can answer without an
// external store. It is a ring: the oldest event is dropped when full.
// Events are appended when a call finishes, so their Time (the call's
// start) is not strictly increasing; listing filters, it does not search.
type auditLog struct {
	mu    sync.Mutex
	buf   []AuditEvent
	start int // index of the oldest event
	n     int // events held
}

func newAuditLog(capacity int) *auditLog {
	if capacity <= 0 {
		capacity = defaultAuditCapacity
	}
	return &auditLog{buf: make([]AuditEvent, capacity)}
}

func (l *auditLog) add(e AuditEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < len(l.buf) {
		l.buf[(l.start+l.n)%len(l.buf)] = e
		l.n++
		return
	}
	l.buf[l.start] = e
	l.start = (l.start + 1) % len(l.buf)
}

// list answers up to limit events whose time is at or after since, oldest
// first (in the order they were recorded).
func (l *auditLog) list(since time.Time, limit int) []AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]AuditEvent, 0, min(limit, l.n))
	for i := 0; i < l.n && len(out) < limit; i++ {
		e := l.buf[(l.start+i)%len(l.buf)]
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out
}
