package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// handshakeTimeout bounds the server side of a TLS handshake on the Raft
// port. A peer that connects and then stalls is cut off after this long
// instead of pinning a goroutine forever.
const handshakeTimeout = 10 * time.Second

// tlsStreamLayer is the raft.StreamLayer for the Raft port: a TCP listener
// whose connections speak mutual TLS (node certificates only, as enforced
// by the server config), and a dialer with the node's client config.
//
// Accept never performs the handshake itself: Raft's transport accepts in a
// single loop, so a slow client would stall every other peer. The handshake
// runs lazily on the first Read or Write of the accepted connection (in the
// per-connection goroutine Raft starts), bounded by handshakeTimeout.
//
// The layer also tracks every connection it hands out. Raft's transport
// does not close accepted or pooled connections on shutdown, so Close does,
// which is what lets a closed Store leave no goroutines behind.
type tlsStreamLayer struct {
	ln               net.Listener
	advertise        net.Addr
	serverTLS        *tls.Config
	clientTLS        *tls.Config
	handshakeTimeout time.Duration

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*tlsStreamLayer)(nil)

func newTLSStreamLayer(ln net.Listener, advertise net.Addr, serverTLS, clientTLS *tls.Config) *tlsStreamLayer {
	return &tlsStreamLayer{
		ln:               ln,
		advertise:        advertise,
		serverTLS:        serverTLS,
		clientTLS:        clientTLS,
		handshakeTimeout: handshakeTimeout,
		conns:            make(map[*trackedConn]struct{}),
	}
}

// Accept returns the next inbound connection, TLS not yet negotiated.
func (l *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: tls.Server(c, l.serverTLS), layer: l, timeout: l.handshakeTimeout}
	if !l.track(tc) {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

// Dial connects to another node and completes the TLS handshake within
// timeout, so that a peer presenting a bad certificate fails here, at
// dial time, with a clear error.
func (l *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.isClosed() {
		return nil, fmt.Errorf("raftstore: dial %s: %w", address, net.ErrClosed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: l.clientTLS}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raftstore: dial %s: %w", address, err)
	}
	tc := &trackedConn{Conn: c.(*tls.Conn), layer: l}
	tc.handshook.Store(true)
	if !l.track(tc) {
		_ = c.Close()
		return nil, fmt.Errorf("raftstore: dial %s: %w", address, net.ErrClosed)
	}
	return tc, nil
}

// Addr is the advertised address: Raft records it in the configuration as
// this node's address, so it must be reachable by peers.
func (l *tlsStreamLayer) Addr() net.Addr { return l.advertise }

// Close stops the listener and closes every connection handed out.
func (l *tlsStreamLayer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	err := l.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("raftstore: close raft listener: %w", err)
	}
	return nil
}

func (l *tlsStreamLayer) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *tlsStreamLayer) track(c *trackedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *tlsStreamLayer) untrack(c *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// trackedConn is a TLS connection that unregisters itself when closed and,
// on the server side, completes its handshake under a deadline on first use.
type trackedConn struct {
	*tls.Conn
	layer     *tlsStreamLayer
	timeout   time.Duration
	handshook atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// handshake completes the server handshake with a deadline. HandshakeContext
// is safe for concurrent use (later callers wait for the first) and, when
// the context expires, aborts by closing the connection, so neither a Read
// nor a Write can hang on a silent peer.
func (c *trackedConn) handshake() error {
	if c.handshook.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("raftstore: tls handshake with %s: %w", c.RemoteAddr(), err)
	}
	c.handshook.Store(true)
	return nil
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.layer.untrack(c)
	})
	return c.closeErr
}
