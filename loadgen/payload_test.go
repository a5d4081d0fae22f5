package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

func TestFieldNumbersMatchProto(t *testing.T) {
	for _, c := range []struct {
		msg   protoreflect.ProtoMessage
		field protoreflect.Name
		want  int32
	}{
		{&syncv1.Pack{}, "nodes", int32(fieldPackNodes)},
		{&syncv1.Node{}, "transaction_bytes", int32(fieldNodeTxBytes)},
		{&syncv1.Transaction{}, "ops", int32(fieldTxOps)},
		{&syncv1.Op{}, "set", int32(fieldOpSet)},
		{&syncv1.MapSet{}, "value", int32(fieldMapSetValue)},
	} {
		fd := c.msg.ProtoReflect().Descriptor().Fields().ByName(c.field)
		if fd == nil || int32(fd.Number()) != c.want {
			t.Errorf("%s.%s: proto field %v, loadgen walks %d", c.msg.ProtoReflect().Descriptor().Name(), c.field, fd, c.want)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p := make([]byte, 128)
	fillPayload(p, 7, 1<<40+3)
	pub, seq, ok := parsePayload(p)
	if !ok || pub != 7 || seq != 1<<40+3 {
		t.Fatalf("parsePayload = %d, %d, %v", pub, seq, ok)
	}
	if strings.Trim(string(p[MinPayloadBytes:]), "x") != "" {
		t.Fatal("filler is not all 'x'")
	}
	for _, bad := range [][]byte{nil, p[:MinPayloadBytes-1], append([]byte("NMLG"), p[4:]...)} {
		if _, _, ok := parsePayload(bad); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
}

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestChainIsValidHistory checks pre-signed chains with the server's own
// validator: every node accepted, each the child of the one before.
func TestChainIsValidHistory(t *testing.T) {
	key := testKey(t)
	c, err := signChain(context.Background(), chainSpec{key: key, publisher: 3, packs: 50, packSize: 4, payloadBytes: 40, path: "bench/p3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.frames) != 50 || c.packSize != 4 {
		t.Fatalf("%d frames of %d, want 50 of 4", len(c.frames), c.packSize)
	}
	store := history.NewMemStore()
	v := &history.Validator{}
	var dec sampleDecoder
	var next uint64
	for i, f := range c.frames {
		p, err := protocol.ParsePack(f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		pk, err := history.DecodePack(p.Nodes, 0)
		if err != nil {
			t.Fatal(err)
		}
		res := v.Validate(store, pk.GetNodes())
		if acc, rej := res.Counts(); acc != 4 || rej != 0 {
			t.Fatalf("frame %d: %d accepted, %d rejected: %+v", i, acc, rej, res.Verdicts)
		}
		if err := store.Put(res.Accepted); err != nil {
			t.Fatal(err)
		}
		n, err := dec.decode(f, func(pub uint32, seq uint64) {
			if pub != 3 || seq != next {
				t.Fatalf("frame %d: payload (%d, %d), want (3, %d)", i, pub, seq, next)
			}
			next++
		})
		if err != nil || n != 4 {
			t.Fatalf("frame %d: decode = %d, %v", i, n, err)
		}
	}
	if store.Len() != 200 || len(store.Frontier()) != 1 || store.MaxLamport() != 200 {
		t.Fatalf("store: %d nodes, frontier %d, max lamport %d; want a 200-node chain", store.Len(), len(store.Frontier()), store.MaxLamport())
	}
}

func TestSignChainHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := signChain(ctx, chainSpec{key: testKey(t), packs: 1000, packSize: 1, payloadBytes: 16, path: "p"}); err == nil {
		t.Fatal("signChain ignored a cancelled context")
	}
}

// serverFrame is a relay as the server writes it.
func serverFrame(t testing.TB, nodes string) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.Pack{From: strings.Repeat("ab", 32), Nodes: nodes, Root: strings.Repeat("cd", 32)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeServerFrames(t *testing.T) {
	key := testKey(t)
	c, err := signChain(context.Background(), chainSpec{key: key, publisher: 1, packs: 1, packSize: 3, payloadBytes: 16, path: "x"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := protocol.ParsePack(c.frames[0])
	if err != nil {
		t.Fatal(err)
	}
	var dec sampleDecoder
	count := func(frame []byte) (int, int, error) {
		seen := 0
		n, err := dec.decode(frame, func(uint32, uint64) { seen++ })
		return n, seen, err
	}
	if n, seen, err := count(serverFrame(t, p.Nodes)); err != nil || n != 3 || seen != 3 {
		t.Fatalf("relay frame: %d nodes, %d payloads, %v", n, seen, err)
	}
	// JSON that escapes the base64 (legal, if unusual) takes the slow path.
	escaped := strings.Replace(string(serverFrame(t, p.Nodes)), `"nodes":"`+p.Nodes[:1], `"nodes":"\u00`+hexByte(p.Nodes[0]), 1)
	if n, seen, err := count([]byte(escaped)); err != nil || n != 3 || seen != 3 {
		t.Fatalf("escaped frame: %d nodes, %d payloads, %v", n, seen, err)
	}
	// Nodes that are not ours decode but give no samples.
	other, err := history.EncodePack([]*syncv1.Node{{TransactionBytes: []byte{0x0a, 0x01, 0x00}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, seen, err := count(serverFrame(t, other)); err != nil || n != 1 || seen != 0 {
		t.Fatalf("foreign node: %d nodes, %d payloads, %v", n, seen, err)
	}
	for _, bad := range []string{
		`{"type":"pack","nodes":"***"}`,
		`{"type":"pack","nodes":"/w=="}`, // a truncated tag
		`{"type":"welcome"}`,
		`not json`,
		`{"type":"pack","nodes":"a\"}`,
	} {
		if _, _, err := count([]byte(bad)); err == nil {
			t.Errorf("decode(%s) succeeded", bad)
		}
	}
}

func hexByte(b byte) string {
	return string("0123456789abcdef"[b>>4]) + string("0123456789abcdef"[b&15])
}

func FuzzSampleDecode(f *testing.F) {
	key := testKey(f)
	c, err := signChain(context.Background(), chainSpec{key: key, packs: 1, packSize: 2, payloadBytes: 20, path: "p"})
	if err != nil {
		f.Fatal(err)
	}
	p, err := protocol.ParsePack(c.frames[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(serverFrame(f, p.Nodes))
	f.Add(c.frames[0])
	f.Add([]byte(`{"type":"pack","nodes":"CgA="}`))
	f.Add([]byte(`{"nodes":"\u0041"}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var dec sampleDecoder
		deadline := time.Now().Add(time.Second)
		_, _ = dec.decode(frame, func(uint32, uint64) {
			if time.Now().After(deadline) {
				t.Fatal("decode is too slow")
			}
		})
	})
}
