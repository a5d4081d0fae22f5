package controlplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Authentication failure reasons this package produces itself; the rest
// come from token.Error.Reason.
const (
	reasonBadCertificate  = "invalid client certificate"
	reasonMultipleBearers = "multiple authorization headers"
	reasonInvalidToken    = "invalid token"
	reasonNotInitialised  = "cluster not initialised"
	reasonForwardNotNode  = "forwarded call without the forwarding node's certificate"
	reasonForwardBad      = "malformed forwarded call"
	authorizationMetadata = "authorization"
)

// knownAuthFailureReasons answers the reasons whose failure counters start
// at zero: token.VerifyOperator's reasons, then ours.
func knownAuthFailureReasons() []string {
	return []string{
		token.ReasonMissing,
		token.ReasonMalformed,
		token.ReasonExpired,
		token.ReasonUnknownKey,
		token.ReasonBadSignature,
		token.ReasonWrongCluster,
		reasonBadCertificate,
		reasonMultipleBearers,
		reasonInvalidToken,
		reasonForwardNotNode,
		reasonForwardBad,
	}
}

// authenticate is the go-grpc-middleware auth function for every command.
// It establishes who is calling: the client certificate identity, and for
// every command except cluster.node ones called by a node certificate, a
// verified operator token. It decides nothing about permissions; that is
// authorize's job, so the two can be read and tested apart.
func (s *Server) authenticate(ctx context.Context) (context.Context, error) {
	c := callFrom(ctx)
	if c == nil {
		// The command interceptor did not run: a wiring bug. Fail closed.
		s.logger.ErrorContext(ctx, "authentication reached without a command record")
		return nil, internalError()
	}
	id, err := peerIdentity(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "client certificate has no usable identity", "error", err)
		return nil, s.authFailed(ctx, c, reasonBadCertificate)
	}
	c.setActor(id.String())
	logging.AddFields(ctx, logging.Fields{"actor", id.String()})

	if c.unary {
		if by := metadata.ValueFromIncomingContext(ctx, mdForwardedBy); len(by) > 0 {
			return s.authenticateForwarded(ctx, c, id, by)
		}
	}
	if c.cmd.Capability == token.CapClusterNode && id.Role == pki.RoleNode {
		return withPrincipal(ctx, Principal{Identity: id, Command: c.cmd}), nil
	}
	claims, err := s.verifyBearer(ctx, c)
	if err != nil {
		return nil, err
	}
	p := Principal{Identity: id, Claims: claims, Command: c.cmd}
	c.setActor(p.Actor())
	logging.AddFields(ctx, logging.Fields{"actor", p.Actor()})
	return withPrincipal(ctx, p), nil
}

// verifyBearer verifies the call's operator token against the keyring.
func (s *Server) verifyBearer(ctx context.Context, c *call) (*token.OperatorClaims, error) {
	clusterID := s.cluster.ClusterID()
	if clusterID == "" {
		// No keyring yet, so no token can verify. Say so, retryably,
		// rather than blaming the caller's token.
		c.decide(DecisionDeny, reasonNotInitialised)
		return nil, status.Error(codes.Unavailable, reasonNotInitialised)
	}
	raw, err := bearerToken(ctx)
	if err != nil {
		return nil, s.authFailed(ctx, c, failureReason(err))
	}
	// One read of the keyring per call, so a rotation or retirement applies
	// to the very next call.
	now := s.now()
	claims, err := token.VerifyOperator(raw, token.KeyringKeyFunc(s.cluster.Keys(), now), clusterID, now)
	if err != nil {
		return nil, s.authFailed(ctx, c, failureReason(err))
	}
	return claims, nil
}

// authFailed records and counts a failed authentication and answers the
// UNAUTHENTICATED status. Only the fixed reason is kept; the underlying
// error may quote token fragments and is dropped.
func (s *Server) authFailed(ctx context.Context, c *call, reason string) error {
	c.decide(DecisionDeny, "auth: "+reason)
	s.metrics.authFailure(reason)
	s.logger.DebugContext(ctx, "authentication failed", "command", c.cmd.Name, "reason", reason)
	return unauthenticatedError(reason)
}

// bearerToken extracts the raw token from the authorization metadata.
// More than one authorization value is refused: which one a proxy or a
// later layer would honour is ambiguous.
func bearerToken(ctx context.Context) (string, error) {
	values := metadata.ValueFromIncomingContext(ctx, authorizationMetadata)
	switch len(values) {
	case 0:
		return token.ParseBearer("")
	case 1:
		return token.ParseBearer(values[0])
	default:
		return "", &token.Error{Reason: reasonMultipleBearers}
	}
}

// failureReason maps a token error to its stable, secret-free reason.
func failureReason(err error) string {
	if te, ok := errors.AsType[*token.Error](err); ok && te.Reason != "" {
		return te.Reason
	}
	return reasonInvalidToken
}

// peerIdentity answers the identity in the verified client certificate of
// the connection the call arrived on.
func peerIdentity(ctx context.Context) (pki.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, errors.New("controlplane: no peer in context")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, fmt.Errorf("controlplane: peer %s did not connect over TLS", p.Addr)
	}
	id, err := pki.PeerIdentity(info.State)
	if err != nil {
		return pki.Identity{}, fmt.Errorf("controlplane: identity of peer %s: %w", p.Addr, err)
	}
	return id, nil
}
