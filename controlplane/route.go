package controlplane

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Read consistency. Reads are linearizable by default; a caller that
// prefers speed and availability over freshness sends the metadata
// `nodalmerge-consistency: stale` (grpcurl: -H 'nodalmerge-consistency:
// stale') and gets this node's applied state, which may lag the leader.
const (
	mdConsistency         = "nodalmerge-consistency"
	consistencyStale      = "stale"
	consistencyLinearized = "linearizable"
)

// nodeLocal reports the commands that are about, or act on, the node that
// received them: they never go to the leader.
func nodeLocal(name string) bool {
	switch name {
	case "cluster.status", "cluster.snapshot", "compact-room", "audit.list":
		return true
	}
	return historyCommand(name)
}

// routeUnary runs a unary command where it must run: node-local commands
// here; mutations and linearizable reads on the leader (after ReadIndex for
// reads), forwarded there from a follower.
func (s *Server) routeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := callFrom(ctx)
	if c == nil {
		s.logger.ErrorContext(ctx, "routing reached without a command record")
		return nil, internalError()
	}
	m, ok := req.(proto.Message)
	if !ok {
		// Every admin request is a proto message; anything else cannot be
		// forwarded, so run it here.
		return handler(ctx, req)
	}
	return s.route(ctx, c, m, func(ctx context.Context) (any, error) { return handler(ctx, req) })
}

// route is shared by the gRPC and WebSocket doors, so a command runs in the
// same place whichever door it came through. local runs the handler here.
//
// A forwarded call is never forwarded again: if it lands on a node that is
// no longer the leader, it answers UNAVAILABLE and the caller retries, so a
// forwarding loop cannot form.
func (s *Server) route(ctx context.Context, c *call, req proto.Message, local func(context.Context) (any, error)) (any, error) {
	if nodeLocal(c.cmd.Name) {
		return local(ctx)
	}
	if !c.cmd.Mutation {
		stale, err := wantsStale(ctx)
		if err != nil {
			return nil, err
		}
		if stale {
			return local(ctx)
		}
	}
	if s.cluster.IsLeader() {
		if !c.cmd.Mutation {
			if err := s.readBarrier(ctx); err != nil {
				return nil, err
			}
		}
		return local(ctx)
	}
	if c.isForwarded() {
		return nil, status.Error(codes.Unavailable, "not the leader: leadership moved while the call was forwarded; retry")
	}
	resp, err := s.forward(ctx, c, req)
	if err != nil {
		return nil, err
	}
	if overlay := s.overlays[c.cmd.Name]; overlay != nil {
		if err := overlay(resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// readBarrier makes the leader's next local read linearizable: it confirms
// leadership with a quorum and waits until the state machine has applied
// everything committed before the read began.
func (s *Server) readBarrier(ctx context.Context) error {
	idx, err := s.cluster.ReadIndex(ctx)
	if err != nil {
		return clusterError(ctx, s.logger, "read", err)
	}
	if err := s.cluster.WaitApplied(ctx, idx); err != nil {
		return clusterError(ctx, s.logger, "read", err)
	}
	return nil
}

// wantsStale reads the consistency the caller asked for. Values other than
// "stale" and "linearizable" are refused so that a typo never silently
// changes the guarantee.
func wantsStale(ctx context.Context) (bool, error) {
	v := metadata.ValueFromIncomingContext(ctx, mdConsistency)
	switch {
	case len(v) == 0:
		return false, nil
	case len(v) == 1 && v[0] == consistencyStale:
		return true, nil
	case len(v) == 1 && v[0] == consistencyLinearized:
		return false, nil
	}
	return false, status.Error(codes.InvalidArgument, "nodalmerge-consistency must be \"stale\" or \"linearizable\" (the default), once")
}
