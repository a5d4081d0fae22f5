package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/internal/grpccode"
)

// DefaultAdminAddr is the admin address of a bare `nodalmerge serve`.
const DefaultAdminAddr = "127.0.0.1:7879"

// AdminTarget is how a scenario reaches the admin gRPC API: the admin
// scenarios call it under load, the security scenarios use it to set room
// keys, lock rooms and revoke tokens.
type AdminTarget struct {
	// Addrs are admin gRPC addresses (host:port) of cluster nodes.
	// Scenarios that make setup calls make them on Addrs[0]; a follower
	// forwards writes to the leader.
	Addrs []string
	// TLS is the client side of the admin port's mutual TLS: the cluster
	// CA and an operator certificate (pki.Material.ClientConfig).
	TLS *tls.Config
	// Token is the operator bearer token sent with every call. It never
	// appears in reports or errors.
	Token string
}

func (a *AdminTarget) validate() error {
	if len(a.Addrs) == 0 {
		return cfgErr("Addrs", "must name at least one admin address")
	}
	for _, addr := range a.Addrs {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return cfgErr("Addrs", "must be host:port, got %q", addr)
		}
	}
	switch {
	case a.TLS == nil:
		return cfgErr("TLS", "is required: the admin port always requires a client certificate")
	case strings.TrimSpace(a.Token) == "":
		return cfgErr("Token", "is required: every admin call carries an operator token")
	}
	return nil
}

// dial opens a (lazy) connection to Addrs[i].
func (a *AdminTarget) dial(i int) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(a.Addrs[i], grpc.WithTransportCredentials(credentials.NewTLS(a.TLS.Clone())))
	if err != nil {
		return nil, fmt.Errorf("loadgen: admin address %s: %w", a.Addrs[i], err)
	}
	return conn, nil
}

// outgoing adds the bearer token to ctx.
func (a *AdminTarget) outgoing(ctx context.Context) context.Context {
	return metadata.NewOutgoingContext(ctx, metadata.Pairs("authorization", "Bearer "+a.Token))
}

// callError describes a failed admin call with the server's code and
// reason (which name commands, capabilities and rooms, never the caller's
// token), e.g. "lock-room on room r1 via 127.0.0.1:7879 failed:
// PERMISSION_DENIED: ...".
func callError(command, room, addr string, err error) error {
	st := status.Convert(err)
	where := ""
	if room != "" {
		where = " on room " + room
	}
	return fmt.Errorf("loadgen: %s%s via %s failed: %s: %s", command, where, addr, grpccode.Name(st.Code()), st.Message())
}
