package controlplane

import (
	"context"
	"crypto/ed25519"
	"time"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// Cluster is what the admin services read from and write to the replicated
// state; *raftstore.Store satisfies it. Reads answer this node's applied
// state (deep copies, except ViewRoom's callback); the server makes them linearizable by running them
// on the leader after ReadIndex + WaitApplied (see route.go).
//
// Errors of the write and consistency methods are raftstore's sentinels
// (ErrRejected, ErrInvalidCommand, *NotLeaderError / ErrNoLeader,
// ErrLeadershipLost, ErrClosed) so that clusterError can map them to
// status codes without parsing messages.
type Cluster interface {
	ClusterID() string
	Status() raftstore.Status
	Keys() []*statev1.Key
	Members() []*statev1.Member
	Member(nodeID string) (*statev1.Member, bool)
	Rooms() []*statev1.Room
	Room(name string) (*statev1.Room, bool)
	Revocations() []*statev1.Revocation
	Ticks() []*statev1.TickSchedule

	// Narrow reads for the per-call paths (authentication, set-policy,
	// get-policy): they copy one small thing, or nothing, instead of a
	// whole room or the keyring, whose copies grow with the state.
	//
	// VerifyingKey answers the public key with kid if it may verify for
	// purpose at now (keyring.VerifyKey's rule), else an error.
	VerifyingKey(purpose statev1.KeyPurpose, kid string, now time.Time) (ed25519.PublicKey, error)
	// IsRevoked reports whether tokenID (if not empty), or peer in room
	// (if both are set), is revoked at now.
	IsRevoked(tokenID, room string, peer []byte, now time.Time) bool
	// LastPolicyEntry answers a copy of the room's newest policy entry.
	LastPolicyEntry(room string) (*statev1.PolicyEntry, bool)
	// PolicyEntryAtIndex answers a copy of the room's policy entry
	// appended by the command at raftIndex.
	PolicyEntryAtIndex(room string, raftIndex uint64) (*statev1.PolicyEntry, bool)
	// ViewRoom calls fn with the room's record under the state's read
	// lock (fn must not keep any part of it, nor call the Cluster) and
	// reports whether the room has a record.
	ViewRoom(room string, fn func(*statev1.Room)) bool

	// Apply proposes cmd on the leader and answers the index it was
	// applied at.
	Apply(ctx context.Context, cmd *statev1.Command) (uint64, error)
	// ReadIndex (leader only) confirms leadership and answers the commit
	// index; WaitApplied blocks until this node has applied index.
	ReadIndex(ctx context.Context) (uint64, error)
	WaitApplied(ctx context.Context, index uint64) error
	// IsLeader is a cheap hint; ReadIndex proves it.
	IsLeader() bool
	// LeaderAdmin answers the leader's id and admin address from its
	// member record, for forwarding.
	LeaderAdmin() (id, adminAddr string, ok bool)

	AddVoter(ctx context.Context, nodeID, raftAddr string) error
	RemoveServer(ctx context.Context, nodeID string) error
	TransferLeadership(ctx context.Context, nodeID string) (newLeaderID string, err error)
	TakeSnapshot(ctx context.Context) (index, term uint64, err error)
}

// DataPlane is what only the local data plane knows: which rooms are live
// here, their history size and Lamport clock, local compaction, and the
// rooms' stored history (archive, graph and replay commands). It is
// optional: without it the node answers as if no room were live, and the
// history commands are refused. *dataplane.Server has the OpenRoom and
// Publish methods with these signatures.
type DataPlane interface {
	// LiveRooms answers the rooms live on this node with their peer counts.
	LiveRooms() map[string]int
	// RoomInfo answers a room's highest stored Lamport, its number of
	// stored nodes and whether it is live on this node.
	RoomInfo(room string) (maxLamport uint64, nodes int, live bool)
	// CompactRoom compacts the room's stored history on this node.
	CompactRoom(ctx context.Context, room string) (nodes, before, after uint64, err error)
	// OpenRoom loads the room on this node if needed (as a session
	// would) and answers its stored history with the function that
	// releases it. The history may grow while it is held (sessions keep
	// writing); it never shrinks.
	OpenRoom(room string) (history.Store, func(), error)
	// Publish ingests nodes into the room through the data plane's full
	// verified ingest chain (signatures, Lamport, parents, write policy,
	// store) and relays the new ones to the room's sessions. accepted
	// counts the nodes now stored (new or duplicate). When the data plane
	// refused some nodes, err wraps nothing and its text names the first
	// node and why; a failure of the node itself (room not loadable,
	// store, context) is a wrapped error or a gRPC status.
	Publish(ctx context.Context, room string, nodes []*syncv1.Node) (accepted int, err error)
}
