package controlplane

import (
	"context"
	"strings"
	"unicode/utf8"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxAuditRoomBytes bounds the room recorded in an audit event. The room is
// read from the request before it is validated, so an unauthenticated
// caller could otherwise write megabytes into the audit trail.
const maxAuditRoomBytes = 256

// commandUnary resolves the command of a unary call, refuses methods the
// registry does not know (fail closed), and owns the call's audit event:
// it is emitted when the call returns, also when a deeper layer fails or
// the handler panics, so mutation handlers can add their Raft index first.
func (s *Server) commandUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c, err := s.beginCall(ctx, info.FullMethod)
	c.unary = true
	ctx = withCall(ctx, c)
	defer s.finish(ctx, c)
	if err != nil {
		return nil, err
	}
	if c.cmd.RoomScoped {
		c.setRoom(requestRoom(req))
	}
	return handler(ctx, req)
}

// commandStream is commandUnary for streams. The event is normally emitted
// as soon as authorization decides (see authorizeStream), so a long-lived
// stream is audited when it starts, not when it ends; the deferred finish
// covers streams that end before a decision.
func (s *Server) commandStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c, err := s.beginCall(ss.Context(), info.FullMethod)
	wrapped := middleware.WrapServerStream(ss)
	wrapped.WrappedContext = withCall(ss.Context(), c)
	defer s.finish(wrapped.WrappedContext, c)
	if err != nil {
		return err
	}
	return handler(srv, wrapped)
}

// beginCall creates the call record for fullMethod. For an unregistered
// method it answers the deny error, already recorded as the decision.
func (s *Server) beginCall(ctx context.Context, fullMethod string) (*call, error) {
	cmd, known := s.registry.Lookup(fullMethod)
	if !known {
		cmd = Command{Name: fullMethod, Capability: unregisteredCapability, FullMethod: fullMethod}
	}
	c := s.newCall(cmd, TransportGRPC)
	logCommand(ctx, cmd.Name)
	if known {
		return c, nil
	}
	// Name the caller even though it never reaches authentication: a probe
	// of unannotated methods is exactly what an auditor wants to see.
	if id, err := peerIdentity(ctx); err == nil {
		c.event.Actor = id.String()
	}
	c.decide(DecisionDeny, "unregistered method")
	s.logger.WarnContext(ctx, "refused a method without a command annotation", "grpc.method", fullMethod)
	return c, denyError(cmd.Name, cmd.Capability)
}

// newCall starts the record of one invocation of cmd.
func (s *Server) newCall(cmd Command, transport string) *call {
	return &call{cmd: cmd, event: AuditEvent{
		Time:      s.now(),
		Node:      s.nodeID,
		Transport: transport,
		Command:   cmd.Name,
		Requires:  cmd.Capability,
	}}
}

// finish emits the call's audit event and counts it, once.
func (s *Server) finish(ctx context.Context, c *call) {
	ev, ok := c.take()
	if !ok {
		return
	}
	s.metrics.request(ev.Command, ev.Decision)
	// The RPC context may already be cancelled (the client went away); the
	// event must still be recorded.
	s.events.add(ev)
	s.audit.Record(context.WithoutCancel(ctx), ev)
}

// requestRoom reads the "room" string field of a request message, or ""
// when there is none. The registry guarantees room-scoped commands have it.
func requestRoom(req any) string {
	// Generated requests have the getter; reflection is for dynamic
	// messages only, so the common path costs no protoreflect lookups.
	if r, ok := req.(interface{ GetRoom() string }); ok {
		return r.GetRoom()
	}
	m, ok := req.(proto.Message)
	if !ok {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(roomFieldName)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return ""
	}
	return r.Get(fd).String()
}

// auditRoom bounds and sanitises an untrusted room name for the audit
// trail. Authorization always uses the full room name.
func auditRoom(room string) string {
	if len(room) > maxAuditRoomBytes {
		room = room[:maxAuditRoomBytes]
	}
	return strings.ToValidUTF8(room, string(utf8.RuneError))
}
