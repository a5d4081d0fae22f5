package controlplane

import (
	"context"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// clusterService answers ClusterService reads from the node's own view of
// the cluster. Authorization has already happened when a method runs.
type clusterService struct {
	adminv1.UnimplementedClusterServiceServer
	nodeID  string
	cluster Cluster
}

func (cs *clusterService) GetStatus(context.Context, *adminv1.GetStatusRequest) (*adminv1.GetStatusResponse, error) {
	st := cs.cluster.Status()
	return &adminv1.GetStatusResponse{
		ClusterId:    cs.cluster.ClusterID(),
		NodeId:       cs.nodeID,
		LeaderId:     st.LeaderID,
		Term:         st.Term,
		AppliedIndex: st.AppliedIndex,
		CommitIndex:  st.CommitIndex,
		State:        st.State,
		Members:      members(st.Members),
	}, nil
}

func (cs *clusterService) ListMembers(context.Context, *adminv1.ListMembersRequest) (*adminv1.ListMembersResponse, error) {
	return &adminv1.ListMembersResponse{Members: members(cs.cluster.Status().Members)}, nil
}

func members(in []raftstore.MemberStatus) []*adminv1.Member {
	out := make([]*adminv1.Member, 0, len(in))
	for _, m := range in {
		out = append(out, &adminv1.Member{
			NodeId:     m.NodeID,
			RaftAddr:   m.RaftAddr,
			AdminAddr:  m.AdminAddr,
			PublicAddr: m.PublicAddr,
			Voter:      m.Voter,
			State:      m.State,
		})
	}
	return out
}
