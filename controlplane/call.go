package controlplane

import (
	"context"
	"sync"
)

// call is the per-RPC record of one command invocation. The command
// interceptor creates it and owns the audit event; the authentication and
// authorization layers fill it in; it is emitted exactly once. Keeping one
// owner is what makes "exactly one audit event per call" hold on every path:
// unknown method, failed authentication, denial, success, handler panic.
type call struct {
	cmd Command

	mu      sync.Mutex
	event   AuditEvent
	emitted bool
	// unary calls may be forwarded calls; streams never are.
	unary bool
	// forwarded marks a call another node forwarded here: that node
	// audited and counted it, so this one records nothing.
	forwarded bool
}

type callKey struct{}

func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func (c *call) setActor(actor string) {
	c.mu.Lock()
	c.event.Actor = actor
	c.mu.Unlock()
}

func (c *call) markForwarded() {
	c.mu.Lock()
	c.forwarded = true
	c.mu.Unlock()
}

func (c *call) isForwarded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.forwarded
}

func (c *call) setRoom(room string) {
	c.mu.Lock()
	c.event.Room = auditRoom(room)
	c.mu.Unlock()
}

// decide records the authorization outcome. The first decision wins: a
// later one would mean two layers disagree, and the audit must show what
// the caller was actually told.
func (c *call) decide(decision, reason string) {
	c.mu.Lock()
	if c.event.Decision == "" {
		c.event.Decision = decision
		c.event.Reason = reason
	}
	c.mu.Unlock()
}

// take answers the event to emit, or false when it was already emitted.
// A call that ends without a decision (a stream that never sent its first
// request) is recorded as denied: nothing was authorized.
func (c *call) take() (AuditEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.emitted || c.forwarded {
		return AuditEvent{}, false
	}
	c.emitted = true
	if c.event.Decision == "" {
		c.event.Decision = DecisionDeny
		c.event.Reason = "no request received"
	}
	return c.event, true
}

// SetRaftIndex records, for the audit event of the current call, the Raft
// index a mutation was applied at. Mutation handlers call it after their
// write commits; outside a command call it does nothing. On unary calls the
// audit event is emitted when the handler returns, so the index is included.
func SetRaftIndex(ctx context.Context, index uint64) {
	c := callFrom(ctx)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.event.RaftIndex = index
	c.mu.Unlock()
}
