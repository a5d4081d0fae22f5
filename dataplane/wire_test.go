package dataplane

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// referencePack is the frame encoding/json makes for a pack: what every
// client parsed before the fast path existed.
func referencePack(t testing.TB, from, root string, nodes []*syncv1.Node) []byte {
	t.Helper()
	s, err := history.EncodePack(nodes)
	if err != nil {
		t.Fatal(err)
	}
	b, err := encode(protocol.Pack{From: from, Nodes: s, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testNodes(t testing.TB, n int) []*syncv1.Node {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*syncv1.Node, n)
	for i := range out {
		node, _, err := history.NewNode(priv, &syncv1.Transaction{Lamport: uint64(i + 1), WallMs: 1})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = node
	}
	return out
}

func TestEncodePackMatchesJSON(t *testing.T) {
	srv := &Server{scratch: newScratchPool()}
	hex32 := hex.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	nodes := testNodes(t, 5)
	for _, tc := range []struct {
		name       string
		from, root string
		nodes      []*syncv1.Node
	}{
		{"relay", hex32, hex32, nodes[:1]},
		{"several nodes", hex32, hex32, nodes},
		{"no from, no root", "", "", nodes[:2]},
		{"no nodes", hex32, "", nil},
		{"escaped from", `a"b\c<d>&` + "\u2028\x01é", hex32, nodes[:1]},
		{"escaped root", hex32, "\xff", nodes[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := srv.encodePack(tc.from, tc.root, tc.nodes)
			if err != nil {
				t.Fatal(err)
			}
			if want := referencePack(t, tc.from, tc.root, tc.nodes); !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzEncodePackMatchesJSON(f *testing.F) {
	for _, s := range []string{"", "00ff", `"`, `\`, "<&>", "\x7f", "é", "\u2028"} {
		f.Add(s, s)
	}
	nodes := testNodes(f, 2)
	srv := &Server{scratch: newScratchPool()}
	f.Fuzz(func(t *testing.T, from, root string) {
		got, err := srv.encodePack(from, root, nodes)
		if err != nil {
			t.Fatal(err)
		}
		if want := referencePack(t, from, root, nodes); !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

func TestEncodeAckMatchesJSON(t *testing.T) {
	for _, ack := range []protocol.PackAck{
		{},
		{Accepted: 1, Incoming: 1},
		{Accepted: 8192, Incoming: 8192, Rejections: []protocol.Rejection{}},
		{Accepted: 1, Rejected: 1, Incoming: 2, Rejections: []protocol.Rejection{{ID: "ab", Reason: history.ReasonSignature}}},
	} {
		got, err := encodeAck(ack)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encode(ack)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}

// BenchmarkEncodeRelay is the committer's per-pack encoding: one relay of
// a one-node pack and its ack.
func BenchmarkEncodeRelay(b *testing.B) {
	srv := &Server{scratch: newScratchPool()}
	hex32 := hex.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	nodes := testNodes(b, 1)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := srv.encodePack(hex32, hex32, nodes); err != nil {
				b.Fatal(err)
			}
			if _, err := encodeAck(protocol.PackAck{Accepted: 1, Incoming: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodePackJSON(hex32, hex32, nodes); err != nil {
				b.Fatal(err)
			}
			if _, err := encode(protocol.PackAck{Accepted: 1, Incoming: 1, Rejections: []protocol.Rejection{}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
