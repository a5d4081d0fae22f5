package dataplane_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func TestSlowReaderIsClosedWithResync(t *testing.T) {
	// Small socket buffers on both ends, so that a peer that does not read
	// blocks the server's writer after a few frames and its queue (4
	// slots) fills quickly.
	const sockBuf = 16 << 10
	h := newHarnessOn(t, dataplane.Config{BroadcastCapacity: 4}, func(c *net.TCPConn) { _ = c.SetWriteBuffer(sockBuf) })
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(sockBuf)
		}
		return c, err
	}}
	slow, _, err := d.DialContext(stepCtx(t), h.url("r"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	rawHello(t, slow, newKey(t))

	key := newKey(t)
	fast := h.dial(t, "r", client.Options{Key: key})
	// ~1.5 MiB relayed in 24 frames: far more than the socket buffers and
	// queue hold. Built up front so the flood itself is quick: the
	// server's writer gives up on a peer that takes nothing for 5 s.
	const packs = 24
	blob := make([]byte, 64<<10)
	var flood [][]*syncv1.Node
	var prev []history.ID
	for i := range packs {
		n, id := mkNodeAt(t, key, uint64(i+1), time.Now(), blob, prev...)
		flood, prev = append(flood, []*syncv1.Node{n}), []history.ID{id}
	}
	for _, p := range flood {
		if err := fast.SendPack(stepCtx(t), p); err != nil {
			t.Fatal(err)
		}
		// The fast peer is unaffected by the slow one.
		if ack, _ := expect(t, fast, protocol.TypePackAck).AsPackAck(); ack.Accepted != 1 {
			t.Fatalf("ack = %+v", ack)
		}
	}
	// The slow peer now reads: what was written arrives, then the close.
	_ = slow.SetReadDeadline(time.Now().Add(stepTimeout))
	got := 0
	for {
		_, msg, err := slow.ReadMessage()
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != 4001 || ce.Text != "resync required" {
				t.Fatalf("after %d packs: %v, want close 4001", got, err)
			}
			break
		}
		if strings.Contains(string(msg), `"type":"pack"`) {
			got++
		}
	}
	if got >= packs {
		t.Fatalf("slow peer got all %d packs: the queue never overflowed", got)
	}
	// The fast peer sees the slow one leave.
	expect(t, fast, protocol.TypePeerLeft)
}

func TestShutdownClosesSessionsWithGoingAway(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	a := h.dial(t, "one", client.Options{})
	b := h.dial(t, "two", client.Options{})
	if st := h.srv.Stats(); st.Rooms != 2 || st.Sessions != 2 {
		t.Fatalf("stats = %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expectClose(t, a, 1001, "going away")
	expectClose(t, b, 1001, "going away")
	if st := h.srv.Stats(); st != (dataplane.Stats{}) {
		t.Fatalf("stats after shutdown = %+v", st)
	}
	_, err := client.Dial(stepCtx(t), h.url("one"), client.Options{Key: newKey(t)})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("dial after shutdown: %v", err)
	}
	// The harness shuts down again at cleanup: Shutdown is idempotent.
}

func TestShutdownDeadlineDropsUnresponsivePeers(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	ws := h.rawConn(t, "r")
	rawHello(t, ws, newKey(t))
	// The raw peer never reads, so it never answers the close frame.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := h.srv.Shutdown(ctx); err == nil {
		t.Fatal("shutdown reported success though the peer never answered")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %v past its deadline", took)
	}
}

func TestPingsAndPongsGoThroughTheWriter(t *testing.T) {
	const interval = 40 * time.Millisecond
	h := newHarness(t, dataplane.Config{PingInterval: interval})

	// A responsive peer receives pings and stays; its own ping is answered.
	ws := h.rawConn(t, "r")
	rawHello(t, ws, newKey(t))
	var pings atomic.Int32
	manyPings := make(chan struct{})
	ws.SetPingHandler(func(data string) error {
		// Six pings span more than twice the idle timeout (2.5 intervals).
		if pings.Add(1) == 6 {
			close(manyPings)
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil // the test is closing
		}
		return err
	})
	pong := make(chan string, 1)
	ws.SetPongHandler(func(data string) error { pong <- data; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				readerDone <- err
				return
			}
		}
	}()
	select {
	case got := <-pong:
		if got != "are you there" {
			t.Fatalf("pong payload %q", got)
		}
	case <-time.After(stepTimeout):
		t.Fatal("no pong")
	}

	// A peer that reads but never answers pings is dropped.
	mute := h.rawConn(t, "r")
	rawHello(t, mute, newKey(t))
	mute.SetPingHandler(func(string) error { return nil })
	_ = mute.SetReadDeadline(time.Now().Add(stepTimeout))
	for {
		_, _, err := mute.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1008 || ce.Text != "idle timeout" {
			t.Fatalf("mute peer: %v", err)
		}
		break
	}

	select {
	case <-manyPings:
	case <-time.After(stepTimeout):
		t.Fatalf("responsive peer saw only %d pings", pings.Load())
	}
	// Still alive well past the idle timeout: a close is echoed.
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := <-readerDone; !websocket.IsCloseError(err, 1000) {
		t.Fatalf("close echo: %v", err)
	}
}

func TestIngestChecksUseTheServerClock(t *testing.T) {
	serverNow := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	h := newHarness(t, dataplane.Config{Now: func() time.Time { return serverNow }})
	key := newKey(t)
	c := h.dial(t, "clock", client.Options{Key: key})

	send := func(nodes ...*syncv1.Node) *protocol.PackAck {
		t.Helper()
		if err := c.SendPack(stepCtx(t), nodes); err != nil {
			t.Fatal(err)
		}
		ack, err := expect(t, c, protocol.TypePackAck).AsPackAck()
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	ahead, _ := mkNodeAt(t, key, 1, serverNow.Add(25*time.Hour), nil)
	fine, fineID := mkNodeAt(t, key, 1, serverNow.Add(23*time.Hour), nil)
	if ack := send(ahead, fine); ack.Accepted != 1 || len(ack.Rejections) != 1 || ack.Rejections[0].Reason != "wall clock too far ahead" {
		t.Fatalf("wall clock ack = %+v", ack)
	}

	// Room max is 1: the ceiling is 1 + 2^20.
	high, _ := mkNodeAt(t, key, 1+1<<20, serverNow, nil, fineID)
	tooHigh, _ := mkNodeAt(t, key, 2+1<<20, serverNow, nil, fineID)
	if ack := send(tooHigh, high); ack.Accepted != 1 || ack.Rejections[0].Reason != "lamport too far ahead" {
		t.Fatalf("lamport ack = %+v", ack)
	}
	// The ceiling moves with the room's max.
	if ack := send(tooHigh); ack.Accepted != 1 {
		t.Fatalf("after the max rose: %+v", ack)
	}
}

func TestClientDialErrors(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	if _, err := client.Dial(stepCtx(t), h.url("r"), client.Options{}); err == nil {
		t.Fatal("dial without a key succeeded")
	}
	_, err := client.Dial(stepCtx(t), h.url("bad/room"), client.Options{Key: newKey(t)})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "invalid room name") {
		t.Fatalf("bad room: %v", err)
	}
	hdr := http.Header{"Origin": {"https://nope.example"}}
	if _, err := client.Dial(stepCtx(t), h.url("r"), client.Options{Key: newKey(t), Header: hdr}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("bad origin: %v", err)
	}
}

// BenchmarkIngest measures signed nodes/s into one room through a real
// socket: decode, verify, store, ack (no other session to relay to).
func BenchmarkIngest(b *testing.B) {
	h := newHarness(b, dataplane.Config{})
	key := newKey(b)
	c := h.dial(b, "bench", client.Options{Key: key})
	const packSize = 128
	frames := make([][]byte, b.N)
	lamport := uint64(0)
	for i := range frames {
		nodes := make([]*syncv1.Node, packSize)
		for j := range nodes {
			lamport++
			nodes[j], _ = mkNode(b, key, lamport)
		}
		s, err := history.EncodePack(nodes)
		if err != nil {
			b.Fatal(err)
		}
		frames[i], _ = json.Marshal(protocol.Pack{Nodes: s})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendRaw(stepCtx(b), frames[i]); err != nil {
			b.Fatal(err)
		}
		m := next(b, c)
		if ack, err := m.AsPackAck(); err != nil || ack.Accepted != packSize {
			b.Fatalf("got %s", m.Raw)
		}
	}
	b.ReportMetric(float64(b.N*packSize)/b.Elapsed().Seconds(), "nodes/s")
}
