package controlplane

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/pathglob"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

// randomHistory stores n signed nodes by three authors in a real memory
// store through the real validator: each follows one or two earlier
// nodes, often at the same Lamport as a sibling (concurrent writes), and
// sets, deletes or blobs a few paths out of a small set, so that every
// resolution rule is exercised many times.
func randomHistory(t *testing.T, rng *rand.Rand, n int) *history.MemStore {
	t.Helper()
	authors := []author{newAuthor(t), newAuthor(t), newAuthor(t)}
	paths := []string{"k/a1", "k/a2", "k/b", "k/c/d", "x/y", "intent/p1/move"}
	st := history.NewMemStore()
	var ids []history.ID
	lamports := map[history.ID]uint64{}
	for i := range n {
		var parents []history.ID
		lamport := uint64(1)
		if len(ids) > 0 {
			parents = append(parents, ids[len(ids)-1-rng.IntN(min(len(ids), 4))])
			if rng.IntN(2) == 0 {
				if p := ids[rng.IntN(len(ids))]; p != parents[0] {
					parents = append(parents, p)
				}
			}
			for _, p := range parents {
				lamport = max(lamport, lamports[p]+1)
			}
		}
		var ops []*syncv1.Op
		for range rng.IntN(3) + 1 {
			path := paths[rng.IntN(len(paths))]
			switch rng.IntN(5) {
			case 0:
				ops = append(ops, deleteOp(path))
			case 1:
				ops = append(ops, blobOp(path, fmt.Sprint("blob", i), "application/octet-stream"))
			case 2:
				ops = append(ops, textOp(path))
			default:
				ops = append(ops, setOp(path, fmt.Sprint(i)))
			}
		}
		node, id := authors[rng.IntN(len(authors))].write(t, lamport, ops, parents...)
		res := (&history.Validator{}).Validate(st, []*syncv1.Node{node})
		if _, v, bad := firstProblem(res); bad {
			t.Fatalf("node %d refused: %s", i, v.Reason)
		}
		if err := st.Put(res.Accepted); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		lamports[id] = lamport
	}
	return st
}

// TestFoldAgreesWithTickMaterializer: the projection's winner of every
// path is exactly the tick materializer's (the same last-writer-wins rule
// over the same history), and the pattern only selects.
func TestFoldAgreesWithTickMaterializer(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(16) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			// Small and large histories: in a small one the last node's
			// own conflicts (one node writing a path twice) decide often.
			st := randomHistory(t, rand.New(rand.NewPCG(seed, 7)), 4+int(seed)*5)
			m := tick.NewMaterializer()
			m.Update(st)
			for _, glob := range []string{"**", "k/**", "k/a*", "intent/*/move"} {
				pat, err := pathglob.Compile(glob)
				if err != nil {
					t.Fatal(err)
				}
				p, err := foldProjection(ctx, st, pat)
				if err != nil {
					t.Fatal(err)
				}
				if p.nodes != st.Len() || p.root != history.Root(st.Frontier()) || p.maxLamport != st.MaxLamport() {
					t.Fatalf("%s: nodes %d root %s max %d; store %d %s %d", glob, p.nodes, p.root, p.maxLamport, st.Len(), history.Root(st.Frontier()), st.MaxLamport())
				}
				got := map[string]projectionEntry{}
				for i, e := range p.entries {
					if i > 0 && p.entries[i-1].path >= e.path {
						t.Fatalf("%s: entries not sorted at %q", glob, e.path)
					}
					got[e.path] = e
				}
				for _, want := range m.Prefix("") {
					e, ok := got[want.Path]
					if !pat.Match(want.Path) {
						if ok {
							t.Fatalf("%s: %s is outside the pattern", glob, want.Path)
						}
						continue
					}
					if !ok || string(e.value) != string(want.Value.Data) || e.blob != want.Value.Blob || e.mediaType != want.Value.MediaType {
						t.Fatalf("%s: %s = %+v (%v), tick says %+v", glob, want.Path, e, ok, want.Value)
					}
					delete(got, want.Path)
					// The stamp answered is the winning node's.
					n, stored := st.Get(e.at.Node)
					if !stored {
						t.Fatalf("%s: winner %s of %s is not stored", glob, e.at.Node, e.path)
					}
					d, err := decodeStored(n)
					if err != nil || d.tx.GetLamport() != e.at.Lamport || hex.EncodeToString(d.tx.GetAuthor()) != hex.EncodeToString(e.at.Author[:]) {
						t.Fatalf("%s: stamp of %s does not match node %s", glob, e.path, e.at.Node)
					}
				}
				if len(got) != 0 {
					t.Fatalf("%s: paths the tick holds deleted or never set: %v", glob, got)
				}
			}
		})
	}
}

// TestFoldCancelled: a build stops with the context's error.
func TestFoldCancelled(t *testing.T) {
	st := randomHistory(t, rand.New(rand.NewPCG(1, 1)), 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := foldProjection(ctx, st, pathglob.Pattern{}); err != context.Canceled {
		t.Fatalf("fold with a cancelled context = %v", err)
	}
}

func TestProjectionPage(t *testing.T) {
	p := &projection{}
	for _, path := range []string{"a", "b/1", "b/2", "b/3", "c"} {
		p.entries = append(p.entries, projectionEntry{path: path, value: []byte("v")})
	}
	paths := func(es []projectionEntry) (out []string) {
		for _, e := range es {
			out = append(out, e.path)
		}
		return out
	}
	for _, tc := range []struct {
		prefix, from string
		limit, bytes int
		want         string
		next         string
	}{
		{"", "", 10, 1 << 20, "[a b/1 b/2 b/3 c]", ""},
		{"", "", 2, 1 << 20, "[a b/1]", "b/2"},
		{"", "b/2", 2, 1 << 20, "[b/2 b/3]", "c"},
		{"b/", "", 10, 1 << 20, "[b/1 b/2 b/3]", ""},
		{"b/", "b/3", 10, 1 << 20, "[b/3]", ""},
		{"b/", "a", 1, 1 << 20, "[b/1]", "b/2"},
		{"b/", "c", 10, 1 << 20, "[]", ""},
		{"zz", "", 10, 1 << 20, "[]", ""},
		// Over the byte budget: at least one entry, then stop.
		{"", "", 10, 1, "[a]", "b/1"},
	} {
		got, next := p.page(tc.prefix, tc.from, tc.limit, tc.bytes)
		if fmt.Sprint(paths(got)) != tc.want || next != tc.next {
			t.Errorf("page(%q, %q, %d, %d) = %v, %q; want %s, %q", tc.prefix, tc.from, tc.limit, tc.bytes, paths(got), next, tc.want, tc.next)
		}
	}
}

// TestProjectionCacheBounds: least recently used first out, by count and
// by bytes; get marks use, room lists without marking, drop is idempotent.
func TestProjectionCacheBounds(t *testing.T) {
	c := &projectionCache{maxCount: 3, maxBytes: 1000}
	mk := func(room, name string, size int) *projection { return &projection{room: room, name: name, size: size} }
	c.put(mk("r", "a", 100))
	c.put(mk("r", "b", 100))
	c.put(mk("s", "a", 100))
	if _, ok := c.get(projectionKey{"r", "a"}); !ok {
		t.Fatal("r/a missing")
	}
	c.put(mk("r", "c", 100)) // evicts r/b, the least recently used
	if _, ok := c.get(projectionKey{"r", "b"}); ok {
		t.Fatal("r/b survived eviction")
	}
	if n, b := c.len(); n != 3 || b != 300 {
		t.Fatalf("len = %d, %d bytes", n, b)
	}
	if got := c.room("r"); len(got) != 2 || got["a"] == nil || got["c"] == nil {
		t.Fatalf("room r = %v", got)
	}
	// Replacing a build keeps one entry and accounts its new size.
	c.put(mk("r", "a", 300))
	if n, b := c.len(); n != 3 || b != 500 {
		t.Fatalf("after replace: %d, %d bytes", n, b)
	}
	// A big build pushes out the older ones until the bytes fit.
	c.put(mk("t", "big", 900))
	if n, b := c.len(); n != 1 || b != 900 {
		t.Fatalf("after a big build: %d, %d bytes", n, b)
	}
	if !c.drop(projectionKey{"t", "big"}) || c.drop(projectionKey{"t", "big"}) {
		t.Fatal("drop is not idempotent")
	}
	// The zero value works with the default bounds.
	var z projectionCache
	z.put(mk("r", "a", 1))
	if _, ok := z.get(projectionKey{"r", "a"}); !ok || z.maxCount != maxCachedProjections || z.maxBytes != maxCachedProjectionBytes {
		t.Fatal("zero-value cache")
	}
}
