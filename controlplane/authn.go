package controlplane

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
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
// at zero: token.VerifyOperator's reasons, revocation, then ours.
func knownAuthFailureReasons() []string {
	reasons := []string{
		token.ReasonMissing,
		token.ReasonMalformed,
		token.ReasonExpired,
		token.ReasonUnknownKey,
		token.ReasonBadSignature,
		token.ReasonWrongCluster,
		token.ReasonRevoked,
		reasonBadCertificate,
		reasonMultipleBearers,
		reasonInvalidToken,
		reasonForwardNotNode,
		reasonForwardBad,
	}
	// Room admission on the WebSocket door (CountAuthFailure).
	for _, r := range token.RoomReasons() {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	return reasons
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
	logActor(ctx, id.String())

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
	logActor(ctx, p.Actor())
	return withPrincipal(ctx, p), nil
}

// verifyBearer verifies the call's operator token against the keyring.
//
// A token seen before comes from the verified-token cache (tokencache.go)
// and skips the JWT parse and the signature check; what can change since
// it was verified is checked again on every call: its expiry at now, that
// its kid still verifies with the same public key in the current keyring
// (so a rotation or retirement applies to the very next call), and the
// cluster id. Any of these failing drops the entry and the token is
// verified in full, so it fails with exactly the reason it would have had
// uncached. Revocation of the token id is checked on every call, cached or
// not.
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
	now := s.now()
	claims := s.cachedClaims(raw, clusterID, now)
	if claims == nil {
		if claims, err = s.verifyOperator(raw, clusterID, now); err != nil {
			return nil, s.authFailed(ctx, c, failureReason(err))
		}
	}
	if s.cluster.IsRevoked(claims.ID, "", nil, now) {
		return nil, s.authFailed(ctx, c, token.ReasonRevoked)
	}
	return claims, nil
}

// verifyOperator verifies raw in full and caches it on success. Keys are
// read one at a time from the replicated keyring at now (no copy of the
// whole keyring, and never of private seeds).
func (s *Server) verifyOperator(raw, clusterID string, now time.Time) (*token.OperatorClaims, error) {
	var usedKid string
	var usedPub ed25519.PublicKey
	keys := func(kid string) (ed25519.PublicKey, error) {
		pub, err := s.cluster.VerifyingKey(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, kid, now)
		if err == nil {
			usedKid, usedPub = kid, pub
		}
		return pub, err
	}
	claims, err := token.VerifyOperator(raw, keys, clusterID, now)
	if err != nil {
		return nil, err
	}
	if s.tokens != nil && usedKid != "" {
		s.tokens.put(tokenCacheKey(raw), claims, usedKid, usedPub, now)
	}
	return claims, nil
}

// cachedClaims answers a copy of the claims of raw if it is in the
// verified-token cache and still valid at now, else nil (and forgets an
// entry that is no longer valid).
func (s *Server) cachedClaims(raw, clusterID string, now time.Time) *token.OperatorClaims {
	if s.tokens == nil {
		return nil
	}
	key := tokenCacheKey(raw)
	e := s.tokens.get(key)
	if e == nil {
		return nil
	}
	if now.Before(e.verifiedAt) || !now.Before(e.claims.ExpiresAt) || e.claims.ClusterID != clusterID {
		s.tokens.drop(key)
		return nil
	}
	pub, err := s.cluster.VerifyingKey(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, e.kid, now)
	if err != nil || !bytes.Equal(pub, e.pub) {
		s.tokens.drop(key)
		return nil
	}
	claims := copyClaims(&e.claims)
	return &claims
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
