package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// chain is one publisher's history, signed and encoded before the timed
// window: frames[i] is a complete `pack` envelope holding nodes
// [i*packSize, (i+1)*packSize), each the child of the one before, so the
// server stores a chain (a realistic single writer) rather than a forest
// of roots that would all sit in the room's frontier.
type chain struct {
	key      ed25519.PrivateKey
	packSize int
	frames   [][]byte
}

// chainSpec says what to sign.
type chainSpec struct {
	key          ed25519.PrivateKey
	publisher    uint32 // written into each payload
	packs        int
	packSize     int
	payloadBytes int
	path         string // the op's key path
}

// signChain builds the chain. Transactions are encoded and hashed in
// order (each names its parent's id, and the id needs no signature), then
// the costly part, Ed25519 signing (about 20 µs a node), and the frame
// encoding run on every CPU.
func signChain(ctx context.Context, spec chainSpec) (*chain, error) {
	total := spec.packs * spec.packSize
	pub := spec.key.Public().(ed25519.PublicKey)
	nodes := make([]*syncv1.Node, total)
	ids := make([]history.ID, total)
	wall := uint64(time.Now().UnixMilli())
	payload := make([]byte, spec.payloadBytes)
	marshal := proto.MarshalOptions{Deterministic: true}
	var parent []byte
	for i := range total {
		fillPayload(payload, spec.publisher, uint64(i))
		tx := &syncv1.Transaction{
			Author:  pub,
			Lamport: uint64(i) + 1,
			WallMs:  wall,
			Ops:     []*syncv1.Op{{Path: spec.path, Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: payload}}}},
		}
		if parent != nil {
			tx.Parents = [][]byte{parent}
		}
		b, err := marshal.Marshal(tx)
		if err != nil {
			return nil, fmt.Errorf("loadgen: encode transaction %d: %w", i, err)
		}
		nodes[i] = &syncv1.Node{TransactionBytes: b}
		ids[i] = history.NodeID(nodes[i])
		parent = ids[i][:]
	}

	c := &chain{key: spec.key, packSize: spec.packSize, frames: make([][]byte, spec.packs)}
	workers := min(runtime.GOMAXPROCS(0), max(spec.packs, 1))
	per := (spec.packs + workers - 1) / max(workers, 1)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, spec.packs)
		wg.Go(func() {
			for p := lo; p < hi; p++ {
				if p%256 == 0 && ctx.Err() != nil {
					errs[w] = fmt.Errorf("loadgen: signing: %w", ctx.Err())
					return
				}
				group := nodes[p*spec.packSize : (p+1)*spec.packSize]
				for k, n := range group {
					id := ids[p*spec.packSize+k]
					n.Signature = ed25519.Sign(spec.key, id[:])
				}
				s, err := history.EncodePack(group)
				if err != nil {
					errs[w] = fmt.Errorf("loadgen: %w", err)
					return
				}
				frame, err := json.Marshal(protocol.Pack{Nodes: s})
				if err != nil {
					errs[w] = fmt.Errorf("loadgen: encode pack frame: %w", err)
					return
				}
				c.frames[p] = frame
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// signChains signs one chain per spec, one after the other (each already
// uses every CPU).
func signChains(ctx context.Context, specs []chainSpec) ([]*chain, error) {
	out := make([]*chain, len(specs))
	for i, s := range specs {
		c, err := signChain(ctx, s)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
