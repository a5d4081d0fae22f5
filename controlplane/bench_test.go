package controlplane

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
)

// The benchmarks below measure one admin call over real mTLS on
// 127.0.0.1, through the full interceptor chain ("with-auth") and through
// a bare gRPC server with the same TLS and the same handler
// ("without-auth"). The difference is what the chain costs: command
// record, bearer-token verification (an Ed25519 signature check),
// authorization, routing, audit, one JSON log line per call (into memory
// here) and metrics. Besides ns/op each
// reports the p50 and p99 latency of a single call, which is what an
// operator or a dashboard polling the API waits for.

// BenchmarkGetStatus measures cluster.status, a node-local read gated on
// cluster.read.
func BenchmarkGetStatus(b *testing.B) {
	e := newEnv(b, envOptions{})
	tok := e.mint(b, e.operatorClaims("cluster.read"))
	bare := e.bareServer(b, func(s *grpc.Server) {
		adminv1.RegisterClusterServiceServer(s, &clusterService{s: e.srv})
	})
	for _, bc := range []struct {
		name string
		conn *grpc.ClientConn
	}{
		{"with-auth", e.dial(b, e.pki.Operator(b, "alice"))},
		{"without-auth", bare},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := adminv1.NewClusterServiceClient(bc.conn)
			benchCalls(b, bearer(callCtx(b), tok), func(ctx context.Context) error {
				_, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{})
				return err
			})
			e.audit.take()
		})
	}
}

// BenchmarkGetPolicy measures get-policy, a room-scoped read gated on
// policy.admin, with a token limited to the bench rooms (so the room
// check runs its glob) on a room with one policy entry. On the leader the
// chain also takes the linearizable-read barrier; the fake cluster
// answers it at once, so the figure is the node's own cost, not a quorum
// round trip.
func BenchmarkGetPolicy(b *testing.B) {
	e := newEnv(b, envOptions{})
	const room = "bench-room-1"
	claims := e.operatorClaims("policy.admin")
	claims.Rooms = []string{"bench-*"}
	tok := e.mint(b, claims)
	if _, err := e.cluster.Apply(context.Background(), &statev1.Command{Kind: &statev1.Command_SetPolicy{SetPolicy: &statev1.SetPolicy{
		Room: room,
		Entry: &statev1.PolicyEntry{EffectiveLamport: 1, DefaultAllow: false, Rules: []*statev1.PolicyRule{
			{PathGlob: "world/**", CanWrite: [][]byte{make([]byte, 32)}},
		}},
	}}}); err != nil {
		b.Fatalf("set up the room's policy: %v", err)
	}
	bare := e.bareServer(b, func(s *grpc.Server) {
		adminv1.RegisterPolicyServiceServer(s, &policyService{s: e.srv})
	})
	for _, bc := range []struct {
		name string
		conn *grpc.ClientConn
	}{
		{"with-auth", e.dial(b, e.pki.Operator(b, "alice"))},
		{"without-auth", bare},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := adminv1.NewPolicyServiceClient(bc.conn)
			benchCalls(b, bearer(callCtx(b), tok), func(ctx context.Context) error {
				resp, err := client.GetPolicy(ctx, &adminv1.GetPolicyRequest{Room: room})
				if err == nil && len(resp.GetTimeline()) != 1 {
					b.Fatalf("GetPolicy answered %d timeline entries, want 1", len(resp.GetTimeline()))
				}
				return err
			})
			e.audit.take()
		})
	}
}

// bareServer serves the services register adds, with the node's TLS and
// no interceptors, on a fresh 127.0.0.1 listener until the benchmark
// ends, and answers an operator connection to it.
func (e *env) bareServer(b *testing.B, register func(*grpc.Server)) *grpc.ClientConn {
	b.Helper()
	bare := grpc.NewServer(grpc.Creds(credentials.NewTLS(e.pki.Node(b, "n1").ServerConfig())))
	register(bare)
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
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(e.pki.Operator(b, "alice").ClientConfig(""))))
	if err != nil {
		b.Fatalf("grpc.NewClient: %v", err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

// benchCalls runs call sequentially for the benchmark's iterations,
// records each call's latency, and reports the p50 and p99 next to
// ns/op. The first call, which opens the connection (TCP and TLS
// handshakes), runs before the timer.
func benchCalls(b *testing.B, ctx context.Context, call func(context.Context) error) {
	b.Helper()
	if err := call(ctx); err != nil {
		b.Fatalf("first call: %v", err)
	}
	var lat []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := call(ctx); err != nil {
			b.Fatalf("call: %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(quantileMicros(lat, 0.50), "p50-µs")
	b.ReportMetric(quantileMicros(lat, 0.99), "p99-µs")
}

// quantileMicros is the nearest-rank q-quantile of sorted, in µs.
func quantileMicros(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := max(int(float64(len(sorted))*q+0.999999)-1, 0)
	return float64(sorted[min(i, len(sorted)-1)]) / float64(time.Microsecond)
}
