package history_test

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

func TestParseIDRoundTrip(t *testing.T) {
	id := history.NodeID(&syncv1.Node{TransactionBytes: []byte("abc")})
	if id != blake3.Sum256([]byte("abc")) {
		t.Fatal("NodeID is not BLAKE3-256 of the transaction bytes")
	}
	got, err := history.ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(String()) = %v, %v", got, err)
	}
	upper, err := history.ParseID(strings.ToUpper(id.String()))
	if err != nil || upper != id {
		t.Fatalf("upper-case hex: %v, %v", upper, err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 64), strings.Repeat("0", 63), strings.Repeat("0", 66)} {
		if _, err := history.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestRootIsOrderIndependentDigest(t *testing.T) {
	a := history.ID{1}
	b := history.ID{2}
	in := []history.ID{b, a}
	r1 := history.Root(in)
	if in[0] != b {
		t.Fatal("Root modified its input")
	}
	if r2 := history.Root([]history.ID{a, b}); r1 != r2 {
		t.Fatalf("root depends on order: %s vs %s", r1, r2)
	}
	want := blake3.Sum256(append(a[:], b[:]...))
	if r1 != hex.EncodeToString(want[:]) {
		t.Fatalf("root = %s, want hash of sorted concatenation", r1)
	}
	empty := blake3.Sum256(nil)
	if got := history.Root(nil); got != hex.EncodeToString(empty[:]) {
		t.Fatalf("empty root = %s", got)
	}
	if history.Root([]history.ID{a}) == r1 {
		t.Fatal("different frontiers share a root")
	}
}
