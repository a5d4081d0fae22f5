package controlplane

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestStopForceClosesAtDeadline holds a stream open across Stop: graceful
// stop would wait for it forever, so Stop must fall back to closing it when
// its context ends.
func TestStopForceClosesAtDeadline(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("room.admin")))
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, mWatch)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if err := cs.SendMsg(e.svc.newReq("r", "x")); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := cs.RecvMsg(dynamicpb.NewMessage(e.svc.req)); err != nil {
		t.Fatalf("RecvMsg: %v", err)
	}

	stopCtx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		e.srv.Stop(stopCtx)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after its deadline")
	}
	err = cs.RecvMsg(dynamicpb.NewMessage(e.svc.req))
	if errors.Is(err, io.EOF) || status.Code(err) != codes.Unavailable {
		t.Fatalf("open stream after Stop: err = %v; want Unavailable", err)
	}
}

// TestStreamEndingBeforeRequestIsAuditedAsDenied closes a room-scoped
// stream without a request: nothing was authorized, and the one audit
// event says so.
func TestStreamEndingBeforeRequestIsAuditedAsDenied(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("room.admin")))
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, mWatch)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	if err := cs.RecvMsg(dynamicpb.NewMessage(e.svc.req)); !errors.Is(err, io.EOF) {
		t.Fatalf("RecvMsg = %v; want EOF", err)
	}
	events := e.audit.take()
	if len(events) != 1 || events[0].Decision != DecisionDeny || events[0].Reason != "no request received" {
		t.Fatalf("audit events = %+v", events)
	}
}
