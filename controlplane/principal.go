package controlplane

import (
	"context"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Principal is the authenticated caller of a command, available to handlers
// through PrincipalFrom.
type Principal struct {
	// Identity is the verified client certificate identity. On a call
	// forwarded by another node it is the identity the original caller
	// presented there; on the WebSocket door it is empty.
	Identity pki.Identity
	// Claims are the verified operator token claims; nil when a node
	// certificate alone authenticated a cluster.node command, and on the
	// WebSocket door.
	Claims *token.OperatorClaims
	// Session is the WebSocket session a control command came from; nil on
	// the gRPC door.
	Session *Session
	// Command is the command being run.
	Command Command
	// ForwardedBy is the id of the node that forwarded the call here, ""
	// when the caller called this node directly.
	ForwardedBy string
}

// Session is what the data plane knows about the WebSocket caller of a
// control command: its room, its key and the caps of its room token.
type Session struct {
	Room string
	// Pubkey is the hex Ed25519 key the session authenticated with.
	Pubkey string
	// Caps are the room token's caps (classes and read:/write: grants);
	// nil for a session without a token.
	Caps []string
	// TokenExpiry is when the session's room token expires; zero when
	// unknown or without a token.
	TokenExpiry time.Time
}

// Actor names the caller in audit events and logs without revealing a
// secret: the token subject and id, the session's public key, or the
// certificate identity.
func (p Principal) Actor() string {
	switch {
	case p.Claims != nil:
		return p.Claims.Subject + "/" + p.Claims.ID
	case p.Session != nil:
		return p.Session.Pubkey
	}
	return p.Identity.String()
}

// caps answers the capability strings the caller holds through a token.
func (p Principal) caps() []string {
	switch {
	case p.Claims != nil:
		return p.Claims.Caps
	case p.Session != nil:
		return p.Session.Caps
	}
	return nil
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom answers the authenticated caller of the current command.
// It is set before any handler runs; handlers of health and reflection have
// none.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// forwardedFrom answers the node that forwarded the current call, "" when
// it was called here directly.
func forwardedFrom(ctx context.Context) string {
	p, _ := PrincipalFrom(ctx)
	return p.ForwardedBy
}
