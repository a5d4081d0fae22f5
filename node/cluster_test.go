package node

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// clusterConfig is a durable node with certificates from one shared CA.
func clusterConfig(t *testing.T, p *pkitest.PKI, id string) Config {
	t.Helper()
	p.Node(t, id)
	ca, cert, key := p.Files(id)
	cfg := testConfig(filepath.Join(t.TempDir(), id))
	cfg.NodeID, cfg.TLSCA, cfg.TLSCert, cfg.TLSKey = id, ca, cert, key
	cfg.MetricsAddr = ""
	return cfg
}

// adminConn dials a node's admin port as operator "ops" of the shared CA.
func adminConn(t *testing.T, p *pkitest.PKI, addr string) *grpc.ClientConn {
	t.Helper()
	m := p.Operator(t, "ops")
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(m.ClientConfig(""))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestJoinThreeNodes: --bootstrap on one node and --join on two more make a
// three-voter cluster in which every node sees every member with its
// advertised addresses; a restarted follower resumes its membership with
// neither flag.
func TestJoinThreeNodes(t *testing.T) {
	p := pkitest.New(t)
	cfg1 := clusterConfig(t, p, "n1")
	cfg1.Bootstrap = true
	n1 := startNode(t, cfg1)
	tok, err := os.ReadFile(n1.TokenPath())
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}

	cfg2 := clusterConfig(t, p, "n2")
	cfg2.Join = []string{n1.AdminAddr()}
	n2 := startNode(t, cfg2)
	cfg3 := clusterConfig(t, p, "n3")
	// A restarted member keeps its Raft address: the others know it by it.
	cfg3.RaftListen = freeLoopbackAddr(t)
	// A dead address first: the joiner must go on to the next one.
	cfg3.Join = []string{"127.0.0.1:1", n2.AdminAddr()}
	n3 := startNode(t, cfg3)

	for _, n := range []*Node{n1, n2, n3} {
		if got := n.ClusterID(); got != n1.ClusterID() {
			t.Fatalf("%s: cluster id %q, want %q", n.NodeID(), got, n1.ClusterID())
		}
		if _, err := os.Stat(n.TokenPath()); n != n1 && err == nil {
			t.Errorf("%s: a joining node wrote a bootstrap token", n.NodeID())
		}
	}

	ctx := withToken(context.Background(), strings.TrimSpace(string(tok)))
	waitMembers := func(n *Node, want int) {
		t.Helper()
		client := adminv1.NewClusterServiceClient(adminConn(t, p, n.AdminAddr()))
		deadline := time.Now().Add(20 * time.Second)
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := client.ListMembers(cctx, &adminv1.ListMembersRequest{})
			cancel()
			if err == nil && len(resp.GetMembers()) == want && allAddressed(resp.GetMembers()) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: members %v (err %v), want %d with addresses", n.NodeID(), resp.GetMembers(), err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, n := range []*Node{n1, n2, n3} {
		waitMembers(n, 3)
	}

	// Restart n3 in its store with neither --bootstrap nor --join.
	stopNode(t, n3)
	cfg3.Join = nil
	n3 = startNode(t, cfg3)
	if got := n3.ClusterID(); got != n1.ClusterID() {
		t.Fatalf("restarted n3: cluster id %q, want %q", got, n1.ClusterID())
	}
	waitMembers(n3, 3)
}

// freeLoopbackAddr reserves a loopback port the kernel picks and frees it
// for the node to bind.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func allAddressed(ms []*adminv1.Member) bool {
	for _, m := range ms {
		if m.GetRaftAddr() == "" || m.GetAdminAddr() == "" || m.GetPublicAddr() == "" {
			return false
		}
	}
	return true
}

// TestJoinAndBootstrapExclusive: the two flags are refused together.
func TestJoinAndBootstrapExclusive(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Bootstrap = true
	cfg.Join = []string{"127.0.0.1:7879"}
	_, err := Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--bootstrap and --join") {
		t.Fatalf("Start = %v, want the flags named", err)
	}
}
