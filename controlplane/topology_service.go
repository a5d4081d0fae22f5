package controlplane

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// topologyService manages room placement and node draining.
type topologyService struct {
	adminv1.UnimplementedTopologyServiceServer
	s *Server
}

func (ts *topologyService) PlaceRoom(ctx context.Context, req *adminv1.PlaceRoomRequest) (*adminv1.PlaceRoomResponse, error) {
	const command = "topology.place-room"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	ids := req.GetNodeIds()
	if len(ids) > maxPlacement {
		return nil, invalidArg(command, "%d node_ids; use at most %d", len(ids), maxPlacement)
	}
	for _, id := range ids {
		if err := checkNodeID(command, "node_ids entry", id); err != nil {
			return nil, err
		}
		if _, ok := ts.s.cluster.Member(id); !ok {
			return nil, status.Errorf(codes.NotFound, "%s: %s is not a member (see cluster.list-members)", command, clipped(id))
		}
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	idx, err := ts.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_PlaceRoom{PlaceRoom: &statev1.PlaceRoom{
		Room: req.GetRoom(), NodeIds: ids,
	}}})
	if err != nil {
		return nil, err
	}
	ts.s.logger.InfoContext(ctx, "room placed", "room", req.GetRoom(), "nodes", ids, "index", idx)
	return &adminv1.PlaceRoomResponse{RaftIndex: idx}, nil
}

func (ts *topologyService) DrainNode(ctx context.Context, req *adminv1.DrainNodeRequest) (*adminv1.DrainNodeResponse, error) {
	const command = "topology.drain-node"
	id := req.GetNodeId()
	if err := checkNodeID(command, "node_id", id); err != nil {
		return nil, err
	}
	if _, ok := ts.s.cluster.Member(id); !ok {
		return nil, status.Errorf(codes.NotFound, "%s: %s is not a member (see cluster.list-members)", command, clipped(id))
	}
	idx, err := ts.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_SetDrain{SetDrain: &statev1.SetDrain{
		NodeId: id, Draining: !req.GetUndrain(),
	}}})
	if err != nil {
		return nil, err
	}
	ts.s.logger.InfoContext(ctx, "node drain set", "node", id, "draining", !req.GetUndrain(), "index", idx)
	return &adminv1.DrainNodeResponse{RaftIndex: idx}, nil
}
