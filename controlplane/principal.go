package controlplane

import (
	"context"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// Principal is the authenticated caller of a command, available to handlers
// through PrincipalFrom.
type Principal struct {
	// Identity is the verified client certificate identity.
	Identity pki.Identity
	// Claims are the verified operator token claims; nil when a node
	// certificate alone authenticated a cluster.node command.
	Claims *token.OperatorClaims
	// Command is the command being run.
	Command Command
}

// Actor names the caller in audit events and logs without revealing a
// secret: the token subject and id, or the certificate identity.
func (p Principal) Actor() string {
	if p.Claims != nil {
		return p.Claims.Subject + "/" + p.Claims.ID
	}
	return p.Identity.String()
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
