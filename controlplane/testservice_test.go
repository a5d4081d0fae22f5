package controlplane

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// The synthetic TestService exercises, over real gRPC, what ClusterService
// alone cannot: streams, room scope, mutations, cluster.node commands,
// handler panics and a method the registry does not know. It is built from
// a descriptor made in the test (no .proto) and served with dynamic
// messages, registered next to the real ClusterService.
const (
	testServiceName = "nodalmerge.admin.v1.TestService"
	mPanic          = "/" + testServiceName + "/Panic"
	mRoomEcho       = "/" + testServiceName + "/RoomEcho"
	mMutate         = "/" + testServiceName + "/Mutate"
	mNodeCall       = "/" + testServiceName + "/NodeCall"
	mWatch          = "/" + testServiceName + "/Watch"
	mTail           = "/" + testServiceName + "/Tail"
	// mSneaky is served but absent from the registry.
	sneakyServiceName = "nodalmerge.other.v1.Sneaky"
	mSneaky           = "/" + sneakyServiceName + "/Peek"

	// panicSecret is what the panicking handler holds; it must never be
	// logged.
	panicSecret = "seed-5ec7e7-do-not-log"
	// mutateIndex is the Raft index the Mutate handler reports.
	mutateIndex = 42
)

func testMethods() []methodSpec {
	return []methodSpec{
		{name: "Panic", spec: &adminv1.CommandSpec{Name: "test.panic", Capability: "cluster.read"}},
		{name: "RoomEcho", spec: &adminv1.CommandSpec{Name: "test.room-echo", Capability: "room.admin", RoomScoped: true}},
		{name: "Mutate", spec: &adminv1.CommandSpec{Name: "test.mutate", Capability: "cluster.admin", Mutation: true}},
		{name: "NodeCall", spec: &adminv1.CommandSpec{Name: "test.node-call", Capability: token.CapClusterNode}},
		{name: "Watch", clientStreaming: true, serverStreaming: true,
			spec: &adminv1.CommandSpec{Name: "test.watch", Capability: "room.admin", RoomScoped: true}},
		{name: "Tail", serverStreaming: true, spec: &adminv1.CommandSpec{Name: "test.tail", Capability: "cluster.read"}},
	}
}

// testService implements the synthetic service with dynamic messages.
type testService struct {
	req protoreflect.MessageDescriptor
	// handled receives the full method of every handler that ran.
	handled chan string
}

func (ts *testService) newReq(room, note string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(ts.req)
	m.Set(ts.req.Fields().ByName("room"), protoreflect.ValueOfString(room))
	m.Set(ts.req.Fields().ByName("note"), protoreflect.ValueOfString(note))
	return m
}

func (ts *testService) note(m *dynamicpb.Message) string {
	return m.Get(ts.req.Fields().ByName("note")).String()
}

func (ts *testService) ran(method string) {
	select {
	case ts.handled <- method:
	default:
	}
}

func (ts *testService) unary(method string, impl func(context.Context, *dynamicpb.Message) (any, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: method[len("/"+testServiceName+"/"):],
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := dynamicpb.NewMessage(ts.req)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				ts.ran(method)
				return impl(ctx, req.(*dynamicpb.Message))
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
		},
	}
}

func (ts *testService) desc() *grpc.ServiceDesc {
	echo := func(_ context.Context, m *dynamicpb.Message) (any, error) { return m, nil }
	return &grpc.ServiceDesc{
		ServiceName: testServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			ts.unary(mPanic, func(context.Context, *dynamicpb.Message) (any, error) {
				panic(errors.New("handler failed holding " + panicSecret))
			}),
			ts.unary(mRoomEcho, echo),
			ts.unary(mMutate, func(ctx context.Context, m *dynamicpb.Message) (any, error) {
				SetRaftIndex(ctx, mutateIndex)
				return m, nil
			}),
			ts.unary(mNodeCall, echo),
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Watch", ClientStreams: true, ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				ts.ran(mWatch)
				for {
					in := dynamicpb.NewMessage(ts.req)
					if err := ss.RecvMsg(in); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					if err := ss.SendMsg(in); err != nil {
						return err
					}
				}
			}},
			{StreamName: "Tail", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				ts.ran(mTail)
				in := dynamicpb.NewMessage(ts.req)
				if err := ss.RecvMsg(in); err != nil {
					return err
				}
				for range 2 {
					if err := ss.SendMsg(in); err != nil {
						return err
					}
				}
				return nil
			}},
		},
	}
}

// sneakyDesc is a service the registry knows nothing about.
func (ts *testService) sneakyDesc() *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: sneakyServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Peek",
			Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
				in := dynamicpb.NewMessage(ts.req)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(context.Context, any) (any, error) { ts.ran(mSneaky); return in, nil }
				return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: mSneaky}, h)
			},
		}},
	}
}

// newServerWithTestService builds a server whose registry holds the real
// admin commands plus TestService's, with ClusterService, TestService and
// (bypassing registerService's start-up check, to reach the per-call fail
// closed path) the unregistered Sneaky service.
func newServerWithTestService(t testing.TB, cfg Config) (*Server, *testService) {
	t.Helper()
	fd := syntheticDescriptor(t, string(AdminPackage), "TestService", testMethods())
	files := filesOf(t, adminv1.File_nodalmerge_admin_v1_options_proto, adminv1.File_nodalmerge_admin_v1_cluster_proto, fd)
	registry, err := buildRegistry(files, AdminPackage)
	if err != nil {
		t.Fatalf("buildRegistry: %v", err)
	}
	s, err := newServer(cfg, registry)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	ts := &testService{
		req:     fd.Messages().ByName("Req"),
		handled: make(chan string, 16),
	}
	if err := s.registerService(&adminv1.ClusterService_ServiceDesc, &clusterService{s: s}); err != nil {
		t.Fatalf("register ClusterService: %v", err)
	}
	if err := s.registerService(ts.desc(), ts); err != nil {
		t.Fatalf("register TestService: %v", err)
	}
	if err := s.registerService(ts.sneakyDesc(), ts); err == nil {
		t.Fatal("registerService accepted a service without commands")
	}
	s.grpc.RegisterService(ts.sneakyDesc(), ts)
	s.markServing()
	return s, ts
}
