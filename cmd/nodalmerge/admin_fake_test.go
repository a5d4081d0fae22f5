package main

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// fakeAdmin implements the admin services the CLI calls, over real mutual
// TLS on 127.0.0.1. It records each call's method, request and metadata
// and answers fixed responses; RotateKey answers the control plane's deny,
// so the CLI's error form is tested against a real gRPC status.
type fakeAdmin struct {
	adminv1.UnimplementedClusterServiceServer
	adminv1.UnimplementedKeyServiceServer
	adminv1.UnimplementedTokenServiceServer
	adminv1.UnimplementedRoomServiceServer
	adminv1.UnimplementedPolicyServiceServer

	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct {
	method string
	req    proto.Message
	md     metadata.MD
}

// adminServer is a running fake with the client's TLS files.
type adminServer struct {
	fake                   *fakeAdmin
	addr                   string
	caFile, certFile, keyF string
}

// startFakeAdmin serves a fakeAdmin with a node certificate of a fresh CA
// and issues an operator certificate for the client.
func startFakeAdmin(t *testing.T) *adminServer {
	t.Helper()
	p := pkitest.New(t)
	node := p.Node(t, "n1")
	p.Operator(t, "alice")
	ca, cert, key := p.Files("alice")

	fake := &fakeAdmin{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(node.ServerConfig())))
	adminv1.RegisterClusterServiceServer(srv, fake)
	adminv1.RegisterKeyServiceServer(srv, fake)
	adminv1.RegisterTokenServiceServer(srv, fake)
	adminv1.RegisterRoomServiceServer(srv, fake)
	adminv1.RegisterPolicyServiceServer(srv, fake)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("fake admin server: %v", err)
		}
	})
	return &adminServer{fake: fake, addr: ln.Addr().String(), caFile: ca, certFile: cert, keyF: key}
}

// args are the connection flags for this server with token tok.
func (s *adminServer) args(tok string) []string {
	return []string{"--admin", s.addr, "--tls-ca", s.caFile, "--tls-cert", s.certFile, "--tls-key", s.keyF, "--token", tok}
}

// last answers the most recent call; it fails the test when there is none.
func (s *adminServer) last(t *testing.T) fakeCall {
	t.Helper()
	s.fake.mu.Lock()
	defer s.fake.mu.Unlock()
	if len(s.fake.calls) == 0 {
		t.Fatal("the server saw no call")
	}
	return s.fake.calls[len(s.fake.calls)-1]
}

func (s *adminServer) count() int {
	s.fake.mu.Lock()
	defer s.fake.mu.Unlock()
	return len(s.fake.calls)
}

func (f *fakeAdmin) record(ctx context.Context, method string, req proto.Message) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{method: method, req: proto.Clone(req), md: md.Copy()})
}

var (
	fakeTime    = timestamppb.New(fakeNow)
	fakeMembers = []*adminv1.Member{
		{NodeId: "n1", RaftAddr: "127.0.0.1:7880", AdminAddr: "127.0.0.1:7879", PublicAddr: "127.0.0.1:7878", Voter: true, State: "leader"},
		{NodeId: "n2", RaftAddr: "127.0.0.1:8880", AdminAddr: "127.0.0.1:8879", Voter: true, State: "follower", Draining: true},
	}
)

func (f *fakeAdmin) GetStatus(ctx context.Context, r *adminv1.GetStatusRequest) (*adminv1.GetStatusResponse, error) {
	f.record(ctx, "GetStatus", r)
	return &adminv1.GetStatusResponse{ClusterId: "c-test", NodeId: "n1", LeaderId: "n1", Term: 3, AppliedIndex: 42,
		CommitIndex: 43, State: "leader", Members: fakeMembers}, nil
}

func (f *fakeAdmin) ListMembers(ctx context.Context, r *adminv1.ListMembersRequest) (*adminv1.ListMembersResponse, error) {
	f.record(ctx, "ListMembers", r)
	return &adminv1.ListMembersResponse{Members: fakeMembers}, nil
}

func (f *fakeAdmin) RemoveMember(ctx context.Context, r *adminv1.RemoveMemberRequest) (*adminv1.RemoveMemberResponse, error) {
	f.record(ctx, "RemoveMember", r)
	return &adminv1.RemoveMemberResponse{RaftIndex: 50}, nil
}

func (f *fakeAdmin) TransferLeadership(ctx context.Context, r *adminv1.TransferLeadershipRequest) (*adminv1.TransferLeadershipResponse, error) {
	f.record(ctx, "TransferLeadership", r)
	leader := r.GetNodeId()
	if leader == "" {
		leader = "n2"
	}
	return &adminv1.TransferLeadershipResponse{LeaderId: leader, Term: 4, RaftIndex: 51}, nil
}

func (f *fakeAdmin) ListKeys(ctx context.Context, r *adminv1.ListKeysRequest) (*adminv1.ListKeysResponse, error) {
	f.record(ctx, "ListKeys", r)
	return &adminv1.ListKeysResponse{Keys: []*adminv1.KeyInfo{
		{Kid: "op-0123456789ab", Purpose: "operator", State: "active", PublicKey: "ab12", CreatedAt: fakeTime, ActivatesAt: fakeTime},
	}}, nil
}

func (f *fakeAdmin) RotateKey(ctx context.Context, r *adminv1.RotateKeyRequest) (*adminv1.RotateKeyResponse, error) {
	f.record(ctx, "RotateKey", r)
	return nil, status.Error(codes.PermissionDenied, "reject.control_plane_forbidden: command=keys.rotate requires=cluster.admin")
}

func (f *fakeAdmin) RetireKey(ctx context.Context, r *adminv1.RetireKeyRequest) (*adminv1.RetireKeyResponse, error) {
	f.record(ctx, "RetireKey", r)
	return &adminv1.RetireKeyResponse{RaftIndex: 52}, nil
}

func (f *fakeAdmin) MintRoomToken(ctx context.Context, r *adminv1.MintRoomTokenRequest) (*adminv1.MintRoomTokenResponse, error) {
	f.record(ctx, "MintRoomToken", r)
	return &adminv1.MintRoomTokenResponse{
		Token: &adminv1.RoomToken{PeerPubkey: r.GetPeerPubkey(), Expiry: 1<<53 + 1, Caps: r.GetCaps(),
			Sig: fakeSig, Kid: "rt-0123456789ab"},
		TokenId: "5f0c3e9a1b2d4c6e8f0a1b2c3d4e5f60", ExpiresAt: fakeTime,
	}, nil
}

func (f *fakeAdmin) MintOperatorToken(ctx context.Context, r *adminv1.MintOperatorTokenRequest) (*adminv1.MintOperatorTokenResponse, error) {
	f.record(ctx, "MintOperatorToken", r)
	return &adminv1.MintOperatorTokenResponse{Token: "aGVhZA.Ym9keQ.c2ln", TokenId: "0123456789abcdef0123456789abcdef", ExpiresAt: fakeTime}, nil
}

func (f *fakeAdmin) Revoke(ctx context.Context, r *adminv1.RevokeRequest) (*adminv1.RevokeResponse, error) {
	f.record(ctx, "Revoke", r)
	return &adminv1.RevokeResponse{RaftIndex: 53}, nil
}

func (f *fakeAdmin) ListRooms(ctx context.Context, r *adminv1.ListRoomsRequest) (*adminv1.ListRoomsResponse, error) {
	f.record(ctx, "ListRooms", r)
	return &adminv1.ListRoomsResponse{Rooms: []*adminv1.RoomSummary{
		{Room: "lobby", Mode: "cluster", Live: true, Peers: 3}, {Room: "quiet", Mode: "open"},
	}}, nil
}

func (f *fakeAdmin) DescribeRoom(ctx context.Context, r *adminv1.DescribeRoomRequest) (*adminv1.DescribeRoomResponse, error) {
	f.record(ctx, "DescribeRoom", r)
	return &adminv1.DescribeRoomResponse{Room: r.GetRoom(), Mode: "own-keys", Live: true, Peers: 2, Nodes: 1234, PolicyEntries: 1,
		Keys: []*adminv1.RoomKeyInfo{{Kid: "rk-0123456789ab", PublicKey: "cd34", State: "active", AddedAt: fakeTime}}}, nil
}

func (f *fakeAdmin) LockRoom(ctx context.Context, r *adminv1.LockRoomRequest) (*adminv1.LockRoomResponse, error) {
	f.record(ctx, "LockRoom", r)
	return &adminv1.LockRoomResponse{RaftIndex: 54}, nil
}

func (f *fakeAdmin) UnlockRoom(ctx context.Context, r *adminv1.UnlockRoomRequest) (*adminv1.UnlockRoomResponse, error) {
	f.record(ctx, "UnlockRoom", r)
	return &adminv1.UnlockRoomResponse{RaftIndex: 55}, nil
}

func (f *fakeAdmin) SetRoomKey(ctx context.Context, r *adminv1.SetRoomKeyRequest) (*adminv1.SetRoomKeyResponse, error) {
	f.record(ctx, "SetRoomKey", r)
	return &adminv1.SetRoomKeyResponse{Kid: "rk-fedcba987654", RaftIndex: 56}, nil
}

func (f *fakeAdmin) RotateRoomKey(ctx context.Context, r *adminv1.RotateRoomKeyRequest) (*adminv1.RotateRoomKeyResponse, error) {
	f.record(ctx, "RotateRoomKey", r)
	return &adminv1.RotateRoomKeyResponse{Kid: "rk-aaaaaaaaaaaa", RaftIndex: 57}, nil
}

func (f *fakeAdmin) GetPolicy(ctx context.Context, r *adminv1.GetPolicyRequest) (*adminv1.GetPolicyResponse, error) {
	f.record(ctx, "GetPolicy", r)
	rules := []*adminv1.PolicyRule{{PathGlob: "world/**", CanWrite: []string{fakePeer}}, {PathGlob: "admin/**"}}
	return &adminv1.GetPolicyResponse{Room: r.GetRoom(), Default: "deny", Rules: rules,
		Timeline: []*adminv1.PolicyEntry{{EffectiveLamport: 7, Default: "deny", Rules: rules, SetAt: fakeTime}}}, nil
}

func (f *fakeAdmin) SetPolicy(ctx context.Context, r *adminv1.SetPolicyRequest) (*adminv1.SetPolicyResponse, error) {
	f.record(ctx, "SetPolicy", r)
	return &adminv1.SetPolicyResponse{EffectiveLamport: 8, RaftIndex: 58}, nil
}
