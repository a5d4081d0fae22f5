package dataplane_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// BenchmarkFanout measures relayed messages/s delivered: one publisher per
// room sends pre-signed one-node packs (a 128-byte value) with at most 64
// unacknowledged, and lean receivers count pack frames. b.N is the number
// of packs published per room.
func BenchmarkFanout(b *testing.B) {
	for _, shape := range []struct{ rooms, receivers int }{{1, 100}, {100, 10}} {
		b.Run(fmt.Sprintf("rooms=%d/receivers=%d", shape.rooms, shape.receivers), func(b *testing.B) {
			benchFanout(b, shape.rooms, shape.receivers)
		})
	}
}

func benchFanout(b *testing.B, rooms, receivers int) {
	h := newHarness(b, dataplane.Config{BroadcastCapacity: 4096})
	type pubRoom struct {
		name   string
		pub    *client.Conn
		frames [][]byte
	}
	rs := make([]*pubRoom, rooms)
	var recvWG sync.WaitGroup
	delivered := make(chan int, rooms*receivers)
	for i := range rs {
		name := fmt.Sprintf("fan%d", i)
		key := newKey(b)
		r := &pubRoom{name: name, frames: make([][]byte, b.N)}
		value := bytes.Repeat([]byte("x"), 128)
		author := client.NewAuthor(key)
		for j := range r.frames {
			n, _, err := author.Write(client.Set("bench/value", value))
			if err != nil {
				b.Fatal(err)
			}
			s, _ := history.EncodePack([]*syncv1.Node{n})
			r.frames[j], _ = json.Marshal(protocol.Pack{Nodes: s})
		}
		for range receivers {
			ws := h.rawConn(b, name)
			rawHello(b, ws, newKey(b))
			recvWG.Add(1)
			go func() {
				defer recvWG.Done()
				delivered <- countPacks(ws, b.N)
			}()
		}
		r.pub = h.dial(b, name, client.Options{Key: key})
		rs[i] = r
	}
	// The receivers joined first: the publishers saw them in their
	// welcome, and the receivers' peer-joined frames are not packs.
	b.ResetTimer()
	start := time.Now()
	var pubWG sync.WaitGroup
	for _, r := range rs {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			publishWindowed(b, r.pub, r.frames, 64)
		}()
	}
	pubWG.Wait()
	recvWG.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(delivered)
	total := 0
	for n := range delivered {
		total += n
	}
	if total != b.N*rooms*receivers {
		b.Fatalf("delivered %d of %d", total, b.N*rooms*receivers)
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N*rooms)/elapsed.Seconds(), "published/s")
}

// publishWindowed sends frames keeping at most window of them unacknowledged.
func publishWindowed(b *testing.B, c *client.Conn, frames [][]byte, window int) {
	slots := make(chan struct{}, window)
	acks := make(chan error, 1)
	go func() {
		for range frames {
			m, err := c.Next(stepCtx(b))
			if err != nil {
				acks <- err
				return
			}
			if m.Type != protocol.TypePackAck {
				acks <- fmt.Errorf("got %s", m.Type)
				return
			}
			<-slots
		}
		acks <- nil
	}()
	for _, f := range frames {
		slots <- struct{}{}
		if err := c.SendRaw(stepCtx(b), f); err != nil {
			b.Error(err)
			return
		}
	}
	if err := <-acks; err != nil {
		b.Error(err)
	}
}

// countPacks reads until want pack frames arrived (or the connection ends)
// and returns how many did.
func countPacks(ws *websocket.Conn, want int) int {
	prefix := []byte(`{"type":"pack"`)
	n := 0
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	for n < want {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return n
		}
		if bytes.HasPrefix(msg, prefix) {
			n++
		}
	}
	return n
}

// BenchmarkIngestPublishers measures accepted signed nodes/s into one room
// from several publishers, each sending 128-node packs and waiting for each
// ack, and reports what share of the time verifying on every core alone
// would take (1.0: ingest runs at the Ed25519 ceiling).
func BenchmarkIngestPublishers(b *testing.B) {
	for _, pubs := range []int{1, 4} {
		b.Run(fmt.Sprintf("publishers=%d", pubs), func(b *testing.B) { benchIngest(b, pubs) })
	}
}

func benchIngest(b *testing.B, pubs int) {
	const packSize = 128
	h := newHarness(b, dataplane.Config{})
	type publisher struct {
		c      *client.Conn
		frames [][]byte
	}
	ps := make([]publisher, pubs)
	packsEach := max(1, b.N/pubs)
	var sample []*syncv1.Node
	for i := range ps {
		key := newKey(b)
		author := client.NewAuthor(key)
		ps[i].frames = make([][]byte, packsEach)
		for j := range ps[i].frames {
			nodes := make([]*syncv1.Node, packSize)
			for k := range nodes {
				n, _, err := author.Write(client.Set("k", []byte("v")))
				if err != nil {
					b.Fatal(err)
				}
				nodes[k] = n
			}
			if sample == nil {
				sample = nodes
			}
			s, _ := history.EncodePack(nodes)
			ps[i].frames[j], _ = json.Marshal(protocol.Pack{Nodes: s})
		}
		ps[i].c = h.dial(b, "ingest", client.Options{Key: key})
	}
	for i, p := range ps {
		for range pubs - 1 - i { // the publishers that joined after it
			expect(b, p.c, protocol.TypePeerJoined)
		}
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range p.frames {
				if err := p.c.SendRaw(stepCtx(b), f); err != nil {
					b.Error(err)
					return
				}
				for {
					m, err := p.c.Next(stepCtx(b))
					if err != nil {
						b.Error(err)
						return
					}
					if m.Type == protocol.TypePack {
						continue // the other publishers' relays
					}
					if ack, err := m.AsPackAck(); err != nil || ack.Accepted != packSize {
						b.Errorf("got %.200s", m.Raw)
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	nodes := float64(packsEach * pubs * packSize)
	b.ReportMetric(nodes/elapsed.Seconds(), "nodes/s")
	// Verify-only cost of the same nodes, single core, for the share.
	vstart := time.Now()
	for _, n := range sample {
		id := history.NodeID(n)
		var tx syncv1.Transaction
		_ = proto.Unmarshal(n.GetTransactionBytes(), &tx)
		if !ed25519.Verify(tx.GetAuthor(), id[:], n.GetSignature()) {
			b.Fatal("bad signature")
		}
	}
	verifyPerNode := time.Since(vstart).Seconds() / float64(len(sample))
	b.ReportMetric(verifyPerNode*nodes/float64(runtime.GOMAXPROCS(0))/elapsed.Seconds(), "verify-share")
}
