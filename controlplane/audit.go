package controlplane

import (
	"context"
	"log/slog"
	"time"
)

// Audit decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
)

// Transports of audit events: the gRPC admin port and the WebSocket
// control commands of the data plane (Dispatcher).
const (
	TransportGRPC      = "grpc"
	TransportWebSocket = "websocket"
)

// AuditEvent is one control-plane command invocation, allowed or denied.
// No field ever holds a secret: Actor is a token subject and id or a
// certificate identity, Reason is a fixed, secret-free phrase.
type AuditEvent struct {
	Time      time.Time
	Node      string
	Actor     string
	Transport string
	Command   string
	Requires  string
	Room      string
	Decision  string
	Reason    string
	// RaftIndex is the index a mutation was applied at; 0 for reads and
	// denials.
	RaftIndex uint64
}

// Auditor receives audit events. Record is called on the request path, so it
// must not block for long; an implementation that persists events should
// queue them.
type Auditor interface {
	Record(ctx context.Context, e AuditEvent)
}

// logAuditor writes audit events to a logger at INFO with msg "audit"; it is
// the default when Config.Audit is nil, so events are never silently lost.
// The fields sit in an "event" group so that the event's own time does not
// collide with the record's time key.
type logAuditor struct{ logger *slog.Logger }

func (a logAuditor) Record(ctx context.Context, e AuditEvent) {
	a.logger.LogAttrs(ctx, slog.LevelInfo, "audit", slog.Group("event",
		slog.Time("time", e.Time),
		slog.String("node", e.Node),
		slog.String("actor", e.Actor),
		slog.String("transport", e.Transport),
		slog.String("command", e.Command),
		slog.String("requires", e.Requires),
		slog.String("room", e.Room),
		slog.String("decision", e.Decision),
		slog.String("reason", e.Reason),
		slog.Uint64("raft_index", e.RaftIndex),
	))
}
