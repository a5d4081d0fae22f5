package client

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// closeWait bounds how long Close waits for the server to answer the close
// frame before dropping the TCP connection.
const closeWait = 2 * time.Second

// ErrClosed is returned by Next and Send after Close.
var ErrClosed = errors.New("client: connection closed")

// Options configure Dial.
type Options struct {
	// Key is the peer's identity; its public half is hello.pubkey.
	Key ed25519.PrivateKey
	// Frontier is the ids the client already has; the server sends what
	// they do not cover.
	Frontier []history.ID
	// Subscribe is hello.subscribe; nil leaves it out.
	Subscribe        []string
	PeerID, PeerType string
	// Caps is hello.caps (sync-feature negotiation).
	Caps map[string]bool
	// Token is hello.token, sent as is.
	Token json.RawMessage
	// TLS configures wss:// connections.
	TLS *tls.Config
	// Header is sent with the upgrade request (Origin, for example).
	Header http.Header
}

// Conn is an open, welcomed session. Send* and Close may be called from any
// goroutine; Next from one at a time.
type Conn struct {
	ws      *websocket.Conn
	welcome *protocol.Welcome

	msgs    chan item     // unbuffered: reading stops when Next is not called
	done    chan struct{} // closed when the reader goroutine has exited
	readErr error         // why the reader stopped; read after done
	closing chan struct{} // closed by Close: stop delivering, drain to EOF
	once    sync.Once

	wmu sync.Mutex // one writer at a time (gorilla's rule)
}

type item struct {
	msg Message
	err error
}

// Dial connects to a ws:// or wss:// room URL, sends hello and waits for the
// welcome. A server that answers hello with an error gives a *HelloError.
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	if len(opts.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("client: Options.Key must be an ed25519 private key (%d bytes), got %d bytes", ed25519.PrivateKeySize, len(opts.Key))
	}
	d := websocket.Dialer{TLSClientConfig: opts.TLS, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, url, opts.Header)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %d: %s)", url, err, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	c := &Conn{ws: ws, msgs: make(chan item), done: make(chan struct{}), closing: make(chan struct{})}
	go c.readLoop()

	hello := protocol.Hello{
		Pubkey:    hex.EncodeToString(opts.Key.Public().(ed25519.PublicKey)),
		Frontier:  history.Strings(opts.Frontier),
		Subscribe: opts.Subscribe,
		Caps:      opts.Caps,
		Token:     opts.Token,
		PeerID:    opts.PeerID,
		PeerType:  opts.PeerType,
	}
	if err := c.Send(ctx, hello); err != nil {
		c.abort()
		return nil, err
	}
	m, err := c.Next(ctx)
	if err != nil {
		c.abort()
		return nil, fmt.Errorf("client: waiting for welcome: %w", err)
	}
	switch m.Type {
	case protocol.TypeWelcome:
		w, err := m.AsWelcome()
		if err != nil {
			c.abort()
			return nil, err
		}
		c.welcome = w
		return c, nil
	case protocol.TypeError:
		e, err := m.AsError()
		if err != nil {
			c.abort()
			return nil, err
		}
		// The server closes right after; report its close code too.
		_, err = c.Next(ctx)
		c.abort()
		return nil, &HelloError{Msg: e.Msg, Err: err}
	default:
		c.abort()
		return nil, fmt.Errorf("client: expected welcome, got %q", m.Type)
	}
}

// Welcome returns the server's welcome.
func (c *Conn) Welcome() *protocol.Welcome { return c.welcome }

// readLoop owns all reads. It stops at the first read error, which is kept
// for Next.
func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		_, frame, err := c.ws.ReadMessage()
		if err != nil {
			c.readErr = err
			return
		}
		typ, perr := protocol.ParseEnvelope(frame)
		it := item{msg: Message{Type: typ, Raw: frame}}
		if perr != nil {
			it.err = fmt.Errorf("client: bad message from server: %w", perr)
		}
		select {
		case c.msgs <- it:
		case <-c.closing:
			// Keep reading (and discarding) until the server's close
			// answer ends the stream.
		}
	}
}

// Next returns the next server message. When the connection ends it
// returns the reason: a server close (see CloseError), a network error, or
// ErrClosed after Close. A frame that is not a valid envelope is returned
// together with an error; the connection stays usable.
func (c *Conn) Next(ctx context.Context) (Message, error) {
	select {
	case <-c.closing:
		return Message{}, ErrClosed
	default:
	}
	select {
	case it := <-c.msgs:
		return it.msg, it.err
	case <-c.done:
		return Message{}, fmt.Errorf("client: connection ended: %w", c.readErr)
	case <-c.closing:
		return Message{}, ErrClosed
	case <-ctx.Done():
		return Message{}, fmt.Errorf("client: waiting for a message: %w", ctx.Err())
	}
}

// Send encodes v as JSON and sends it as one text frame.
func (c *Conn) Send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("client: encode %T: %w", v, err)
	}
	return c.SendRaw(ctx, b)
}

// SendRaw sends frame as one text frame, unchecked (tests use it to send
// malformed input). The write is bounded by ctx's deadline; a cancel
// without a deadline is only seen before the write starts.
func (c *Conn) SendRaw(ctx context.Context, frame []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline, _ := ctx.Deadline()
	_ = c.ws.SetWriteDeadline(deadline) // gorilla stores it for the write below
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	return nil
}

// SendPack sends nodes as one pack.
func (c *Conn) SendPack(ctx context.Context, nodes []*syncv1.Node) error {
	s, err := history.EncodePack(nodes)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return c.Send(ctx, protocol.Pack{Nodes: s})
}

// Close performs a clean close (1000): it sends the close frame, waits
// briefly for the server's answer, and releases the connection and its
// goroutine. It is idempotent and always returns once the reader has
// exited.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closing)
		werr := c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
		if werr != nil && !errors.Is(werr, websocket.ErrCloseSent) {
			err = fmt.Errorf("client: send close: %w", werr)
		}
		t := time.NewTimer(closeWait)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
		if cerr := c.ws.Close(); cerr != nil && err == nil && !isClosedConn(cerr) {
			err = fmt.Errorf("client: close: %w", cerr)
		}
		<-c.done
	})
	return err
}

// abort drops the connection without a close handshake (failed Dial).
func (c *Conn) abort() {
	c.once.Do(func() {
		close(c.closing)
		_ = c.ws.Close()
		<-c.done
	})
}

func isClosedConn(err error) bool { return errors.Is(err, net.ErrClosed) }
