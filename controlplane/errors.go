package controlplane

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
