package dataplane_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// stepTimeout bounds every single wait of a test.
const stepTimeout = 10 * time.Second

type harness struct {
	t   testing.TB
	srv *dataplane.Server
	hs  *httptest.Server
	key ed25519.PrivateKey
}

// newHarness serves a data plane on 127.0.0.1 with cfg (ServerKey filled
// in when empty) and shuts it down at the end of the test.
func newHarness(t testing.TB, cfg dataplane.Config) *harness {
	t.Helper()
	return newHarnessOn(t, cfg, nil)
}

// newHarnessOn is newHarness with each accepted connection passed through
// tune (to shrink socket buffers, for example).
func newHarnessOn(t testing.TB, cfg dataplane.Config, tune func(*net.TCPConn)) *harness {
	t.Helper()
	if cfg.ServerKey == nil {
		cfg.ServerKey = newKey(t)
	}
	srv, err := dataplane.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv)
	if tune != nil {
		hs.Listener = tunedListener{hs.Listener, tune}
	}
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return &harness{t: t, srv: srv, hs: hs, key: cfg.ServerKey}
}

type tunedListener struct {
	net.Listener
	tune func(*net.TCPConn)
}

func (l tunedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		l.tune(tc)
	}
	return c, err
}

func (h *harness) url(room string) string {
	return "ws" + strings.TrimPrefix(h.hs.URL, "http") + "/ws/" + room
}

func (h *harness) serverPubHex() string {
	return hex.EncodeToString(h.key.Public().(ed25519.PublicKey))
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func pubHex(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }

func stepCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client that is closed at the end of the test.
func (h *harness) dial(t testing.TB, room string, opts client.Options) *client.Conn {
	t.Helper()
	if opts.Key == nil {
		opts.Key = newKey(t)
	}
	c, err := client.Dial(stepCtx(t), h.url(room), opts)
	if err != nil {
		t.Fatalf("dial %s: %v", room, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func next(t testing.TB, c *client.Conn) client.Message {
	t.Helper()
	m, err := c.Next(stepCtx(t))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return m
}

// expect reads the next message and fails unless it has type typ.
func expect(t testing.TB, c *client.Conn, typ string) client.Message {
	t.Helper()
	m := next(t, c)
	if m.Type != typ {
		t.Fatalf("got %s, want %s: %s", m.Type, typ, m.Raw)
	}
	return m
}

// barrier proves nothing else is queued for c: a subscribe is answered in
// order, so if the next message is its ack, nothing was sent before it. It
// subscribes to everything (the default); barrierWith keeps other patterns.
func barrier(t testing.TB, c *client.Conn) {
	t.Helper()
	barrierWith(t, c, "**")
}

func barrierWith(t testing.TB, c *client.Conn, patterns ...string) {
	t.Helper()
	if err := c.Send(stepCtx(t), protocol.Subscribe{Patterns: patterns}); err != nil {
		t.Fatal(err)
	}
	expect(t, c, protocol.TypeSubscribeAck)
}

// expectClose reads until the connection ends and checks the close.
func expectClose(t testing.TB, c *client.Conn, code int, text string) {
	t.Helper()
	for {
		_, err := c.Next(stepCtx(t))
		if err == nil {
			continue
		}
		gotCode, gotText, ok := client.CloseError(err)
		if !ok || gotCode != code || gotText != text {
			t.Fatalf("connection ended with %v, want close %d %q", err, code, text)
		}
		return
	}
}

// mkNode signs a node with a small op; wall clock is now per the real clock.
func mkNode(t testing.TB, key ed25519.PrivateKey, lamport uint64, parents ...history.ID) (*syncv1.Node, history.ID) {
	t.Helper()
	return mkNodeAt(t, key, lamport, time.Now(), nil, parents...)
}

func mkNodeAt(t testing.TB, key ed25519.PrivateKey, lamport uint64, wall time.Time, blob []byte, parents ...history.ID) (*syncv1.Node, history.ID) {
	t.Helper()
	tx := &syncv1.Transaction{Lamport: lamport, WallMs: uint64(wall.UnixMilli())}
	// A random value makes every call a distinct node: two nodes with the
	// same lamport and parents made in one millisecond must not collapse
	// into one id.
	op := &syncv1.Op{Path: "world/k", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte(rand.Text())}}}
	if blob != nil {
		op = &syncv1.Op{Path: "world/blob", Kind: &syncv1.Op_SetBlob{SetBlob: &syncv1.SetBlob{Data: blob}}}
	}
	tx.Ops = []*syncv1.Op{op}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	return n, id
}

func packIDs(t testing.TB, m client.Message) (*protocol.Pack, []history.ID) {
	t.Helper()
	p, err := m.AsPack()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := client.PackNodes(p)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]history.ID, len(nodes))
	for i, n := range nodes {
		ids[i] = history.NodeID(n)
	}
	return p, ids
}

// rawConn is a bare gorilla connection for sending what the client refuses
// to send (no hello, bad hello, pings without answers).
func (h *harness) rawConn(t testing.TB, room string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.DialContext(stepCtx(t), h.url(room), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// rawHello sends a valid hello for key and reads the welcome.
func rawHello(t testing.TB, ws *websocket.Conn, key ed25519.PrivateKey) {
	t.Helper()
	b, _ := json.Marshal(protocol.Hello{Pubkey: pubHex(key)})
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(stepTimeout))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"type":"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
}

// rawExpectErrorThenClose reads an error envelope with msg and then a close.
func rawExpectErrorThenClose(t testing.TB, ws *websocket.Conn, msg string, code int, text string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(stepTimeout))
	if msg != "" {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("reading error envelope: %v", err)
		}
		var e protocol.Error
		if err := json.Unmarshal(b, &e); err != nil || e.Type != protocol.TypeError || e.Msg != msg {
			t.Fatalf("got %s, want error %q", b, msg)
		}
	}
	_, b, err := ws.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != code || ce.Text != text {
		t.Fatalf("got frame %s / err %v, want close %d %q", b, err, code, text)
	}
}

// waitFor polls cond (state with no event to wait on, such as a room being
// dropped after its last session ended) until it holds or time runs out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
