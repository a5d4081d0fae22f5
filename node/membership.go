package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// Membership timing. A joiner retries its --join list until joinTimeout:
// the members it names may still be starting (a whole cluster is often
// started at once). A resumed member of a multi-node cluster waits for a
// leader only resumeLeaderWait before it serves anyway: its peers may be
// down, and the control plane answers UNAVAILABLE until they are back.
const (
	joinTimeout      = 90 * time.Second
	joinAttemptWait  = 5 * time.Second
	joinRetryBackoff = 500 * time.Millisecond
	resumeLeaderWait = 10 * time.Second
)

// joinOrBootstrap makes this node a member of a cluster, in one of three
// ways (SPEC section 1):
//   - a store that already belongs to a cluster resumes it; --bootstrap and
//     --join are ignored with a warning, never a second cluster;
//   - with --join, ask a member to add this node (proving itself with its
//     node certificate), then wait for the log to arrive;
//   - otherwise form a new cluster (--bootstrap, implied for a lone node).
func (n *Node) joinOrBootstrap(ctx context.Context) error {
	log := n.cfg.Logger
	switch {
	case n.store.HadState():
		if n.cfg.Bootstrap {
			log.Warn("--bootstrap ignored: this store already belongs to a cluster; resuming it", "state_dir", n.state.dir)
		}
		if len(n.cfg.Join) > 0 {
			log.Warn("--join ignored: this store already belongs to a cluster; resuming it", "state_dir", n.state.dir)
		}
		return n.resume(ctx)
	case len(n.cfg.Join) > 0:
		return n.join(ctx)
	default:
		if err := n.store.BootstrapSingle(); err != nil {
			return fmt.Errorf("bootstrap cluster: %w", err)
		}
		return n.settleAsLeader(ctx, leaderTimeout)
	}
}

// resume waits for a leader. A lone member elects itself at once; in a
// larger cluster the others may be down, so the wait is short and its end
// is not an error.
func (n *Node) resume(ctx context.Context) error {
	log := n.cfg.Logger
	// The Raft configuration, not the member records: before a leader is
	// known the log after the last snapshot has not been replayed yet.
	st := n.store.Status()
	lone := len(st.Members) <= 1
	for _, m := range st.Members {
		if m.NodeID == n.nodeID && m.RaftAddr != n.store.RaftAddr() {
			log.Warn("this node's Raft address differs from the one the cluster knows; the other members cannot reach it "+
				"until it is restarted with the previous --raft-listen/--advertise-raft-listen",
				"known", m.RaftAddr, "now", n.store.RaftAddr())
		}
	}
	wait := resumeLeaderWait
	if lone {
		wait = leaderTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if _, err := n.store.WaitForLeader(wctx); err != nil {
		if lone {
			return fmt.Errorf("wait for a raft leader: %w", err)
		}
		log.Warn("no raft leader yet; serving anyway (admin writes answer UNAVAILABLE until one is elected)", "waited", wait)
		return nil
	}
	if n.store.IsLeader() {
		return n.settleAsLeader(ctx, leaderTimeout)
	}
	// A follower replays its log as the leader commits it to it: wait
	// until it has caught up, so it serves its own state, not an empty
	// one. Knowing the leader does not mean its commit index has arrived
	// (that comes with its next AppendEntries, and until then this node's
	// commit index may still be 0), so first wait for the cluster state
	// itself, then for everything committed by then.
	if !n.awaitClusterState(wctx) {
		log.Warn("the cluster state has not arrived from the leader yet; serving anyway", "waited", wait)
	} else if err := n.store.WaitApplied(wctx, n.store.Status().CommitIndex); err != nil {
		log.Warn("still catching up with the raft log; serving anyway", "err", err)
	}
	// A follower re-announces itself so that changed advertised addresses
	// reach the member list (and the Raft configuration). Best effort.
	if _, admin, ok := n.store.LeaderAdmin(); ok {
		if err := n.callJoin(ctx, admin); err != nil {
			log.Warn("could not refresh this node's member record with the leader", "leader_admin", admin, "err", err)
		}
	}
	return nil
}

// settleAsLeader runs on the node that leads right after start: it replays
// the log (barrier), initialises a new cluster once, and records itself as
// a member.
func (n *Node) settleAsLeader(ctx context.Context, timeout time.Duration) error {
	log := n.cfg.Logger
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := n.store.WaitForLeader(wctx); err != nil {
		return fmt.Errorf("wait for a raft leader: %w", err)
	}
	if !n.store.IsLeader() {
		return nil
	}
	// A restarted node replays its log only after it is elected; the barrier
	// makes every earlier entry applied before state is read.
	if err := n.store.Barrier(wctx); err != nil {
		return fmt.Errorf("catch up with the raft log: %w", err)
	}
	created, err := initCluster(wctx, n.store, n.cfg.Now(), n.kek)
	if err != nil {
		return err
	}
	if created {
		log.Info("cluster initialised", "cluster_id", n.store.ClusterID())
	}
	n.tokenWritten = created
	if _, err := n.store.EnsureSelfMember(wctx); err != nil {
		return fmt.Errorf("record member %s: %w", n.nodeID, err)
	}
	return nil
}

// join asks the members named by --join to add this node, then waits
// until the replicated log has reached it (the cluster id is known
// locally).
func (n *Node) join(ctx context.Context) error {
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	if err := n.askToJoin(jctx); err != nil {
		return err
	}
	// The leader now replicates its log to us; wait until it has arrived.
	if !n.awaitClusterState(jctx) {
		return fmt.Errorf("joined, but the cluster state did not arrive within %s", joinTimeout)
	}
	return nil
}

// awaitClusterState waits until the replicated log has brought this node
// the cluster's state (its cluster id is known locally), and reports
// whether it did before ctx ended.
func (n *Node) awaitClusterState(ctx context.Context) bool {
	for n.store.ClusterID() == "" {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}

// askToJoin tries the --join addresses in turn until one adds this node or
// ctx ends; the members may still be starting.
func (n *Node) askToJoin(ctx context.Context) error {
	log := n.cfg.Logger
	last := make(map[string]error, len(n.cfg.Join)) // the latest failure per address
	for attempt := 0; ; attempt++ {
		for _, addr := range n.cfg.Join {
			err := n.callJoin(ctx, addr)
			if err == nil {
				log.Info("joined the cluster", "via", addr)
				return nil
			}
			if attempt == 0 {
				log.Warn("join attempt failed; retrying", "via", addr, "err", err)
			}
			last[addr] = err
		}
		select {
		case <-ctx.Done():
			var errs []error
			for _, addr := range n.cfg.Join {
				errs = append(errs, fmt.Errorf("%s: %w", addr, last[addr]))
			}
			return fmt.Errorf("--join %s: no member added this node within %s: %w",
				strings.Join(n.cfg.Join, ","), joinTimeout, errors.Join(errs...))
		case <-time.After(joinRetryBackoff):
		}
	}
}

// callJoin calls ClusterService.Join on one member's admin address with
// this node's certificate (capability cluster.node; no token).
func (n *Node) callJoin(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(n.tls.ClientConfig(host))))
	if err != nil {
		return err
	}
	defer conn.Close()
	actx, cancel := context.WithTimeout(ctx, joinAttemptWait)
	defer cancel()
	resp, err := adminv1.NewClusterServiceClient(conn).Join(actx, &adminv1.JoinRequest{
		NodeId:     n.nodeID,
		RaftAddr:   n.store.RaftAddr(),
		AdminAddr:  advertised(n.cfg.AdvertiseAdminListen, n.adminLis),
		PublicAddr: advertised(n.cfg.AdvertiseListen, n.publicLis),
	})
	if err != nil {
		return err
	}
	n.cfg.Logger.Info("member record stored by the leader", "cluster_id", resp.GetClusterId(), "leader", resp.GetLeaderId(), "raft_index", resp.GetRaftIndex())
	return nil
}
