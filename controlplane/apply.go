package controlplane

import (
	"context"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// apply proposes a replicated command for a mutation handler and records
// the index it was applied at for the call's audit event. The command is
// stamped with this server's clock, so times a handler derived from "now"
// (a rotation's activation) and the state machine's times agree.
func (s *Server) apply(ctx context.Context, command string, cmd *statev1.Command) (uint64, error) {
	if cmd.GetProposedUnixMs() == 0 {
		cmd.ProposedUnixMs = s.now().UnixMilli()
	}
	idx, err := s.cluster.Apply(ctx, cmd)
	if err != nil {
		return 0, clusterError(ctx, s.logger, command, err)
	}
	SetRaftIndex(ctx, idx)
	return idx, nil
}
