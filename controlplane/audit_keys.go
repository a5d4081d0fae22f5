package controlplane

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// mdAuditKeyIDs is the response header in which the leader answers, to a
// node that forwarded a key command, the key ids its handler acted on. The
// forwarding node audits the call (the leader does not), and only the
// leader knows which kids a rotation superseded.
const mdAuditKeyIDs = "nodalmerge-audit-key-ids"

// maxAuditKeyIDs bounds how many key ids one event carries: a rotation
// supersedes the few keys that could sign, so more means a bug or a
// misbehaving peer, not information.
const maxAuditKeyIDs = 16

// setAuditKeyIDs records, for the audit event of the current call, the key
// ids a key command acted on (see AuditEvent.KeyIDs). On a call another
// node forwarded here, it also answers them in a response header so that
// the forwarding node, which audits the call, can record them. Call it
// once per call: response headers accumulate.
func setAuditKeyIDs(ctx context.Context, ids ...string) {
	ids = boundKeyIDs(ids)
	if len(ids) == 0 {
		return
	}
	if c := callFrom(ctx); c != nil {
		c.mu.Lock()
		c.event.KeyIDs = slices.Clone(ids)
		c.mu.Unlock()
	}
	if forwardedFrom(ctx) != "" {
		// Fails only outside a gRPC server call, where nobody forwarded.
		_ = grpc.SetHeader(ctx, metadata.MD{mdAuditKeyIDs: slices.Clone(ids)})
	}
}

// auditKeyIDsFromHeader takes the key ids a leader answered for a
// forwarded call into this node's audit event.
func auditKeyIDsFromHeader(ctx context.Context, header metadata.MD) {
	ids := boundKeyIDs(header.Get(mdAuditKeyIDs))
	if len(ids) == 0 {
		return
	}
	if c := callFrom(ctx); c != nil {
		c.mu.Lock()
		c.event.KeyIDs = ids
		c.mu.Unlock()
	}
}

// boundKeyIDs clips the count and each id (kids of room keys are set by
// operators; ids from a header come from another node), the same way
// rooms are bounded in audit events.
func boundKeyIDs(ids []string) []string {
	if len(ids) > maxAuditKeyIDs {
		ids = ids[:maxAuditKeyIDs]
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = auditRoom(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}
