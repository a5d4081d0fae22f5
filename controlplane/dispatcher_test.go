package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
)

func TestDispatcherFrames(t *testing.T) {
	dp := &fakeDataPlane{}
	dp.set("lobby", 1, 0, 0)
	e := newEnv(t, envOptions{dataPlane: dp})
	d := NewDispatcher(e.srv)
	peer, _ := pubHex(t)
	call := func(command, payload string, caps ...string) string {
		return string(d.Call(callCtx(t), WSCall{Room: "lobby", Command: command, Payload: []byte(payload), Pubkey: peer, Caps: caps, RequestID: "rq-9"}))
	}
	tests := []struct {
		name, command, payload string
		caps                   []string
		want                   string
	}{
		{"unknown command", "nope", `{"type":"nope","id":"a"}`, nil,
			`{"type":"error","id":"a","msg":"unknown command: nope"}`},
		{"grpc-only", "keys.rotate", `{}`, everyCap,
			`{"type":"error","request_id":"rq-9","msg":"keys.rotate is not available over WebSocket: use the gRPC admin API"}`},
		{"deny before parsing", "lock-room", `not json at all`, []string{"policy.admin"},
			`{"type":"error","request_id":"rq-9","msg":"reject.control_plane_forbidden: command=lock-room requires=room.admin"}`},
		{"no token, no capability", "get-policy", `{}`, nil,
			`{"type":"error","request_id":"rq-9","msg":"reject.control_plane_forbidden: command=get-policy requires=policy.admin"}`},
		{"validation error", "lock-room", `{"type":"lock-room","mode":"sealed","id":12}`, []string{"room.admin"},
			`{"type":"error","id":12,"msg":"lock-room: mode must be cluster or own-keys"}`},
		{"result with both ids, room forced", "get-policy", `{"type":"get-policy","room":"elsewhere","id":"x","request_id":7,"extra":[1]}`, []string{"policy.admin"},
			`{"type":"get-policy-result","id":"x","request_id":7,"room":"lobby","default":"allow","rules":[],"timeline":[]}`},
		{"empty payload", "get-policy", ``, []string{"policy.admin"},
			`{"type":"get-policy-result","request_id":"rq-9","room":"lobby","default":"allow","rules":[],"timeline":[]}`},
		{"object ids are not echoed", "get-policy", `{"id":{"a":1}}`, []string{"policy.admin"},
			`{"type":"get-policy-result","request_id":"rq-9","room":"lobby","default":"allow","rules":[],"timeline":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := call(tt.command, tt.payload, tt.caps...)
			// protojson may vary its whitespace; compare without it.
			if strings.Join(strings.Fields(got), "") != strings.Join(strings.Fields(tt.want), "") {
				t.Fatalf("frame = %s\nwant    %s", got, tt.want)
			}
		})
	}
	// Invalid JSON from a caller holding the capability is an error frame.
	f := wsFrame(t, d.Call(callCtx(t), WSCall{Room: "lobby", Command: "lock-room", Payload: []byte(`{"mode":`), Pubkey: peer, Caps: []string{"room.admin"}}))
	if msg, _ := f["msg"].(string); f["type"] != "error" || !strings.HasPrefix(msg, "invalid lock-room payload: ") {
		t.Fatalf("invalid payload frame = %v", f)
	}
	// A write through the door proposes in the session's room and audits
	// the peer.
	e.cluster.takeApplied()
	e.audit.take()
	f = wsFrame(t, d.Call(callCtx(t), WSCall{Room: "lobby", Command: "lock-room", Payload: []byte(`{"room":"other","mode":"cluster"}`), Pubkey: peer, Caps: []string{"room.admin"}}))
	if f["type"] != "lock-room-result" || f["raft_index"] == "" {
		t.Fatalf("lock-room frame = %v", f)
	}
	applied := e.cluster.takeApplied()
	if len(applied) != 1 || applied[0].GetSetRoomLock().GetRoom() != "lobby" {
		t.Fatalf("applied = %v", applied)
	}
	ev := e.audit.take()
	if len(ev) != 1 || ev[0].Actor != peer || ev[0].Transport != TransportWebSocket || ev[0].Room != "lobby" || ev[0].RaftIndex == 0 {
		t.Fatalf("audit = %+v", ev)
	}
}

func TestForwardedCallsTrustOnlyTheForwardingNode(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := adminv1.NewKeyServiceClient(e.dial(t, e.pki.Operator(t, "alice")))
	raw := e.mint(t, e.operatorClaims("room.admin"))
	fwd := func(by, identity string) context.Context {
		return metadata.AppendToOutgoingContext(bearer(callCtx(t), raw), mdForwardedBy, by, mdForwardedIdentity, identity)
	}
	// An operator certificate cannot claim to forward.
	_, err := c.ListKeys(fwd("n2", "operator:alice"), &adminv1.ListKeysRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: "+reasonForwardNotNode)
	// A node forwards only as itself.
	nodeConn := adminv1.NewKeyServiceClient(e.dial(t, e.pki.Node(t, "n2")))
	_, err = nodeConn.ListKeys(fwd("n3", "operator:alice"), &adminv1.ListKeysRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: "+reasonForwardNotNode)
	_, err = nodeConn.ListKeys(fwd("n2", "nobody"), &adminv1.ListKeysRequest{})
	wantStatus(t, err, codes.Unauthenticated, "auth: "+reasonForwardBad)
	ev := e.audit.take()
	if len(ev) != 3 || ev[0].Decision != DecisionDeny || ev[2].Actor != "node:n2" {
		t.Fatalf("refused forwards must be audited here: %+v", ev)
	}
	// The node's forward runs without authorization or audit here: the
	// forwarding node decided (this token lacks cluster.read).
	resp, err := nodeConn.ListKeys(fwd("n2", "operator:alice"), &adminv1.ListKeysRequest{})
	if err != nil || len(resp.GetKeys()) != 2 {
		t.Fatalf("forwarded ListKeys = %v, %v", resp, err)
	}
	if ev := e.audit.take(); len(ev) != 0 {
		t.Fatalf("forwarded call audited twice: %+v", ev)
	}
	// A forwarded call never forwards again.
	e.cluster.mu.Lock()
	e.cluster.follower = true
	e.cluster.status.LeaderID = "n5"
	e.cluster.mu.Unlock()
	_, err = nodeConn.ListKeys(fwd("n2", "operator:alice"), &adminv1.ListKeysRequest{})
	wantStatus(t, err, codes.Unavailable, "not the leader: leadership moved while the call was forwarded; retry")
	// A follower without client TLS names the leader instead.
	_, err = c.ListKeys(bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read"))), &adminv1.ListKeysRequest{})
	wantStatus(t, err, codes.Unavailable, "the leader n5 has not recorded its admin address yet; retry")
}

func TestAuditList(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := newClients(e.dial(t, e.pki.Operator(t, "alice")))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read")))
	if _, err := c.keys.RotateKey(ctx, &adminv1.RotateKeyRequest{Purpose: "operator"}); err == nil {
		t.Fatal("rotate without cluster.admin succeeded")
	}
	if _, err := c.cluster.GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.audit.ListEvents(ctx, &adminv1.ListEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range got.GetEvents() {
		names = append(names, ev.GetCommand()+"/"+ev.GetDecision())
		if ev.GetTransport() != "grpc" || ev.GetActor() != "alice/tok-1" || ev.GetNode() != "n1" {
			t.Errorf("event = %v", ev)
		}
	}
	if strings.Join(names, " ") != "keys.rotate/deny cluster.status/allow" {
		t.Fatalf("events = %v", names)
	}
	one, err := c.audit.ListEvents(ctx, &adminv1.ListEventsRequest{Limit: 1})
	if err != nil || len(one.GetEvents()) != 1 || one.GetEvents()[0].GetCommand() != "keys.rotate" {
		t.Fatalf("limit 1 = %v, %v", one, err)
	}
}

func TestAuditLogRing(t *testing.T) {
	l := newAuditLog(3)
	base := time.Unix(1_700_000_000, 0)
	for i := range 5 {
		l.add(AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Command: string(rune('a' + i))})
	}
	var got []string
	for _, e := range l.list(base, 10) {
		got = append(got, e.Command)
	}
	if strings.Join(got, "") != "cde" {
		t.Fatalf("ring kept %v, want c d e", got)
	}
	got = nil
	for _, e := range l.list(base.Add(4*time.Second), 10) {
		got = append(got, e.Command)
	}
	if strings.Join(got, "") != "e" {
		t.Fatalf("since filter kept %v", got)
	}
}
