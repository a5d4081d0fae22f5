package controlplane

import (
	"bytes"
	"context"
	"encoding/hex"
	"math"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// queryService reads a room's history graph on this node (graph.*,
// replay.read-range) and serves registered queries and their projections
// (projection_service.go). The projections it builds are kept in this
// node's cache: they are derived from this node's copy of the history,
// which Raft never carries.
type queryService struct {
	adminv1.UnimplementedQueryServiceServer
	s *Server
	// projections are this node's builds (bounded LRU; the zero value is
	// ready).
	projections projectionCache
}

// notInRelease is the UNIMPLEMENTED answer of a command whose state does
// not exist yet (room lineage). The room is still checked, so a bad
// request reads as one.
func notInRelease(command, room, what string) error {
	if err := checkRoom(command, room); err != nil {
		return err
	}
	return status.Errorf(codes.Unimplemented, "%s: %s", command, what)
}

func (qs *queryService) GetFrontier(ctx context.Context, req *adminv1.GetFrontierRequest) (*adminv1.GetFrontierResponse, error) {
	const command = "graph.get-frontier"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	resp := &adminv1.GetFrontierResponse{}
	err := qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		frontier := st.Frontier()
		resp.Frontier, resp.Root = history.Strings(frontier), history.Root(frontier)
		resp.MaxLamport, resp.Nodes = st.MaxLamport(), uint64(st.Len())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (qs *queryService) GetCausalParents(ctx context.Context, req *adminv1.GetCausalParentsRequest) (*adminv1.GetCausalParentsResponse, error) {
	const command = "graph.get-causal-parents"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	id, err := checkNodeRef(command, "node_id", req.GetNodeId())
	if err != nil {
		return nil, err
	}
	resp := &adminv1.GetCausalParentsResponse{NodeId: id.String()}
	err = qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		n, ok := st.Get(id)
		if !ok {
			return status.Errorf(codes.NotFound, "%s: node %s is not stored in room %s on this node", command, id, room)
		}
		d, err := decodeStored(n)
		if err != nil {
			return qs.s.dataPlaneError(ctx, command, room, err)
		}
		resp.Lamport, resp.Parents = d.tx.GetLamport(), parentStrings(d.tx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (qs *queryService) ComputeSyncDiff(ctx context.Context, req *adminv1.ComputeSyncDiffRequest) (*adminv1.ComputeSyncDiffResponse, error) {
	const command = "graph.compute-sync-diff"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	if n := len(req.GetKnown()); n > maxKnownIDs {
		return nil, invalidArg(command, "known has %d ids; send at most %d (a frontier is enough)", n, maxKnownIDs)
	}
	known := make([]history.ID, 0, len(req.GetKnown()))
	for i, s := range req.GetKnown() {
		id, err := history.ParseID(s)
		if err != nil {
			return nil, invalidArg(command, "known entry %d must be a node id: 64 hex characters", i)
		}
		known = append(known, id)
	}
	limit, err := checkLimit(command, req.GetLimit(), defaultDiffLimit, maxDiffLimit)
	if err != nil {
		return nil, err
	}
	resp := &adminv1.ComputeSyncDiffResponse{Missing: []string{}}
	err = qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		missing := st.Missing(known)
		resp.Total = uint64(len(missing))
		for _, n := range missing[:min(limit, len(missing))] {
			resp.Missing = append(resp.Missing, history.NodeID(n).String())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ReadReplayRange answers a page of the room's nodes in a Lamport range,
// ordered by (lamport, id), which is a topological order (a node's
// Lamport is above its parents'). The store has no Lamport index, so a
// page costs a pass over the room's history; the page itself is bounded
// by limit and by the answer size.
func (qs *queryService) ReadReplayRange(ctx context.Context, req *adminv1.ReadReplayRangeRequest) (*adminv1.ReadReplayRangeResponse, error) {
	const command = "replay.read-range"
	room := req.GetRoom()
	if err := checkRoom(command, room); err != nil {
		return nil, err
	}
	from, to := req.GetFromLamport(), uint64(math.MaxUint64)
	if req.ToLamport != nil {
		to = req.GetToLamport()
	}
	if from > to {
		return nil, invalidArg(command, "from_lamport %d is above to_lamport %d", from, to)
	}
	limit, err := checkLimit(command, req.GetLimit(), defaultReplayLimit, maxReplayLimit)
	if err != nil {
		return nil, err
	}
	var after *history.ID
	if req.GetAfterId() != "" {
		id, err := checkNodeRef(command, "after_id", req.GetAfterId())
		if err != nil {
			return nil, err
		}
		after = &id
	}
	resp := &adminv1.ReadReplayRangeResponse{Nodes: []*adminv1.HistoryNode{}}
	err = qs.s.withHistory(ctx, command, room, func(st history.Store) error {
		lo := from
		if after != nil {
			n, ok := st.Get(*after)
			if !ok {
				return status.Errorf(codes.NotFound, "%s: after_id %s is not stored in room %s on this node", command, after, room)
			}
			d, err := decodeStored(n)
			if err != nil {
				return qs.s.dataPlaneError(ctx, command, room, err)
			}
			if d.tx.GetLamport() < from || d.tx.GetLamport() > to {
				return invalidArg(command, "after_id %s has lamport %d, outside [from_lamport, to_lamport]", after, d.tx.GetLamport())
			}
			lo = d.tx.GetLamport()
		}
		var in []decoded
		for _, n := range st.Missing(nil) {
			d, err := decodeStored(n)
			if err != nil {
				return qs.s.dataPlaneError(ctx, command, room, err)
			}
			l := d.tx.GetLamport()
			if l < lo || l > to {
				continue
			}
			if after != nil && l == lo && bytes.Compare(d.id[:], after[:]) <= 0 {
				continue
			}
			in = append(in, d)
		}
		slices.SortFunc(in, func(a, b decoded) int {
			if a.tx.GetLamport() != b.tx.GetLamport() {
				if a.tx.GetLamport() < b.tx.GetLamport() {
					return -1
				}
				return 1
			}
			return bytes.Compare(a.id[:], b.id[:])
		})
		size := 0
		for i, d := range in {
			size += len(d.node.GetTransactionBytes()) + len(d.node.GetSignature())
			// Always answer at least one node, so paging makes progress.
			if i == limit || (i > 0 && size > maxAnswerBytes) {
				resp.More = true
				break
			}
			resp.Nodes = append(resp.Nodes, &adminv1.HistoryNode{
				Id:               d.id.String(),
				Lamport:          d.tx.GetLamport(),
				Author:           hex.EncodeToString(d.tx.GetAuthor()),
				WallMs:           d.tx.GetWallMs(),
				Parents:          parentStrings(d.tx),
				TransactionBytes: d.node.GetTransactionBytes(),
				Signature:        d.node.GetSignature(),
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// checkNodeRef reads a node id field given by the caller.
func checkNodeRef(command, field, s string) (history.ID, error) {
	if s == "" {
		return history.ID{}, invalidArg(command, "%s is required: a node id, 64 hex characters", field)
	}
	id, err := history.ParseID(s)
	if err != nil {
		return history.ID{}, invalidArg(command, "%s must be a node id: 64 hex characters", field)
	}
	return id, nil
}

// checkLimit reads an optional page size: def when 0, at most hi.
func checkLimit(command string, limit uint32, def, hi int) (int, error) {
	switch {
	case limit == 0:
		return def, nil
	case int64(limit) > int64(hi):
		return 0, invalidArg(command, "limit %d is over %d", limit, hi)
	}
	return int(limit), nil
}
