package controlplane

import (
	"context"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
)

// grpcLogger adapts slog to the go-grpc-middleware logging interface.
// The interceptor is configured to log only finished calls, with method,
// code, duration and the actor the auth layer adds; it is never given
// payload or metadata events, so tokens and requests cannot reach the log.
func grpcLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, level logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(level), msg, fields...)
	})
}
