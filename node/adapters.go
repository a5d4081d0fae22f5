package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/controlplane"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// wsCommands is the data plane's control-command door onto the control
// plane's dispatcher: the same registry, authorization, handlers, leader
// routing and audit as gRPC.
type wsCommands struct{ d *controlplane.Dispatcher }

func (w wsCommands) Has(typ string) bool { return w.d.Has(typ) }

func (w wsCommands) Handle(ctx context.Context, c dataplane.CommandCall) []byte {
	return w.d.Call(ctx, controlplane.WSCall{
		Room:    c.Room,
		Command: c.Type,
		Payload: c.Frame,
		Pubkey:  c.Pubkey,
		// The capability classes of the session's room token (none
		// without a token), checked by the same rule as gRPC.
		Caps:        c.Session.Grant.Caps,
		TokenExpiry: unixSeconds(c.Session.Grant.Expiry),
		RequestID:   fmt.Sprintf("ws-%d", c.Session.ID),
	})
}

// unixSeconds is t in Unix seconds, 0 for the zero time (no expiry).
func unixSeconds(t time.Time) uint64 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	return uint64(t.Unix())
}

// dataPlaneView is the control plane's read of this node's live rooms.
// The admin server is built before the data plane, so it goes through the
// node's pointer and answers "nothing live" until the data plane exists.
type dataPlaneView Node

func (v *dataPlaneView) LiveRooms() map[string]int {
	if d := v.data.Load(); d != nil {
		return d.LiveRooms()
	}
	return map[string]int{}
}

func (v *dataPlaneView) RoomInfo(room string) (maxLamport uint64, nodes int, live bool) {
	if d := v.data.Load(); d != nil {
		return d.RoomInfo(room)
	}
	return 0, 0, false
}

func (v *dataPlaneView) CompactRoom(ctx context.Context, room string) (nodes, before, after uint64, err error) {
	d := v.data.Load()
	if d == nil {
		return 0, 0, 0, fmt.Errorf("the data plane is not running on this node")
	}
	nodes, before, after, err = d.CompactRoom(ctx, room)
	if errors.Is(err, dataplane.ErrCompactUnsupported) {
		// Say what is true instead of an internal error: history is
		// grow-only and neither store here keeps garbage to remove.
		return 0, 0, 0, status.Error(codes.FailedPrecondition,
			"compact-room: this node's room store has nothing to compact (room history is grow-only; the durable store checkpoints its log by itself)")
	}
	return nodes, before, after, err
}

// tickRooms gives the tick runner the rooms of the data plane.
type tickRooms struct{ d *dataplane.Server }

func (t tickRooms) Open(room string) (history.Store, func(), error) { return t.d.OpenRoom(room) }

func (t tickRooms) Publish(ctx context.Context, room string, nodes []*syncv1.Node) (int, error) {
	return t.d.Publish(ctx, room, nodes)
}
