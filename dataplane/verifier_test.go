package dataplane

import (
	"crypto/ed25519"
	"testing"
	"time"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// waitPrepared fails the test if j is not verified in time.
func waitPrepared(t *testing.T, j *commitJob) {
	t.Helper()
	select {
	case <-j.prepared:
	case <-time.After(10 * time.Second):
		t.Fatal("job never verified")
	}
}

func TestVerifierChecksEveryChunk(t *testing.T) {
	vf := newVerifier(&history.Validator{})
	t.Cleanup(vf.Close)
	store := history.NewMemStore()
	// 11 nodes: three chunks, the last one short. Nodes 3 and 9 carry a
	// signature of other bytes, so each chunk's outcome lands at its own
	// index or the test sees it elsewhere.
	nodes := testNodes(t, 11)
	for _, i := range []int{3, 9} {
		nodes[i] = &syncv1.Node{TransactionBytes: nodes[i].GetTransactionBytes(), Signature: append([]byte(nil), nodes[0].GetSignature()...)}
	}
	jobs := make([]*commitJob, 5)
	for k := range jobs {
		jobs[k] = newCommitJob(nil, nodes)
		vf.submit(store, jobs[k])
	}
	for _, j := range jobs {
		waitPrepared(t, j)
		res := (&history.Validator{}).Resolve(store, j.checked)
		for i, v := range res.Verdicts {
			want := ""
			if i == 3 || i == 9 {
				want = history.ReasonSignature
			}
			if v.ID != history.NodeID(nodes[i]) {
				t.Fatalf("verdict %d is for %s", i, v.ID)
			}
			if v.Reason != want {
				t.Fatalf("node %d: reason %q, want %q", i, v.Reason, want)
			}
		}
	}
}

func TestVerifierEmptyPackAndAfterClose(t *testing.T) {
	vf := newVerifier(&history.Validator{})
	empty := newCommitJob(nil, nil)
	vf.submit(nil, empty)
	waitPrepared(t, empty)
	vf.Close()
	vf.Close() // idempotent

	// After Close the checks run on the caller: prepared is closed when
	// submit returns, and no worker is left behind (goleak in TestMain).
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := history.NewNode(priv, &syncv1.Transaction{Lamport: 1, WallMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	j := newCommitJob(nil, []*syncv1.Node{n, n, n, n, n})
	vf.submit(history.NewMemStore(), j)
	if !isClosed(j.prepared) {
		t.Fatal("submit after Close did not verify on the caller")
	}
	for i, c := range j.checked {
		if c.ID != history.NodeID(n) || c.Tx == nil {
			t.Fatalf("checked[%d] = %+v", i, c)
		}
	}
}

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// BenchmarkVerifier is the verification stage alone: one-node packs
// through the worker pool, b.N packs, all cores.
func BenchmarkVerifier(b *testing.B) {
	vf := newVerifier(&history.Validator{})
	b.Cleanup(vf.Close)
	store := history.NewMemStore()
	nodes := testNodes(b, 64)
	jobs := make([]*commitJob, 0, 64)
	b.ResetTimer()
	for i := range b.N {
		j := newCommitJob(nil, nodes[i%64:i%64+1])
		vf.submit(store, j)
		jobs = append(jobs, j)
		if len(jobs) == cap(jobs) {
			for _, j := range jobs {
				<-j.prepared
			}
			jobs = jobs[:0]
		}
	}
	for _, j := range jobs {
		<-j.prepared
	}
}
