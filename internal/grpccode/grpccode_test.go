package grpccode

import (
	"testing"

	"google.golang.org/grpc/codes"
)

func TestName(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.InvalidArgument: "INVALID_ARGUMENT",
		codes.PermissionDenied: "PERMISSION_DENIED", codes.Unavailable: "UNAVAILABLE",
		codes.Unauthenticated: "UNAUTHENTICATED", codes.Code(99): "CODE(99)", codes.Code(1 << 31): "CODE(2147483648)",
	} {
		if got := Name(c); got != want {
			t.Errorf("Name(%d) = %q, want %q", uint32(c), got, want)
		}
	}
}
