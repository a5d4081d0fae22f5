package loadgen

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// receiverReadBuffer is large so that one read syscall takes a whole batch
// of frames when the server flushes many at once.
const receiverReadBuffer = 64 << 10

// closeWait bounds how long a close waits for the server's answer.
const closeWait = 2 * time.Second

// packPrefix is how encoding/json starts every pack frame the server
// sends; frames that do not start with it are parsed properly.
var packPrefix = []byte(`{"type":"pack"`)

// receiver is a subscriber that only reads. It is written on gorilla
// directly rather than on client.Conn: the client parses every frame as
// JSON and hands it over a channel to another goroutine, which at a
// million frames a second would cost the generator more CPU than the
// server spends delivering them. A receiver counts pack frames with a
// prefix check in its own read goroutine; only a sampled one decodes.
type receiver struct {
	ws     *websocket.Conn
	frames atomic.Uint64 // pack frames received after welcome
	// onPack, when set, sees each pack frame (sampled receivers); it runs
	// on the read goroutine.
	onPack func(frame []byte)

	errFrames atomic.Uint64
	firstErr  atomic.Pointer[string] // first error message from the server
	done      chan struct{}
	readErr   error // why reading stopped; read after done
	early     bool  // reading stopped before close was called; read after done
	closing   atomic.Bool
}

// dialReceiver connects, sends hello and waits for welcome.
func dialReceiver(ctx context.Context, roomURL string, key ed25519.PrivateKey, peerID string) (*receiver, error) {
	d := websocket.Dialer{ReadBufferSize: receiverReadBuffer, WriteBufferSize: 4096, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, roomURL, nil)
	if err != nil {
		if resp != nil {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("loadgen: dial %s: %w (HTTP %d)", roomURL, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("loadgen: dial %s: %w", roomURL, err)
	}
	hello, err := json.Marshal(protocol.Hello{
		Pubkey:    hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Subscribe: []string{"**"},
		PeerID:    peerID,
		PeerType:  "bench",
	})
	if err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("loadgen: encode hello: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = ws.SetWriteDeadline(deadline)
	_ = ws.SetReadDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("loadgen: send hello: %w", err)
	}
	_, first, err := ws.ReadMessage()
	if err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("loadgen: waiting for welcome: %w", err)
	}
	typ, err := protocol.ParseEnvelope(first)
	if err != nil || typ != protocol.TypeWelcome {
		_ = ws.Close()
		return nil, fmt.Errorf("loadgen: expected welcome, got %.200q", first)
	}
	_ = ws.SetWriteDeadline(time.Time{})
	_ = ws.SetReadDeadline(time.Time{})
	return &receiver{ws: ws, done: make(chan struct{})}, nil
}

// start begins reading; onPack must be set before.
func (r *receiver) start() { go r.readLoop() }

func (r *receiver) readLoop() {
	defer close(r.done)
	buf := make([]byte, 0, 4096)
	for {
		_, rd, err := r.ws.NextReader()
		if err == nil {
			buf, err = readAll(rd, buf[:0])
		}
		if err != nil {
			r.readErr, r.early = err, !r.closing.Load()
			return
		}
		if r.closing.Load() {
			continue // draining until the server answers the close
		}
		if bytes.HasPrefix(buf, packPrefix) {
			r.frames.Add(1)
			if r.onPack != nil {
				r.onPack(buf)
			}
			continue
		}
		typ, err := protocol.ParseEnvelope(buf)
		switch {
		case err != nil:
			r.noteError(fmt.Sprintf("unparsable frame from server: %v", err))
		case typ == protocol.TypePack:
			r.frames.Add(1)
			if r.onPack != nil {
				r.onPack(buf)
			}
		case typ == protocol.TypeError:
			var e protocol.Error
			_ = json.Unmarshal(buf, &e)
			r.noteError(e.Msg)
		}
	}
}

func (r *receiver) noteError(msg string) {
	r.errFrames.Add(1)
	r.firstErr.CompareAndSwap(nil, &msg)
}

// readAll appends everything rd yields to buf, reusing its capacity.
func readAll(rd io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// ended reports whether the connection has stopped reading (server close
// or network error) before close was called.
func (r *receiver) ended() bool {
	select {
	case <-r.done:
		return r.early
	default:
		return false
	}
}

// failure describes why the server ended the connection, "" if it did not.
func (r *receiver) failure() string {
	if !r.ended() {
		return ""
	}
	var ce *websocket.CloseError
	if errors.As(r.readErr, &ce) {
		return fmt.Sprintf("closed by server: %d %s", ce.Code, ce.Text)
	}
	return fmt.Sprintf("connection ended: %v", r.readErr)
}

// close sends a normal close, waits briefly for the answer, and releases
// the socket and the read goroutine.
func (r *receiver) close() {
	r.closing.Store(true)
	_ = r.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
	t := time.NewTimer(closeWait)
	select {
	case <-r.done:
	case <-t.C:
	}
	t.Stop()
	_ = r.ws.Close()
	<-r.done
}
