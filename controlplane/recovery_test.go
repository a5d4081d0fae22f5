package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	adminv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/admin/v1"
	"github.com/nodalmerge/nodalmerge-go/internal/syncbuf"
)

// TestRecoveryInterceptor drives the recovery handler through the
// middleware interceptor it is installed in.
func TestRecoveryInterceptor(t *testing.T) {
	tests := []struct {
		name    string
		handler grpc.UnaryHandler
		wantLog string
	}{
		{
			name: "error value",
			handler: func(context.Context, any) (any, error) {
				panic(errors.New("failed while holding " + panicSecret))
			},
			wantLog: "value of type *errors.errorString",
		},
		{
			name: "runtime error",
			handler: func(_ context.Context, req any) (any, error) {
				s := req.([]int)
				return s[len(s)+1], nil
			},
			wantLog: "index out of range",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncbuf.Buffer{}
			intercept := recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(
				recoverPanic(slog.New(slog.NewJSONHandler(logs, nil)))))
			resp, err := intercept(context.Background(), []int{1}, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, tt.handler)
			if resp != nil {
				t.Errorf("response = %v, want nil", resp)
			}
			wantStatus(t, err, codes.Internal, "internal error")
			out := logs.String()
			for _, want := range []string{"panic in grpc handler", tt.wantLog, "recovery_test.go"} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, panicSecret) {
				t.Errorf("log holds the panic value's secret:\n%s", out)
			}
		})
	}
}

// TestHandlerPanicOverGRPC shows a panicking handler answers INTERNAL, is
// audited once, and leaves the server serving.
func TestHandlerPanicOverGRPC(t *testing.T) {
	e := newEnv(t, envOptions{testService: true})
	conn := e.dial(t, e.pki.Operator(t, "alice"))
	ctx := bearer(callCtx(t), e.mint(t, e.operatorClaims("cluster.read")))
	_, err := invoke(ctx, conn, e.svc, mPanic, "")
	wantStatus(t, err, codes.Internal, "internal error")
	if _, err := adminv1.NewClusterServiceClient(conn).GetStatus(ctx, &adminv1.GetStatusRequest{}); err != nil {
		t.Fatalf("GetStatus after a panic: %v", err)
	}
	events := e.audit.take()
	if len(events) != 2 || events[0].Command != "test.panic" || events[1].Command != "cluster.status" {
		t.Fatalf("audit events = %+v", events)
	}
	if out := e.logs.String(); strings.Contains(out, panicSecret) || !strings.Contains(out, "panic in grpc handler") {
		t.Errorf("panic log wrong (secret leaked or panic not logged):\n%s", out)
	}
}
