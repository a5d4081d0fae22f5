package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Metadata of a call one node forwards to the leader. The leader believes
// them only from a node certificate whose node id is the forwarded-by
// value; from anyone else the call is refused.
const (
	// mdForwardedBy names the forwarding node.
	mdForwardedBy = "nodalmerge-forwarded-by"
	// mdForwardedIdentity is the certificate identity of the original
	// gRPC caller ("operator:alice", "node:n3"); its bearer token travels
	// in the authorization header unchanged and is verified again.
	mdForwardedIdentity = "nodalmerge-forwarded-identity"
	// The WebSocket session of a forwarded control command: its key, room,
	// room-token caps (one value each) and token expiry (unix seconds).
	mdForwardedPeer   = "nodalmerge-forwarded-peer"
	mdForwardedRoom   = "nodalmerge-forwarded-room"
	mdForwardedCaps   = "nodalmerge-forwarded-caps"
	mdForwardedExpiry = "nodalmerge-forwarded-token-expiry"
	// mdForwardedLamport carries the forwarding node's highest Lamport of
	// the request's room, so set-policy takes effect after everything the
	// room holds there, not only on the leader.
	mdForwardedLamport = "nodalmerge-forwarded-max-lamport"
)

// forwardTimeout bounds a forwarded call whose caller set no deadline, so
// an unreachable leader cannot hold a handler forever.
const forwardTimeout = 30 * time.Second

// forwarder keeps one client connection per leader admin address. A
// cluster has few members, so the pool is bounded by the members that have
// led; connections are closed when the server stops.
type forwarder struct {
	creds credentials.TransportCredentials

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

func newForwarder(clientTLS *tls.Config) *forwarder {
	return &forwarder{
		creds: credentials.NewTLS(clientTLS.Clone()),
		conns: make(map[string]*grpc.ClientConn),
	}
}

var errForwarderClosed = errors.New("controlplane: forwarder closed")

// conn answers the pooled connection to addr, creating it on first use.
// grpc.NewClient does not dial; the first call does, and a broken
// connection reconnects by itself.
func (f *forwarder) conn(addr string) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errForwarderClosed
	}
	if c, ok := f.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(f.creds))
	if err != nil {
		return nil, fmt.Errorf("controlplane: client for leader %s: %w", addr, err)
	}
	f.conns[addr] = c
	return c, nil
}

// close closes every pooled connection; later conn calls fail. A nil
// forwarder (no ClientTLS) has nothing to close.
func (f *forwarder) close(logger *slog.Logger) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for addr, c := range f.conns {
		if err := c.Close(); err != nil {
			logger.Warn("closing forwarding connection", "addr", addr, "error", err)
		}
		delete(f.conns, addr)
	}
}

// noLeaderError is the retryable answer when no leader is known.
func noLeaderError() error {
	return status.Error(codes.Unavailable, "no leader: the cluster is electing or has lost quorum; retry")
}

// forward re-invokes the call on the leader's admin port with this node's
// certificate and answers the leader's response (or its status, details
// included). The leader's raft_index goes into this node's audit event.
func (s *Server) forward(ctx context.Context, c *call, req proto.Message) (proto.Message, error) {
	leaderID, addr, ok := s.cluster.LeaderAdmin()
	switch {
	case leaderID == "" || leaderID == s.nodeID:
		// This node is not the leader, so a view naming it is stale.
		return nil, noLeaderError()
	case !ok || addr == "":
		return nil, status.Errorf(codes.Unavailable, "the leader %s has not recorded its admin address yet; retry", leaderID)
	case s.forwarder == nil:
		return nil, status.Errorf(codes.Unavailable,
			"this node is not the leader and cannot forward (no client TLS configured): call the leader %s at %s", leaderID, addr)
	}
	conn, err := s.forwarder.conn(addr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "node is shutting down; retry on another node")
	}
	resp, err := s.registry.newResponse(c.cmd.FullMethod)
	if err != nil {
		s.logger.ErrorContext(ctx, "forward: response type", "command", c.cmd.Name, "error", err)
		return nil, internalError()
	}
	out := metadata.NewOutgoingContext(ctx, s.forwardMetadata(ctx, c, req))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		out, cancel = context.WithTimeout(out, forwardTimeout)
		defer cancel()
	}
	var header metadata.MD
	err = conn.Invoke(out, c.cmd.FullMethod, req, resp, grpc.Header(&header))
	auditKeyIDsFromHeader(ctx, header) // key ids the leader acted on, also when it refused
	if err != nil {
		s.logger.DebugContext(ctx, "forwarded call failed", "command", c.cmd.Name,
			"leader", leaderID, "leader_addr", addr, "code", status.Code(err).String())
		return nil, err
	}
	if idx := raftIndexOf(resp); idx != 0 {
		SetRaftIndex(ctx, idx)
	}
	return resp, nil
}

// forwardMetadata describes the original caller to the leader. Only the
// facts the leader needs to run the handler travel: the caller's
// certificate identity and token (verified again there), or the
// WebSocket session. Nothing else of the incoming metadata is copied.
func (s *Server) forwardMetadata(ctx context.Context, c *call, req proto.Message) metadata.MD {
	md := metadata.MD{}
	md.Set(mdForwardedBy, s.nodeID)
	p, _ := PrincipalFrom(ctx)
	if p.Session != nil {
		md.Set(mdForwardedPeer, p.Session.Pubkey)
		md.Set(mdForwardedRoom, p.Session.Room)
		if len(p.Session.Caps) > 0 {
			md.Set(mdForwardedCaps, p.Session.Caps...)
		}
		if !p.Session.TokenExpiry.IsZero() {
			md.Set(mdForwardedExpiry, strconv.FormatInt(p.Session.TokenExpiry.Unix(), 10))
		}
	} else {
		md.Set(mdForwardedIdentity, p.Identity.String())
		if auth := metadata.ValueFromIncomingContext(ctx, authorizationMetadata); len(auth) == 1 {
			md.Set(authorizationMetadata, auth[0])
		}
	}
	if c.cmd.Name == setPolicyCommand && s.dataPlane != nil {
		if maxLamport, _, _ := s.dataPlane.RoomInfo(requestRoom(req)); maxLamport > 0 {
			md.Set(mdForwardedLamport, strconv.FormatUint(maxLamport, 10))
		}
	}
	return md
}

// authenticateForwarded authenticates a call another node forwarded: the
// connection must carry that node's certificate; the principal is the
// original caller as the forwarding node describes it, with any bearer
// token verified again here. The call is then neither authorized nor
// audited again: the forwarding node did both.
func (s *Server) authenticateForwarded(ctx context.Context, c *call, conn pki.Identity, by []string) (context.Context, error) {
	if conn.Role != pki.RoleNode || len(by) != 1 || by[0] != conn.Name {
		return nil, s.authFailed(ctx, c, reasonForwardNotNode)
	}
	p := Principal{Command: c.cmd, ForwardedBy: conn.Name}
	if peers := metadata.ValueFromIncomingContext(ctx, mdForwardedPeer); len(peers) > 0 {
		sess, err := forwardedSession(ctx, peers)
		if err != nil {
			s.logger.WarnContext(ctx, "malformed forwarded session", "forwarded_by", conn.Name, "error", err)
			return nil, s.authFailed(ctx, c, reasonForwardBad)
		}
		p.Session = sess
	} else {
		ids := metadata.ValueFromIncomingContext(ctx, mdForwardedIdentity)
		orig, err := parseIdentity(ids)
		if err != nil {
			s.logger.WarnContext(ctx, "malformed forwarded identity", "forwarded_by", conn.Name, "error", err)
			return nil, s.authFailed(ctx, c, reasonForwardBad)
		}
		p.Identity = orig
		if c.cmd.Capability != token.CapClusterNode || orig.Role != pki.RoleNode {
			if p.Claims, err = s.verifyBearer(ctx, c); err != nil {
				return nil, err
			}
		}
	}
	c.markForwarded()
	c.setActor(p.Actor())
	return withPrincipal(ctx, p), nil
}

func forwardedSession(ctx context.Context, peers []string) (*Session, error) {
	rooms := metadata.ValueFromIncomingContext(ctx, mdForwardedRoom)
	if len(peers) != 1 || len(rooms) != 1 {
		return nil, errors.New("want exactly one peer and one room")
	}
	if _, err := decodePubkey(peers[0]); err != nil {
		return nil, err
	}
	sess := &Session{Room: rooms[0], Pubkey: peers[0], Caps: metadata.ValueFromIncomingContext(ctx, mdForwardedCaps)}
	if exp := metadata.ValueFromIncomingContext(ctx, mdForwardedExpiry); len(exp) > 0 {
		secs, err := strconv.ParseInt(exp[0], 10, 64)
		if len(exp) != 1 || err != nil || secs <= 0 {
			return nil, errors.New("bad token expiry")
		}
		sess.TokenExpiry = time.Unix(secs, 0)
	}
	return sess, nil
}

// parseIdentity reads "role:name" as pki.Identity.String writes it.
func parseIdentity(values []string) (pki.Identity, error) {
	if len(values) != 1 {
		return pki.Identity{}, fmt.Errorf("want one identity, got %d", len(values))
	}
	role, name, ok := strings.Cut(values[0], ":")
	id := pki.Identity{Role: pki.Role(role), Name: name}
	if !ok || name == "" || (id.Role != pki.RoleNode && id.Role != pki.RoleOperator) {
		return pki.Identity{}, errors.New("identity is not role:name")
	}
	return id, nil
}

// forwardedLamport answers the Lamport hint of a forwarded set-policy.
func forwardedLamport(ctx context.Context) uint64 {
	if forwardedFrom(ctx) == "" {
		return 0
	}
	v := metadata.ValueFromIncomingContext(ctx, mdForwardedLamport)
	if len(v) != 1 {
		return 0
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// raftIndexOf reads a response's raft_index field, 0 when it has none.
func raftIndexOf(m proto.Message) uint64 {
	if g, ok := m.(interface{ GetRaftIndex() uint64 }); ok {
		return g.GetRaftIndex()
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("raft_index")
	if fd == nil || fd.Kind() != protoreflect.Uint64Kind || fd.Cardinality() == protoreflect.Repeated {
		return 0
	}
	return r.Get(fd).Uint()
}
