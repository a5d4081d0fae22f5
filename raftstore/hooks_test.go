package raftstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	"github.com/nodalmerge/nodalmerge-go/pki/pkitest"
)

// recorder is an observer that records what it is told, checks it is
// never called concurrently, and signals every call.
type recorder struct {
	t        testing.TB
	store    func() *Store // read from inside the callback: must not deadlock
	inFlight atomic.Int32

	mu       sync.Mutex
	applied  []uint64
	kinds    []string
	restores int
	leaders  []string // "true:n1", "false:" ...
	changed  chan struct{}
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, changed: make(chan struct{}, 1)}
}

func (r *recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) onApply(index uint64, cmd *statev1.Command) {
	if r.inFlight.Add(1) != 1 {
		r.t.Error("OnApply called concurrently")
	}
	defer r.inFlight.Add(-1)
	if r.store != nil {
		if s := r.store(); s != nil {
			_ = s.Dump() // would deadlock if called under the FSM lock
		}
	}
	cmd.ProposedUnixMs = -1 // the observer's copy: scribbling must not matter
	r.mu.Lock()
	r.applied = append(r.applied, index)
	r.kinds = append(r.kinds, commandKind(cmd))
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) onRestore() {
	r.mu.Lock()
	r.restores++
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) onLeader(isLeader bool, id string) {
	r.mu.Lock()
	if isLeader {
		r.leaders = append(r.leaders, "true:"+id)
	} else {
		r.leaders = append(r.leaders, "false:"+id)
	}
	r.mu.Unlock()
	r.signal()
}

func (r *recorder) hooks(c *Config) {
	c.OnApply, c.OnRestore, c.OnLeaderChange = r.onApply, r.onRestore, r.onLeader
}

// await waits until cond holds for the recorded data.
func (r *recorder) await(ctx context.Context, what string, cond func() bool) {
	r.t.Helper()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// startCluster opens n1..n3 (on disk), bootstraps n1 and adds the others
// as voters, each with a recorder.
func startCluster(t *testing.T) ([]*Store, []*recorder) {
	t.Helper()
	p := pkitest.New(t)
	ctx := testContext(t)
	var stores []*Store
	var recs []*recorder
	for _, id := range []string{"n1", "n2", "n3"} {
		rec := newRecorder(t)
		s := openNodeWith(t, p, id, t.TempDir(), rec.hooks)
		rec.store = func() *Store { return s }
		stores, recs = append(stores, s), append(recs, rec)
	}
	bootstrapLeader(t, stores[0])
	for _, s := range stores[1:] {
		if err := stores[0].AddVoter(ctx, s.NodeID(), s.RaftAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores[1:] {
		if _, err := s.WaitForLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return stores, recs
}

func TestOnApplyInLogOrderOnEveryNode(t *testing.T) {
	stores, recs := startCluster(t)
	ctx := testContext(t)
	leader := stores[0]

	peer := pubKey(t)
	cmds := []*statev1.Command{
		initCmd("hooks", newKey(t, "rt-1", rtPurpose)),
		putRoomKeyCmd("r", "a", pubKey(t)),
		lockCmd("q", statev1.LockMode_LOCK_MODE_OWN_KEYS), // rejected: never reported
		lockCmd("r", statev1.LockMode_LOCK_MODE_OWN_KEYS),
		revokeCmd(&statev1.Revocation{Room: "r", PeerPubkey: peer}),
		evictCmd("r", peer),
	}
	var want []uint64
	var wantKinds []string
	for _, c := range cmds {
		idx, err := leader.Apply(ctx, c)
		if errors.Is(err, ErrRejected) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, idx)
		wantKinds = append(wantKinds, commandKind(c))
	}
	last := want[len(want)-1]
	for i, rec := range recs {
		rec.await(ctx, stores[i].NodeID()+" to observe the last command", func() bool {
			return len(rec.applied) > 0 && rec.applied[len(rec.applied)-1] >= last
		})
		rec.mu.Lock()
		got, kinds := rec.applied, rec.kinds
		if len(got) != len(want) {
			t.Fatalf("%s observed %v (%v), want %v (%v)", stores[i].NodeID(), got, kinds, want, wantKinds)
		}
		for j := range want {
			if got[j] != want[j] || kinds[j] != wantKinds[j] {
				t.Fatalf("%s observed %v %v, want %v %v", stores[i].NodeID(), got, kinds, want, wantKinds)
			}
		}
		rec.mu.Unlock()
	}
	if st := leader.Status(); st.ObserverBacklog != 0 {
		t.Fatalf("backlog %d after everything was delivered", st.ObserverBacklog)
	}

	// Leadership as each node saw it.
	recs[0].await(ctx, "n1 to report leading", func() bool { return contains(recs[0].leaders, "true:n1") })
	for _, rec := range recs[1:] {
		rec.await(ctx, "followers to report n1", func() bool { return contains(rec.leaders, "false:n1") })
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestOnRestoreAtStart: a node restarting from a local snapshot reports
// the restore, then the commands after the snapshot as the log replays.
func TestOnRestoreAtStart(t *testing.T) {
	p := pkitest.New(t)
	dir := t.TempDir()
	s := openNode(t, p, "n1", dir)
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("restore")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.Apply(ctx, putTickCmd("r", 100, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	rec := newRecorder(t)
	s2 := openNodeWith(t, p, "n1", dir, rec.hooks)
	rec.await(ctx, "the restore", func() bool { return rec.restores == 1 })
	awaitSelfLeader(t, s2)
	rec.await(ctx, "the replayed tick", func() bool { return contains(rec.kinds, "put_tick") })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.applied[len(rec.applied)-1] != after || rec.restores != 1 {
		t.Fatalf("after restart: applied %v restores %d, want ..., %d and 1", rec.applied, rec.restores, after)
	}
	if contains(rec.kinds, "init_cluster") {
		t.Fatal("a command folded into the snapshot was reported again")
	}
}

// TestObserverPanicDoesNotStopDelivery: a panicking observer is logged and
// the next event is still delivered.
func TestObserverPanicDoesNotStopDelivery(t *testing.T) {
	p := pkitest.New(t)
	var calls atomic.Int32
	done := make(chan uint64, 4)
	s := openNodeWith(t, p, "n1", "", func(c *Config) {
		c.OnApply = func(index uint64, _ *statev1.Command) {
			if calls.Add(1) == 1 {
				panic("observer bug")
			}
			done <- index
		}
	})
	bootstrapLeader(t, s)
	ctx := testContext(t)
	if _, err := s.Apply(ctx, initCmd("p")); err != nil {
		t.Fatal(err)
	}
	idx, err := s.Apply(ctx, putTickCmd("r", 100, ""))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got != idx {
			t.Fatalf("delivered %d, want %d", got, idx)
		}
	case <-ctx.Done():
		t.Fatal("no delivery after a panicking observer")
	}
}
