package history

import (
	"bytes"
	"crypto/ed25519"
)

// Stamp orders writes to one path for last-writer-wins: (Lamport, author,
// node id), highest wins. The reference orders by (Lamport, author) only;
// the node id breaks the remaining tie (one author, two nodes, one
// Lamport) deterministically, so every replica picks the same winner
// whatever the arrival order. The tick materializer and projections share
// it, so a projection of intent/ keys agrees with what a tick mirrors.
type Stamp struct {
	Lamport uint64
	Author  [ed25519.PublicKeySize]byte
	Node    ID
}

// After reports whether s wins over o.
func (s Stamp) After(o Stamp) bool {
	if s.Lamport != o.Lamport {
		return s.Lamport > o.Lamport
	}
	if c := bytes.Compare(s.Author[:], o.Author[:]); c != 0 {
		return c > 0
	}
	return bytes.Compare(s.Node[:], o.Node[:]) > 0
}
