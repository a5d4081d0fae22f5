package pki_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestGRPC checks the configs survive grpc's credentials wrapping (which
// clones the config and must add the "h2" ALPN protocol to the config
// returned by GetConfigForClient) and that PeerIdentity works on the
// AuthInfo a grpc handler sees.
func TestGRPC(t *testing.T) {
	p := pkitest.New(t)
	node, op := p.Node(t, "n1"), p.Operator(t, "alice")

	seen := make(chan pki.Identity, 1)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(node.ServerConfig())),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			pr, ok := peer.FromContext(ctx)
			if !ok {
				return nil, status.Error(codes.Unauthenticated, "no peer")
			}
			ti, ok := pr.AuthInfo.(credentials.TLSInfo)
			if !ok {
				return nil, status.Error(codes.Unauthenticated, "no TLS")
			}
			id, err := pki.PeerIdentity(ti.State)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			seen <- id
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(op.ClientConfig(""))))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check over mTLS: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.GetStatus())
	}
	if got := <-seen; got != (pki.Identity{Role: pki.RoleOperator, Name: "alice"}) {
		t.Fatalf("handler saw %v", got)
	}
}
