package roomstore

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

var testWall = uint64(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli())

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// mkNode signs a node with the given Lamport and parents, ready for Put.
func mkNode(t testing.TB, key ed25519.PrivateKey, lamport uint64, parents ...history.ID) history.Accepted {
	t.Helper()
	// A random value keeps nodes with equal Lamport and parents distinct.
	value := fmt.Appendf(nil, `{"x":%d}`, mrand.Uint64())
	tx := &syncv1.Transaction{
		Lamport: lamport,
		WallMs:  testWall,
		Ops:     []*syncv1.Op{{Path: "world/player/7", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: value}}}},
	}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	return history.Accepted{Node: n, ID: id, Lamport: lamport, Parents: parents}
}

// chain makes n nodes, each the child of the one before; the first is the
// child of parent when given.
func chain(t testing.TB, key ed25519.PrivateKey, n int, parent ...history.ID) []history.Accepted {
	t.Helper()
	out := make([]history.Accepted, 0, n)
	var lamport uint64 = 1
	for range n {
		a := mkNode(t, key, lamport, parent...)
		out = append(out, a)
		parent = []history.ID{a.ID}
		lamport++
	}
	return out
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return s
}

func openRoom(t testing.TB, s *Store, name string) history.Store {
	t.Helper()
	r, err := s.Open(name)
	if err != nil {
		t.Fatalf("Open room %q: %v", name, err)
	}
	return r
}

func mustPut(t testing.TB, r history.Store, nodes ...history.Accepted) {
	t.Helper()
	if err := r.Put(nodes); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// checkHistory asserts that h holds exactly the given ids, that every node
// has a valid signature and id and all its parents, and that Frontier and
// Missing agree with the content.
func checkHistory(t testing.TB, h history.Store, want []history.ID) {
	t.Helper()
	if h.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", h.Len(), len(want))
	}
	for _, id := range want {
		n, ok := h.Get(id)
		if !ok {
			t.Fatalf("node %s missing", id)
		}
		checkNode(t, h, id, n)
	}
	all := h.Missing(nil)
	if len(all) != len(want) {
		t.Fatalf("Missing(nil) returned %d nodes, want %d", len(all), len(want))
	}
	seen := make(map[history.ID]bool, len(all))
	children := make(map[history.ID]bool)
	for _, n := range all {
		tx := decodeTx(t, n)
		for _, p := range tx.GetParents() {
			pid := history.ID(p)
			if !seen[pid] {
				t.Fatalf("Missing(nil) lists a child before its parent %s", pid)
			}
			children[pid] = true
		}
		seen[history.NodeID(n)] = true
	}
	var frontier []history.ID
	for id := range seen {
		if !children[id] {
			frontier = append(frontier, id)
		}
	}
	history.SortIDs(frontier)
	if got := h.Frontier(); !slices.Equal(got, frontier) {
		t.Fatalf("Frontier = %v, want %v", got, frontier)
	}
	if len(want) > 0 {
		if m := h.Missing(h.Frontier()); len(m) != 0 {
			t.Fatalf("Missing(Frontier()) = %d nodes, want none", len(m))
		}
	}
}

func checkNode(t testing.TB, h history.Store, id history.ID, n *syncv1.Node) {
	t.Helper()
	if history.NodeID(n) != id {
		t.Fatalf("node stored under %s has id %s", id, history.NodeID(n))
	}
	tx := decodeTx(t, n)
	if !ed25519.Verify(tx.GetAuthor(), id[:], n.GetSignature()) {
		t.Fatalf("node %s: bad signature", id)
	}
	for _, p := range tx.GetParents() {
		if !h.Has(history.ID(p)) {
			t.Fatalf("node %s: parent %x missing", id, p)
		}
	}
}

func decodeTx(t testing.TB, n *syncv1.Node) *syncv1.Transaction {
	t.Helper()
	tx := new(syncv1.Transaction)
	if err := proto.Unmarshal(n.GetTransactionBytes(), tx); err != nil {
		t.Fatalf("decode transaction: %v", err)
	}
	return tx
}

func ids(nodes []history.Accepted) []history.ID {
	out := make([]history.ID, len(nodes))
	for i, a := range nodes {
		out[i] = a.ID
	}
	return out
}

// crashCopy copies a live store's files as a crash would leave them: what
// the process wrote is in the page cache and survives kill -9, whether or
// not it was fsynced. Nothing may be writing to src meanwhile.
func crashCopy(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy store: %v", err)
	}
	return dst
}

func roomPath(dir, room string) string {
	return filepath.Join(dir, roomsDirName, roomFileName(room))
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
