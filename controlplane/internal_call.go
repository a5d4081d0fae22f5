package controlplane

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
)

// rotateKeyCommand is keys.rotate, the command automatic rotation runs.
const rotateKeyCommand = "keys.rotate"

// RotateKeyAsNode runs keys.rotate on this node on the node's own
// authority: automatic key rotation (node --key-rotation-interval). It is
// the handler operators reach through KeyService.RotateKey, so validation,
// sealing, the Raft command and the audit event are the same; the event
// says actor "node:<node id>", transport "internal", decision allow. It
// runs here and is never forwarded: the caller runs it only while this
// node leads, and a node that lost leadership gets UNAVAILABLE from the
// apply, audited like any failed mutation.
func (s *Server) RotateKeyAsNode(ctx context.Context, req *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error) {
	cmd, ok := s.registry.ByName(rotateKeyCommand)
	if !ok {
		// The registry is built from the protos; a missing command is a
		// build defect, and nothing runs without its record.
		return nil, status.Errorf(codes.Internal, "%s is not a registered command", rotateKeyCommand)
	}
	c := s.newCall(cmd, TransportInternal)
	self := Principal{Identity: pki.Identity{Role: pki.RoleNode, Name: s.nodeID}, Command: cmd}
	c.setActor(self.Actor())
	c.decide(DecisionAllow, "")
	ctx = withPrincipal(withCall(ctx, c), self)
	defer s.finish(ctx, c)
	return (&keyService{s: s}).RotateKey(ctx, req)
}
