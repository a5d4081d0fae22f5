package client_test

import (
	"slices"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/client"
	"github.com/nodalmerge/nodalmerge-go/dataplane"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"google.golang.org/protobuf/proto"
)

// TestAuthorChainsItsNodes: each node an Author writes follows the previous
// one, with a Lamport clock one higher, and validates as a chain.
func TestAuthorChainsItsNodes(t *testing.T) {
	key, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a := client.NewAuthor(key)
	n1, id1, err := a.Write(client.Set("world/a", []byte(`1`)))
	if err != nil {
		t.Fatal(err)
	}
	n2, id2, err := a.Write(client.Delete("world/a"), client.SetBlob("world/b", []byte{1, 2}, "application/octet-stream"))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Frontier(); !slices.Equal(got, []history.ID{id2}) || a.Lamport() != 2 {
		t.Fatalf("frontier %v lamport %d, want [%s] and 2", got, a.Lamport(), id2)
	}
	res := (&history.Validator{}).Validate(history.NewMemStore(), []*syncv1.Node{n2, n1})
	if acc, rej := res.Counts(); acc != 2 || rej != 0 {
		t.Fatalf("the author's chain validates %d accepted, %d rejected: %+v", acc, rej, res.Verdicts)
	}
	if tx := decodeTx(t, n2); len(tx.GetParents()) != 1 || history.ID(tx.GetParents()[0]) != id1 || tx.GetLamport() != 2 {
		t.Fatalf("second node's parents %x lamport %d, want [%s] and 2", tx.GetParents(), tx.GetLamport(), id1)
	}
}

func decodeTx(t *testing.T, n *syncv1.Node) *syncv1.Transaction {
	t.Helper()
	var tx syncv1.Transaction
	if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil {
		t.Fatal(err)
	}
	return &tx
}

// TestAuthorObservesOthers: nodes seen from the room join the author's
// frontier and raise its clock, so its next node merges them.
func TestAuthorObservesOthers(t *testing.T) {
	ka, _ := client.GenerateKey()
	kb, _ := client.GenerateKey()
	alice, bob := client.NewAuthor(ka), client.NewAuthor(kb)
	for range 5 {
		if _, _, err := bob.Write(client.Set("world/b", []byte(`x`))); err != nil {
			t.Fatal(err)
		}
	}
	nb, idb, _ := bob.Write(client.Set("world/b", []byte(`y`)))
	_, ida, _ := alice.Write(client.Set("world/a", []byte(`1`)))
	if err := alice.Observe(nb); err != nil {
		t.Fatal(err)
	}
	want := []history.ID{ida, idb}
	history.SortIDs(want)
	if got := alice.Frontier(); !slices.Equal(got, want) {
		t.Fatalf("frontier %v, want both heads %v", got, want)
	}
	merge, _, err := alice.Write(client.Set("world/a", []byte(`2`)))
	if err != nil {
		t.Fatal(err)
	}
	if alice.Lamport() != 7 {
		t.Fatalf("lamport after merging bob's 6 = %d, want 7", alice.Lamport())
	}
	if got := alice.Frontier(); len(got) != 1 || got[0] != history.NodeID(merge) {
		t.Fatalf("merge node did not become the only head: %v", got)
	}
	if err := alice.Observe(&syncv1.Node{TransactionBytes: []byte{0xff}}); err == nil {
		t.Fatal("a node that does not decode was observed silently")
	}
}

// TestAuthorOverTheWire: an Author's nodes are accepted by a real server,
// and its frontier makes a reconnect need no catch-up.
func TestAuthorOverTheWire(t *testing.T) {
	_, url := serve(t, dataplane.Config{})
	ctx := ctx(t)
	key, _ := client.GenerateKey()
	a := client.NewAuthor(key)
	c, err := client.Dial(ctx, url("author"), client.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*syncv1.Node
	for i := range 3 {
		n, _, err := a.Write(client.Set("world/n", []byte{byte('0' + i)}))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	if err := c.SendPack(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.AsPackAck(); err != nil || got.Accepted != 3 || got.Rejected != 0 {
		t.Fatalf("pack-ack = %+v, %v (message %s)", got, err, m.Raw)
	}
	c.Close()

	again, err := client.Dial(ctx, url("author"), client.Options{Key: key, Frontier: a.Frontier()})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	w := again.Welcome()
	if !slices.Equal(w.Frontier, history.Strings(a.Frontier())) || len(w.Missing) != 0 {
		t.Fatalf("welcome frontier %v missing %v, want the author's frontier and nothing missing", w.Frontier, w.Missing)
	}
}
