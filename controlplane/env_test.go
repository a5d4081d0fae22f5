package controlplane

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
	"github.com/nodalmerge/nodalmerge-go/raftstore"
	"github.com/nodalmerge/nodalmerge-go/token"
)

const testClusterID = "cluster-test-1"

// fakeCluster is a fixed view of the cluster with a real keyring. The real
// raftstore is covered by its own tests and the end-to-end tests.
type fakeCluster struct {
	id     string
	status raftstore.Status
	keys   []*statev1.Key
}

func (c *fakeCluster) ClusterID() string        { return c.id }
func (c *fakeCluster) Status() raftstore.Status { return c.status }
func (c *fakeCluster) Keys() []*statev1.Key     { return c.keys }

// recorder is an Auditor that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []AuditEvent
}

func (r *recorder) Record(_ context.Context, e AuditEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.events)
	r.events = nil
	return out
}

type envOptions struct {
	// logAudit leaves Config.Audit nil so events go to the logger.
	logAudit bool
	// testService adds the synthetic TestService (see testservice_test.go).
	testService bool
	// clusterID overrides the cluster id; "-" means empty.
	clusterID string
}

// env is one admin server on 127.0.0.1 with real mTLS and a real keyring.
type env struct {
	pki     *pkitest.PKI
	cluster *fakeCluster
	srv     *Server
	addr    string
	audit   *recorder
	logs    *syncbuf.Buffer
	metrics *prometheus.Registry
	now     time.Time
	kid     string
	priv    ed25519.PrivateKey
	svc     *testService
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	e := &env{
		pki:     pkitest.New(t),
		audit:   &recorder{},
		logs:    &syncbuf.Buffer{},
		metrics: prometheus.NewRegistry(),
		now:     time.Now().Truncate(time.Second),
	}
	key, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, e.now.Add(-time.Hour))
	if err != nil {
		t.Fatalf("generate operator key: %v", err)
	}
	e.cluster = &fakeCluster{
		id: testClusterID,
		status: raftstore.Status{
			NodeID: "n1", LeaderID: "n1", LeaderAddr: "127.0.0.1:7880", State: "leader",
			Term: 3, AppliedIndex: 17, CommitIndex: 18,
			Members: []raftstore.MemberStatus{
				{NodeID: "n1", RaftAddr: "127.0.0.1:7880", AdminAddr: "127.0.0.1:7879", PublicAddr: "127.0.0.1:7878", Voter: true, State: "leader"},
				{NodeID: "n2", RaftAddr: "127.0.0.2:7880", AdminAddr: "127.0.0.2:7879", PublicAddr: "127.0.0.2:7878", Voter: false, State: "follower"},
			},
		},
		keys: []*statev1.Key{key},
	}
	switch opts.clusterID {
	case "":
	case "-":
		e.cluster.id = ""
	default:
		e.cluster.id = opts.clusterID
	}
	e.kid, e.priv, err = keyring.Signer(e.cluster.keys, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, e.now)
	if err != nil {
		t.Fatalf("operator signer: %v", err)
	}

	cfg := Config{
		NodeID:  "n1",
		TLS:     e.pki.Node(t, "n1").ServerConfig(),
		Cluster: e.cluster,
		Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Audit:   e.audit,
		Metrics: e.metrics,
		Now:     func() time.Time { return e.now },
	}
	if opts.logAudit {
		cfg.Audit = nil
	}
	if opts.testService {
		e.srv, e.svc = newServerWithTestService(t, cfg)
	} else {
		e.srv, err = NewServer(cfg)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
	}
	e.serve(t)
	return e
}

// serve runs the server on a fresh 127.0.0.1 listener until the test ends.
func (e *env) serve(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.addr = lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// dial connects with the given client material (nil: no certificate).
func (e *env) dial(t testing.TB, m *pki.Material) *grpc.ClientConn {
	t.Helper()
	var creds credentials.TransportCredentials
	if m != nil {
		creds = credentials.NewTLS(m.ClientConfig(""))
	} else {
		// A client that trusts the server's CA but presents no
		// certificate: the operator config with its certificate removed.
		cfg := e.pki.Operator(t, "certless").ClientConfig("")
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, nil
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// operatorClaims are claims for sub "alice" valid for the next hour.
func (e *env) operatorClaims(caps ...string) token.OperatorClaims {
	return token.OperatorClaims{
		ClusterID: e.cluster.id,
		Subject:   "alice",
		Caps:      caps,
		IssuedAt:  e.now.Add(-time.Minute),
		ExpiresAt: e.now.Add(time.Hour),
		ID:        "tok-1",
	}
}

// mint signs claims with the cluster's active operator key.
func (e *env) mint(t testing.TB, c token.OperatorClaims) string {
	t.Helper()
	raw, err := token.MintOperator(e.kid, e.priv, c)
	if err != nil {
		t.Fatalf("MintOperator: %v", err)
	}
	return raw
}

// bearer attaches raw as the call's bearer token.
func bearer(ctx context.Context, raw string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+raw)
}

// callCtx is a bounded context for one RPC.
func callCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
