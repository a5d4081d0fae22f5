package dataplane_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func TestTwoPeersJoinRelayAndLeave(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	keyA, keyB := newKey(t), newKey(t)
	a := h.dial(t, "lobby", client.Options{Key: keyA, PeerID: "alice", PeerType: "ui"})
	w := a.Welcome()
	if w.ServerPubkey != h.serverPubHex() || len(w.Peers) != 0 || len(w.Frontier) != 0 || w.Root != history.Root(nil) {
		t.Fatalf("first welcome = %+v", w)
	}

	b := h.dial(t, "lobby", client.Options{Key: keyB, PeerID: "bob", PeerType: "bot"})
	if got := b.Welcome().Peers; len(got) != 1 || got[0] != (protocol.PeerInfo{Pubkey: pubHex(keyA), PeerID: "alice", PeerType: "ui"}) {
		t.Fatalf("B's welcome peers = %+v", got)
	}
	pj, err := expect(t, a, protocol.TypePeerJoined).AsPeerJoined()
	if err != nil {
		t.Fatal(err)
	}
	if pj.From != pubHex(keyB) || pj.Pubkey != pubHex(keyB) || pj.PeerID != "bob" || pj.PeerType != "bot" {
		t.Fatalf("peer-joined = %+v", pj)
	}

	node, id := mkNode(t, keyA, 1)
	if err := a.SendPack(stepCtx(t), []*syncv1.Node{node}); err != nil {
		t.Fatal(err)
	}
	ack, err := expect(t, a, protocol.TypePackAck).AsPackAck()
	if err != nil {
		t.Fatal(err)
	}
	if ack.Accepted != 1 || ack.Rejected != 0 || ack.Incoming != 1 || ack.Rejections == nil || len(ack.Rejections) != 0 {
		t.Fatalf("ack = %+v", ack)
	}
	p, ids := packIDs(t, expect(t, b, protocol.TypePack))
	if p.From != pubHex(keyA) || !slices.Equal(ids, []history.ID{id}) || p.Root != history.Root([]history.ID{id}) {
		t.Fatalf("relay to B = %+v %v", p, ids)
	}
	barrier(t, a) // A does not get its own pack back

	// Resending is idempotent: accepted, but nothing new is relayed.
	if err := a.SendPack(stepCtx(t), []*syncv1.Node{node}); err != nil {
		t.Fatal(err)
	}
	if ack, _ := expect(t, a, protocol.TypePackAck).AsPackAck(); ack.Accepted != 1 || ack.Incoming != 1 {
		t.Fatalf("duplicate ack = %+v", ack)
	}
	barrier(t, b)

	if st := h.srv.Stats(); st != (dataplane.Stats{Rooms: 1, Loaded: 1, Sessions: 2, Peers: 2, Nodes: 1}) {
		t.Fatalf("stats = %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	pl, err := expect(t, a, protocol.TypePeerLeft).AsPeerLeft()
	if err != nil {
		t.Fatal(err)
	}
	if *pl != (protocol.PeerLeft{Type: protocol.TypePeerLeft, From: pubHex(keyB), Pubkey: pubHex(keyB), PeerID: "bob", PeerType: "bot"}) {
		t.Fatalf("peer-left = %+v", pl)
	}
}

func TestPackWithBadNodesLandsTheGoodOne(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	key := newKey(t)
	a := h.dial(t, "r", client.Options{Key: key})
	b := h.dial(t, "r", client.Options{})
	expect(t, a, protocol.TypePeerJoined)

	good, goodID := mkNode(t, key, 1)

	badSig, badSigID := mkNode(t, key, 2)
	badSig = proto.CloneOf(badSig)
	badSig.Signature[10] ^= 0x40

	// Transaction bytes altered after signing: the id of what arrives is
	// not the id that was signed.
	orig, _ := mkNode(t, key, 3)
	var tx syncv1.Transaction
	if err := proto.Unmarshal(orig.TransactionBytes, &tx); err != nil {
		t.Fatal(err)
	}
	tx.Lamport = 4
	altered, _ := proto.Marshal(&tx)
	tampered := &syncv1.Node{TransactionBytes: altered, Signature: orig.Signature}
	tamperedID := history.NodeID(tampered)

	orphan, orphanID := mkNode(t, key, 5, history.ID{0x42})

	if err := a.SendPack(stepCtx(t), []*syncv1.Node{badSig, tampered, good, orphan}); err != nil {
		t.Fatal(err)
	}
	ack, err := expect(t, a, protocol.TypePackAck).AsPackAck()
	if err != nil {
		t.Fatal(err)
	}
	if ack.Accepted != 1 || ack.Rejected != 3 || ack.Incoming != 4 {
		t.Fatalf("ack counts = %+v", ack)
	}
	want := map[string]string{
		badSigID.String():   "bad signature",
		tamperedID.String(): "bad signature",
		orphanID.String():   "missing parent",
	}
	got := map[string]string{}
	for _, r := range ack.Rejections {
		got[r.ID] = r.Reason
	}
	if len(got) != 3 || got[badSigID.String()] != want[badSigID.String()] ||
		got[tamperedID.String()] != want[tamperedID.String()] || got[orphanID.String()] != want[orphanID.String()] {
		t.Fatalf("rejections = %v, want %v", got, want)
	}
	if _, ids := packIDs(t, expect(t, b, protocol.TypePack)); !slices.Equal(ids, []history.ID{goodID}) {
		t.Fatalf("relayed %v, want only the good node", ids)
	}
	if n := h.srv.Stats().Nodes; n != 1 {
		t.Fatalf("stored %d nodes", n)
	}
}

func TestCatchUpOnJoin(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	key := newKey(t)
	// a <- b <- c, and a <- d: frontier {c, d}.
	na, a := mkNode(t, key, 1)
	nb, b := mkNode(t, key, 2, a)
	nc, c := mkNode(t, key, 3, b)
	nd, d := mkNode(t, key, 2, a)
	author := h.dial(t, "hist", client.Options{Key: key})
	// Children first: the server orders the pack itself.
	if err := author.SendPack(stepCtx(t), []*syncv1.Node{nc, nd, nb, na}); err != nil {
		t.Fatal(err)
	}
	if ack, _ := expect(t, author, protocol.TypePackAck).AsPackAck(); ack.Accepted != 4 {
		t.Fatalf("ack = %+v", ack)
	}
	// The history outlives the live room.
	if err := author.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the empty room to be dropped", func() bool { return h.srv.Stats().Rooms == 0 })

	frontier := []history.ID{c, d}
	history.SortIDs(frontier)

	// Each case runs alone in the room, so no peer event interleaves.
	awaitEmpty := func(t *testing.T) {
		waitFor(t, "the previous case's session to leave", func() bool { return h.srv.Stats().Sessions == 0 })
	}
	t.Run("empty frontier gets everything parents first", func(t *testing.T) {
		late := h.dial(t, "hist", client.Options{})
		w := late.Welcome()
		if !slices.Equal(w.Frontier, history.Strings(frontier)) || w.Root != history.Root(frontier) || len(w.Missing) != 0 {
			t.Fatalf("welcome = %+v", w)
		}
		p, ids := packIDs(t, expect(t, late, protocol.TypePack))
		if p.From != h.serverPubHex() || p.Root != w.Root || len(ids) != 4 {
			t.Fatalf("catch-up = %+v %v", p, ids)
		}
		assertParentsFirst(t, ids, map[history.ID][]history.ID{b: {a}, c: {b}, d: {a}})
		barrier(t, late)
	})
	t.Run("current frontier gets no catch-up", func(t *testing.T) {
		awaitEmpty(t)
		cur := h.dial(t, "hist", client.Options{Frontier: frontier})
		if w := cur.Welcome(); len(w.Missing) != 0 {
			t.Fatalf("missing = %v", w.Missing)
		}
		barrier(t, cur)
	})
	t.Run("partial frontier gets the rest and missing names unknown ids", func(t *testing.T) {
		awaitEmpty(t)
		unknown := history.ID{0xde, 0xad}
		part := h.dial(t, "hist", client.Options{Frontier: []history.ID{unknown, b}})
		if w := part.Welcome(); !slices.Equal(w.Missing, []string{unknown.String()}) {
			t.Fatalf("missing = %v", w.Missing)
		}
		_, ids := packIDs(t, expect(t, part, protocol.TypePack))
		if !slices.Equal(ids, []history.ID{c, d}) && !slices.Equal(ids, []history.ID{d, c}) {
			t.Fatalf("catch-up ids = %v, want c and d", ids)
		}
		barrier(t, part)
	})
	t.Run("request answers what known does not cover", func(t *testing.T) {
		awaitEmpty(t)
		cur := h.dial(t, "hist", client.Options{Frontier: frontier})
		if err := cur.Send(stepCtx(t), protocol.Request{Known: []string{c.String()}}); err != nil {
			t.Fatal(err)
		}
		if _, ids := packIDs(t, expect(t, cur, protocol.TypePack)); !slices.Equal(ids, []history.ID{d}) {
			t.Fatalf("request answer = %v, want [d]", ids)
		}
		if err := cur.Send(stepCtx(t), protocol.Request{Known: history.Strings(frontier)}); err != nil {
			t.Fatal(err)
		}
		barrier(t, cur) // nothing missing: no answer
	})
}

func TestCatchUpIsSplitIntoBoundedPacks(t *testing.T) {
	// A queue of 4: the catch-up takes one slot however many packs it has.
	h := newHarness(t, dataplane.Config{BroadcastCapacity: 4})
	key := newKey(t)
	author := h.dial(t, "big", client.Options{Key: key})
	blob := make([]byte, 40<<10)
	var all []history.ID
	var prev []history.ID
	for i := range 30 { // 1.2 MiB of node data: five 256 KiB packs
		n, id := mkNodeAt(t, key, uint64(i+1), time.Now(), blob, prev...)
		if err := author.SendPack(stepCtx(t), []*syncv1.Node{n}); err != nil {
			t.Fatal(err)
		}
		expect(t, author, protocol.TypePackAck)
		all, prev = append(all, id), []history.ID{id}
	}
	late := h.dial(t, "big", client.Options{})
	var got []history.ID
	packs := 0
	for len(got) < len(all) {
		_, ids := packIDs(t, expect(t, late, protocol.TypePack))
		got = append(got, ids...)
		packs++
	}
	if !slices.Equal(got, all) || packs < 5 {
		t.Fatalf("catch-up in %d packs, order ok = %v", packs, slices.Equal(got, all))
	}
	barrier(t, late)
}

func TestSessionsOfOneKeyAreOnePeer(t *testing.T) {
	h := newHarness(t, dataplane.Config{})
	obs := h.dial(t, "r", client.Options{})
	key := newKey(t)
	one := h.dial(t, "r", client.Options{Key: key, PeerID: "first"})
	two := h.dial(t, "r", client.Options{Key: key, PeerID: "second"})
	if pj, _ := expect(t, obs, protocol.TypePeerJoined).AsPeerJoined(); pj.Pubkey != pubHex(key) || pj.PeerID != "first" {
		t.Fatalf("peer-joined = %+v", pj)
	}
	barrier(t, obs) // only one peer-joined
	// The second session sees the observer once and not itself.
	if peers := two.Welcome().Peers; len(peers) != 1 || peers[0].Pubkey == pubHex(key) {
		t.Fatalf("second session's peers = %+v", peers)
	}
	third := h.dial(t, "r", client.Options{})
	if peers := third.Welcome().Peers; len(peers) != 2 {
		t.Fatalf("third joiner sees %d peers, want 2 (one per key)", len(peers))
	}
	if st := h.srv.Stats(); st.Sessions != 4 || st.Peers != 3 {
		t.Fatalf("stats = %+v", st)
	}
	expect(t, obs, protocol.TypePeerJoined) // third

	expect(t, one, protocol.TypePeerJoined) // third

	// Relays reach the other session of the sender's own key.
	n, id := mkNode(t, key, 1)
	if err := one.SendPack(stepCtx(t), []*syncv1.Node{n}); err != nil {
		t.Fatal(err)
	}
	expect(t, one, protocol.TypePackAck)
	expect(t, two, protocol.TypePeerJoined) // third, queued before the relay
	if _, ids := packIDs(t, expect(t, two, protocol.TypePack)); !slices.Equal(ids, []history.ID{id}) {
		t.Fatalf("relay to the sender's other session = %v", ids)
	}

	if err := one.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, obs, protocol.TypePack) // the relay
	waitFor(t, "the first session to leave", func() bool { return h.srv.Stats().Sessions == 3 })
	barrier(t, obs) // no peer-left while the key has a session
	if err := two.Close(); err != nil {
		t.Fatal(err)
	}
	if pl, _ := expect(t, obs, protocol.TypePeerLeft).AsPeerLeft(); pl.Pubkey != pubHex(key) {
		t.Fatalf("peer-left = %+v", pl)
	}
}

// assertParentsFirst checks that every node comes after its parents.
func assertParentsFirst(t *testing.T, ids []history.ID, parents map[history.ID][]history.ID) {
	t.Helper()
	pos := map[history.ID]int{}
	for i, id := range ids {
		pos[id] = i
	}
	for child, ps := range parents {
		for _, p := range ps {
			if pos[p] >= pos[child] {
				t.Fatalf("%s sent before its parent %s", child, p)
			}
		}
	}
}
