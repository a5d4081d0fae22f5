package dataplane_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// pathNode signs a node with one op on path (no op when path is empty).
func pathNode(t testing.TB, a *client.Author, path string) (*syncv1.Node, history.ID) {
	t.Helper()
	var n *syncv1.Node
	var id history.ID
	var err error
	if path == "" {
		n, id, err = a.Write()
	} else {
		n, id, err = a.Write(client.Set(path, []byte(`1`)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return n, id
}

func send(t testing.TB, c *client.Conn, nodes ...*syncv1.Node) {
	t.Helper()
	if err := c.SendPack(stepCtx(t), nodes); err != nil {
		t.Fatal(err)
	}
	if ack, _ := expectSkipping(t, c, protocol.TypePackAck).AsPackAck(); ack.Rejected != 0 {
		t.Fatalf("ack = %+v", ack)
	}
}

func TestSubscriptionFiltersCatchUpAndLiveRelay(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	key := newKey(t)
	author := client.NewAuthor(key)
	w := h.dial(t, "sub", client.Options{Key: key})
	n1, id1 := pathNode(t, author, "world/a")
	n2, _ := pathNode(t, author, "chat/1")
	n3, id3 := pathNode(t, author, "world/b/c")
	send(t, w, n1, n2, n3)

	// Catch-up under hello.subscribe: only the world nodes.
	s := h.dial(t, "sub", client.Options{Subscribe: []string{"world/**"}})
	if _, ids := packIDs(t, expect(t, s, protocol.TypePack)); !slices.Equal(ids, []history.ID{id1, id3}) {
		t.Fatalf("filtered catch-up = %v, want [n1 n3]", ids)
	}
	barrierWith(t, s, "world/**")
	expect(t, w, protocol.TypePeerJoined)

	// Live relay: chat is filtered out, world comes through, and a node
	// with no ops (no path to filter on) goes to everyone.
	n4, _ := pathNode(t, author, "chat/2")
	n5, id5 := pathNode(t, author, "world/c")
	n6, id6 := pathNode(t, author, "")
	send(t, w, n4)
	send(t, w, n5, n6)
	if _, ids := packIDs(t, expect(t, s, protocol.TypePack)); !slices.Equal(ids, []history.ID{id5, id6}) {
		t.Fatalf("relay = %v, want [n5 n6]", ids)
	}
	barrierWith(t, s, "chat/*") // nothing else came; now only chat

	n7, id7 := pathNode(t, author, "chat/x")
	n8, id8 := pathNode(t, author, "world/d")
	send(t, w, n7)
	send(t, w, n8)
	if _, ids := packIDs(t, expect(t, s, protocol.TypePack)); !slices.Equal(ids, []history.ID{id7}) {
		t.Fatalf("relay after resubscribe = %v, want [n7]", ids)
	}
	barrierWith(t, s, "world/**")

	// Reconnecting with its frontier (n7, the newest node it holds) it
	// gets what it missed under its patterns: n8 only.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, w, protocol.TypePeerLeft)
	again := h.dial(t, "sub", client.Options{Frontier: []history.ID{id7}, Subscribe: []string{"world/**"}})
	if _, ids := packIDs(t, expect(t, again, protocol.TypePack)); !slices.Equal(ids, []history.ID{id8}) {
		t.Fatalf("reconnect catch-up = %v, want [n8]", ids)
	}
	barrierWith(t, again, "world/**")

	// request answers under the subscription too.
	if err := again.Send(stepCtx(t), protocol.Request{Known: nil}); err != nil {
		t.Fatal(err)
	}
	if _, ids := packIDs(t, expect(t, again, protocol.TypePack)); !slices.Equal(ids, []history.ID{id1, id3, id5, id6, id8}) {
		t.Fatalf("request answer = %v", ids)
	}
}

func TestPresenceRelayAndTTLRule(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	ka := newKey(t)
	a := h.dial(t, "p", client.Options{Key: ka})
	b := h.dial(t, "p", client.Options{})
	expect(t, a, protocol.TypePeerJoined)

	if err := a.SendRaw(stepCtx(t), []byte(`{"type":"presence","data":{"cursor":[1,2]},"ttl_ms":500,"now_unix_ms":1700000000000}`)); err != nil {
		t.Fatal(err)
	}
	m := expect(t, b, protocol.TypePresence)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(m.Raw, &got); err != nil {
		t.Fatal(err)
	}
	if string(got["from"]) != `"`+pubHex(ka)+`"` || string(got["data"]) != `{"cursor":[1,2]}` || string(got["ttl_ms"]) != "500" || len(got) != 4 {
		t.Fatalf("relayed presence = %s", m.Raw)
	}
	barrier(t, a) // not echoed

	if err := a.SendRaw(stepCtx(t), []byte(`{"type":"presence","data":1,"ttl_ms":500}`)); err != nil {
		t.Fatal(err)
	}
	e, _ := expect(t, a, protocol.TypeError).AsError()
	if e.Msg != "invalid presence: ttl_ms requires now_unix_ms (the client clock the lease starts from)" {
		t.Fatalf("error = %q", e.Msg)
	}
	barrier(t, a) // the socket stays open
	barrier(t, b) // and nothing was relayed
}

func TestWebRTCRelayAddsFrom(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	ka, kb := newKey(t), newKey(t)
	a := h.dial(t, "rtc", client.Options{Key: ka})
	b := h.dial(t, "rtc", client.Options{Key: kb})
	c := h.dial(t, "rtc", client.Options{})
	expect(t, a, protocol.TypePeerJoined)
	expect(t, a, protocol.TypePeerJoined)
	expect(t, b, protocol.TypePeerJoined)

	offer := `{"type":"webrtc-offer","to":"` + pubHex(kb) + `","from":"forged","sdp":"v=0"}`
	if err := a.SendRaw(stepCtx(t), []byte(offer)); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(expect(t, b, protocol.TypeWebRTCOffer).Raw, &got); err != nil {
		t.Fatal(err)
	}
	if got["from"] != pubHex(ka) || got["to"] != pubHex(kb) || got["sdp"] != "v=0" {
		t.Fatalf("offer = %v", got)
	}
	barrier(t, c) // addressed to b only

	if err := a.SendRaw(stepCtx(t), []byte(`{"type":"webrtc-ice","candidate":"x"}`)); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*client.Conn{b, c} {
		if err := json.Unmarshal(expect(t, o, protocol.TypeWebRTCICE).Raw, &got); err != nil || got["from"] != pubHex(ka) {
			t.Fatalf("ice = %v %v", got, err)
		}
	}
	barrier(t, a)

	stranger := pubHex(newKey(t))
	if err := a.SendRaw(stepCtx(t), []byte(`{"type":"webrtc-answer","to":"`+stranger+`"}`)); err != nil {
		t.Fatal(err)
	}
	if e, _ := expect(t, a, protocol.TypeError).AsError(); e.Msg != "invalid webrtc message: to names no peer in this room" {
		t.Fatalf("error = %q", e.Msg)
	}
}

func TestIdleRoomIsUnloadedAndReloaded(t *testing.T) {
	store := newRecordingStore()
	h := newHarness(t, dataplane.Config{RoomStore: store, IdleTimeout: 50 * time.Millisecond})
	key := newKey(t)
	c := h.dial(t, "idle", client.Options{Key: key})
	n, id := mkNode(t, key, 1)
	send(t, c, n)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle room to be released", func() bool { return store.count("release idle") == 1 })
	if st := h.srv.Stats(); st.Loaded != 0 {
		t.Fatalf("stats after unload = %+v", st)
	}
	// Open again reloads it; the history is all there.
	late := h.dial(t, "idle", client.Options{})
	if _, ids := packIDs(t, expect(t, late, protocol.TypePack)); !slices.Equal(ids, []history.ID{id}) {
		t.Fatalf("after reload: %v", ids)
	}
	if store.count("open idle") != 2 {
		t.Fatalf("opens = %d", store.count("open idle"))
	}
	// A room left and rejoined within the timeout is not released.
	if err := late.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to leave", func() bool { return h.srv.Stats().Sessions == 0 })
	h.dial(t, "idle", client.Options{})
	time.Sleep(100 * time.Millisecond) // two timeouts: a stale timer would fire now
	if store.count("release idle") != 1 {
		t.Fatal("a rejoined room was released")
	}
}

func TestShutdownStopsIdleTimersAndStoreCalls(t *testing.T) {
	store := newRecordingStore()
	h := newHarness(t, dataplane.Config{RoomStore: store, IdleTimeout: 100 * time.Millisecond})
	c := h.dial(t, "r", client.Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session to leave", func() bool { return h.srv.Stats().Sessions == 0 })
	if err := h.srv.Shutdown(stepCtx(t)); err != nil {
		t.Fatal(err)
	}
	store.close()
	time.Sleep(200 * time.Millisecond) // past the idle timeout
	if calls := store.afterClose(); calls != 0 {
		t.Fatalf("%d RoomStore calls after shutdown", calls)
	}
	if _, err := h.srv.Publish(stepCtx(t), "r", nil); err == nil {
		t.Fatal("publish after shutdown succeeded")
	}
}
