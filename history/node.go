package history

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
)

// NewNode encodes tx, signs its id with priv and returns the node and its id.
// It is how clients and tests make nodes; the server never re-encodes.
//
// When tx.Author is empty the signer's public key is used (on a copy; tx is
// not modified). An author that is not the signer's key is an error, since
// such a node could never pass the signature check.
func NewNode(priv ed25519.PrivateKey, tx *syncv1.Transaction) (*syncv1.Node, ID, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, ID{}, fmt.Errorf("history: new node: private key must be %d bytes, got %d", ed25519.PrivateKeySize, len(priv))
	}
	if tx == nil {
		return nil, ID{}, errors.New("history: new node: nil transaction")
	}
	pub := priv.Public().(ed25519.PublicKey)
	switch {
	case len(tx.GetAuthor()) == 0:
		tx = proto.CloneOf(tx)
		tx.Author = pub
	case !bytes.Equal(tx.GetAuthor(), pub):
		return nil, ID{}, errors.New("history: new node: transaction author is not the signing key")
	}
	// Deterministic so that the same transaction built twice gets one id.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tx)
	if err != nil {
		return nil, ID{}, fmt.Errorf("history: new node: marshal transaction: %w", err)
	}
	n := &syncv1.Node{TransactionBytes: b}
	id := NodeID(n)
	n.Signature = ed25519.Sign(priv, id[:])
	return n, id, nil
}
