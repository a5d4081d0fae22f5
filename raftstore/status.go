package raftstore

import (
	"sort"
	"strings"

	"github.com/hashicorp/raft"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// Status is one node's view of the cluster, as the admin API reports it.
type Status struct {
	NodeID     string
	LeaderID   string
	LeaderAddr string
	// State is this node's Raft state: "leader", "follower", "candidate"
	// or "shutdown".
	State string
	Term  uint64
	// AppliedIndex is at least the index of every Apply that has returned
	// on this node (Raft's own counter, which also covers barrier and
	// no-op entries, can briefly lag the FSM).
	AppliedIndex uint64
	CommitIndex  uint64
	// Members joins the Raft configuration with the replicated member
	// records, sorted by node id.
	Members []MemberStatus
	// ObserverBacklog is how many OnApply/OnRestore events wait for the
	// observer (0 without hooks): a growing value means a slow observer.
	ObserverBacklog int
}

// MemberStatus is one member of the Raft configuration with the addresses
// it advertised when it joined.
type MemberStatus struct {
	NodeID     string
	RaftAddr   string
	AdminAddr  string
	PublicAddr string
	Voter      bool
	// Draining is the member record's drain mark (topology.drain-node).
	Draining bool
	// State is "leader" or "follower" as the answering node sees it.
	State string
}

// Status reports this node's Raft state and the Raft configuration joined
// with the replicated member records. It never blocks on the cluster, so it
// works on a follower, a partitioned node or a closed store ("shutdown").
func (s *Store) Status() Status {
	leaderAddr, leaderID := s.raft.LeaderWithID()
	st := Status{
		NodeID:       s.cfg.NodeID,
		LeaderID:     string(leaderID),
		LeaderAddr:   string(leaderAddr),
		State:        strings.ToLower(s.raft.State().String()),
		Term:         s.raft.CurrentTerm(),
		AppliedIndex: max(s.raft.AppliedIndex(), s.fsm.applied.Load()),
		CommitIndex:  s.raft.CommitIndex(),

		ObserverBacklog: s.events.backlog(),
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return st
	}
	records := make(map[string]*statev1.Member)
	for _, m := range s.fsm.getMembers() {
		records[m.GetNodeId()] = m
	}
	for _, srv := range f.Configuration().Servers {
		id := string(srv.ID)
		ms := MemberStatus{
			NodeID:   id,
			RaftAddr: string(srv.Address),
			Voter:    srv.Suffrage == raft.Voter,
			State:    "follower",
		}
		if id == st.LeaderID {
			ms.State = "leader"
		}
		if m := records[id]; m != nil {
			ms.AdminAddr = m.GetAdminAddr()
			ms.PublicAddr = m.GetPublicAddr()
			ms.Draining = m.GetDraining()
		}
		st.Members = append(st.Members, ms)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].NodeID < st.Members[j].NodeID })
	return st
}
