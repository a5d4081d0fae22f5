package tick_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

// signed builds a node by hand so tests control Lamport and parents.
func signed(t *testing.T, key ed25519.PrivateKey, lamport uint64, parents []history.ID, ops ...*syncv1.Op) history.Accepted {
	t.Helper()
	tx := &syncv1.Transaction{Lamport: lamport, WallMs: 1, Ops: ops}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	return history.Accepted{Node: n, ID: id, Lamport: lamport, Parents: parents}
}

func put(t *testing.T, s *history.MemStore, nodes ...history.Accepted) {
	t.Helper()
	if err := s.Put(nodes); err != nil {
		t.Fatal(err)
	}
}

func wantValue(t *testing.T, m *tick.Materializer, path, want string) {
	t.Helper()
	v, ok := m.Get(path)
	if !ok || v.Blob || string(v.Data) != want {
		t.Errorf("%s = %q (live %v, blob %v), want %q", path, v.Data, ok, v.Blob, want)
	}
}

// orderedKeys returns two keys with a's public key bytewise below b's.
func orderedKeys(t *testing.T) (lo, hi ed25519.PrivateKey) {
	t.Helper()
	a, b := newKey(t), newKey(t)
	if bytes.Compare(a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)) > 0 {
		a, b = b, a
	}
	return a, b
}

func TestMaterializerLastWriterWins(t *testing.T) {
	lo, hi := orderedKeys(t)
	t.Run("higher lamport wins whatever the arrival order", func(t *testing.T) {
		s, m := history.NewMemStore(), tick.NewMaterializer()
		put(t, s, signed(t, lo, 7, nil, client.Set("k", []byte("seven"))))
		m.Update(s)
		put(t, s, signed(t, hi, 3, nil, client.Set("k", []byte("three"))))
		if n := m.Update(s); n != 1 {
			t.Fatalf("second Update applied %d nodes, want only the new one", n)
		}
		wantValue(t, m, "k", "seven")
	})
	t.Run("equal lamport: higher author wins", func(t *testing.T) {
		for _, first := range []ed25519.PrivateKey{lo, hi} {
			s, m := history.NewMemStore(), tick.NewMaterializer()
			second := hi
			if bytes.Equal(first, hi) {
				second = lo
			}
			put(t, s, signed(t, first, 4, nil, client.Set("k", []byte(fmt.Sprint(first.Public())))))
			put(t, s, signed(t, second, 4, nil, client.Set("k", []byte(fmt.Sprint(second.Public())))))
			m.Update(s)
			wantValue(t, m, "k", fmt.Sprint(hi.Public()))
		}
	})
	t.Run("equal lamport and author: higher node id wins", func(t *testing.T) {
		s, m := history.NewMemStore(), tick.NewMaterializer()
		a := signed(t, lo, 2, nil, client.Set("k", []byte("a")))
		b := signed(t, lo, 2, nil, client.Set("k", []byte("b")))
		put(t, s, a, b)
		m.Update(s)
		want := "a"
		if bytes.Compare(b.ID[:], a.ID[:]) > 0 {
			want = "b"
		}
		wantValue(t, m, "k", want)
	})
	t.Run("one node writing a path twice: the first op wins (reference)", func(t *testing.T) {
		s, m := history.NewMemStore(), tick.NewMaterializer()
		put(t, s, signed(t, lo, 1, nil, client.Set("k", []byte("first")), client.Set("k", []byte("second"))))
		m.Update(s)
		wantValue(t, m, "k", "first")
	})
}

func TestMaterializerDeleteBlobAndOpaque(t *testing.T) {
	key := newKey(t)
	s, m := history.NewMemStore(), tick.NewMaterializer()
	a := signed(t, key, 1, nil, client.Set("gone", []byte("v")), client.SetBlob("pic", []byte{1, 2}, "image/png"),
		&syncv1.Op{Path: "doc", Kind: &syncv1.Op_Text{Text: &syncv1.OpaqueOp{Data: []byte("ins")}}})
	b := signed(t, key, 2, []history.ID{a.ID}, client.Delete("gone"))
	put(t, s, a, b)
	m.Update(s)
	if v, ok := m.Get("gone"); ok {
		t.Errorf("deleted path still live: %q", v.Data)
	}
	if v, ok := m.Get("pic"); !ok || !v.Blob || v.MediaType != "image/png" || !bytes.Equal(v.Data, []byte{1, 2}) {
		t.Errorf("blob = %+v (live %v), want image/png [1 2]", v, ok)
	}
	if _, ok := m.Get("doc"); ok {
		t.Error("a text op set a map value; text and list ops are opaque")
	}
	// A delete is a tombstone: a concurrent older set arriving later does
	// not revive the path, a newer one does.
	put(t, s, signed(t, key, 1, nil, client.Set("gone", []byte("older"))))
	m.Update(s)
	if _, ok := m.Get("gone"); ok {
		t.Error("an older set revived a deleted path")
	}
	put(t, s, signed(t, key, 3, []history.ID{b.ID}, client.Set("gone", []byte("back"))))
	m.Update(s)
	wantValue(t, m, "gone", "back")
	if got := m.Prefix(""); len(got) != 2 || got[0].Path != "gone" || got[1].Path != "pic" {
		t.Errorf("Prefix(\"\") = %+v, want gone and pic in path order", got)
	}
}

// TestMaterializerIncrementalEqualsFull builds random DAGs from several
// authors and checks that catching up in random steps ends in the same map
// and frontier as one pass over the whole history, and as the same history
// stored in another topological order.
func TestMaterializerIncrementalEqualsFull(t *testing.T) {
	keys := []ed25519.PrivateKey{newKey(t), newKey(t), newKey(t)}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		var nodes []history.Accepted
		lamports := map[history.ID]uint64{}
		for len(nodes) < 60 {
			var parents []history.ID
			var lam uint64
			for _, i := range rng.Perm(len(nodes))[:min(len(nodes), rng.IntN(3))] {
				parents = append(parents, nodes[i].ID)
				lam = max(lam, lamports[nodes[i].ID])
			}
			var ops []*syncv1.Op
			for range 1 + rng.IntN(3) {
				p := fmt.Sprintf("k%d", rng.IntN(5))
				if rng.IntN(4) == 0 {
					ops = append(ops, client.Delete(p))
				} else {
					ops = append(ops, client.Set(p, fmt.Appendf(nil, "%d", rng.Int())))
				}
			}
			// Lamports sometimes tie so author and id tie-breaks matter.
			a := signed(t, keys[rng.IntN(len(keys))], lam+1+uint64(rng.IntN(2)), parents, ops...)
			if _, dup := lamports[a.ID]; dup {
				continue // the same content twice is one node
			}
			lamports[a.ID] = a.Lamport
			nodes = append(nodes, a)
		}

		full, fullStore := tick.NewMaterializer(), history.NewMemStore()
		put(t, fullStore, nodes...)
		full.Update(fullStore)

		inc, incStore := tick.NewMaterializer(), history.NewMemStore()
		for i := 0; i < len(nodes); {
			j := min(len(nodes), i+1+rng.IntN(10))
			put(t, incStore, nodes[i:j]...)
			inc.Update(incStore)
			i = j
		}

		// Another topological order: repeatedly store a random node whose
		// parents are stored.
		other, otherStore := tick.NewMaterializer(), history.NewMemStore()
		left := slices.Clone(nodes)
		for len(left) > 0 {
			var ready []int
			for i, a := range left {
				if !slices.ContainsFunc(a.Parents, func(p history.ID) bool { return !otherStore.Has(p) }) {
					ready = append(ready, i)
				}
			}
			i := ready[rng.IntN(len(ready))]
			put(t, otherStore, left[i])
			left = slices.Delete(left, i, i+1)
		}
		other.Update(otherStore)

		want := fmt.Sprint(full.Prefix(""))
		for name, m := range map[string]*tick.Materializer{"incremental": inc, "reordered": other} {
			if got := fmt.Sprint(m.Prefix("")); got != want {
				t.Fatalf("seed %d: %s map differs from one full pass:\n got %s\nwant %s", seed, name, got, want)
			}
			if !slices.Equal(m.Frontier(), fullStore.Frontier()) {
				t.Fatalf("seed %d: %s frontier differs from the store's", seed, name)
			}
			if applied, skipped := m.Nodes(); applied != len(nodes) || skipped != 0 {
				t.Fatalf("seed %d: %s applied %d (skipped %d), want each of %d nodes once", seed, name, applied, skipped, len(nodes))
			}
		}
	}
}
