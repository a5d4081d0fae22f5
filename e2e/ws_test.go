package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// TestRoomExchangeAcrossProcess: two WebSocket clients in one room of a real
// server process see each other join and exchange a signed pack; the sender
// gets pack-ack and no echo.
func TestRoomExchangeAcrossProcess(t *testing.T) {
	s := startServer(t, t.TempDir(), loopbackPorts()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := s.wsURL + "e2e-room"

	pubA, keyA := newKey(t)
	pubB, keyB := newKey(t)
	a, err := client.Dial(ctx, url, client.Options{Key: keyA, PeerID: "a", PeerType: "bot"})
	if err != nil {
		t.Fatalf("dial A: %v", err)
	}
	defer a.Close()
	b, err := client.Dial(ctx, url, client.Options{Key: keyB, PeerID: "b", PeerType: "bot"})
	if err != nil {
		t.Fatalf("dial B: %v", err)
	}
	defer b.Close()
	if w := b.Welcome(); len(w.Peers) != 1 || w.Peers[0].Pubkey != hex.EncodeToString(pubA) {
		t.Fatalf("B's welcome peers = %+v, want A", w.Peers)
	}

	joined := next(ctx, t, a, "peer-joined")
	var pj struct{ From, Pubkey, PeerID string }
	decode(t, joined, &pj)
	if pj.Pubkey != hex.EncodeToString(pubB) {
		t.Fatalf("A saw %+v join, want B", pj)
	}

	node, id, err := history.NewNode(keyA, &syncv1.Transaction{
		Author:  pubA,
		Lamport: 1,
		WallMs:  uint64(time.Now().UnixMilli()),
		Ops:     []*syncv1.Op{{Path: "world/player/7", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte(`{"x":1}`)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SendPack(ctx, []*syncv1.Node{node}); err != nil {
		t.Fatalf("send pack: %v", err)
	}
	var ack struct{ Accepted, Rejected, Incoming int }
	decode(t, next(ctx, t, a, "pack-ack"), &ack)
	if ack.Accepted != 1 || ack.Rejected != 0 || ack.Incoming != 1 {
		t.Fatalf("pack-ack = %+v, want 1 accepted of 1", ack)
	}

	var relayed struct{ From, Nodes string }
	decode(t, next(ctx, t, b, "pack"), &relayed)
	if relayed.From != hex.EncodeToString(pubA) {
		t.Fatalf("relayed pack from %q, want A", relayed.From)
	}
	pack, err := history.DecodePack(relayed.Nodes, 16)
	if err != nil {
		t.Fatalf("decode relayed pack: %v", err)
	}
	if len(pack.Nodes) != 1 || history.NodeID(pack.Nodes[0]) != id {
		t.Fatalf("relayed pack holds %d nodes, want exactly the sent node", len(pack.Nodes))
	}

	// B leaves; A sees it, and A never got its own pack echoed back.
	b.Close()
	left := next(ctx, t, a, "peer-left")
	var pl struct{ Pubkey string }
	decode(t, left, &pl)
	if pl.Pubkey != hex.EncodeToString(pubB) {
		t.Fatalf("peer-left names %q, want B", pl.Pubkey)
	}
	s.stop(t)
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// next reads messages until one of type typ arrives, failing on a pack
// echoed to its own sender (the only pack A may see is none at all).
func next(ctx context.Context, t *testing.T, c *client.Conn, typ string) []byte {
	t.Helper()
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m.Raw
		}
		if m.Type == "pack" && typ != "pack" {
			t.Fatalf("unexpected pack while waiting for %s: %s", typ, m.Raw)
		}
	}
}

func decode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
