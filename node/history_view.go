package node

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// errNoDataPlane answers the history commands that arrive while the data
// plane is not running yet (the admin server starts first) or any more:
// retryable, and true.
var errNoDataPlane = status.Error(codes.Unavailable, "the data plane is not running on this node; retry")

// OpenRoom gives the archive, graph and replay commands a room's stored
// history on this node, loaded as a session would load it.
func (v *dataPlaneView) OpenRoom(room string) (history.Store, func(), error) {
	d := v.data.Load()
	if d == nil {
		return nil, nil, errNoDataPlane
	}
	return d.OpenRoom(room)
}

// Publish is archive.import's way into a room: the data plane's verified
// ingest path, the one the tick runner uses, with relay to the sessions.
func (v *dataPlaneView) Publish(ctx context.Context, room string, nodes []*syncv1.Node) (int, error) {
	d := v.data.Load()
	if d == nil {
		return 0, errNoDataPlane
	}
	return d.Publish(ctx, room, nodes)
}
