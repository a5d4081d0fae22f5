package controlplane

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/keyring"
	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/token"
)

// wantStatus fails unless err is a gRPC status with code and message.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status", err)
	}
	if st.Code() != code || st.Message() != msg {
		t.Fatalf("status = %v %q; want %v %q", st.Code(), st.Message(), code, msg)
	}
	return st
}

// wantDeny checks the exact SPEC deny: message and every ErrorInfo field.
func wantDeny(t *testing.T, err error, command, capability string) {
	t.Helper()
	st := wantStatus(t, err, codes.PermissionDenied,
		"reject.control_plane_forbidden: command="+command+" requires="+capability)
	details := st.Details()
	if len(details) != 1 {
		t.Fatalf("deny has %d details, want 1: %v", len(details), details)
	}
	info, ok := details[0].(*errdetails.ErrorInfo)
	if !ok {
		t.Fatalf("deny detail is %T, want *errdetails.ErrorInfo", details[0])
	}
	want := &errdetails.ErrorInfo{
		Reason:   "CONTROL_PLANE_FORBIDDEN",
		Domain:   "nodalmerge",
		Metadata: map[string]string{"command": command, "requires": capability},
	}
	if !proto.Equal(info, want) {
		t.Fatalf("ErrorInfo = %v; want %v", info, want)
	}
}

// otherSigner is a real operator key that is not in the cluster keyring.
func otherSigner(t *testing.T, now time.Time) (string, []byte) {
	t.Helper()
	k, err := keyring.Generate(statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now.Add(-time.Hour))
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	kid, priv, err := keyring.Signer([]*statev1.Key{k}, statev1.KeyPurpose_KEY_PURPOSE_OPERATOR, now)
	if err != nil {
		t.Fatalf("signer: %v", err)
	}
	return kid, priv
}

// tamper rewrites the payload of a JWT, keeping its signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	forged := strings.Replace(string(payload), `"alice"`, `"mallory"`, 1)
	if forged == string(payload) {
		t.Fatalf("payload %s has no subject to tamper with", payload)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	return strings.Join(parts, ".")
}

func TestAuthenticationFailures(t *testing.T) {
	e := newEnv(t, envOptions{})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))

	expired := e.operatorClaims("cluster.read")
	expired.IssuedAt, expired.ExpiresAt = e.now.Add(-2*time.Hour), e.now.Add(-time.Second)
	foreign := e.operatorClaims("cluster.read")
	foreign.ClusterID = "another-cluster"
	otherKid, otherPriv := otherSigner(t, e.now)
	good := e.mint(t, e.operatorClaims("cluster.read"))

	tests := []struct {
		name   string
		header []string // authorization values; nil sends none
		reason string
	}{
		{"no token", nil, "missing bearer token"},
		{"not bearer", []string{"Basic YWxpY2U6cHc="}, "missing bearer token"},
		{"garbage", []string{"Bearer not-a-jwt"}, "malformed token"},
		{"expired", []string{"Bearer " + e.mint(t, expired)}, "token has expired"},
		{"unknown key", []string{"Bearer " + mintWith(t, otherKid, otherPriv, e.operatorClaims("cluster.read"))}, "unknown key id"},
		{"wrong key for kid", []string{"Bearer " + mintWith(t, e.kid, otherPriv, e.operatorClaims("cluster.read"))}, "signature verification failed"},
		{"tampered", []string{"Bearer " + tamper(t, good)}, "signature verification failed"},
		{"another cluster", []string{"Bearer " + e.mint(t, foreign)}, "token issued for another cluster"},
		{"two tokens", []string{"Bearer " + good, "Bearer " + good}, "multiple authorization headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := callCtx(t)
			for _, h := range tt.header {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", h)
			}
			before := e.authFailures(t, tt.reason)
			_, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{})
			st := wantStatus(t, err, codes.Unauthenticated, "auth: "+tt.reason)
			for _, h := range tt.header {
				if secret := strings.TrimPrefix(h, "Bearer "); len(secret) > 8 && strings.Contains(st.Message(), secret) {
					t.Errorf("status message echoes the credential")
				}
			}
			if got := e.authFailures(t, tt.reason); got != before+1 {
				t.Errorf("auth failures{reason=%q} = %v, want %v", tt.reason, got, before+1)
			}
			events := e.audit.take()
			if len(events) != 1 {
				t.Fatalf("got %d audit events, want 1: %+v", len(events), events)
			}
			ev := events[0]
			if ev.Decision != DecisionDeny || ev.Reason != "auth: "+tt.reason || ev.Actor != "operator:alice" ||
				ev.Command != "cluster.status" || ev.Requires != "cluster.read" {
				t.Errorf("audit event = %+v", ev)
			}
		})
	}
}

func TestPermissionDeniedWithoutCapability(t *testing.T) {
	e := newEnv(t, envOptions{})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("room.admin", "cluster.admin")))

	_, err := client.GetStatus(ctx, &adminv1.GetStatusRequest{})
	wantDeny(t, err, "cluster.status", "cluster.read")
	_, err = client.ListMembers(ctx, &adminv1.ListMembersRequest{})
	wantDeny(t, err, "cluster.list-members", "cluster.read")

	events := e.audit.take()
	if len(events) != 2 {
		t.Fatalf("got %d audit events, want 2", len(events))
	}
	for _, ev := range events {
		if ev.Decision != DecisionDeny || ev.Reason != reasonMissingCapability || ev.Actor != "alice/tok-1" {
			t.Errorf("audit event = %+v", ev)
		}
	}
	if got := e.requests(t, "cluster.status", DecisionDeny); got != 1 {
		t.Errorf("requests{cluster.status,deny} = %v, want 1", got)
	}
}

func TestClusterNotInitialisedIsRetryable(t *testing.T) {
	e := newEnv(t, envOptions{clusterID: "-"})
	client := adminv1.NewClusterServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	claims := e.operatorClaims("cluster.read")
	claims.ClusterID = testClusterID
	_, err := client.GetStatus(bearer(callCtx(t), e.mint(t, claims)), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.Unavailable, "cluster not initialised")
	if events := e.audit.take(); len(events) != 1 || events[0].Decision != DecisionDeny {
		t.Errorf("audit events = %+v", events)
	}
}

func invoke(ctx context.Context, conn *grpc.ClientConn, ts *testService, method, room string) (*dynamicpb.Message, error) {
	out := dynamicpb.NewMessage(ts.req)
	err := conn.Invoke(ctx, method, ts.newReq(room, "hello"), out)
	return out, err
}

// ranHandler reports whether a handler ran since the last call.
func ranHandler(ts *testService) (string, bool) {
	select {
	case m := <-ts.handled:
		return m, true
	default:
		return "", false
	}
}

func TestNodeCertificateHoldsOnlyClusterNode(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	node := e.dial(t, e.pki.Node(t, "n2"))
	op := e.dial(t, e.pki.Operator(t, "alice"))

	if _, err := invoke(callCtx(t), node, e.svc, mNodeCall, ""); err != nil {
		t.Fatalf("node certificate, no token, cluster.node command: %v", err)
	}
	if m, ok := ranHandler(e.svc); !ok || m != mNodeCall {
		t.Fatalf("NodeCall handler did not run (%q)", m)
	}
	// A node certificate alone holds nothing else.
	_, err := adminv1.NewClusterServiceClient(node).GetStatus(callCtx(t), &adminv1.GetStatusRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: missing bearer token")
	// No token grants cluster.node: an operator holding everything else is
	// denied (TestAllowed covers a token whose caps name it).
	all := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read", "cluster.admin", "room.admin")))
	_, err = invoke(all, op, e.svc, mNodeCall, "")
	wantDeny(t, err, "test.node-call", token.CapClusterNode)
	_, err = invoke(callCtx(t), op, e.svc, mNodeCall, "")
	wantStatus(t, err, codes.Unauthenticated, "auth: missing bearer token")
	if m, ok := ranHandler(e.svc); ok {
		t.Fatalf("handler %s ran for a denied call", m)
	}

	events := e.audit.take()
	wantActors := []string{"node:n2", "node:n2", "alice/tok-1", "operator:alice"}
	wantDecisions := []string{DecisionAllow, DecisionDeny, DecisionDeny, DecisionDeny}
	if len(events) != len(wantActors) {
		t.Fatalf("got %d audit events, want %d: %+v", len(events), len(wantActors), events)
	}
	for i, ev := range events {
		if ev.Actor != wantActors[i] || ev.Decision != wantDecisions[i] {
			t.Errorf("event %d = %+v; want actor %q decision %q", i, ev, wantActors[i], wantDecisions[i])
		}
	}
	if events[2].Reason != reasonNodeOnly {
		t.Errorf("token cluster.node deny reason = %q", events[2].Reason)
	}
}

func TestRoomScopedCommands(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	claims := e.operatorClaims("room.admin")
	claims.Rooms = []string{"game-*"}
	ctx := bearer(callCtx(t), e.mint(t, claims))

	out, err := invoke(ctx, conn, e.svc, mRoomEcho, "game-1")
	if err != nil {
		t.Fatalf("RoomEcho in an allowed room: %v", err)
	}
	if got := e.svc.note(out); got != "hello" {
		t.Errorf("echo note = %q", got)
	}
	<-e.svc.handled
	_, err = invoke(ctx, conn, e.svc, mRoomEcho, "chat")
	wantDeny(t, err, "test.room-echo", "room.admin")
	if m, ok := ranHandler(e.svc); ok {
		t.Fatalf("handler %s ran for a room outside the token", m)
	}
	// Without the capability the deny comes first, whatever the payload.
	noCap := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read")))
	_, err = invoke(noCap, conn, e.svc, mRoomEcho, "a"+strings.Repeat("é", 1000))
	wantDeny(t, err, "test.room-echo", "room.admin")

	events := e.audit.take()
	if len(events) != 3 {
		t.Fatalf("got %d audit events, want 3: %+v", len(events), events)
	}
	if ev := events[0]; ev.Room != "game-1" || ev.Decision != DecisionAllow {
		t.Errorf("allowed event = %+v", ev)
	}
	if ev := events[1]; ev.Room != "chat" || ev.Decision != DecisionDeny || ev.Reason != reasonRoomNotAllowed {
		t.Errorf("room deny event = %+v", ev)
	}
	// The untrusted room is cut to a bounded, valid UTF-8 string.
	if ev := events[2]; len(ev.Room) > maxAuditRoomBytes+len("\uFFFD") || !utf8.ValidString(ev.Room) ||
		!strings.HasPrefix(ev.Room, "aé") || !strings.HasSuffix(ev.Room, "\uFFFD") || ev.Reason != reasonMissingCapability {
		t.Errorf("capability deny event: room of %d bytes, reason %q", len(ev.Room), ev.Reason)
	}
}

func TestMutationRecordsRaftIndex(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	if _, err := invoke(bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.admin"))), conn, e.svc, mMutate, ""); err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	events := e.audit.take()
	if len(events) != 1 || events[0].RaftIndex != mutateIndex || events[0].Decision != DecisionAllow {
		t.Fatalf("audit events = %+v; want one allow with raft index %d", events, mutateIndex)
	}
}

func TestUnregisteredMethodFailsClosed(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read", "cluster.admin", "room.admin")))
	_, err := invoke(ctx, conn, e.svc, mSneaky, "")
	wantDeny(t, err, mSneaky, "unregistered")
	if m, ok := ranHandler(e.svc); ok {
		t.Fatalf("handler %s ran for an unregistered method", m)
	}
	events := e.audit.take()
	if len(events) != 1 || events[0].Command != mSneaky || events[0].Decision != DecisionDeny || events[0].Actor != "operator:alice" {
		t.Fatalf("audit events = %+v", events)
	}
}

func TestStreamAuthorization(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	claims := e.operatorClaims("room.admin")
	claims.Rooms = []string{"game-*"}
	roomTok := e.mint(t, claims)

	watch := func(room string) (*dynamicpb.Message, error) {
		ctx, cancel := context.WithTimeout(bearer(context.Background(), roomTok), 10*time.Second)
		defer cancel()
		cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, mWatch)
		if err != nil {
			return nil, err
		}
		if err := cs.SendMsg(e.svc.newReq(room, "ping")); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		out := dynamicpb.NewMessage(e.svc.req)
		if err := cs.RecvMsg(out); err != nil {
			return nil, err
		}
		if err := cs.CloseSend(); err != nil {
			return nil, err
		}
		if err := cs.RecvMsg(dynamicpb.NewMessage(e.svc.req)); !errors.Is(err, io.EOF) {
			return nil, err
		}
		return out, nil
	}
	out, err := watch("game-7")
	if err != nil {
		t.Fatalf("Watch in an allowed room: %v", err)
	}
	if e.svc.note(out) != "ping" {
		t.Errorf("Watch echo = %v", out)
	}
	_, err = watch("lobby")
	wantDeny(t, err, "test.watch", "room.admin")

	// A server stream that is not room-scoped is authorized at its start:
	// without the capability the handler never runs.
	tail := func(tok string) (int, error) {
		ctx, cancel := context.WithTimeout(bearer(context.Background(), tok), 10*time.Second)
		defer cancel()
		cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, mTail)
		if err != nil {
			return 0, err
		}
		if err := cs.SendMsg(e.svc.newReq("", "t")); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if err := cs.CloseSend(); err != nil {
			return 0, err
		}
		n := 0
		for {
			if err := cs.RecvMsg(dynamicpb.NewMessage(e.svc.req)); err != nil {
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				return n, err
			}
			n++
		}
	}
	for len(e.svc.handled) > 0 {
		<-e.svc.handled
	}
	if _, err := tail(roomTok); err == nil {
		t.Fatal("Tail without cluster.read succeeded")
	} else {
		wantDeny(t, err, "test.tail", "cluster.read")
	}
	if m, ok := ranHandler(e.svc); ok {
		t.Fatalf("handler %s ran for a denied stream", m)
	}
	n, err := tail(e.mint(t, e.operatorClaims("cluster.read")))
	if err != nil || n != 2 {
		t.Fatalf("Tail = %d messages, %v; want 2, nil", n, err)
	}

	events := e.audit.take()
	want := []struct{ cmd, room, decision string }{
		{"test.watch", "game-7", DecisionAllow},
		{"test.watch", "lobby", DecisionDeny},
		{"test.tail", "", DecisionDeny},
		{"test.tail", "", DecisionAllow},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d audit events, want %d: %+v", len(events), len(want), events)
	}
	for i, w := range want {
		if ev := events[i]; ev.Command != w.cmd || ev.Room != w.room || ev.Decision != w.decision || ev.Transport != "grpc" {
			t.Errorf("event %d = %+v; want %+v", i, ev, w)
		}
	}
}

// mintWith signs claims with an arbitrary key and kid.
func mintWith(t *testing.T, kid string, priv []byte, c token.OperatorClaims) string {
	t.Helper()
	raw, err := token.MintOperator(kid, ed25519.PrivateKey(priv), c)
	if err != nil {
		t.Fatalf("MintOperator: %v", err)
	}
	return raw
}

// TestAllowed is the authorization rule on its own, including claims no
// minted token can have (cluster.node in caps).
func TestAllowed(t *testing.T) {
	node := pki.Identity{Role: pki.RoleNode, Name: "n2"}
	op := pki.Identity{Role: pki.RoleOperator, Name: "alice"}
	claims := func(caps, rooms []string) *token.OperatorClaims {
		return &token.OperatorClaims{Subject: "alice", ID: "t", Caps: caps, Rooms: rooms}
	}
	nodeCmd := Command{Name: "cluster.join", Capability: token.CapClusterNode}
	readCmd := Command{Name: "cluster.status", Capability: "cluster.read"}
	roomCmd := Command{Name: "lock-room", Capability: "room.admin", RoomScoped: true}
	tests := []struct {
		name   string
		p      Principal
		cmd    Command
		room   string
		reason string // "" means allowed
	}{
		{"node cert runs node command", Principal{Identity: node}, nodeCmd, "", ""},
		{"node cert runs room-scoped node command anywhere", Principal{Identity: node},
			Command{Name: "room.replicate", Capability: token.CapClusterNode, RoomScoped: true}, "any", ""},
		{"token naming cluster.node", Principal{Identity: op, Claims: claims([]string{"cluster.node"}, nil)}, nodeCmd, "", reasonNodeOnly},
		{"node cert decides, not its claims", Principal{Identity: node, Claims: claims(nil, nil)}, nodeCmd, "", ""},
		{"node cert without claims on a read", Principal{Identity: node}, readCmd, "", reasonMissingCapability},
		{"exact capability", Principal{Identity: op, Claims: claims([]string{"cluster.read"}, nil)}, readCmd, "", ""},
		{"prefix is not the capability", Principal{Identity: op, Claims: claims([]string{"cluster"}, nil)}, readCmd, "", reasonMissingCapability},
		{"admin does not imply read", Principal{Identity: op, Claims: claims([]string{"cluster.admin"}, nil)}, readCmd, "", reasonMissingCapability},
		{"all rooms", Principal{Identity: op, Claims: claims([]string{"room.admin"}, nil)}, roomCmd, "x", ""},
		{"room inside glob", Principal{Identity: op, Claims: claims([]string{"room.admin"}, []string{"game-*"})}, roomCmd, "game-1", ""},
		{"room outside glob", Principal{Identity: op, Claims: claims([]string{"room.admin"}, []string{"game-*"})}, roomCmd, "chat", reasonRoomNotAllowed},
		{"rooms ignored when not room-scoped", Principal{Identity: op, Claims: claims([]string{"cluster.read"}, []string{"game-*"})}, readCmd, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := allowed(tt.p, tt.cmd, tt.room)
			if ok != (tt.reason == "") || reason != tt.reason {
				t.Fatalf("allowed = %q, %v; want reason %q", reason, ok, tt.reason)
			}
		})
	}
}
