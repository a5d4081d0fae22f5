package pki_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/pki"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// result is what each side of one handshake saw.
type result struct {
	serverErr  error
	serverPeer pki.Identity
	clientErr  error
	clientConn tls.ConnectionState
}

// handshake runs one real TLS handshake over a 127.0.0.1 socket. In TLS 1.3
// the client finishes before the server has checked the client certificate,
// so the server writes one byte after a successful handshake and the client
// reads it: a server-side refusal then surfaces on the client too.
func handshake(t *testing.T, server, client *tls.Config) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type srv struct {
		err error
		id  pki.Identity
	}
	done := make(chan srv, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- srv{err: err}
			return
		}
		conn := tls.Server(raw, server)
		defer conn.Close()
		if err := conn.HandshakeContext(ctx); err != nil {
			done <- srv{err: err}
			return
		}
		id, err := pki.PeerIdentity(conn.ConnectionState())
		if err == nil {
			_, err = conn.Write([]byte{1})
		}
		done <- srv{err: err, id: id}
	}()

	var r result
	d := tls.Dialer{Config: client}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err == nil {
		conn := c.(*tls.Conn)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		_, err = io.ReadFull(conn, b[:])
		r.clientConn = conn.ConnectionState()
		_ = conn.Close()
	}
	r.clientErr = err
	s := <-done
	r.serverErr, r.serverPeer = s.err, s.id
	return r
}

func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake failed: server: %v; client: %v", r.serverErr, r.clientErr)
	}
}

func wantRefused(t *testing.T, r result, serverSubstr string) {
	t.Helper()
	if r.clientErr == nil {
		t.Fatalf("client handshake succeeded, want refusal")
	}
	if serverSubstr != "" && (r.serverErr == nil || !strings.Contains(r.serverErr.Error(), serverSubstr)) {
		t.Fatalf("server error = %v, want it to contain %q", r.serverErr, serverSubstr)
	}
}

func TestNodeToNode(t *testing.T) {
	p := pkitest.New(t)
	n1, n2 := p.Node(t, "n1"), p.Node(t, "n2")
	for name, cfg := range map[string]*tls.Config{"raft": n1.NodeServerConfig(), "admin": n1.ServerConfig()} {
		t.Run(name, func(t *testing.T) {
			r := handshake(t, cfg, n2.ClientConfig(""))
			wantOK(t, r)
			if want := (pki.Identity{Role: pki.RoleNode, Name: "n2"}); r.serverPeer != want {
				t.Fatalf("server saw peer %v, want %v", r.serverPeer, want)
			}
			if r.clientConn.Version != tls.VersionTLS13 {
				t.Fatalf("negotiated version %x, want TLS 1.3", r.clientConn.Version)
			}
			if got := r.clientConn.PeerCertificates[0].URIs[0].String(); got != "nodalmerge://node/n1" {
				t.Fatalf("client saw server URI %q", got)
			}
			// On the dialing side there are no stdlib-verified chains, so
			// PeerIdentity must refuse rather than trust the raw certificate.
			if _, err := pki.PeerIdentity(r.clientConn); err == nil {
				t.Fatal("PeerIdentity on the dialing side returned an unverified identity")
			}
		})
	}
}

func TestOperatorToAdminAccepted(t *testing.T) {
	p := pkitest.New(t)
	node, op := p.Node(t, "n1"), p.Operator(t, "alice")
	r := handshake(t, node.ServerConfig(), op.ClientConfig(""))
	wantOK(t, r)
	if want := (pki.Identity{Role: pki.RoleOperator, Name: "alice"}); r.serverPeer != want {
		t.Fatalf("server saw peer %v, want %v", r.serverPeer, want)
	}
	if got := r.serverPeer.String(); got != "operator:alice" {
		t.Fatalf("String() = %q", got)
	}
}

func TestOperatorToRaftRefused(t *testing.T) {
	p := pkitest.New(t)
	node, op := p.Node(t, "n1"), p.Operator(t, "alice")
	r := handshake(t, node.NodeServerConfig(), op.ClientConfig(""))
	wantRefused(t, r, "operator:alice is not a cluster node")
}

func TestForeignCARefused(t *testing.T) {
	p, foreign := pkitest.New(t), pkitest.New(t)
	node := p.Node(t, "n1")
	t.Run("foreign client", func(t *testing.T) {
		// The intruder trusts our server, so the refusal is the server's.
		intruder := &tls.Config{
			Certificates: []tls.Certificate{foreign.Node(t, "n1").Certificate()},
			RootCAs:      node.CAPool(),
			ServerName:   "localhost",
			MinVersion:   tls.VersionTLS13,
		}
		for _, cfg := range []*tls.Config{node.ServerConfig(), node.NodeServerConfig()} {
			r := handshake(t, cfg, intruder)
			wantRefused(t, r, "unknown authority")
		}
	})
	t.Run("foreign server", func(t *testing.T) {
		impostor := foreign.Node(t, "n2")
		r := handshake(t, impostor.ServerConfig(), node.ClientConfig(""))
		if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), "unknown authority") {
			t.Fatalf("client error = %v, want unknown authority", r.clientErr)
		}
	})
}

func TestNoClientCertRefused(t *testing.T) {
	p := pkitest.New(t)
	node := p.Node(t, "n1")
	bare := &tls.Config{RootCAs: node.CAPool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	for _, cfg := range []*tls.Config{node.ServerConfig(), node.NodeServerConfig()} {
		r := handshake(t, cfg, bare)
		wantRefused(t, r, "client didn't provide a certificate")
	}
}

func TestTLS12Refused(t *testing.T) {
	p := pkitest.New(t)
	n1, n2 := p.Node(t, "n1"), p.Node(t, "n2")
	old := n2.ClientConfig("")
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	r := handshake(t, n1.ServerConfig(), old)
	wantRefused(t, r, "unsupported versions")
}

func TestClientRequiresNodeServer(t *testing.T) {
	p := pkitest.New(t)
	n1, op := p.Node(t, "n1"), p.Operator(t, "alice")
	// An operator certificate has no ServerAuth usage and no node role, so
	// it can never pose as a node to a dialer.
	r := handshake(t, op.ServerConfig(), n1.ClientConfig(""))
	if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), "incompatible key usage") {
		t.Fatalf("client error = %v, want a key-usage refusal of the operator certificate", r.clientErr)
	}
}

func TestClientServerName(t *testing.T) {
	p := pkitest.New(t)
	n1, n2 := p.Node(t, "n1"), p.Node(t, "n2")
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		wantOK(t, handshake(t, n1.ServerConfig(), n2.ClientConfig(name)))
	}
	r := handshake(t, n1.ServerConfig(), n2.ClientConfig("db.example.com"))
	if r.clientErr == nil || !strings.Contains(r.clientErr.Error(), "db.example.com") {
		t.Fatalf("client error = %v, want a name mismatch for db.example.com", r.clientErr)
	}
}

func TestPeerIdentityIncompleteHandshake(t *testing.T) {
	if _, err := pki.PeerIdentity(tls.ConnectionState{}); err == nil {
		t.Fatal("PeerIdentity accepted an incomplete handshake")
	}
	if _, err := pki.PeerIdentity(tls.ConnectionState{HandshakeComplete: true}); err == nil {
		t.Fatal("PeerIdentity accepted a handshake without verified chains")
	}
}
