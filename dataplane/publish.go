package dataplane

import (
	"context"
	"fmt"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// Publish ingests nodes as the server: the full ingest chain (signatures,
// Lamport, parents, write policy, store) without a rate limit, then a
// relay from the server's key to every session of the room. It loads the
// room if needed (an unused room then unloads after IdleTimeout as
// usual). accepted counts nodes now stored (new or duplicate); err is set
// when the room could not be loaded or stored to, or when any node was
// rejected (it names the first).
func (s *Server) Publish(ctx context.Context, room string, nodes []*syncv1.Node) (accepted int, err error) {
	if !validRoomName(room) {
		return 0, fmt.Errorf("dataplane: publish: %s", roomNameHelp)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("dataplane: publish to %s: %w", room, err)
	}
	r, err := s.rooms.acquire(room)
	if err != nil {
		return 0, fmt.Errorf("dataplane: publish to %s: %w", room, err)
	}
	defer s.rooms.release(r)
	j := newCommitJob(nil, nodes)
	r.submit(j)
	s.verifier.submit(r.store, j)
	<-j.done
	if j.err != nil {
		return 0, fmt.Errorf("dataplane: publish to %s: store: %w", room, j.err)
	}
	rejected := 0
	first := ""
	for _, v := range j.res.Verdicts {
		if v.Reason == "" {
			accepted++
			continue
		}
		if rejected == 0 {
			first = fmt.Sprintf("%s: %s", v.ID, v.Reason)
		}
		rejected++
	}
	if rejected > 0 {
		return accepted, fmt.Errorf("dataplane: publish to %s: %d of %d nodes rejected (first %s)", room, rejected, len(nodes), first)
	}
	return accepted, nil
}
