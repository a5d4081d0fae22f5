package history_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

func TestPackRoundTrip(t *testing.T) {
	key := newKey(t)
	a, _ := mkNode(t, key, 1)
	b, _ := mkNode(t, key, 2)
	s, err := history.EncodePack([]*syncv1.Node{a, b})
	if err != nil {
		t.Fatal(err)
	}
	p, err := history.DecodePack(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Nodes) != 2 || !proto.Equal(p.Nodes[0], a) || !proto.Equal(p.Nodes[1], b) {
		t.Fatalf("decoded %v", p)
	}
	if _, err := history.DecodePack(s, 1); err == nil || !strings.Contains(err.Error(), "at most 1") {
		t.Fatalf("maxNodes not enforced: %v", err)
	}
	if p, err := history.DecodePack("", 10); err != nil || len(p.Nodes) != 0 {
		t.Fatalf("empty pack: %v %v", p, err)
	}
}

func TestDecodePackErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not base64":     "@@@",
		"url alphabet":   base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff}),
		"not protobuf":   base64.StdEncoding.EncodeToString([]byte{0x0a, 0x05, 0x01}),
		"truncated node": base64.StdEncoding.EncodeToString([]byte{0x0a, 0x03, 0x0a, 0x09}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := history.DecodePack(in, 100)
			if !errors.Is(err, history.ErrInvalidPack) || !strings.HasPrefix(err.Error(), "invalid pack: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func FuzzDecodePack(f *testing.F) {
	key := newKey(f)
	a, aid := mkNode(f, key, 1)
	b, _ := mkNode(f, key, 2, aid)
	good, _ := history.EncodePack([]*syncv1.Node{a, b})
	f.Add(good)
	f.Add("")
	f.Add("@@")
	f.Add(base64.StdEncoding.EncodeToString([]byte{0x0a, 0x02, 0x0a, 0x00}))
	junk, _ := proto.Marshal(&syncv1.Pack{Nodes: []*syncv1.Node{{TransactionBytes: []byte{0xff}, Signature: []byte{1}}}})
	f.Add(base64.StdEncoding.EncodeToString(junk))
	f.Fuzz(func(t *testing.T, in string) {
		p, err := history.DecodePack(in, 64)
		if err != nil {
			if !errors.Is(err, history.ErrInvalidPack) {
				t.Fatalf("error not wrapping ErrInvalidPack: %v", err)
			}
			return
		}
		if len(p.Nodes) > 64 {
			t.Fatalf("%d nodes past the limit", len(p.Nodes))
		}
		// The scan that rate limits are charged from agrees with the
		// decode.
		if raw, err := history.ScanPack(in, 0); err != nil || raw.Nodes != len(p.Nodes) {
			t.Fatalf("ScanPack = %d nodes, %v; decode found %d", raw.Nodes, err, len(p.Nodes))
		}
		s := history.NewMemStore()
		res := validator().Validate(s, p.Nodes)
		if len(res.Verdicts) != len(p.Nodes) {
			t.Fatal("verdict count mismatch")
		}
		if err := s.Put(res.Accepted); err != nil {
			t.Fatalf("accepted nodes did not store: %v", err)
		}
	})
}

func TestScanPackCountsBeforeDecoding(t *testing.T) {
	key := newKey(t)
	a, aid := mkNode(t, key, 1)
	b, _ := mkNode(t, key, 2, aid)
	s, err := history.EncodePack([]*syncv1.Node{a, b})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := history.ScanPack(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(&syncv1.Pack{Nodes: []*syncv1.Node{a, b}})
	if raw.Nodes != 2 || len(raw.Bytes) != len(want) {
		t.Fatalf("scan = %d nodes, %d bytes; want 2, %d", raw.Nodes, len(raw.Bytes), len(want))
	}
	p, err := raw.Decode()
	if err != nil || len(p.Nodes) != 2 || history.NodeID(p.Nodes[1]) != history.NodeID(b) {
		t.Fatalf("decode: %v", err)
	}
	if _, err := history.ScanPack(s, 1); err == nil || err.Error() != "invalid pack: 2 nodes, at most 1 allowed" {
		t.Fatalf("limit: %v", err)
	}
}
