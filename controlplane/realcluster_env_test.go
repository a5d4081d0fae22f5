package controlplane

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// realTimeout bounds cluster operations in the real-Raft tests: generous,
// because the race detector on a shared 2-core machine slows Raft a lot.
const realTimeout = 30 * time.Second

// realNode is one node of an in-process cluster: a real raftstore over
// its mTLS Raft transport and a real admin server on 127.0.0.1.
type realNode struct {
	id    string
	store *raftstore.Store
	srv   *Server
	addr  string
	audit *recorder
	dp    *fakeDataPlane
	stop  func()
}

// startRealNode opens the node's store and serves its admin port. The
// admin listener is opened first so the store records its real address.
func startRealNode(t *testing.T, p *pkitest.PKI, id string) *realNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := p.Node(t, id)
	store, err := raftstore.Open(raftstore.Config{
		NodeID:     id,
		Bind:       "127.0.0.1:0",
		ServerTLS:  m.NodeServerConfig(),
		ClientTLS:  m.ClientConfig(""),
		AdminAddr:  lis.Addr().String(),
		PublicAddr: "127.0.0.1:17878",
	})
	if err != nil {
		_ = lis.Close()
		t.Fatalf("open store %s: %v", id, err)
	}
	n := &realNode{id: id, store: store, addr: lis.Addr().String(), audit: &recorder{}, dp: &fakeDataPlane{}}
	n.srv, err = NewServer(Config{
		NodeID:    id,
		TLS:       m.ServerConfig(),
		ClientTLS: m.ClientConfig(""),
		Cluster:   store,
		Audit:     n.audit,
		DataPlane: n.dp,
	})
	if err != nil {
		_ = lis.Close()
		_ = store.Close()
		t.Fatalf("NewServer %s: %v", id, err)
	}
	served := make(chan error, 1)
	go func() { served <- n.srv.Serve(lis) }()
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve %s: %v", id, err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store %s: %v", id, err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

// realCluster is three nodes; n1 bootstraps and initialises the cluster,
// the others join through the admin API.
type realCluster struct {
	pki     *pkitest.PKI
	nodes   []*realNode
	opKid   string
	opPriv  []byte
	cluster string
}

const realClusterID = "cluster-real-1"

// bootstrapRealLeader makes n a one-node cluster with an operator and a
// room-token key and records its member entry (with its admin address).
func bootstrapRealLeader(t *testing.T, n *realNode, now time.Time) (string, []byte) {
	t.Helper()
	ctx := realCtx(t)
	if err := n.store.BootstrapSingle(); err != nil {
		t.Fatal(err)
	}
	if id, err := n.store.WaitForLeader(ctx); err != nil || id != n.id {
		t.Fatalf("leader %q, %v", id, err)
	}
	op, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_ROOM_TOKEN, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.Apply(ctx, &statev1.Command{Kind: &statev1.Command_InitCluster{
		InitCluster: &statev1.InitCluster{ClusterId: realClusterID, Keys: []*statev1.Key{op, rt}},
	}}); err != nil {
		t.Fatalf("init cluster: %v", err)
	}
	if _, err := n.store.EnsureSelfMember(ctx); err != nil {
		t.Fatalf("self member: %v", err)
	}
	kid, priv, err := keyring.Signer([]*statev1.Key{op}, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now)
	if err != nil {
		t.Fatal(err)
	}
	return kid, priv
}

// operatorToken mints a token for sub "ops" holding caps.
func (rc *realCluster) operatorToken(t *testing.T, caps ...string) string {
	t.Helper()
	now := time.Now()
	raw, err := token.MintOperator(rc.opKid, rc.opPriv, token.OperatorClaims{
		ClusterID: realClusterID, Subject: "ops", Caps: caps,
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), ID: "op-tok",
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// dialAs connects to n's admin port with the certificate of name (an
// operator, or a node when node is true).
func dialAs(t *testing.T, p *pkitest.PKI, n *realNode, name string, node bool) *grpc.ClientConn {
	t.Helper()
	var m *pki.Material
	if node {
		m = p.Node(t, name)
	} else {
		m = p.Operator(t, name)
	}
	conn, err := grpc.NewClient(n.addr, grpc.WithTransportCredentials(credentials.NewTLS(m.ClientConfig(""))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func realCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), realTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitAll waits until every running node has applied index.
func waitAll(t *testing.T, ctx context.Context, index uint64, nodes ...*realNode) {
	t.Helper()
	for _, n := range nodes {
		if err := n.store.WaitApplied(ctx, index); err != nil {
			t.Fatalf("%s: wait applied %d: %v", n.id, index, err)
		}
	}
}

// eventsOf answers the recorded events of command, forgetting all events.
func eventsOf(r *recorder, command string) []AuditEvent {
	var out []AuditEvent
	for _, e := range r.take() {
		if e.Command == command {
			out = append(out, e)
		}
	}
	return out
}

// clients are typed clients of every admin service over one connection.
type clients struct {
	cluster  adminv1.ClusterServiceClient
	keys     adminv1.KeyServiceClient
	tokens   adminv1.TokenServiceClient
	rooms    adminv1.RoomServiceClient
	policy   adminv1.PolicyServiceClient
	ticks    adminv1.TickServiceClient
	topology adminv1.TopologyServiceClient
	audit    adminv1.AuditServiceClient
}

func newClients(conn *grpc.ClientConn) *clients {
	return &clients{
		cluster:  adminv1.NewClusterServiceClient(conn),
		keys:     adminv1.NewKeyServiceClient(conn),
		tokens:   adminv1.NewTokenServiceClient(conn),
		rooms:    adminv1.NewRoomServiceClient(conn),
		policy:   adminv1.NewPolicyServiceClient(conn),
		ticks:    adminv1.NewTickServiceClient(conn),
		topology: adminv1.NewTopologyServiceClient(conn),
		audit:    adminv1.NewAuditServiceClient(conn),
	}
}

// eventually polls cond until it holds or ctx ends; only where Raft gives
// no signal to wait on (a follower noticing its leader is gone).
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
