package raftstore

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// TestStreamLayerSlowClientDoesNotBlockAccept: a client that connects and
// never sends a ClientHello must neither stall Accept for other peers nor
// hold its connection beyond the handshake deadline.
func TestStreamLayerSlowClientDoesNotBlockAccept(t *testing.T) {
	p := pkitest.New(t)
	srv := p.Node(t, "n1")
	cli := p.Node(t, "n2")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	layer := newTLSStreamLayer(ln, ln.Addr(), srv.NodeServerConfig(), srv.ClientConfig(""))
	layer.handshakeTimeout = 300 * time.Millisecond
	defer layer.Close()

	accepted := make(chan net.Conn, 2)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := layer.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentSrv := <-accepted

	// A real node connects and completes its handshake while the silent
	// one is still pending. (The server handshake runs on first Read, as
	// in Raft's per-connection goroutine.)
	type readResult struct {
		conn net.Conn
		data string
		err  error
	}
	served := make(chan readResult, 1)
	go func() {
		c := <-accepted
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		served <- readResult{c, string(buf), err}
	}()
	client := newTLSStreamLayer(mustListen(t), advertiseAddr("127.0.0.1:1"), cli.NodeServerConfig(), cli.ClientConfig(""))
	defer client.Close()
	good, err := client.Dial(advertiseAddrFor(ln), 5*time.Second)
	if err != nil {
		t.Fatalf("dial while another client stalls: %v", err)
	}
	if _, err := good.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	r := <-served
	if r.err != nil || r.data != "ping" {
		t.Fatalf("server read %q, %v", r.data, r.err)
	}
	goodSrv := r.conn
	if !goodSrv.(*trackedConn).ConnectionState().HandshakeComplete {
		t.Fatal("handshake not complete after first read")
	}

	// The silent connection's first read fails once the deadline passes.
	buf := make([]byte, 4)
	start := time.Now()
	_, err = silentSrv.Read(buf)
	if err == nil {
		t.Fatal("read on a never-handshaken connection succeeded")
	}
	if waited := time.Since(start); waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("silent handshake failed after %v, want about the 300ms deadline", waited)
	}
	_ = silentSrv.Close()

	// Close ends Accept and every connection the layer handed out.
	if err := layer.Close(); err != nil {
		t.Fatal(err)
	}
	<-acceptDone
	if _, err := goodSrv.Read(buf); err == nil {
		t.Fatal("accepted connection still open after Close")
	}
	if _, err := io.ReadFull(good, buf); err == nil {
		t.Fatal("peer still connected after server Close")
	}
	if _, err := layer.Dial(advertiseAddrFor(ln), time.Second); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want net.ErrClosed", err)
	}
}

func mustListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func advertiseAddrFor(ln net.Listener) raft.ServerAddress {
	return raft.ServerAddress(ln.Addr().String())
}
