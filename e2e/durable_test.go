package e2e

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// sigkill kills the server with SIGKILL (no drain, no flush) and waits.
func (s *server) sigkill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		t.Fatal("nodalmerge did not die after SIGKILL")
	}
}

// TestDurableRoomSurvivesSIGKILL: a writer streams signed packs into a room
// of a --store node; the node is killed with SIGKILL mid-stream. After a
// restart on the same store, every node that any pack-ack reported as
// accepted is in the room (SPEC section 2: accepted means durable).
func TestDurableRoomSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	// The writer streams faster than the default per-peer budget allows.
	args := append([]string{"--store", filepath.Join(dir, "store"), "--peer-rate-nodes", "0", "--peer-rate-bytes", "0"}, loopbackPorts()...)
	s := startServer(t, dir, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := s.wsURL + "durable-room"

	_, key := newKey(t)
	w, err := client.Dial(ctx, url, client.Options{Key: key, PeerID: "writer", PeerType: "bot"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	author := client.NewAuthor(key)

	// Stream packs of 8 chained nodes; keep each pack's ids until its ack.
	const packNodes = 8
	var acked []history.ID
	killAfter := 40 // packs acknowledged before the kill
	for pack := 0; ; pack++ {
		nodes := make([]*syncv1.Node, 0, packNodes)
		ids := make([]history.ID, 0, packNodes)
		for i := range packNodes {
			n, id, err := author.Write(client.Set("world/counter", []byte{byte(pack), byte(i)}))
			if err != nil {
				t.Fatal(err)
			}
			nodes, ids = append(nodes, n), append(ids, id)
		}
		if err := w.SendPack(ctx, nodes); err != nil {
			t.Fatalf("send pack %d: %v", pack, err)
		}
		m, err := nextType(ctx, w, "pack-ack")
		if err != nil {
			t.Fatalf("pack %d: %v", pack, err)
		}
		ack, err := m.AsPackAck()
		if err != nil {
			t.Fatal(err)
		}
		if ack.Accepted != packNodes || ack.Rejected != 0 {
			t.Fatalf("pack %d: ack %+v, want all %d accepted", pack, ack, packNodes)
		}
		acked = append(acked, ids...)
		if pack+1 == killAfter {
			// Kill with the next pack in flight, so the kill lands
			// mid-stream rather than between quiet packs.
			next := make([]*syncv1.Node, 0, packNodes)
			for range packNodes {
				n, _, err := author.Write(client.Set("world/counter", []byte{0xff}))
				if err != nil {
					t.Fatal(err)
				}
				next = append(next, n)
			}
			_ = w.SendPack(ctx, next)
			s.sigkill(t)
			break
		}
	}
	w.Close()

	s2 := startServer(t, dir, args...)
	r, err := client.Dial(ctx, s2.wsURL+"durable-room", client.Options{Key: key, PeerID: "reader", PeerType: "bot"})
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	defer r.Close()
	have := collectCatchUp(ctx, t, r)
	for _, id := range acked {
		if _, ok := have[id]; !ok {
			t.Fatalf("node %s was acknowledged before SIGKILL but is missing after restart (%d of %d acked nodes present)",
				id, countPresent(have, acked), len(acked))
		}
	}
	t.Logf("%d acknowledged nodes all present after SIGKILL; room holds %d", len(acked), len(have))
	s2.stop(t)
}

// nextType reads until a message of type typ.
func nextType(ctx context.Context, c *client.Conn, typ string) (client.Message, error) {
	for {
		m, err := c.Next(ctx)
		if err != nil || m.Type == typ {
			return m, err
		}
	}
}

// collectCatchUp reads catch-up packs until every id of the welcome's
// frontier has arrived: the catch-up of an empty frontier is then complete.
func collectCatchUp(ctx context.Context, t *testing.T, c *client.Conn) map[history.ID]struct{} {
	t.Helper()
	want, err := history.ParseIDs(c.Welcome().Frontier)
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[history.ID]struct{})
	missing := func() bool {
		for _, id := range want {
			if _, ok := have[id]; !ok {
				return true
			}
		}
		return false
	}
	for missing() {
		m, err := nextType(ctx, c, "pack")
		if err != nil {
			t.Fatalf("catch-up: %v (have %d nodes)", err, len(have))
		}
		p, err := m.AsPack()
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := client.PackNodes(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			have[history.NodeID(n)] = struct{}{}
		}
	}
	return have
}

func countPresent(have map[history.ID]struct{}, ids []history.ID) int {
	n := 0
	for _, id := range ids {
		if _, ok := have[id]; ok {
			n++
		}
	}
	return n
}
