package tick

import (
	"testing"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// FuzzApply feeds arbitrary transaction bytes to the materializer: room
// history is client input, and whatever slipped past validation must not
// crash the tick.
func FuzzApply(f *testing.F) {
	seed := func(tx *syncv1.Transaction) []byte {
		b, err := proto.Marshal(tx)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	author := make([]byte, 32)
	f.Add(seed(&syncv1.Transaction{Author: author, Lamport: 1, Ops: []*syncv1.Op{
		{Path: "intent/x", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte("v")}}},
		{Path: "world/x", Kind: &syncv1.Op_Delete{Delete: &syncv1.MapDelete{}}},
	}}))
	f.Add(seed(&syncv1.Transaction{Author: author, Lamport: 2, Parents: [][]byte{make([]byte, 32), {1}}, Ops: []*syncv1.Op{
		{Path: "intent/b", Kind: &syncv1.Op_SetBlob{SetBlob: &syncv1.SetBlob{Data: []byte{0}, MediaType: "x/y"}}},
		{Path: "intent/t", Kind: &syncv1.Op_Text{Text: &syncv1.OpaqueOp{}}},
		{Path: "intent/n"},
	}}))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, txBytes []byte) {
		m := NewMaterializer()
		n := &syncv1.Node{TransactionBytes: txBytes}
		m.apply(history.NodeID(n), n)
		m.apply(history.NodeID(n), n) // idempotent on a repeat
		for _, e := range m.Prefix("") {
			if v, ok := m.Get(e.Path); !ok || !v.Equal(e.Value) {
				t.Fatalf("Prefix and Get disagree on %q", e.Path)
			}
		}
		Plan(m, "")
	})
}
