package roomstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/nodalmerge/nodalmerge-go/history"
)

func TestPutCloseReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	key := newKey(t)
	a := chain(t, key, 20)
	// A second branch off the middle of a, and a node merging both.
	b := chain(t, key, 5, a[9].ID)
	merge := mkNode(t, key, 30, a[19].ID, b[4].ID)
	ra := openRoom(t, s, "alpha")
	rb := openRoom(t, s, "beta:1@x(y)*")
	mustPut(t, ra, a[:10]...)
	mustPut(t, ra, a[10:]...)
	mustPut(t, ra, b...)
	mustPut(t, ra, merge)
	other := chain(t, key, 3)
	mustPut(t, rb, other...)

	want := append(append(ids(a), ids(b)...), merge.ID)
	checkHistory(t, ra, want)
	if got := ra.MaxLamport(); got != 30 {
		t.Fatalf("MaxLamport = %d, want 30", got)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := fileSize(t, filepath.Join(dir, walFileName)); n != 0 {
		t.Fatalf("log is %d bytes after Close, want 0 (checkpointed)", n)
	}

	s = openStore(t, dir, Options{})
	defer s.Close()
	ra = openRoom(t, s, "alpha")
	checkHistory(t, ra, want)
	if got := ra.MaxLamport(); got != 30 {
		t.Fatalf("MaxLamport after reopen = %d, want 30", got)
	}
	checkHistory(t, openRoom(t, s, "beta:1@x(y)*"), ids(other))
	checkHistory(t, openRoom(t, s, "never-written"), nil)
}

func TestPutMissingParentStoresNothing(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	defer s.Close()
	r := openRoom(t, s, "room")
	key := newKey(t)
	orphanParent := mkNode(t, key, 1)
	ok := mkNode(t, key, 3)
	orphan := mkNode(t, key, 2, orphanParent.ID)
	err := r.Put([]history.Accepted{ok, orphan})
	if !errors.Is(err, history.ErrMissingParent) {
		t.Fatalf("Put with a missing parent: err = %v, want ErrMissingParent", err)
	}
	if r.Len() != 0 || r.Has(ok.ID) {
		t.Fatalf("a failed Put stored %d nodes", r.Len())
	}
	// Parent earlier in the same batch is fine, in either Put.
	mustPut(t, r, orphanParent, orphan)
	checkHistory(t, r, []history.ID{orphanParent.ID, orphan.ID})
}

func TestPutDuplicatesIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	r := openRoom(t, s, "room")
	nodes := chain(t, newKey(t), 4)
	mustPut(t, r, nodes...)
	size := fileSize(t, filepath.Join(dir, walFileName))
	mustPut(t, r, nodes...)
	mustPut(t, r, nodes[1], nodes[1])
	if got := fileSize(t, filepath.Join(dir, walFileName)); got != size {
		t.Fatalf("duplicates grew the log from %d to %d bytes", size, got)
	}
	checkHistory(t, r, ids(nodes))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	defer s.Close()
	checkHistory(t, openRoom(t, s, "room"), ids(nodes))
}

// TestConcurrentPutsShareFsync checks group commit: 64 goroutines putting
// at once into one room and into many need far fewer log fsyncs than
// Puts, and every Put lands.
func TestConcurrentPutsShareFsync(t *testing.T) {
	for _, rooms := range []int{1, 16} {
		t.Run(fmt.Sprintf("rooms=%d", rooms), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			const writers, perWriter = 64, 10
			key := newKey(t)
			handles := make([]history.Store, rooms)
			for i := range handles {
				handles[i] = openRoom(t, s, fmt.Sprintf("room-%d", i))
			}
			work := make([][]history.Accepted, writers)
			for w := range work {
				work[w] = chain(t, key, perWriter)
			}
			start := make(chan struct{})
			errs := make(chan error, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					<-start
					for _, a := range work[w] {
						if err := handles[w%rooms].Put([]history.Accepted{a}); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			syncs := s.c.walSyncs.Load()
			if puts := uint64(writers * perWriter); syncs >= puts/2 {
				t.Fatalf("%d Puts took %d log fsyncs: concurrent Puts are not grouped", puts, syncs)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir, Options{})
			defer s.Close()
			for i := range rooms {
				var want []history.ID
				for w := i; w < writers; w += rooms {
					want = append(want, ids(work[w])...)
				}
				checkHistory(t, openRoom(t, s, fmt.Sprintf("room-%d", i)), want)
			}
		})
	}
}

// TestConcurrentChildOfQueuedParent: a Put may name a parent that an
// earlier Put queued but has not yet made durable; the committer applies
// them in queue order, so both land.
func TestConcurrentChildOfQueuedParent(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	defer s.Close()
	r := openRoom(t, s, "room")
	nodes := chain(t, newKey(t), 200)
	dones := make([]chan error, len(nodes))
	for i, a := range nodes {
		dones[i] = make(chan error, 1)
		go func() { dones[i] <- r.Put([]history.Accepted{a}) }()
		// Submit the child only once the parent has passed its checks, so
		// every Put after the first depends on one that may be in flight.
		waitQueued(t, r.(*room), a.ID)
	}
	for _, d := range dones {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	if syncs := s.c.walSyncs.Load(); syncs >= uint64(len(nodes)) {
		t.Fatalf("%d Puts in flight together took %d fsyncs", len(nodes), syncs)
	}
	checkHistory(t, r, ids(nodes))
}

// waitQueued returns once id is queued or durable in r.
func waitQueued(t *testing.T, r *room, id history.ID) {
	t.Helper()
	for t.Context().Err() == nil {
		r.mu.Lock()
		ok := r.knownLocked(id)
		r.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
	t.Fatal("test context done")
}

func TestReleaseAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	defer s.Close()
	key := newKey(t)
	nodes := chain(t, key, 10)
	r := openRoom(t, s, "room")
	mustPut(t, r, nodes[:5]...)
	if err := s.Release("room"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := r.Put(nodes[5:]); !errors.Is(err, ErrReleased) {
		t.Fatalf("Put after Release: err = %v, want ErrReleased", err)
	}
	if err := s.Release("room"); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	r2 := openRoom(t, s, "room")
	if r2 == r {
		t.Fatal("Open after Release returned the released handle")
	}
	checkHistory(t, r2, ids(nodes[:5]))
	mustPut(t, r2, nodes[5:]...)
	checkHistory(t, r2, ids(nodes))
	if r3 := openRoom(t, s, "room"); r3 != r2 {
		t.Fatal("Open of a loaded room loaded it again")
	}
}

// TestReleaseWhilePutting: whatever Put reported success is there after
// the room is released and reloaded, however the two interleave.
func TestReleaseWhilePutting(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	defer s.Close()
	key := newKey(t)
	const writers = 4
	work := make([][]history.Accepted, writers)
	for w := range work {
		work[w] = chain(t, key, 50)
	}
	var (
		mu    sync.Mutex
		acked []history.ID
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < len(work[w]); {
				r, err := s.Open("room")
				if err != nil {
					t.Error(err)
					return
				}
				err = r.Put(work[w][i : i+1])
				if errors.Is(err, ErrReleased) {
					continue // reopen and retry the same node
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, work[w][i].ID)
				mu.Unlock()
				i++
			}
		})
	}
	stop := make(chan struct{})
	var rel sync.WaitGroup
	rel.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Release("room"); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	rel.Wait()
	checkHistory(t, openRoom(t, s, "room"), acked)
}

func TestUseAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	r := openRoom(t, s, "room")
	nodes := chain(t, newKey(t), 2)
	mustPut(t, r, nodes[0])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(nodes[1:]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Open("room"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v, want ErrClosed", err)
	}
	if err := s.Release("room"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Release after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	// Reads still answer from memory.
	checkHistory(t, r, ids(nodes[:1]))
}

func TestInvalidRoomNames(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	defer s.Close()
	for _, name := range []string{"", "a/b", "a b", "é", strings.Repeat("x", MaxRoomNameBytes+1), "a\x00"} {
		if _, err := s.Open(name); !errors.Is(err, ErrInvalidRoomName) {
			t.Errorf("Open(%q): err = %v, want ErrInvalidRoomName", name, err)
		}
		if err := s.Release(name); !errors.Is(err, ErrInvalidRoomName) {
			t.Errorf("Release(%q): err = %v, want ErrInvalidRoomName", name, err)
		}
	}
	// Every allowed character works, including names that would be
	// special as paths: files are named by hash.
	for _, name := range []string{"AZaz09._~:@!$&'()*+,;=-" + strings.Repeat("q", MaxRoomNameBytes-23), ".", ".."} {
		r := openRoom(t, s, name)
		mustPut(t, r, chain(t, newKey(t), 1)...)
		if _, err := os.Stat(roomPath(s.dir, name)); err != nil {
			t.Errorf("room %q: %v", name, err)
		}
	}
}

func TestSecondOpenOfDirRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a second Open of a locked directory succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointEmptiesLog: past CheckpointBytes the room files are made
// durable and the log starts over, and the data is still all there.
func TestCheckpointEmptiesLog(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{CheckpointBytes: 2048})
	r := openRoom(t, s, "room")
	nodes := chain(t, newKey(t), 60)
	walPath := filepath.Join(dir, walFileName)
	checkpoints := 0
	for _, a := range nodes {
		before := fileSize(t, walPath)
		mustPut(t, r, a)
		// The checkpoint runs after the Puts of its round returned.
		if err := s.c.barrier(); err != nil {
			t.Fatal(err)
		}
		after := fileSize(t, walPath)
		if after < before {
			checkpoints++
		}
		if after >= 2048 {
			t.Fatalf("log is %d bytes, over the checkpoint size", after)
		}
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint happened")
	}
	// A crash right now: the copy has only what is in the files.
	crashed := crashCopy(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, crashed, Options{})
	defer s.Close()
	checkHistory(t, openRoom(t, s, "room"), ids(nodes))
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := openStore(t, dir, Options{})
	defer s.Close()
	st, err := os.Stat(filepath.Join(dir, roomsDirName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("rooms dir mode %v, want 0700", st.Mode().Perm())
	}
}

// Store is the data plane's RoomStore; checked structurally here because
// this package does not import dataplane.
var _ interface {
	Open(room string) (history.Store, error)
	Release(room string) error
	Close() error
} = (*Store)(nil)
