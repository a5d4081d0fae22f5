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

// Transports of audit events: the gRPC admin port, the WebSocket
// control commands of the data plane (Dispatcher), and commands a node
// runs on its own authority (automatic key rotation, RotateKeyAsNode).
const (
	TransportGRPC      = "grpc"
	TransportWebSocket = "websocket"
	TransportInternal  = "internal"
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
	// KeyIDs are the key ids a key command created or acted on: for
	// keys.rotate the new kid then the kids it superseded, for keys.retire
	// the retired kid, for set-room-key and rotate-room-key the room kid
	// set then those it superseded. Ids only, never key material.
	KeyIDs []string
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
	attrs := []any{
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
	}
	if len(e.KeyIDs) > 0 {
		// Only on key commands, so other lines keep their shape.
		attrs = append(attrs, slog.Any("key_ids", e.KeyIDs))
	}
	a.logger.LogAttrs(ctx, slog.LevelInfo, "audit", slog.Group("event", attrs...))
}
