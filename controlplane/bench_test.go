package controlplane

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// BenchmarkGetStatus measures one GetStatus over real mTLS on 127.0.0.1,
// through the full interceptor chain and through a bare server with the
// same TLS and handler; the difference is the interceptor overhead
// (command record, token verification, authorization, audit, logging).
func BenchmarkGetStatus(b *testing.B) {
	e := newEnv(b, envOptions{})
	tok := e.mint(b, e.operatorClaims("cluster.read"))

	bare := grpc.NewServer(grpc.Creds(credentials.NewTLS(e.pki.Node(b, "n1").ServerConfig())))
	adminv1.RegisterClusterServiceServer(bare, &clusterService{s: e.srv})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- bare.Serve(lis) }()
	b.Cleanup(func() {
		bare.Stop()
		if err := <-served; err != nil {
			b.Errorf("bare Serve: %v", err)
		}
	})
	bareConn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(e.pki.Operator(b, "alice").ClientConfig(""))))
	if err != nil {
		b.Fatalf("grpc.NewClient: %v", err)
	}
	b.Cleanup(func() { _ = bareConn.Close() })

	for _, bc := range []struct {
		name string
		conn *grpc.ClientConn
	}{
		{"with-auth", e.dial(b, e.pki.Operator(b, "alice"))},
		{"without-auth", bareConn},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := adminv1.NewClusterServiceClient(bc.conn)
			ctx := bearer(callCtx(b), tok)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil {
					b.Fatalf("GetStatus: %v", err)
				}
			}
			b.StopTimer()
			e.audit.take()
		})
	}
}
