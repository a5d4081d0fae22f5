package controlplane

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The logging layer writes one "finished call" line per RPC: service,
// method, type, code, status message, duration, peer, and the command and
// actor the inner layers found. It never sees payloads or metadata, so
// tokens and requests cannot reach the log.
//
// It replaces go-grpc-middleware's logging interceptor, whose field lists
// cost about 110 allocations per call (it builds and de-duplicates them
// even when the level is off, and every logging.AddFields copies them).
// Here inner layers set two strings on a record in the context, and the
// line is only built when the logger is enabled for the call's level: a
// node at --log-level warn pays nothing for successful calls.

// callLog is the per-RPC log record; the command and auth layers fill it.
type callLog struct {
	mu      sync.Mutex
	command string
	actor   string
}

type callLogKey struct{}

func callLogFrom(ctx context.Context) *callLog {
	l, _ := ctx.Value(callLogKey{}).(*callLog)
	return l
}

// logCommand records the call's command name for its log line.
func logCommand(ctx context.Context, name string) {
	if l := callLogFrom(ctx); l != nil {
		l.mu.Lock()
		l.command = name
		l.mu.Unlock()
	}
}

// logActor records who called (a certificate identity or token actor,
// never a secret) for the call's log line.
func logActor(ctx context.Context, actor string) {
	if l := callLogFrom(ctx); l != nil {
		l.mu.Lock()
		l.actor = actor
		l.mu.Unlock()
	}
}

// logUnary is the unary logging interceptor.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	l := &callLog{}
	resp, err := handler(context.WithValue(ctx, callLogKey{}, l), req)
	s.logFinished(ctx, l, info.FullMethod, "unary", start, err)
	return resp, err
}

// logStream is the stream logging interceptor.
func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	l := &callLog{}
	wrapped := middleware.WrapServerStream(ss)
	wrapped.WrappedContext = context.WithValue(ss.Context(), callLogKey{}, l)
	typ := "server_stream"
	switch {
	case info.IsClientStream && info.IsServerStream:
		typ = "bidi_stream"
	case info.IsClientStream:
		typ = "client_stream"
	}
	err := handler(srv, wrapped)
	s.logFinished(ss.Context(), l, info.FullMethod, typ, start, err)
	return err
}

// logFinished writes the call's line if the logger wants its level.
func (s *Server) logFinished(ctx context.Context, l *callLog, fullMethod, typ string, start time.Time, err error) {
	st, _ := status.FromError(err)
	level := codeLevel(st.Code())
	if !s.logger.Enabled(ctx, level) {
		return
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	l.mu.Lock()
	command, actor := l.command, l.actor
	l.mu.Unlock()
	attrs := make([]slog.Attr, 0, 11)
	attrs = append(attrs,
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", typ),
		slog.String("grpc.code", st.Code().String()),
		slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000),
	)
	if err != nil {
		// Status messages are built from fixed phrases and validated
		// names; never from tokens or payloads.
		attrs = append(attrs, slog.String("grpc.error", st.Message()))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	if command != "" {
		attrs = append(attrs, slog.String("command", command))
	}
	if actor != "" {
		attrs = append(attrs, slog.String("actor", actor))
	}
	s.logger.LogAttrs(ctx, level, "finished call", attrs...)
}

// codeLevel is go-grpc-middleware's server mapping of codes to levels:
// what a caller got wrong is INFO, what may need an operator is WARN,
// what is a bug or data loss is ERROR.
func codeLevel(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.NotFound, codes.Canceled, codes.AlreadyExists, codes.InvalidArgument, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}
