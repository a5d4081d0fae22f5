package controlplane

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/nodalmerge/nodalmerge-go/pki"
)

// handshake runs a real TLS handshake between a client and a server
// material over an in-memory pipe and answers the server's view of it,
// which is what the admin server sees of a caller.
func handshake(t testing.TB, server, client *pki.Material) tls.ConnectionState {
	t.Helper()
	sc, cc := net.Pipe()
	defer func() { _ = sc.Close(); _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := tls.Server(sc, server.ServerConfig())
	cli := tls.Client(cc, client.ClientConfig(""))
	done := make(chan error, 1)
	go func() { done <- cli.HandshakeContext(ctx) }()
	if err := srv.HandshakeContext(ctx); err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	return srv.ConnectionState()
}

// FuzzAuthenticate feeds arbitrary authorization metadata, the untrusted
// input of the admin port, to the authentication layer. It must never
// panic, never accept anything but the one valid token, and answer only
// the fixed "auth: <reason>" messages, so no part of the input is echoed.
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f, envOptions{})
	cs := handshake(f, e.pki.Node(f, "n1"), e.pki.Operator(f, "alice"))
	valid := "Bearer " + e.mint(f, e.operatorClaims("cluster.read"))
	cmd, _ := e.srv.Registry().ByName("cluster.status")

	allowed := make([]string, 0, len(knownAuthFailureReasons()))
	for _, r := range knownAuthFailureReasons() {
		allowed = append(allowed, "auth: "+r)
	}
	for _, seed := range []string{"", "Bearer", "Bearer ", "bearer x", "Basic YWxpY2U6cHc=", "Bearer a.b.c",
		"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", valid, valid + "x", valid[:len(valid)-4]} {
		f.Add(seed)
	}
	base := peer.NewContext(context.Background(), &peer.Peer{
		Addr:     &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
		AuthInfo: credentials.TLSInfo{State: cs},
	})
	f.Fuzz(func(t *testing.T, header string) {
		c := &call{cmd: cmd}
		ctx := withCall(metadata.NewIncomingContext(base, metadata.Pairs("authorization", header)), c)
		out, err := e.srv.authenticate(ctx)
		if err == nil {
			if header != valid {
				t.Fatalf("accepted %q", header)
			}
			if p, ok := PrincipalFrom(out); !ok || p.Actor() != "alice/tok-1" {
				t.Fatalf("principal = %+v, %v", p, ok)
			}
			return
		}
		st, _ := status.FromError(err)
		if st.Code() != codes.Unauthenticated || !slices.Contains(allowed, st.Message()) {
			t.Fatalf("authenticate(%q) = %v %q; want Unauthenticated with a fixed reason", header, st.Code(), st.Message())
		}
		if ev, _ := c.take(); ev.Decision != DecisionDeny {
			t.Fatalf("failed authentication recorded decision %q", ev.Decision)
		}
	})
}
