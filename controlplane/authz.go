package controlplane

import (
	"context"
	"sync/atomic"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Audit reasons of authorization denials. The caller only ever sees the
// SPEC deny string; the audit trail says which rule refused.
const (
	reasonMissingCapability = "missing capability"
	reasonNodeOnly          = "capability held only by node certificates"
	reasonRoomNotAllowed    = "room outside token rooms"
	reasonNoPrincipal       = "no authenticated principal"
)

// allowed is the whole authorization rule, a pure function so that the
// WebSocket path and tests can apply exactly the same decision. It answers
// the audit reason when it denies.
func allowed(p Principal, cmd Command, room string) (string, bool) {
	if cmd.Capability == token.CapClusterNode {
		// Tokens can never carry cluster.node, whatever their caps say:
		// only a node certificate holds it, for every room.
		if p.Identity.Role != pki.RoleNode {
			return reasonNodeOnly, false
		}
		return "", true
	}
	if !token.HasCap(p.caps(), cmd.Capability) {
		return reasonMissingCapability, false
	}
	if !cmd.RoomScoped {
		return "", true
	}
	switch {
	case p.Claims != nil && !token.RoomAllowed(p.Claims.Rooms, room):
		return reasonRoomNotAllowed, false
	case p.Session != nil && p.Session.Room != room:
		// A room token is for one room: its session commands only it.
		return reasonRoomNotAllowed, false
	}
	return "", true
}

// authorize applies allowed to the current call and records the decision.
func (s *Server) authorize(ctx context.Context, c *call, room string) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		// Authentication did not run or did not set a principal: a wiring
		// bug. Deny, never guess.
		c.decide(DecisionDeny, reasonNoPrincipal)
		s.logger.ErrorContext(ctx, "authorization reached without a principal", "command", c.cmd.Name)
		return internalError()
	}
	if reason, ok := allowed(p, c.cmd, room); !ok {
		c.decide(DecisionDeny, reason)
		return denyError(c.cmd.Name, c.cmd.Capability)
	}
	c.decide(DecisionAllow, "")
	return nil
}

// authorizeUnary checks the caller against the command before the handler
// sees the request, so a caller without the capability gets the deny
// whatever its payload.
func (s *Server) authorizeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := callFrom(ctx)
	if c == nil {
		s.logger.ErrorContext(ctx, "authorization reached without a command record")
		return nil, internalError()
	}
	if c.isForwarded() {
		// The forwarding node authorized (and audited) the call; it was
		// authenticated as a node above.
		return handler(ctx, req)
	}
	room := ""
	if c.cmd.RoomScoped {
		room = requestRoom(req)
	}
	if err := s.authorize(ctx, c, room); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authorizeStream authorizes a stream at its start, or, for a room-scoped
// command whose room arrives in the first request, when that request is
// received: the handler sees no request and can send nothing before then.
func (s *Server) authorizeStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	c := callFrom(ctx)
	if c == nil {
		s.logger.ErrorContext(ctx, "authorization reached without a command record")
		return internalError()
	}
	if !c.cmd.RoomScoped {
		err := s.authorize(ctx, c, "")
		s.finish(ctx, c)
		if err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return handler(srv, &roomGuardStream{WrappedServerStream: middleware.WrapServerStream(ss), s: s, c: c})
}

// Authorization states of a room-scoped stream.
const (
	streamPending int32 = iota
	streamAllowed
	streamDenied
)

// roomGuardStream holds a room-scoped stream until its first request names
// the room, then authorizes it once.
type roomGuardStream struct {
	*middleware.WrappedServerStream
	s      *Server
	c      *call
	state  atomic.Int32
	denial error
}

func (g *roomGuardStream) RecvMsg(m any) error {
	switch g.state.Load() {
	case streamAllowed:
		return g.WrappedServerStream.RecvMsg(m)
	case streamDenied:
		return g.denial
	}
	if err := g.WrappedServerStream.RecvMsg(m); err != nil {
		return err
	}
	room := requestRoom(m)
	g.c.setRoom(room)
	ctx := g.Context()
	err := g.s.authorize(ctx, g.c, room)
	g.s.finish(ctx, g.c)
	if err != nil {
		g.denial = err
		g.state.Store(streamDenied)
		return err
	}
	g.state.Store(streamAllowed)
	return nil
}

func (g *roomGuardStream) SendMsg(m any) error {
	if g.state.Load() != streamAllowed {
		// A handler must not answer before its caller is authorized.
		g.s.logger.ErrorContext(g.Context(), "stream handler sent before authorization", "command", g.c.cmd.Name)
		return internalError()
	}
	return g.WrappedServerStream.SendMsg(m)
}
