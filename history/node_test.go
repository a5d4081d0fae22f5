package history_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

func TestNewNodeSignsTheID(t *testing.T) {
	key := newKey(t)
	tx := &syncv1.Transaction{Lamport: 3}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tx.Author) != 0 {
		t.Fatal("NewNode modified the caller's transaction")
	}
	if history.NodeID(n) != id {
		t.Fatal("returned id is not the id of the node")
	}
	var got syncv1.Transaction
	if err := proto.Unmarshal(n.TransactionBytes, &got); err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if !bytes.Equal(got.Author, pub) || got.Lamport != 3 {
		t.Fatalf("encoded transaction = %v", &got)
	}
	if !ed25519.Verify(pub, id[:], n.Signature) {
		t.Fatal("signature does not verify over the id")
	}
	// Deterministic: the same transaction gives the same id.
	if _, id2, _ := history.NewNode(key, tx); id2 != id {
		t.Fatal("same transaction, different id")
	}
}

func TestNewNodeRefusesForeignAuthor(t *testing.T) {
	other := newKey(t).Public().(ed25519.PublicKey)
	if _, _, err := history.NewNode(newKey(t), &syncv1.Transaction{Author: other}); err == nil {
		t.Fatal("signed a transaction authored by another key")
	}
	if _, _, err := history.NewNode(ed25519.PrivateKey{1, 2}, &syncv1.Transaction{}); err == nil {
		t.Fatal("accepted a short private key")
	}
	if _, _, err := history.NewNode(newKey(t), nil); err == nil {
		t.Fatal("accepted a nil transaction")
	}
}
