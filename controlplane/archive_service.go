package controlplane

import (
	"context"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// archiveService moves a room's history in and out of this node as packs
// (see archive.proto). Every method runs on the node called: history is
// per node, never in the Raft log.
type archiveService struct {
	adminv1.UnimplementedArchiveServiceServer
	s *Server
}

func (as *archiveService) DescribeArchive(ctx context.Context, req *adminv1.DescribeArchiveRequest) (*adminv1.DescribeArchiveResponse, error) {
	const command = "archive.describe"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	resp := &adminv1.DescribeArchiveResponse{Room: room}
	if as.s.dataPlane != nil {
		// Before the read below loads the room: "live" is about sessions
		// and earlier loads, not about this call.
		_, _, resp.Live = as.s.dataPlane.RoomInfo(room)
	}
	err := as.s.withHistory(ctx, command, room, func(st history.Store) error {
		frontier := st.Frontier()
		resp.Nodes = uint64(st.Len())
		resp.MaxLamport = st.MaxLamport()
		resp.Frontier = history.Strings(frontier)
		resp.Root = history.Root(frontier)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ValidateArchive checks a pack on its own: against an empty history, so
// every parent must be in the pack, and with no Lamport ceiling (there is
// no room maximum to measure against). The wall clock and signatures are
// checked as ingest checks them. Nothing is stored and the room's
// history is not read, so it works on a node without a data plane.
func (as *archiveService) ValidateArchive(_ context.Context, req *adminv1.ValidateArchiveRequest) (*adminv1.ValidateArchiveResponse, error) {
	const command = "archive.validate"
	if err := checkRoom(command, req.GetRoom()); err != nil {
		return nil, err
	}
	nodes, err := decodePack(command, req.GetPack())
	if err != nil {
		return nil, err
	}
	v := history.Validator{LamportWindow: math.MaxUint64, Now: as.s.now}
	res := v.Validate(emptyLookup{}, nodes)
	resp := &adminv1.ValidateArchiveResponse{Nodes: uint64(len(nodes))}
	for _, vd := range res.Verdicts {
		switch {
		case vd.Reason != "":
			resp.Invalid++
		case vd.Duplicate:
			resp.Valid++
			resp.Duplicates++
		default:
			resp.Valid++
		}
	}
	if i, vd, ok := firstProblem(res); ok {
		resp.FirstProblem = &adminv1.ArchiveProblem{Index: uint32(i), NodeId: vd.ID.String(), Reason: vd.Reason}
	}
	return resp, nil
}

// ImportArchive checks the whole pack against the room first (the ingest
// checks but the write policy, with the room's history as the parents'
// home) and refuses it whole if any node fails, so a bad pack stores
// nothing. A pack that passes goes through the data plane's Publish: the
// same verified ingest path as a session's pack, policy included, with
// relay to the room's sessions. The check is advisory for atomicity only;
// Publish verifies everything again.
func (as *archiveService) ImportArchive(ctx context.Context, req *adminv1.ImportArchiveRequest) (*adminv1.ImportArchiveResponse, error) {
	const command = "archive.import"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	nodes, err := decodePack(command, req.GetPack())
	if err != nil {
		return nil, err
	}
	resp := &adminv1.ImportArchiveResponse{Nodes: uint64(len(nodes))}
	err = as.s.withHistory(ctx, command, room, func(st history.Store) error {
		v := history.Validator{Now: as.s.now}
		res := v.Validate(st, nodes)
		if i, vd, ok := firstProblem(res); ok {
			_, rejected := res.Counts()
			return invalidArg(command, "pack refused, nothing imported: %d of %d nodes fail the ingest checks; first: node %d (%s): %s",
				rejected, len(nodes), i, vd.ID, vd.Reason)
		}
		if len(nodes) > 0 {
			accepted, err := as.s.dataPlane.Publish(ctx, room, nodes)
			if reason, ok := publishRejection(err); ok {
				as.s.logger.WarnContext(ctx, "archive import partly refused", "room", room, "nodes", len(nodes), "accepted", accepted, "reason", reason)
				return status.Errorf(codes.FailedPrecondition, "%s: the room refused part of the pack (%d of %d nodes stored): %s",
					command, accepted, len(nodes), reason)
			}
			if err != nil {
				return as.s.dataPlaneError(ctx, command, room, err)
			}
			resp.Accepted = uint64(accepted)
		}
		resp.Stored = uint64(st.Len())
		resp.MaxLamport = st.MaxLamport()
		return nil
	})
	if err != nil {
		return nil, err
	}
	as.s.logger.InfoContext(ctx, "archive imported", "room", room, "nodes", len(nodes), "accepted", resp.GetAccepted())
	return resp, nil
}

// ExportArchive answers the room's history as one pack, parents first. A
// room larger than the limit or the size cap is refused, never cut short:
// a silently partial archive would look complete.
func (as *archiveService) ExportArchive(ctx context.Context, req *adminv1.ExportArchiveRequest) (*adminv1.ExportArchiveResponse, error) {
	const command = "archive.export"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	limit, err := checkLimit(command, req.GetLimit(), defaultExportLimit, maxPackNodes)
	if err != nil {
		return nil, err
	}
	resp := &adminv1.ExportArchiveResponse{}
	err = as.s.withHistory(ctx, command, room, func(st history.Store) error {
		if n := st.Len(); n > limit {
			return exportTooLarge(command, room, n, limit)
		}
		// Missing of nothing known is the whole history, parents first.
		// The room may have grown since Len: check again.
		nodes := st.Missing(nil)
		if len(nodes) > limit {
			return exportTooLarge(command, room, len(nodes), limit)
		}
		b, err := proto.Marshal(&syncv1.Pack{Nodes: nodes})
		if err != nil {
			return err
		}
		if len(b) > maxAnswerBytes {
			return status.Errorf(codes.FailedPrecondition,
				"%s: room %s is %d bytes as a pack, over the %d bytes one answer may carry; read it in pages with replay.read-range",
				command, room, len(b), maxAnswerBytes)
		}
		all := make([]decoded, 0, len(nodes))
		for _, n := range nodes {
			d, err := decodeStored(n)
			if err != nil {
				return err
			}
			all = append(all, d)
		}
		frontier, maxLamport := summarize(all)
		resp.Pack, resp.Nodes, resp.MaxLamport, resp.Frontier = b, uint64(len(nodes)), maxLamport, history.Strings(frontier)
		return nil
	})
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			return nil, as.s.dataPlaneError(ctx, command, room, err)
		}
		return nil, err
	}
	return resp, nil
}

func exportTooLarge(command, room string, nodes, limit int) error {
	return status.Errorf(codes.FailedPrecondition,
		"%s: room %s holds %d nodes, more than limit %d: raise limit (at most %d) or read it in pages with replay.read-range",
		command, room, nodes, limit, maxPackNodes)
}
