package dataplane_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// denyPrefix denies writes under a path prefix and records what it saw.
type denyPrefix struct {
	prefix string
	mu     sync.Mutex
	seen   []string
}

func (d *denyPrefix) AllowWrite(room string, author ed25519.PublicKey, lamport uint64, path string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, room+" "+path)
	return len(author) == ed25519.PublicKeySize && lamport > 0 && !strings.HasPrefix(path, d.prefix)
}

func TestWritePolicyRejectsDeniedNodeAlone(t *testing.T) {
	pol := &denyPrefix{prefix: "admin/"}
	h := newHarness(t, dataplane.Config{WritePolicy: pol})
	key := newKey(t)
	author := client.NewAuthor(key)
	c := h.dial(t, "pol", client.Options{Key: key})
	obs := h.dial(t, "pol", client.Options{})
	expect(t, c, protocol.TypePeerJoined)
	ok, okID := pathNode(t, author, "open/a")
	denied, deniedID := pathNode(t, author, "admin/x")
	child, childID := pathNode(t, author, "open/b") // child of the denied node
	if err := c.SendPack(stepCtx(t), []*syncv1.Node{ok, denied, child}); err != nil {
		t.Fatal(err)
	}
	ack, _ := expect(t, c, protocol.TypePackAck).AsPackAck()
	reasons := map[string]string{}
	for _, r := range ack.Rejections {
		reasons[r.ID] = r.Reason
	}
	if ack.Accepted != 1 || reasons[deniedID.String()] != "policy denies write to admin/x" || reasons[childID.String()] != "missing parent" {
		t.Fatalf("ack = %+v", ack)
	}
	if _, ids := packIDs(t, expect(t, obs, protocol.TypePack)); !slices.Equal(ids, []history.ID{okID}) {
		t.Fatalf("relayed %v", ids)
	}
	pol.mu.Lock()
	defer pol.mu.Unlock()
	if !slices.Contains(pol.seen, "pol admin/x") || slices.Contains(pol.seen, "pol open/b") {
		t.Fatalf("policy saw %v", pol.seen)
	}
}

// echoCommands answers "describe-room" with the call it got.
type echoCommands struct{}

func (echoCommands) Has(typ string) bool { return typ == "describe-room" }

func (echoCommands) Handle(ctx context.Context, c dataplane.CommandCall) []byte {
	if ctx.Err() != nil {
		return nil
	}
	cmd, err := protocol.ParseCommand(c.Frame)
	if err != nil {
		return nil
	}
	b, _ := json.Marshal(map[string]string{"type": "describe-room-result", "id": cmd.ID, "room": c.Room, "pubkey": c.Pubkey,
		"session_room": c.Session.Room, "peer_id": c.Session.PeerID})
	return b
}

func TestCommandsHookAnswersOnTheSession(t *testing.T) {
	h := newHarness(t, dataplane.Config{Commands: echoCommands{}})
	key := newKey(t)
	c := h.dial(t, "cmd", client.Options{Key: key, PeerID: "p1"})
	if err := c.SendRaw(stepCtx(t), []byte(`{"type":"describe-room","id":"q1"}`)); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(expect(t, c, "describe-room-result").Raw, &got); err != nil {
		t.Fatal(err)
	}
	if got["id"] != "q1" || got["room"] != "cmd" || got["pubkey"] != pubHex(key) || got["session_room"] != "cmd" || got["peer_id"] != "p1" {
		t.Fatalf("reply = %v", got)
	}
	// Types the hook does not have are still ignored.
	if err := c.SendRaw(stepCtx(t), []byte(`{"type":"lock-room"}`)); err != nil {
		t.Fatal(err)
	}
	barrier(t, c)
}

func TestPublishRelaysFromTheServerToEverySession(t *testing.T) {
	h := newHarness(t, dataplane.Config{PeerRateNodes: 1})
	a := h.dial(t, "tick", client.Options{})
	b := h.dial(t, "tick", client.Options{})
	expect(t, a, protocol.TypePeerJoined)
	author := client.NewAuthor(h.key)
	var nodes []*syncv1.Node
	var want []history.ID
	for range 5 { // over the peer rate: the server is not limited
		n, id := pathNode(t, author, "world/tick")
		nodes, want = append(nodes, n), append(want, id)
	}
	accepted, err := h.srv.Publish(stepCtx(t), "tick", nodes)
	if err != nil || accepted != 5 {
		t.Fatalf("publish = %d, %v", accepted, err)
	}
	for _, c := range []*client.Conn{a, b} {
		p, ids := packIDs(t, expect(t, c, protocol.TypePack))
		if p.From != h.serverPubHex() || !slices.Equal(ids, want) {
			t.Fatalf("relay = %+v %v", p, ids)
		}
	}
	bad, _ := mkNode(t, h.key, 1, history.ID{7})
	if accepted, err := h.srv.Publish(stepCtx(t), "tick", []*syncv1.Node{bad}); accepted != 0 || err == nil || !strings.Contains(err.Error(), "missing parent") {
		t.Fatalf("publish of an orphan = %d, %v", accepted, err)
	}
}

func TestCloseSessionsAndEvictPeer(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, dataplane.Config{Metrics: reg})
	key := newKey(t)
	one := h.dial(t, "r", client.Options{Key: key})
	two := h.dial(t, "r", client.Options{Key: key})
	other := h.dial(t, "r", client.Options{})
	elsewhere := h.dial(t, "s", client.Options{Key: key})
	if n := h.srv.EvictPeer("r", strings.ToUpper(pubHex(key))); n != 2 {
		t.Fatalf("evicted %d sessions", n)
	}
	expectClose(t, one, 1008, "evicted")
	expectClose(t, two, 1008, "evicted")
	barrier(t, elsewhere) // same key, other room: untouched
	if n := h.srv.CloseSessions(func(i dataplane.SessionInfo) bool { return i.Room == "r" }, 4002, "token expired"); n != 1 {
		t.Fatalf("closed %d", n)
	}
	expectClose(t, other, 4002, "token expired")
	if v := metricValue(t, reg, "nodalmerge_token_expired_disconnects_total", nil); v != 1 {
		t.Fatalf("token expired counter = %v", v)
	}
}

func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, dataplane.Config{Metrics: reg})
	for name, want := range map[string]float64{
		"nodalmerge_rooms_total": 0, "nodalmerge_peers_total": 0, "nodalmerge_nodes_accepted_total": 0,
		"nodalmerge_broadcast_lagged_total": 0, "nodalmerge_ws_send_timeout_total": 0, "nodalmerge_rate_limit_drops_total": 0,
		"nodalmerge_token_expired_disconnects_total": 0, "nodalmerge_merge_batch_seconds": 0,
	} {
		if got := metricValue(t, reg, name, nil); got != want {
			t.Errorf("%s = %v before use, want %v", name, got, want)
		}
	}
	for _, reason := range []string{"ceiling", "wall_clock"} {
		if got := metricValue(t, reg, "nodalmerge_lamport_rejected_total", map[string]string{"reason": reason}); got != 0 {
			t.Errorf("lamport_rejected{%s} = %v before use", reason, got)
		}
	}
	key := newKey(t)
	a := h.dial(t, "m", client.Options{Key: key})
	h.dial(t, "m", client.Options{})
	h.dial(t, "n", client.Options{Key: key})
	good, goodID := mkNode(t, key, 1)
	tooHigh, _ := mkNode(t, key, 1<<21, goodID)
	if err := a.SendPack(stepCtx(t), []*syncv1.Node{good, tooHigh}); err != nil {
		t.Fatal(err)
	}
	expectSkipping(t, a, protocol.TypePackAck)
	for name, want := range map[string]float64{
		"nodalmerge_rooms_total": 2, "nodalmerge_peers_total": 3, "nodalmerge_nodes_accepted_total": 1, "nodalmerge_merge_batch_seconds": 1,
	} {
		if got := metricValue(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, reg, "nodalmerge_lamport_rejected_total", map[string]string{"reason": "ceiling"}); got != 1 {
		t.Errorf("lamport_rejected{ceiling} = %v", got)
	}
	// A second server cannot register the same names twice.
	if _, err := dataplane.NewServer(dataplane.Config{ServerKey: newKey(t), Metrics: reg}); err == nil {
		t.Fatal("duplicate registration accepted")
	}
}
