package controlplane

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

// TestEveryMethodHasCommand walks the services the real server registers:
// every method outside health and reflection must be a command, so a new
// RPC without the annotation fails here (and at start-up) instead of being
// served.
func TestEveryMethodHasCommand(t *testing.T) {
	e := newEnv(t, envOptions{})
	checked := 0
	for service, info := range e.srv.grpc.GetServiceInfo() {
		if isInfrastructureService(service) {
			continue
		}
		for _, m := range info.Methods {
			full := "/" + service + "/" + m.Name
			cmd, ok := e.srv.Registry().Lookup(full)
			if !ok {
				t.Errorf("method %s is served but has no command", full)
				continue
			}
			if cmd.Name == "" || cmd.Capability == "" {
				t.Errorf("method %s has an incomplete command %+v", full, cmd)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no admin methods found on the server")
	}
	if got, want := checked, len(e.srv.Registry().All()); got != want {
		t.Errorf("server serves %d command methods, registry holds %d commands", got, want)
	}
}

func TestRegisterServiceRefusesUnannotatedOrOverridingServices(t *testing.T) {
	e := newEnv(t, envOptions{})
	s, err := newServer(Config{NodeID: "n1", TLS: e.pki.Node(t, "n1").ServerConfig(), Cluster: e.cluster}, e.srv.Registry())
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	unknown := &grpc.ServiceDesc{
		ServiceName: "nodalmerge.admin.v1.Ghost",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Boo"}},
		Streams:     []grpc.StreamDesc{{StreamName: "Haunt"}},
	}
	err = s.registerService(unknown, struct{}{})
	if err == nil || !strings.Contains(err.Error(), "service nodalmerge.admin.v1.Ghost has methods without a command: Boo, Haunt") {
		t.Errorf("registerService(unannotated) error = %v", err)
	}
	err = s.registerService(&adminv1.ClusterService_ServiceDesc, overridingService{})
	if err == nil || !strings.Contains(err.Error(), "overrides authentication") {
		t.Errorf("registerService(AuthFuncOverride) error = %v", err)
	}
}

// overridingService would let go-grpc-middleware's auth interceptor skip
// our authentication; registerService must refuse it.
type overridingService struct {
	adminv1.UnimplementedClusterServiceServer
}

func (overridingService) AuthFuncOverride(ctx context.Context, _ string) (context.Context, error) {
	return ctx, nil
}

func TestGetStatusAndListMembers(t *testing.T) {
	e := newEnv(t, envOptions{})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read")))

	wantMembers := []*adminv1.Member{
		{NodeId: "n1", RaftAddr: "127.0.0.1:7880", AdminAddr: "127.0.0.1:7879", PublicAddr: "127.0.0.1:7878", Voter: true, State: "leader"},
		{NodeId: "n2", RaftAddr: "127.0.0.2:7880", AdminAddr: "127.0.0.2:7879", PublicAddr: "127.0.0.2:7878", Voter: false, State: "follower"},
	}
	got, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	want := &adminv1.GetStatusResponse{
		ClusterId: testClusterID, NodeId: "n1", LeaderId: "n1", Term: 3,
		AppliedIndex: 17, CommitIndex: 18, State: "leader", Members: wantMembers,
	}
	if !proto.Equal(got, want) {
		t.Errorf("GetStatus = %v\nwant %v", got, want)
	}
	list, err := client.ListMembers(ctx, &adminv1.ListMembersRequest{})
	if err != nil {
		t.Fatalf("ListMembers: %v", err)
	}
	if !proto.Equal(list, &adminv1.ListMembersResponse{Members: wantMembers}) {
		t.Errorf("ListMembers = %v", list)
	}
}

func TestNewServerRejectsUnsafeConfig(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := func() Config {
		return Config{NodeID: "n1", TLS: e.pki.Node(t, "n1").ServerConfig(), Cluster: e.cluster}
	}
	noClientAuth := good()
	noClientAuth.TLS = noClientAuth.TLS.Clone()
	noClientAuth.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no TLS", func() Config { c := good(); c.TLS = nil; return c }(), "TLS is nil"},
		{"optional client certs", noClientAuth, "requires verified client certificates"},
		{"no cluster", func() Config { c := good(); c.Cluster = nil; return c }(), "Cluster is nil"},
		{"no node id", func() Config { c := good(); c.NodeID = ""; return c }(), "NodeID is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewServer(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewServer error = %v; want %q", err, tt.wantErr)
			}
		})
	}
	t.Run("metrics registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		cfg := good()
		cfg.Metrics = reg
		cfg.Logger = slog.New(slog.DiscardHandler)
		if _, err := NewServer(cfg); err != nil {
			t.Fatalf("first NewServer: %v", err)
		}
		if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), "register metrics") {
			t.Fatalf("second NewServer on one registry: err = %v", err)
		}
	})
}

// TestServerWithDefaults runs with no logger, auditor, metrics or clock:
// the zero values must work, not panic.
func TestServerWithDefaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv, err := NewServer(Config{NodeID: "n1", TLS: e.pki.Node(t, "n1").ServerConfig(), Cluster: e.cluster})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	d := &env{pki: e.pki, srv: srv}
	d.serve(t)
	client := adminv1.NewClusterServiceClient(d.dial(t, e.pki.Operator(t, "alice")))
	claims := e.operatorClaims("cluster.read")
	claims.IssuedAt, claims.ExpiresAt = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	resp, err := client.GetStatus(bearer(callCtx(t), e.mint(t, claims)), &adminv1.GetStatusRequest{})
	if err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
	if resp.GetClusterId() != testClusterID {
		t.Errorf("cluster id = %q", resp.GetClusterId())
	}
}
