package history_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

func ids(nodes []*syncv1.Node) []history.ID {
	out := make([]history.ID, len(nodes))
	for i, n := range nodes {
		out[i] = history.NodeID(n)
	}
	return out
}

func TestMemStoreFrontierAndMissing(t *testing.T) {
	key := newKey(t)
	s := history.NewMemStore()
	if len(s.Frontier()) != 0 || s.Len() != 0 || s.MaxLamport() != 0 {
		t.Fatal("new store not empty")
	}
	a, aID := mkNode(t, key, 1)
	b, bID := mkNode(t, key, 2, aID)
	c, cID := mkNode(t, key, 7, aID)
	d, dID := mkNode(t, key, 3, bID)
	mustStore(t, s, a, b, c, d)

	want := []history.ID{cID, dID}
	history.SortIDs(want)
	if got := s.Frontier(); !slices.Equal(got, want) {
		t.Fatalf("frontier = %v, want %v", got, want)
	}
	if s.Len() != 4 || s.MaxLamport() != 7 {
		t.Fatalf("len %d max %d", s.Len(), s.MaxLamport())
	}
	if got, ok := s.Get(bID); !ok || history.NodeID(got) != bID {
		t.Fatal("Get(b) failed")
	}
	if _, ok := s.Get(history.ID{9}); ok {
		t.Fatal("Get of unknown id succeeded")
	}

	cases := []struct {
		name  string
		known []history.ID
		want  []history.ID
	}{
		{"nothing known", nil, []history.ID{aID, bID, cID, dID}},
		{"unknown id ignored", []history.ID{{0xee}}, []history.ID{aID, bID, cID, dID}},
		{"one branch", []history.ID{dID}, []history.ID{cID}},
		{"middle node", []history.ID{bID}, []history.ID{cID, dID}},
		{"frontier", []history.ID{cID, dID}, nil},
		{"frontier plus unknown", []history.ID{dID, {0xee}, cID}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(s.Missing(tc.known)); !slices.Equal(got, tc.want) {
				t.Fatalf("missing = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMemStorePutRefusesIncompleteAncestry(t *testing.T) {
	key := newKey(t)
	s := history.NewMemStore()
	_, aID := mkNode(t, key, 1)
	ok, okID := mkNode(t, key, 9)
	b, bID := mkNode(t, key, 2, aID)
	err := s.Put([]history.Accepted{
		{Node: ok, ID: okID, Lamport: 1},
		{Node: b, ID: bID, Lamport: 2, Parents: []history.ID{aID}},
	})
	if !errors.Is(err, history.ErrMissingParent) {
		t.Fatalf("err = %v", err)
	}
	if s.Len() != 0 {
		t.Fatal("a failed Put stored part of its batch")
	}
	// Re-putting a stored node is a no-op.
	batch := []history.Accepted{{Node: ok, ID: okID, Lamport: 1}}
	if err := s.Put(batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(batch); err != nil || s.Len() != 1 {
		t.Fatalf("second put: %v, len %d", err, s.Len())
	}
}

func TestMemStoreConcurrentReadersAndWriter(t *testing.T) {
	key := newKey(t)
	s := history.NewMemStore()
	var chain []*syncv1.Node
	var prev []history.ID
	for i := range 200 {
		n, id := mkNode(t, key, uint64(i+1), prev...)
		chain = append(chain, n)
		prev = []history.ID{id}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f := s.Frontier()
				if len(f) > 1 {
					t.Error("a chain has one head")
					return
				}
				_ = s.Missing(f)
			}
		})
	}
	for _, n := range chain {
		mustStore(t, s, n)
	}
	close(stop)
	wg.Wait()
	if s.Len() != 200 || len(s.Missing(nil)) != 200 {
		t.Fatal("lost nodes")
	}
}
