package dataplane_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// smallBufDialer dials with a small receive buffer, so a peer that stops
// reading stops the server's writer after a few frames.
func smallBufDialer(size int) *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(size)
		}
		return c, err
	}}
}

func TestFloodClosesSlowReaderWithResyncAndReconnectCatchesUp(t *testing.T) {
	const sockBuf = 16 << 10
	reg := prometheus.NewRegistry()
	h := newHarnessOn(t, dataplane.Config{BroadcastCapacity: 2, Metrics: reg}, func(c *net.TCPConn) { _ = c.SetWriteBuffer(sockBuf) })
	slowKey := newKey(t)
	slow, _, err := smallBufDialer(sockBuf).DialContext(stepCtx(t), h.url("flood"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	rawHello(t, slow, slowKey)

	// The slow peer reads only once it has been closed (the lagged
	// counter says so), while the flood goes on: then it gets what was
	// written before the close, and the close.
	type slowResult struct {
		got, parents map[history.ID]bool
		err          error
	}
	slowDone := make(chan slowResult, 1)
	readSlow := func() {
		r := slowResult{got: map[history.ID]bool{}, parents: map[history.ID]bool{}}
		_ = slow.SetReadDeadline(time.Now().Add(stepTimeout))
		for {
			_, msg, err := slow.ReadMessage()
			if err != nil {
				r.err = err
				slowDone <- r
				return
			}
			if strings.HasPrefix(string(msg), `{"type":"pack"`) {
				for _, n := range rawPackNodes(t, msg) {
					r.got[history.NodeID(n)] = true
					for _, p := range txOf(t, n).GetParents() {
						r.parents[history.ID(p)] = true
					}
				}
			}
		}
	}

	key := newKey(t)
	pub := h.dial(t, "flood", client.Options{Key: key})
	const packs = 5000
	all := make(map[history.ID]bool, packs)
	var prev []history.ID
	reading := false
	for i := range packs {
		n, id := mkNode(t, key, uint64(i+1), prev...)
		if err := pub.SendPack(stepCtx(t), []*syncv1.Node{n}); err != nil {
			t.Fatal(err)
		}
		if ack, _ := expectSkipping(t, pub, protocol.TypePackAck).AsPackAck(); ack.Accepted != 1 {
			t.Fatalf("pack %d: ack = %+v", i, ack)
		}
		all[id], prev = true, []history.ID{id}
		if !reading && i%25 == 0 && metricValue(t, reg, "nodalmerge_broadcast_lagged_total", nil) == 1 {
			reading = true
			go readSlow()
		}
	}
	if !reading {
		t.Fatal("5000 packs and the slow peer never lagged")
	}
	res := <-slowDone
	if ce, ok := res.err.(*websocket.CloseError); !ok || ce.Code != 4001 || ce.Text != "resync required" {
		t.Fatalf("after %d nodes: %v, want close 4001", len(res.got), res.err)
	}
	got, parents := res.got, res.parents
	if len(got) >= packs {
		t.Fatal("the slow peer got everything: its queue never overflowed")
	}
	if v := metricValue(t, reg, "nodalmerge_broadcast_lagged_total", nil); v != 1 {
		t.Fatalf("lagged counter = %v", v)
	}

	// It reconnects with its frontier (what it holds that nothing it holds
	// names as a parent) and receives exactly what it missed.
	var frontier []history.ID
	for id := range got {
		if !parents[id] {
			frontier = append(frontier, id)
		}
	}
	again := h.dial(t, "flood", client.Options{Key: slowKey, Frontier: frontier})
	for len(got) < len(all) {
		_, ids := packIDs(t, expect(t, again, protocol.TypePack))
		for _, id := range ids {
			if got[id] {
				t.Fatalf("catch-up resent %s, which the peer had", id)
			}
			got[id] = true
		}
	}
	barrier(t, again)
	for id := range all {
		if !got[id] {
			t.Fatalf("node %s never reached the slow peer", id)
		}
	}
	if len(got) != len(all) {
		t.Fatalf("peer holds %d nodes, room %d", len(got), len(all))
	}
}

func TestFlooderGetsRateLimitedOthersUnaffected(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, dataplane.Config{PeerRateNodes: 50, Metrics: reg})
	good := h.dial(t, "r", client.Options{})
	floodKey := newKey(t)
	flood := h.dial(t, "r", client.Options{Key: floodKey})
	expect(t, good, protocol.TypePeerJoined)

	// Packs of 10 nodes, sent without waiting: they soon outrun a bucket
	// of 50 nodes that refills at 50 nodes/s.
	start := time.Now()
	lamport := uint64(0)
	for range 20 {
		nodes := make([]*syncv1.Node, 10)
		for i := range nodes {
			lamport++
			nodes[i], _ = mkNode(t, floodKey, lamport)
		}
		if err := flood.SendPack(stepCtx(t), nodes); err != nil {
			break // closed under us
		}
	}
	expectClose(t, flood, 4008, "rate limit exceeded")

	// The well-behaved peer got the relays of what was accepted, then the
	// flooder's departure, and it keeps working.
	relayed := 0
	for {
		m := next(t, good)
		if m.Type == protocol.TypePeerLeft {
			break
		}
		_, ids := packIDs(t, m)
		relayed += len(ids)
	}
	// At most the burst plus what the bucket refilled meanwhile landed.
	if limit := 50 + int(50*time.Since(start).Seconds()) + 10; relayed == 0 || relayed > limit || relayed >= 200 {
		t.Fatalf("relayed %d nodes from the flooder, want 1..%d", relayed, limit)
	}
	otherKey := newKey(t)
	other := h.dial(t, "r", client.Options{Key: otherKey})
	expect(t, good, protocol.TypePeerJoined)
	n, id := mkNode(t, otherKey, 1)
	if err := other.SendPack(stepCtx(t), []*syncv1.Node{n}); err != nil {
		t.Fatal(err)
	}
	if _, ids := packIDs(t, expect(t, good, protocol.TypePack)); len(ids) != 1 || ids[0] != id {
		t.Fatalf("relay after the flood = %v", ids)
	}
	if v := metricValue(t, reg, "nodalmerge_rate_limit_drops_total", nil); v != 1 {
		t.Fatalf("rate limit counter = %v", v)
	}

	// One pack larger than a second's allowance is refused outright, even
	// from a fresh peer with a full bucket.
	bigKey := newKey(t)
	big := h.dial(t, "r", client.Options{Key: bigKey})
	nodes := make([]*syncv1.Node, 51)
	for i := range nodes {
		nodes[i], _ = mkNode(t, bigKey, uint64(i+1))
	}
	if err := big.SendPack(stepCtx(t), nodes); err != nil {
		t.Fatal(err)
	}
	expectClose(t, big, 4008, "rate limit exceeded")
}

func TestBytesRateLimit(t *testing.T) {
	h := newHarness(t, dataplane.Config{PeerRateBytes: 4 << 10})
	key := newKey(t)
	c := h.dial(t, "r", client.Options{Key: key})
	small, _ := mkNodeAt(t, key, 1, time.Now(), make([]byte, 1<<10))
	if err := c.SendPack(stepCtx(t), []*syncv1.Node{small}); err != nil {
		t.Fatal(err)
	}
	expect(t, c, protocol.TypePackAck)
	big, _ := mkNodeAt(t, key, 2, time.Now(), make([]byte, 8<<10))
	if err := c.SendPack(stepCtx(t), []*syncv1.Node{big}); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, 4008, "rate limit exceeded")
}

func TestMaxConnectionsRefusesWith503AndRetryAfter(t *testing.T) {
	h := newHarness(t, dataplane.Config{MaxConnections: 1})
	first := h.dial(t, "r", client.Options{})
	_, resp, err := websocket.DefaultDialer.DialContext(stepCtx(t), h.url("r"), nil)
	if err == nil || resp == nil {
		t.Fatalf("second connection accepted: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" ||
		strings.Count(strings.TrimSpace(string(body)), "\n") != 0 || !strings.Contains(string(body), "--max-connections") {
		t.Fatalf("got %d Retry-After=%q body %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first connection to end", func() bool { return h.srv.Stats().Sessions == 0 })
	// A slot is free again. The handler may still be finishing: retry
	// until it is.
	waitFor(t, "a free slot", func() bool {
		c, err := client.Dial(stepCtx(t), h.url("r"), client.Options{Key: newKey(t)})
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

func TestBlockedSendClosesWithServerOverload(t *testing.T) {
	const sockBuf = 16 << 10
	reg := prometheus.NewRegistry()
	h := newHarnessOn(t, dataplane.Config{SendTimeout: 300 * time.Millisecond, BroadcastCapacity: 100_000, Metrics: reg},
		func(c *net.TCPConn) { _ = c.SetWriteBuffer(sockBuf) })
	slow, _, err := smallBufDialer(sockBuf).DialContext(stepCtx(t), h.url("r"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Close() })
	rawHello(t, slow, newKey(t))
	key := newKey(t)
	pub := h.dial(t, "r", client.Options{Key: key})
	blob := make([]byte, 64<<10)
	var prev []history.ID
	// Far more than the socket buffers hold, until the writer gives up.
	for i := 0; metricValue(t, reg, "nodalmerge_ws_send_timeout_total", nil) < 1; i++ {
		if i == 200 {
			t.Fatal("no send timeout after 12 MiB")
		}
		n, id := mkNodeAt(t, key, uint64(i+1), time.Now(), blob, prev...)
		prev = []history.ID{id}
		if err := pub.SendPack(stepCtx(t), []*syncv1.Node{n}); err != nil {
			t.Fatal(err)
		}
		expectSkipping(t, pub, protocol.TypePackAck)
	}
	// The peer reads again within the close's grace: what was sent, then
	// the close frame.
	_ = slow.SetReadDeadline(time.Now().Add(stepTimeout))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != 1011 || ce.Text != "server overload" {
				t.Fatalf("got %v, want close 1011", err)
			}
			break
		}
	}
	if v := metricValue(t, reg, "nodalmerge_broadcast_lagged_total", nil); v != 0 {
		t.Fatalf("lagged = %v: the queue overflowed instead", v)
	}
}

// rawPackNodes decodes the nodes of a raw pack frame.
func rawPackNodes(t testing.TB, frame []byte) []*syncv1.Node {
	t.Helper()
	var p protocol.Pack
	if err := json.Unmarshal(frame, &p); err != nil {
		t.Fatal(err)
	}
	nodes, err := client.PackNodes(&p)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}
