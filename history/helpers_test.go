package history_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// testNow is a fixed clock so wall-clock checks are deterministic.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// mkNode signs a transaction with the given Lamport and parents.
func mkNode(t testing.TB, key ed25519.PrivateKey, lamport uint64, parents ...history.ID) (*syncv1.Node, history.ID) {
	t.Helper()
	tx := &syncv1.Transaction{
		Lamport: lamport,
		WallMs:  uint64(testNow.UnixMilli()),
		Ops:     []*syncv1.Op{{Path: "world/player/7", Kind: &syncv1.Op_Set{Set: &syncv1.MapSet{Value: []byte(`{"x":1}`)}}}},
	}
	for _, p := range parents {
		tx.Parents = append(tx.Parents, p[:])
	}
	n, id, err := history.NewNode(key, tx)
	if err != nil {
		t.Fatal(err)
	}
	return n, id
}

func validator() *history.Validator {
	return &history.Validator{Now: func() time.Time { return testNow }}
}

// mustStore validates and stores nodes, failing the test on any rejection.
func mustStore(t testing.TB, s history.Store, nodes ...*syncv1.Node) {
	t.Helper()
	res := validator().Validate(s, nodes)
	for _, v := range res.Verdicts {
		if v.Reason != "" {
			t.Fatalf("node %s rejected: %s", v.ID, v.Reason)
		}
	}
	if err := s.Put(res.Accepted); err != nil {
		t.Fatal(err)
	}
}
