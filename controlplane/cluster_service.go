package controlplane

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// clusterService reports and changes Raft membership. Authorization has
// already happened when a method runs, and the router has put it on the
// leader unless it is node-local (status, snapshot).
type clusterService struct {
	adminv1.UnimplementedClusterServiceServer
	s *Server
}

func (cs *clusterService) GetStatus(context.Context, *adminv1.GetStatusRequest) (*adminv1.GetStatusResponse, error) {
	st := cs.s.cluster.Status()
	return &adminv1.GetStatusResponse{
		ClusterId:    cs.s.cluster.ClusterID(),
		NodeId:       cs.s.nodeID,
		LeaderId:     st.LeaderID,
		Term:         st.Term,
		AppliedIndex: st.AppliedIndex,
		CommitIndex:  st.CommitIndex,
		State:        st.State,
		Members:      cs.members(st.Members),
	}, nil
}

func (cs *clusterService) ListMembers(context.Context, *adminv1.ListMembersRequest) (*adminv1.ListMembersResponse, error) {
	return &adminv1.ListMembersResponse{Members: cs.members(cs.s.cluster.Status().Members)}, nil
}

// members joins the Raft configuration with the replicated draining flag.
func (cs *clusterService) members(in []raftstore.MemberStatus) []*adminv1.Member {
	draining := make(map[string]bool)
	for _, m := range cs.s.cluster.Members() {
		draining[m.GetNodeId()] = m.GetDraining()
	}
	out := make([]*adminv1.Member, 0, len(in))
	for _, m := range in {
		out = append(out, &adminv1.Member{
			NodeId:     m.NodeID,
			RaftAddr:   m.RaftAddr,
			AdminAddr:  m.AdminAddr,
			PublicAddr: m.PublicAddr,
			Voter:      m.Voter,
			State:      m.State,
			Draining:   draining[m.NodeID],
		})
	}
	return out
}

// Join adds the calling node as a voter, then records its addresses. A node
// can only join as itself: node_id must be its certificate's node id. A
// rejoin with new addresses re-addresses the voter and updates the record;
// a draining flag survives it.
func (cs *clusterService) Join(ctx context.Context, req *adminv1.JoinRequest) (*adminv1.JoinResponse, error) {
	const command = "cluster.join"
	if err := checkNodeID(command, "node_id", req.GetNodeId()); err != nil {
		return nil, err
	}
	p, _ := PrincipalFrom(ctx)
	if p.Identity.Role != pki.RoleNode || p.Identity.Name != req.GetNodeId() {
		return nil, status.Errorf(codes.PermissionDenied, "%s: node_id %s is not the node id of the caller's certificate (%s): a node joins only as itself",
			command, clipped(req.GetNodeId()), p.Identity)
	}
	for _, f := range []struct{ name, v string }{{"raft_addr", req.GetRaftAddr()}, {"admin_addr", req.GetAdminAddr()}} {
		if f.v == "" {
			return nil, invalidArg(command, "%s is required: the host:port other nodes reach this node on", f.name)
		}
	}
	for _, f := range []struct{ name, v string }{{"raft_addr", req.GetRaftAddr()}, {"admin_addr", req.GetAdminAddr()}, {"public_addr", req.GetPublicAddr()}} {
		if len(f.v) > maxAddrBytes {
			return nil, invalidArg(command, "%s is %d bytes; use at most %d", f.name, len(f.v), maxAddrBytes)
		}
	}
	if err := cs.s.cluster.AddVoter(ctx, req.GetNodeId(), req.GetRaftAddr()); err != nil {
		return nil, clusterError(ctx, cs.s.logger, command, err)
	}
	member := &statev1.Member{
		NodeId:     req.GetNodeId(),
		RaftAddr:   req.GetRaftAddr(),
		AdminAddr:  req.GetAdminAddr(),
		PublicAddr: req.GetPublicAddr(),
		Voter:      true,
	}
	if prev, ok := cs.s.cluster.Member(req.GetNodeId()); ok {
		member.Draining = prev.GetDraining()
	}
	idx, err := cs.s.apply(ctx, command, &statev1.Command{Kind: &statev1.Command_PutMember{PutMember: &statev1.PutMember{Member: member}}})
	if err != nil {
		return nil, err
	}
	cs.s.logger.InfoContext(ctx, "node joined", "joined", req.GetNodeId(), "raft_addr", req.GetRaftAddr(), "index", idx)
	return &adminv1.JoinResponse{ClusterId: cs.s.cluster.ClusterID(), LeaderId: cs.s.nodeID, RaftIndex: idx}, nil
}

// RemoveMember removes a node from the Raft configuration and the member
// list. The leader removing itself records the removal first, while it can
// still commit, then leaves the configuration (and steps down).
func (cs *clusterService) RemoveMember(ctx context.Context, req *adminv1.RemoveMemberRequest) (*adminv1.RemoveMemberResponse, error) {
	const command = "cluster.remove-member"
	id := req.GetNodeId()
	if err := checkNodeID(command, "node_id", id); err != nil {
		return nil, err
	}
	voters, known := 0, false
	for _, m := range cs.s.cluster.Status().Members {
		if m.Voter {
			voters++
		}
		known = known || m.NodeID == id
	}
	if _, ok := cs.s.cluster.Member(id); ok {
		known = true
	}
	if !known {
		return nil, status.Errorf(codes.NotFound, "%s: no member %s (see cluster.list-members)", command, clipped(id))
	}
	if voters <= 1 && id == cs.s.nodeID {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: %s is the only voter; removing it would leave no cluster", command, id)
	}
	record := &statev1.Command{Kind: &statev1.Command_RemoveMember{RemoveMember: &statev1.RemoveMember{NodeId: id}}}
	if id == cs.s.nodeID {
		idx, err := cs.s.apply(ctx, command, record)
		if err != nil {
			return nil, err
		}
		if err := cs.s.cluster.RemoveServer(ctx, id); err != nil {
			return nil, clusterError(ctx, cs.s.logger, command, err)
		}
		return &adminv1.RemoveMemberResponse{RaftIndex: idx}, nil
	}
	if err := cs.s.cluster.RemoveServer(ctx, id); err != nil {
		return nil, clusterError(ctx, cs.s.logger, command, err)
	}
	idx, err := cs.s.apply(ctx, command, record)
	if err != nil {
		return nil, err
	}
	cs.s.logger.InfoContext(ctx, "member removed", "removed", id, "index", idx)
	return &adminv1.RemoveMemberResponse{RaftIndex: idx}, nil
}

// TransferLeadership hands leadership to node_id, or to the most
// up-to-date follower when it is empty.
func (cs *clusterService) TransferLeadership(ctx context.Context, req *adminv1.TransferLeadershipRequest) (*adminv1.TransferLeadershipResponse, error) {
	const command = "cluster.transfer-leadership"
	id := req.GetNodeId()
	if id != "" {
		if err := checkNodeID(command, "node_id", id); err != nil {
			return nil, err
		}
		if id == cs.s.nodeID {
			return nil, status.Errorf(codes.FailedPrecondition, "%s: %s already leads", command, id)
		}
		voter := false
		for _, m := range cs.s.cluster.Status().Members {
			voter = voter || (m.NodeID == id && m.Voter)
		}
		if !voter {
			return nil, status.Errorf(codes.NotFound, "%s: %s is not a voting member (see cluster.list-members)", command, clipped(id))
		}
	}
	at := cs.s.cluster.Status().CommitIndex
	leader, err := cs.s.cluster.TransferLeadership(ctx, id)
	if err != nil {
		return nil, clusterError(ctx, cs.s.logger, command, err)
	}
	SetRaftIndex(ctx, at)
	return &adminv1.TransferLeadershipResponse{LeaderId: leader, Term: cs.s.cluster.Status().Term, RaftIndex: at}, nil
}

// Snapshot makes this node take a Raft snapshot now.
func (cs *clusterService) Snapshot(ctx context.Context, _ *adminv1.SnapshotRequest) (*adminv1.SnapshotResponse, error) {
	const command = "cluster.snapshot"
	idx, term, err := cs.s.cluster.TakeSnapshot(ctx)
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: nothing new to snapshot since the last snapshot", command)
	}
	if err != nil {
		return nil, clusterError(ctx, cs.s.logger, command, err)
	}
	return &adminv1.SnapshotResponse{NodeId: cs.s.nodeID, RaftIndex: idx, Term: term}, nil
}
