package dataplane_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// grantBy admits every hello with the grant its peer_id names.
func grantBy(grants map[string]*dataplane.Grant) func(string, *protocol.Hello) (*dataplane.Grant, error) {
	return func(_ string, h *protocol.Hello) (*dataplane.Grant, error) { return grants[h.PeerID], nil }
}

// TestReadGrantsLimitCatchUpRelayAndRequest: a session whose token grants
// read:world/** receives only nodes whose every path is inside it, on
// catch-up, live relay, request and after widening its subscription.
func TestReadGrantsLimitCatchUpRelayAndRequest(t *testing.T) {
	h := newHarness(t, dataplane.Config{Admission: grantBy(map[string]*dataplane.Grant{
		"reader": {Read: []string{"world/**"}},
	})})
	key := newKey(t)
	author := client.NewAuthor(key)
	w := h.dial(t, "rg", client.Options{Key: key})
	n1, id1 := pathNode(t, author, "world/a")
	n2, _ := pathNode(t, author, "secret/x")
	mixed, _, err := author.Write(client.Set("world/b", []byte(`1`)), client.Set("secret/y", []byte(`2`)))
	if err != nil {
		t.Fatal(err)
	}
	send(t, w, n1, n2, mixed)

	r := h.dial(t, "rg", client.Options{PeerID: "reader"})
	if _, ids := packIDs(t, expect(t, r, protocol.TypePack)); !slices.Equal(ids, []history.ID{id1}) {
		t.Fatalf("catch-up = %v, want only the world node", ids)
	}
	barrierWith(t, r, "**") // asking for everything does not widen the grant
	expect(t, w, protocol.TypePeerJoined)

	n4, _ := pathNode(t, author, "secret/z")
	n5, id5 := pathNode(t, author, "world/c")
	send(t, w, n4)
	send(t, w, n5)
	if _, ids := packIDs(t, expect(t, r, protocol.TypePack)); !slices.Equal(ids, []history.ID{id5}) {
		t.Fatalf("relay = %v, want only the world node", ids)
	}
	if err := r.Send(stepCtx(t), protocol.Request{Known: nil}); err != nil {
		t.Fatal(err)
	}
	if _, ids := packIDs(t, expect(t, r, protocol.TypePack)); !slices.Equal(ids, []history.ID{id1, id5}) {
		t.Fatalf("request answer = %v", ids)
	}
	// A server-published node goes through the same filter.
	srvAuthor := client.NewAuthor(h.key)
	pub, _ := pathNode(t, srvAuthor, "secret/tick")
	if n, err := h.srv.Publish(stepCtx(t), "rg", []*syncv1.Node{pub}); n != 1 || err != nil {
		t.Fatalf("publish = %d, %v", n, err)
	}
	expectSkipping(t, w, protocol.TypePack)
	barrier(t, r) // the secret publish never reached the reader
}

// TestWriteGrantsRejectNodesOutsideThem: a node with a path outside the
// session's write: grants is rejected alone, with a reason naming it.
func TestWriteGrantsRejectNodesOutsideThem(t *testing.T) {
	h := newHarness(t, dataplane.Config{Admission: grantBy(map[string]*dataplane.Grant{
		"writer": {Write: []string{"intent/**"}},
	})})
	key := newKey(t)
	author := client.NewAuthor(key)
	c := h.dial(t, "wg", client.Options{Key: key, PeerID: "writer"})
	obs := h.dial(t, "wg", client.Options{})
	expect(t, c, protocol.TypePeerJoined)
	ok, okID := pathNode(t, author, "intent/move")
	denied, deniedID := pathNode(t, author, "world/pos")
	if err := c.SendPack(stepCtx(t), []*syncv1.Node{ok, denied}); err != nil {
		t.Fatal(err)
	}
	ack, _ := expect(t, c, protocol.TypePackAck).AsPackAck()
	if ack.Accepted != 1 || len(ack.Rejections) != 1 || ack.Rejections[0].ID != deniedID.String() ||
		ack.Rejections[0].Reason != "token grants no write to world/pos" {
		t.Fatalf("ack = %+v", ack)
	}
	if _, ids := packIDs(t, expect(t, obs, protocol.TypePack)); !slices.Equal(ids, []history.ID{okID}) {
		t.Fatalf("relayed %v", ids)
	}
}

// TestTokenExpiryCloses4002: the session closes with 4002 at its token's
// expiry and the metric counts it; a session without a token stays.
func TestTokenExpiryCloses4002(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, dataplane.Config{Metrics: reg, Admission: grantBy(map[string]*dataplane.Grant{
		"short": {Expiry: time.Now().Add(300 * time.Millisecond), TokenID: "t1"},
	})})
	short := h.dial(t, "ex", client.Options{PeerID: "short"})
	long := h.dial(t, "ex", client.Options{})
	expectClose(t, short, 4002, "token expired")
	expect(t, long, protocol.TypePeerLeft)
	barrier(t, long)
	if v := metricValue(t, reg, "nodalmerge_token_expired_disconnects_total", nil); v != 1 {
		t.Fatalf("token expired counter = %v", v)
	}
}

// TestSessionInfoCarriesTheGrant: CloseSessions sees each session's grant,
// which is how the node closes revoked tokens with 4003.
func TestSessionInfoCarriesTheGrant(t *testing.T) {
	h := newHarness(t, dataplane.Config{Admission: grantBy(map[string]*dataplane.Grant{
		"a": {Caps: []string{"room.admin"}, TokenID: "tok-a", KeyID: "k1"},
		"b": {TokenID: "tok-b", KeyID: "k2"},
	})})
	a := h.dial(t, "si", client.Options{PeerID: "a"})
	b := h.dial(t, "si", client.Options{PeerID: "b"})
	var caps []string
	n := h.srv.CloseSessions(func(i dataplane.SessionInfo) bool {
		if i.Grant.TokenID == "tok-a" {
			caps = i.Grant.Caps
			return i.Grant.KeyID == "k1"
		}
		return false
	}, dataplane.CloseTokenRevoked, dataplane.ReasonTokenRevoked)
	if n != 1 || !slices.Equal(caps, []string{"room.admin"}) {
		t.Fatalf("closed %d, caps %v", n, caps)
	}
	expectClose(t, a, 4003, "token revoked")
	expect(t, b, protocol.TypePeerLeft)
	barrier(t, b)
}
