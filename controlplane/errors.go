package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/raftstore"
)

// ErrorInfo fields of a control-plane deny, fixed by the SPEC so clients can
// branch on them without parsing the message.
const (
	denyReason = "CONTROL_PLANE_FORBIDDEN"
	denyDomain = "nodalmerge"
)

// unregisteredCapability stands in for the capability of a method the
// registry does not know; no caller can hold it.
const unregisteredCapability = "unregistered"

// denyError is the PERMISSION_DENIED status for a command the caller may
// not run. The message and the ErrorInfo carry only the command name and
// the capability, never anything about the caller or the request.
func denyError(command, capability string) error {
	st := status.New(codes.PermissionDenied, denyMessage(command, capability))
	detailed, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   denyReason,
		Domain:   denyDomain,
		Metadata: map[string]string{"command": command, "requires": capability},
	})
	if err != nil {
		// WithDetails fails only if the detail cannot be marshalled;
		// the bare status still denies.
		return st.Err()
	}
	return detailed.Err()
}

// unauthenticatedError is the UNAUTHENTICATED status for a failed
// authentication. reason is a fixed phrase: never the token or its parts.
func unauthenticatedError(reason string) error {
	return status.Error(codes.Unauthenticated, "auth: "+reason)
}

// internalError hides the cause of a server fault from the caller; the
// cause is logged instead.
func internalError() error {
	return status.Error(codes.Internal, "internal error")
}

// clusterError maps an error of the replicated store to the status the
// caller sees. The store's sentinels decide the code: a refusal by the
// state machine is FAILED_PRECONDITION with its reason (it says what to do
// first); anything about leadership is UNAVAILABLE, which clients retry.
// Unknown errors are logged and hidden.
func clusterError(ctx context.Context, logger *slog.Logger, command string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raftstore.ErrNoLeader):
		return noLeaderError()
	case errors.Is(err, raftstore.ErrNotLeader):
		return status.Error(codes.Unavailable, "not the leader: leadership moved during the call; retry")
	case errors.Is(err, raftstore.ErrLeadershipLost):
		return status.Errorf(codes.Unavailable, "%s: leadership was lost while applying, so the outcome is unknown: check the state, then retry", command)
	case errors.Is(err, raftstore.ErrClosed):
		return status.Error(codes.Unavailable, "node is shutting down; retry on another node")
	case errors.Is(err, raftstore.ErrRejected):
		return status.Errorf(codes.FailedPrecondition, "%s: %s", command, storeReason(err, "rejected: ", "the cluster state does not allow this change"))
	case errors.Is(err, raftstore.ErrInvalidCommand):
		return status.Errorf(codes.InvalidArgument, "%s: %s", command, storeReason(err, "invalid command: ", "the request is not valid"))
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded; a write may still be applied: check before retrying", command)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", command)
	}
	logger.ErrorContext(ctx, "cluster operation failed", "command", command, "error", err)
	return internalError()
}

// storeReason extracts the human reason the state machine gave, which
// follows its sentinel in the wrapped message ("raftstore: apply:
// raftstore: command rejected: room \"x\" has no key ..."). The reason
// names rooms, kids and node ids, never key material.
func storeReason(err error, marker, fallback string) string {
	msg := err.Error()
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return fallback
	}
	if r := strings.TrimSpace(msg[i+len(marker):]); r != "" {
		return r
	}
	return fallback
}
