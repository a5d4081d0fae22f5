package history_test

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// signTx encodes and signs an arbitrary transaction (including ones NewNode
// would refuse to make).
func signTx(t testing.TB, key ed25519.PrivateKey, tx *syncv1.Transaction) *syncv1.Node {
	t.Helper()
	b, err := proto.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	n := &syncv1.Node{TransactionBytes: b}
	id := history.NodeID(n)
	n.Signature = ed25519.Sign(key, id[:])
	return n
}

func reasons(res *history.Result) []string {
	out := make([]string, len(res.Verdicts))
	for i, v := range res.Verdicts {
		out[i] = v.Reason
	}
	return out
}

func TestValidateRejectsEachFailureAlone(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	now := uint64(testNow.UnixMilli())
	store := history.NewMemStore()
	root, rootID := mkNode(t, key, 1)
	mustStore(t, store, root)

	good, goodID := mkNode(t, key, 2, rootID)

	badSig, _ := mkNode(t, key, 2, rootID)
	badSig = proto.CloneOf(badSig)
	badSig.Signature[0] ^= 0xff

	// Bytes altered after signing: still a valid transaction, but its id
	// (the hash of the bytes as sent) is not the id that was signed.
	orig, _ := mkNode(t, key, 5, rootID)
	var tx syncv1.Transaction
	if err := proto.Unmarshal(orig.TransactionBytes, &tx); err != nil {
		t.Fatal(err)
	}
	tx.Lamport = 6
	altered, _ := proto.Marshal(&tx)
	tampered := &syncv1.Node{TransactionBytes: altered, Signature: orig.Signature}

	orphan, _ := mkNode(t, key, 2, history.ID{0xaa})
	shortAuthor := signTx(t, key, &syncv1.Transaction{Author: pub[:31], Lamport: 2, WallMs: now})
	shortParent := signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 2, WallMs: now, Parents: [][]byte{{1, 2, 3}}})
	garbage := &syncv1.Node{TransactionBytes: []byte{0xff, 0xff}, Signature: make([]byte, 64)}
	shortSig := proto.CloneOf(good)
	shortSig.Signature = shortSig.Signature[:10]
	tooLate := signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 2, WallMs: now + uint64(25*time.Hour/time.Millisecond)})
	tooHigh := signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1 + history.DefaultLamportWindow + 1, WallMs: now})

	nodes := []*syncv1.Node{badSig, tampered, orphan, good, shortAuthor, shortParent, garbage, shortSig, tooLate, tooHigh}
	want := []string{
		history.ReasonSignature, history.ReasonSignature, history.ReasonMissingParent, "",
		history.ReasonMalformed, history.ReasonMalformed, history.ReasonMalformed, history.ReasonSignature,
		history.ReasonWallClock, history.ReasonLamport,
	}
	res := validator().Validate(store, nodes)
	got := reasons(res)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("node %d: reason %q, want %q", i, got[i], want[i])
		}
	}
	if len(res.Accepted) != 1 || res.Accepted[0].ID != goodID || res.Accepted[0].Lamport != 2 {
		t.Fatalf("accepted = %+v", res.Accepted)
	}
	if acc, rej := res.Counts(); acc != 1 || rej != len(nodes)-1 {
		t.Fatalf("counts = %d/%d", acc, rej)
	}
}

func TestValidateReportsFirstFailureInSpecOrder(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	late := uint64(testNow.Add(48 * time.Hour).UnixMilli())
	resign := func(n *syncv1.Node) *syncv1.Node { n.Signature[5] ^= 1; return n }
	cases := []struct {
		name string
		node *syncv1.Node
		want string
	}{
		{"lamport before wall clock and signature", resign(signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1 << 40, WallMs: late})), history.ReasonLamport},
		{"wall clock before signature", resign(signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1, WallMs: late})), history.ReasonWallClock},
		{"signature before parents", resign(signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1, Parents: [][]byte{make([]byte, 32)}})), history.ReasonSignature},
		{"malformed before all", &syncv1.Node{TransactionBytes: []byte{0x0a, 0x01}, Signature: nil}, history.ReasonMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := validator().Validate(history.NewMemStore(), []*syncv1.Node{c.node})
			if got := res.Verdicts[0].Reason; got != c.want {
				t.Fatalf("reason %q, want %q", got, c.want)
			}
		})
	}
}

func TestValidateOrderInsidePackDoesNotMatter(t *testing.T) {
	key := newKey(t)
	// A diamond plus a tail: a <- b, a <- c, (b, c) <- d <- e.
	a, aID := mkNode(t, key, 1)
	b, bID := mkNode(t, key, 2, aID)
	c, cID := mkNode(t, key, 3, aID)
	d, dID := mkNode(t, key, 4, bID, cID)
	e, _ := mkNode(t, key, 5, dID, dID) // a repeated parent counts once
	all := []*syncv1.Node{a, b, c, d, e}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		pack := append([]*syncv1.Node(nil), all...)
		rng.Shuffle(len(pack), func(i, j int) { pack[i], pack[j] = pack[j], pack[i] })
		store := history.NewMemStore()
		res := validator().Validate(store, pack)
		if acc, _ := res.Counts(); acc != 5 || len(res.Accepted) != 5 {
			t.Fatalf("accepted %d/%d: %v", acc, len(res.Accepted), reasons(res))
		}
		pos := map[history.ID]int{}
		for i, x := range res.Accepted {
			for _, p := range x.Parents {
				if _, ok := pos[p]; !ok {
					t.Fatalf("node %d accepted before its parent", i)
				}
			}
			pos[x.ID] = i
		}
		if err := store.Put(res.Accepted); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidateChildOfRejectedNodeIsMissingParent(t *testing.T) {
	key := newKey(t)
	a, aID := mkNode(t, key, 1)
	a = proto.CloneOf(a)
	a.Signature[0] ^= 1
	b, _ := mkNode(t, key, 2, aID)
	res := validator().Validate(history.NewMemStore(), []*syncv1.Node{b, a})
	if got := reasons(res); got[0] != history.ReasonMissingParent || got[1] != history.ReasonSignature {
		t.Fatalf("reasons = %q", got)
	}
	if len(res.Accepted) != 0 {
		t.Fatal("accepted a node whose parent was rejected")
	}
}

func TestValidateDuplicates(t *testing.T) {
	key := newKey(t)
	store := history.NewMemStore()
	a, aID := mkNode(t, key, 1)
	mustStore(t, store, a)
	b, bID := mkNode(t, key, 2, aID)

	// A stored node re-sent with a broken signature is still a duplicate:
	// the id commits to the content and the stored copy was verified.
	aBadSig := proto.CloneOf(a)
	aBadSig.Signature[0] ^= 1
	res := validator().Validate(store, []*syncv1.Node{a, b, b, aBadSig})
	for i, v := range res.Verdicts {
		if v.Reason != "" {
			t.Fatalf("node %d rejected: %s", i, v.Reason)
		}
	}
	dups := []bool{true, false, true, true}
	for i, v := range res.Verdicts {
		if v.Duplicate != dups[i] {
			t.Errorf("node %d duplicate = %v", i, v.Duplicate)
		}
	}
	if len(res.Accepted) != 1 || res.Accepted[0].ID != bID {
		t.Fatalf("accepted %+v", res.Accepted)
	}
	// A later good copy of a node whose first copy has a bad signature
	// is accepted on its own merits.
	c, cID := mkNode(t, key, 3, bID)
	cBad := proto.CloneOf(c)
	cBad.Signature[1] ^= 1
	res = validator().Validate(store, []*syncv1.Node{cBad, b, c})
	if got := reasons(res); got[0] != history.ReasonSignature || got[1] != "" || got[2] != "" {
		t.Fatalf("reasons = %q", got)
	}
	if len(res.Accepted) != 2 || res.Accepted[1].ID != cID {
		t.Fatalf("accepted %+v", res.Accepted)
	}
}

func TestValidateLamportCeilingFollowsRoomMax(t *testing.T) {
	key := newKey(t)
	store := history.NewMemStore()
	first, firstID := mkNode(t, key, 1000)
	mustStore(t, store, first)
	atCeiling, _ := mkNode(t, key, 1000+history.DefaultLamportWindow, firstID)
	above, _ := mkNode(t, key, 1000+history.DefaultLamportWindow+1, firstID)
	res := validator().Validate(store, []*syncv1.Node{atCeiling, above})
	if got := reasons(res); got[0] != "" || got[1] != history.ReasonLamport {
		t.Fatalf("reasons = %q", got)
	}
	// A configured window applies instead of the default.
	v := &history.Validator{LamportWindow: 10, Now: func() time.Time { return testNow }}
	n11, _ := mkNode(t, key, 1010, firstID)
	n12, _ := mkNode(t, key, 1011, firstID)
	if got := reasons(v.Validate(store, []*syncv1.Node{n11, n12})); got[0] != "" || got[1] != history.ReasonLamport {
		t.Fatalf("window 10: reasons = %q", got)
	}
}

func TestValidateWallClockUsesInjectedNow(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	limit := uint64(testNow.Add(24 * time.Hour).UnixMilli())
	ok := signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1, WallMs: limit})
	ahead := signTx(t, key, &syncv1.Transaction{Author: pub, Lamport: 1, WallMs: limit + 1})
	res := validator().Validate(history.NewMemStore(), []*syncv1.Node{ok, ahead})
	if got := reasons(res); got[0] != "" || got[1] != history.ReasonWallClock {
		t.Fatalf("reasons = %q", got)
	}
	// One hour later the same node is fine.
	later := &history.Validator{Now: func() time.Time { return testNow.Add(time.Hour) }}
	if got := reasons(later.Validate(history.NewMemStore(), []*syncv1.Node{ahead})); got[0] != "" {
		t.Fatalf("reason %q an hour later", got[0])
	}
}

func TestPrepareInParallelMatchesSerial(t *testing.T) {
	key := newKey(t)
	var nodes []*syncv1.Node
	var prev []history.ID
	bad := map[int]bool{}
	for i := range 300 {
		n, id := mkNode(t, key, uint64(i+1), prev...)
		if i%37 == 5 {
			n = proto.CloneOf(n)
			n.Signature[3] ^= 1
			bad[i] = true
		} else {
			prev = []history.ID{id}
		}
		nodes = append(nodes, n)
	}
	res := validator().Validate(history.NewMemStore(), nodes)
	for i, v := range res.Verdicts {
		want := ""
		if bad[i] {
			want = history.ReasonSignature
		}
		if v.Reason != want {
			t.Fatalf("node %d: %q, want %q", i, v.Reason, want)
		}
	}
	if len(res.Accepted) != 300-len(bad) {
		t.Fatalf("accepted %d", len(res.Accepted))
	}
}

func TestPrepareIntoInChunksMatchesPrepare(t *testing.T) {
	key := newKey(t)
	store := history.NewMemStore()
	stored, storedID := mkNode(t, key, 1)
	mustStore(t, store, stored)
	nodes := []*syncv1.Node{stored} // already stored: not re-verified
	for i := range 9 {
		n, _ := mkNode(t, key, uint64(i+2), storedID)
		if i == 4 {
			n = proto.CloneOf(n)
			n.Signature[0] ^= 1
		}
		nodes = append(nodes, n)
	}
	nodes = append(nodes, &syncv1.Node{TransactionBytes: []byte{0xff}}) // malformed
	want := validator().Prepare(store, nodes)
	got := make([]history.Checked, len(nodes))
	for lo := 0; lo < len(nodes); lo += 3 { // chunks, as the data plane's workers do
		hi := min(lo+3, len(nodes))
		validator().PrepareInto(store, nodes[lo:hi], got[lo:hi])
	}
	wantRes := validator().Resolve(store, want)
	gotRes := validator().Resolve(store, got)
	for i := range nodes {
		if got[i].ID != want[i].ID || gotRes.Verdicts[i] != wantRes.Verdicts[i] {
			t.Fatalf("node %d: chunked %+v, whole %+v", i, gotRes.Verdicts[i], wantRes.Verdicts[i])
		}
	}
	if r := gotRes.Verdicts; !r[0].Duplicate || r[5].Reason != history.ReasonSignature || r[10].Reason != history.ReasonMalformed || r[1].Reason != "" {
		t.Fatalf("verdicts = %+v", r)
	}
}

func BenchmarkVerify(b *testing.B) {
	key := newKey(b)
	const packSize = 256
	nodes := make([]*syncv1.Node, packSize)
	for i := range nodes {
		nodes[i], _ = mkNode(b, key, uint64(i+1))
	}
	v := validator()
	store := history.NewMemStore()
	b.ResetTimer()
	for b.Loop() {
		res := v.Validate(store, nodes)
		if len(res.Accepted) != packSize {
			b.Fatal("rejected nodes")
		}
	}
	b.ReportMetric(float64(b.N*packSize)/b.Elapsed().Seconds(), "nodes/s")
}

func TestResolveWithPolicyRejectsDeniedNodeAlone(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	now := uint64(testNow.UnixMilli())
	mk := func(path string, lamport uint64, parents ...history.ID) (*syncv1.Node, history.ID) {
		tx := &syncv1.Transaction{Author: pub, Lamport: lamport, WallMs: now,
			Ops: []*syncv1.Op{{Path: path, Kind: &syncv1.Op_Delete{Delete: &syncv1.MapDelete{}}}}}
		for _, p := range parents {
			tx.Parents = append(tx.Parents, p[:])
		}
		n, id, err := history.NewNode(key, tx)
		if err != nil {
			t.Fatal(err)
		}
		return n, id
	}
	ok, okID := mk("open/a", 1)
	denied, deniedID := mk("admin/x", 2, okID)
	child, _ := mk("open/b", 3, deniedID) // fine itself, but its parent is denied
	sibling, _ := mk("open/c", 3, okID)
	var offered []string
	allow := func(c *history.Checked) string {
		p := c.Tx.GetOps()[0].GetPath()
		offered = append(offered, p)
		if p == "admin/x" {
			return "policy denies write to admin/x"
		}
		return ""
	}
	res := validator().ResolveWith(history.NewMemStore(), validator().Prepare(nil, []*syncv1.Node{child, denied, sibling, ok}), allow)
	if got := reasons(res); got[0] != history.ReasonMissingParent || got[1] != "policy denies write to admin/x" || got[2] != "" || got[3] != "" {
		t.Fatalf("reasons = %q", got)
	}
	if len(res.Accepted) != 2 {
		t.Fatalf("accepted %d", len(res.Accepted))
	}
	// The policy only sees nodes whose parents are present: never the child.
	for _, p := range offered {
		if p == "open/b" {
			t.Fatal("policy consulted for a node whose parent was denied")
		}
	}
}

func BenchmarkMissing(b *testing.B) {
	// A 100k-node chain; the joiner knows the node halfway: Missing walks
	// 50k ancestors and returns 50k nodes.
	key := newKey(b)
	s := history.NewMemStore()
	var prev []history.ID
	var mid history.ID
	const n = 100_000
	batch := make([]history.Accepted, 0, n)
	for i := range n {
		node, id := mkNode(b, key, uint64(i+1), prev...)
		batch = append(batch, history.Accepted{Node: node, ID: id, Lamport: uint64(i + 1), Parents: prev})
		prev = []history.ID{id}
		if i == n/2-1 {
			mid = id
		}
	}
	if err := s.Put(batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if got := len(s.Missing([]history.ID{mid})); got != n/2 {
			b.Fatalf("missing %d", got)
		}
	}
}
