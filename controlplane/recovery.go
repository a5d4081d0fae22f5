package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"

	"google.golang.org/grpc"
)

// recoverPanic is the recovery handler: a panicking handler answers
// INTERNAL "internal error" and the node keeps serving. The stack is logged
// so the bug can be found; the panic value is logged only when it is a
// runtime error (whose text is fixed by the runtime). Any other value is
// logged by type alone, because a handler may have panicked with a request
// payload or a secret in hand.
func recoverPanic(logger *slog.Logger) func(ctx context.Context, p any) error {
	return func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		logger.ErrorContext(ctx, "panic in grpc handler",
			"grpc.method", method,
			"panic", describePanic(p),
			"stack", string(debug.Stack()),
		)
		return internalError()
	}
}

func describePanic(p any) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("value of type %T", p)
}
