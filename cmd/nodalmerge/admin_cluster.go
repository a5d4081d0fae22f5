package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func newAdminStatus(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the answering node's view of the cluster (cluster.status, needs cluster.read)",
		Example: "  nodalmerge admin status\n  nodalmerge admin status --stale --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.GetStatusResponse, error) {
					return adminv1.NewClusterServiceClient(cc).GetStatus(ctx, &adminv1.GetStatusRequest{})
				},
				func(w io.Writer, r *adminv1.GetStatusResponse) error {
					if err := fields(w,
						"cluster", r.GetClusterId(),
						"node", r.GetNodeId()+" ("+r.GetState()+")",
						"leader", r.GetLeaderId(),
						"term", u64(r.GetTerm()),
						"applied index", u64(r.GetAppliedIndex()),
						"commit index", u64(r.GetCommitIndex()),
					); err != nil {
						return err
					}
					fmt.Fprintln(w)
					return printMembers(w, r.GetMembers())
				})
		},
	}
}

func newAdminMembers(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "members",
		Short:   "List the members of the cluster (cluster.list-members, needs cluster.read)",
		Example: "  nodalmerge admin members",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(cmd, a, read,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.ListMembersResponse, error) {
					return adminv1.NewClusterServiceClient(cc).ListMembers(ctx, &adminv1.ListMembersRequest{})
				},
				func(w io.Writer, r *adminv1.ListMembersResponse) error { return printMembers(w, r.GetMembers()) })
		},
	}
}

func printMembers(w io.Writer, members []*adminv1.Member) error {
	t := newTable(w, "NODE", "STATE", "VOTER", "DRAINING", "RAFT", "ADMIN", "PUBLIC")
	for _, m := range members {
		t.row(m.GetNodeId(), m.GetState(), yesNo(m.GetVoter()), yesNo(m.GetDraining()),
			m.GetRaftAddr(), m.GetAdminAddr(), m.GetPublicAddr())
	}
	return t.flush()
}

func newAdminRemoveMember(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "remove-member NODE_ID",
		Short:   "Remove a node from the cluster (cluster.remove-member, needs cluster.admin)",
		Example: "  nodalmerge admin remove-member n3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.RemoveMemberResponse, error) {
					return adminv1.NewClusterServiceClient(cc).RemoveMember(ctx, &adminv1.RemoveMemberRequest{NodeId: id})
				},
				func(w io.Writer, r *adminv1.RemoveMemberResponse) error {
					_, err := fmt.Fprintf(w, "removed member %s (raft index %d)\n", id, r.GetRaftIndex())
					return err
				})
		},
	}
}

func newAdminTransferLeadership(a *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leadership [NODE_ID]",
		Short: "Hand leadership to a node, or to the most up-to-date follower (cluster.transfer-leadership, needs cluster.admin)",
		Example: "  nodalmerge admin transfer-leadership\n" +
			"  nodalmerge admin transfer-leadership n2",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &adminv1.TransferLeadershipRequest{}
			if len(args) == 1 {
				req.NodeId = args[0]
			}
			return adminCall(cmd, a, write,
				func(ctx context.Context, cc *grpc.ClientConn) (*adminv1.TransferLeadershipResponse, error) {
					return adminv1.NewClusterServiceClient(cc).TransferLeadership(ctx, req)
				},
				func(w io.Writer, r *adminv1.TransferLeadershipResponse) error {
					_, err := fmt.Fprintf(w, "leader is now %s (term %d, raft index %d)\n", r.GetLeaderId(), r.GetTerm(), r.GetRaftIndex())
					return err
				})
		},
	}
}
