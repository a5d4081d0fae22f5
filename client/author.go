package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// GenerateKey makes a new Ed25519 identity for a peer: the private key
// signs its nodes, and the hex of the public key is its pubkey in hello.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client: generate key: %w", err)
	}
	return priv, nil
}

// PubkeyHex is the form a key takes in hello.pubkey and in peer events.
func PubkeyHex(key ed25519.PrivateKey) string {
	return hex.EncodeToString(key.Public().(ed25519.PublicKey))
}

// Author writes signed nodes for one key and keeps what a well-behaved
// writer must: a Lamport clock above everything it has seen, and the local
// frontier (the nodes nothing it has seen builds on), which become the
// parents of its next node and the frontier of its next hello. It is safe
// for concurrent use.
type Author struct {
	key ed25519.PrivateKey
	now func() time.Time

	mu      sync.Mutex
	lamport uint64
	known   map[history.ID]struct{}
	// referenced holds every id some known node names as a parent;
	// the frontier is known minus referenced.
	referenced map[history.ID]struct{}
}

// NewAuthor returns an Author for key with an empty history.
func NewAuthor(key ed25519.PrivateKey) *Author {
	return &Author{key: key, now: time.Now, known: map[history.ID]struct{}{}, referenced: map[history.ID]struct{}{}}
}

// Key is the author's private key.
func (a *Author) Key() ed25519.PrivateKey { return a.key }

// Write signs a node holding ops on top of the current frontier and adds it
// to the author's history. Send it with Conn.SendPack.
func (a *Author) Write(ops ...*syncv1.Op) (*syncv1.Node, history.ID, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tx := &syncv1.Transaction{
		Lamport: a.lamport + 1,
		WallMs:  uint64(a.now().UnixMilli()),
		Ops:     ops,
	}
	for _, p := range a.frontierLocked() {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(a.key, tx)
	if err != nil {
		return nil, history.ID{}, fmt.Errorf("client: write: %w", err)
	}
	a.addLocked(id, tx.Lamport, tx.Parents)
	return n, id, nil
}

// Observe adds nodes received from the room (catch-up or relay) to the
// author's view, so its next node follows them. Nodes that do not decode
// are skipped and reported; the server has validated what it relays.
func (a *Author) Observe(nodes ...*syncv1.Node) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var bad int
	for _, n := range nodes {
		var tx syncv1.Transaction
		if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil {
			bad++
			continue
		}
		a.addLocked(history.NodeID(n), tx.GetLamport(), tx.GetParents())
	}
	if bad > 0 {
		return fmt.Errorf("client: observe: %d of %d nodes do not decode", bad, len(nodes))
	}
	return nil
}

// Frontier is the author's current frontier, sorted: pass it as
// Options.Frontier when reconnecting so the server sends only what is new.
func (a *Author) Frontier() []history.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frontierLocked()
}

// Lamport is the highest Lamport clock the author has written or seen.
func (a *Author) Lamport() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lamport
}

func (a *Author) addLocked(id history.ID, lamport uint64, parents [][]byte) {
	a.known[id] = struct{}{}
	a.lamport = max(a.lamport, lamport)
	for _, p := range parents {
		if len(p) == history.IDSize {
			a.referenced[history.ID(p)] = struct{}{}
		}
	}
}

func (a *Author) frontierLocked() []history.ID {
	out := make([]history.ID, 0, 1)
	for id := range a.known {
		if _, ok := a.referenced[id]; !ok {
			out = append(out, id)
		}
	}
	history.SortIDs(out)
	return out
}

// Set is an op that sets path to value (application bytes, often JSON).
func Set(path string, value []byte) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: value}}}
}

// Delete is an op that deletes the value at path.
func Delete(path string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_Delete{Delete: &syncv1.MapDelete{}}}
}

// SetBlob is an op that sets path to a blob of the given media type.
func SetBlob(path string, data []byte, mediaType string) *syncv1.Op {
	return &syncv1.Op{Path: path, Kind: &syncv1.Op_SetBlob{SetBlob: &syncv1.SetBlob{Data: data, MediaType: mediaType}}}
}
