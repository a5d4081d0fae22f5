package node

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig listens on loopback ports the kernel picks.
func testConfig(store string) Config {
	return Config{
		StoreDir:    store,
		Listen:      "127.0.0.1:0",
		AdminListen: "127.0.0.1:0",
		RaftListen:  "127.0.0.1:0",
		MetricsAddr: "127.0.0.1:0",
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { stopNode(t, n) })
	return n
}

func stopNode(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("stop node: %v", err)
	}
}

// operatorConn dials the admin port with the dev operator certificate.
func operatorConn(t *testing.T, n *Node) *grpc.ClientConn {
	t.Helper()
	dir := filepath.Join(n.StateDir(), "tls")
	m, err := pki.Load(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(n.AdminAddr(), grpc.WithTransportCredentials(credentials.NewTLS(m.ClientConfig(""))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// TestCapabilityDeny: a token without cluster.read gets PERMISSION_DENIED
// with SPEC section 4's exact message and ErrorInfo; the same token with
// the capability gets the status.
func TestCapabilityDeny(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	client := adminv1.NewClusterServiceClient(operatorConn(t, n))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	weak, _, err := mintOperatorToken(n.Store(), nil, "weak", []string{"room.admin"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func(context.Context) error{
		"GetStatus": func(ctx context.Context) error {
			_, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{})
			return err
		},
		"ListMembers": func(ctx context.Context) error {
			_, err := client.ListMembers(ctx, &adminv1.ListMembersRequest{})
			return err
		},
	} {
		cmd := map[string]string{"GetStatus": "cluster.status", "ListMembers": "cluster.list-members"}[name]
		err := call(withToken(ctx, weak))
		st := status.Convert(err)
		if st.Code() != codes.PermissionDenied {
			t.Fatalf("%s with a token lacking cluster.read: %v, want PermissionDenied", name, err)
		}
		want := "reject.control_plane_forbidden: command=" + cmd + " requires=cluster.read"
		if st.Message() != want {
			t.Errorf("%s deny message = %q, want %q", name, st.Message(), want)
		}
		wantInfo := &errdetails.ErrorInfo{Reason: "CONTROL_PLANE_FORBIDDEN", Domain: "nodalmerge",
			Metadata: map[string]string{"command": cmd, "requires": "cluster.read"}}
		var found bool
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				found = true
				if !proto.Equal(info, wantInfo) {
					t.Errorf("%s ErrorInfo = %v, want %v", name, info, wantInfo)
				}
			}
		}
		if !found {
			t.Errorf("%s deny carries no ErrorInfo detail", name)
		}
	}

	reader, _, err := mintOperatorToken(n.Store(), nil, "reader", []string{"cluster.read"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.GetStatus(withToken(ctx, reader), &adminv1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus with cluster.read: %v", err)
	}
	if st.GetClusterId() != n.ClusterID() || st.GetNodeId() != n.NodeID() || st.GetLeaderId() != n.NodeID() || st.GetAppliedIndex() == 0 {
		t.Errorf("status = %v", st)
	}

	// An expired token signed by the current key (the key did not exist
	// two minutes ago, so the token is signed now with past times).
	kid, priv, err := keyring.Signer(n.Store().Keys(), statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := token.MintOperator(kid, priv, token.OperatorClaims{
		ClusterID: n.ClusterID(), Subject: "old", Caps: []string{"cluster.read"},
		IssuedAt: time.Now().Add(-2 * time.Minute), ExpiresAt: time.Now().Add(-time.Minute), ID: "old-token",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.GetStatus(withToken(ctx, expired), &adminv1.GetStatusRequest{})
	if s := status.Convert(err); s.Code() != codes.Unauthenticated || s.Message() != "auth: token has expired" {
		t.Errorf("expired token: %v, want Unauthenticated auth: token has expired", err)
	}
}

// TestMetricsStayOffThePublicListener: /metrics, /healthz and /readyz answer
// on the metrics listener only.
func TestMetricsStayOffThePublicListener(t *testing.T) {
	n := startNode(t, testConfig(t.TempDir()))
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + n.MetricsAddr() + "/metrics"); code != 200 || !strings.Contains(body, "nodalmerge_raft_leader 1") ||
		!strings.Contains(body, `nodalmerge_controlplane_requests_total{command="cluster.status",decision="deny"} 0`) {
		t.Errorf("/metrics: %d, lacks the leader gauge or the zeroed request counter:\n%.2000s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get("http://" + n.MetricsAddr() + p); code != 200 {
			t.Errorf("%s = %d, want 200", p, code)
		}
	}
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		if code, body := get("http://" + n.PublicAddr() + p); code == 200 || strings.Contains(body, "nodalmerge_") {
			t.Errorf("public listener serves %s (%d)", p, code)
		}
	}
}

// TestRestartKeepsState: a durable node restarted on the same store keeps
// its cluster id, node id, keyring and member record.
func TestRestartKeepsState(t *testing.T) {
	store := t.TempDir()
	first := startNode(t, testConfig(store))
	before := first.Store().Dump()
	stopNode(t, first)

	second := startNode(t, testConfig(store))
	after := second.Store().Dump()
	if after.GetClusterId() != before.GetClusterId() || second.NodeID() != first.NodeID() {
		t.Fatalf("cluster/node id changed: %s/%s -> %s/%s", before.GetClusterId(), first.NodeID(), after.GetClusterId(), second.NodeID())
	}
	if len(before.GetKeys()) != 2 {
		t.Fatalf("bootstrap keyring has %d keys, want operator + room-token", len(before.GetKeys()))
	}
	// Member addresses may change (ports are picked anew); the keyring may
	// not, key by key.
	if len(after.GetKeys()) != len(before.GetKeys()) {
		t.Fatalf("keyring has %d keys after restart, %d before", len(after.GetKeys()), len(before.GetKeys()))
	}
	for i, k := range before.GetKeys() {
		if !proto.Equal(k, after.GetKeys()[i]) {
			t.Errorf("key %s changed across restart", k.GetKid())
		}
	}
}

// TestBadConfigFailsBeforeStarting: bad settings name their flag and leave
// nothing bound.
func TestBadConfigFailsBeforeStarting(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TLSCA = "/nonexistent/ca.pem"
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Errorf("half TLS flags: %v, want an error naming --tls-ca", err)
	}
	cfg = testConfig(t.TempDir())
	cfg.AdminListen = "no-port"
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--admin-listen") {
		t.Errorf("bad --admin-listen: %v", err)
	}
}
