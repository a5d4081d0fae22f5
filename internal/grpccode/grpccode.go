// Package grpccode names gRPC status codes the way operators and grpcurl
// spell them ("UNAVAILABLE", "PERMISSION_DENIED"), for the admin CLI and
// the load tool, which print codes to people.
package grpccode

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
)

// Name is the canonical upper-case name of c (google.rpc.Code), or
// "CODE(n)" for a code outside the table.
func Name(c codes.Code) string {
	if name, ok := code.Code_name[int32(c)]; ok {
		return name
	}
	return fmt.Sprintf("CODE(%d)", uint32(c))
}
