package tick_test

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/nodalmerge/nodalmerge-go/client"
	statev1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/state/v1"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
	"github.com/nodalmerge/nodalmerge-go/tick"
)

// fixedNow is the runner's clock in these tests: a fixed instant (so
// wall_ms can be checked exactly) that the ingest wall-clock check accepts.
var fixedNow = time.Now().Add(-time.Hour).Truncate(time.Millisecond)

func newRunner(t *testing.T, rooms tick.Rooms) (*tick.Runner, ed25519.PrivateKey) {
	t.Helper()
	key := newKey(t)
	r := tick.NewRunner(tick.Config{ServerKey: key, Rooms: rooms, Now: func() time.Time { return fixedNow }})
	t.Cleanup(r.Stop)
	return r, key
}

func sched(room string, ms uint32, prefix string) *statev1.TickSchedule {
	return &statev1.TickSchedule{Room: room, IntervalMs: ms, IntentPrefix: prefix}
}

// worldOf materializes the room as a client would see it.
func worldOf(t *testing.T, f *fakeRooms, room string) *tick.Materializer {
	t.Helper()
	m := tick.NewMaterializer()
	m.Update(f.room(room).MemStore)
	return m
}

// TestTickWritesWorld: an intent becomes the world key in one server-signed
// node built on the room's frontier one Lamport above the room; nothing
// more is written while nothing changes; a changed intent is mirrored on
// the next tick.
func TestTickWritesWorld(t *testing.T) {
	f := newFakeRooms(t)
	alice := client.NewAuthor(newKey(t))
	f.write("r", alice, client.Set("intent/p1/move", []byte(`{"dx":1}`)), client.Set("chat/1", []byte("hi")))
	f.write("r", alice, client.Set("intent/p2/move", []byte(`{"dx":2}`)))
	frontier, maxLamport := f.room("r").Frontier(), f.room("r").MaxLamport()

	r, key := newRunner(t, f)
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "")}, true)

	n := f.nextPublished()
	tx := decode(t, n)
	if !bytes.Equal(tx.GetAuthor(), key.Public().(ed25519.PublicKey)) {
		t.Error("tick node is not authored by the server key")
	}
	id := history.NodeID(n)
	if !ed25519.Verify(key.Public().(ed25519.PublicKey), id[:], n.GetSignature()) {
		t.Error("tick node signature does not verify under the server key")
	}
	if tx.GetLamport() != maxLamport+1 {
		t.Errorf("tick lamport %d, want room max %d + 1", tx.GetLamport(), maxLamport)
	}
	var parents []history.ID
	for _, p := range tx.GetParents() {
		parents = append(parents, history.ID(p))
	}
	if !slices.Equal(parents, frontier) {
		t.Errorf("tick parents %v, want the room frontier %v", parents, frontier)
	}
	if tx.GetWallMs() != uint64(fixedNow.UnixMilli()) {
		t.Errorf("tick wall_ms %d, want the configured clock's %d", tx.GetWallMs(), fixedNow.UnixMilli())
	}
	if len(tx.GetOps()) != 2 {
		t.Fatalf("tick ops = %v, want world/p1/move and world/p2/move", tx.GetOps())
	}
	w := worldOf(t, f, "r")
	wantValue(t, w, "world/p1/move", `{"dx":1}`)
	wantValue(t, w, "world/p2/move", `{"dx":2}`)
	if _, ok := w.Get("world/chat/1"); ok {
		t.Error("a key outside the intent prefix was mirrored")
	}

	f.quietRounds("r", 3)

	alice.Observe(n)
	f.write("r", alice, client.Set("intent/p1/move", []byte(`{"dx":-1}`)))
	tx = decode(t, f.nextPublished())
	if len(tx.GetOps()) != 1 || tx.GetOps()[0].GetPath() != "world/p1/move" {
		t.Fatalf("second tick ops = %v, want only the changed world/p1/move", tx.GetOps())
	}
	wantValue(t, worldOf(t, f, "r"), "world/p1/move", `{"dx":-1}`)
	f.quietRounds("r", 2)
}

// TestTickLastWriterWins: two writers set one intent concurrently; the
// world follows the higher Lamport, not the later arrival.
func TestTickLastWriterWins(t *testing.T) {
	f := newFakeRooms(t)
	lo, hi := newKey(t), newKey(t)
	hiNode := signed(t, hi, 9, nil, client.Set("intent/x", []byte("from lamport 9")))
	loNode := signed(t, lo, 4, nil, client.Set("intent/x", []byte("from lamport 4")))
	for _, a := range []history.Accepted{hiNode, loNode} {
		if got, err := f.ingest("r", []*syncv1.Node{a.Node}); got != 1 || err != nil {
			t.Fatalf("ingest: %d %v", got, err)
		}
	}
	r, _ := newRunner(t, f)
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "intent/")}, true)
	tx := decode(t, f.nextPublished())
	if tx.GetLamport() != 10 {
		t.Errorf("tick lamport %d, want 10", tx.GetLamport())
	}
	wantValue(t, worldOf(t, f, "r"), "world/x", "from lamport 9")
}

// TestTickStopStartAndLeadership: Sync with active=false stops the tick and
// releases the room; Sync with active=true again starts a fresh tick that
// catches up from the room and rewrites nothing already in the world (what
// a new leader does); Stop ends everything and later Syncs are ignored.
func TestTickStopStartAndLeadership(t *testing.T) {
	f := newFakeRooms(t)
	alice := client.NewAuthor(newKey(t))
	f.write("a", alice, client.Set("intent/k", []byte("1")))
	bob := client.NewAuthor(newKey(t))
	f.write("b", bob, client.Set("intent/k", []byte("b1")))

	r, _ := newRunner(t, f)
	ticks := []*statev1.TickSchedule{sched("a", 10, ""), sched("b", 15, "")}
	r.Sync(ticks, true)
	seen := map[string]bool{}
	for range 2 {
		tx := decode(t, f.nextPublished())
		seen[string(tx.GetOps()[0].GetSet().GetValue())] = true
	}
	if !seen["1"] || !seen["b1"] {
		t.Fatalf("tick nodes carried %v, want both rooms' intents", seen)
	}
	if got := running(r); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Running = %v, want [a b]", got)
	}

	// Losing leadership stops both loops, and each releases its room.
	r.Sync(ticks, false)
	if got := running(r); len(got) != 0 {
		t.Fatalf("Running after Sync(active=false) = %v, want none", got)
	}
	f.waitReleased("a", "b")
	f.mu.Lock()
	opened, released := f.opened["a"], f.released["a"]
	f.mu.Unlock()
	if opened != 1 || released != 1 {
		t.Errorf("room a opened %d released %d times, want 1 and 1", opened, released)
	}
	f.write("a", alice, client.Set("intent/k", []byte("2")))
	select {
	case n := <-f.published:
		t.Fatalf("a stopped tick published %v", decode(t, n))
	default:
	}

	// Leadership back (or a new leader): a fresh materializer catches up,
	// mirrors only the change made while stopped.
	r.Sync(ticks, true)
	tx := decode(t, f.nextPublished())
	if len(tx.GetOps()) != 1 || string(tx.GetOps()[0].GetSet().GetValue()) != "2" {
		t.Fatalf("restarted tick ops = %v, want only intent/k = 2 mirrored", tx.GetOps())
	}
	f.quietRounds("b", 2)

	// Removing a schedule stops only that room.
	r.Sync(ticks[1:], true)
	if got := running(r); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Running after dropping a = %v, want [b]", got)
	}

	r.Stop() // waits: no release may be missing below
	if got := running(r); len(got) != 0 {
		t.Fatalf("Running after Stop = %v", got)
	}
	r.Sync(ticks, true)
	if got := running(r); len(got) != 0 {
		t.Fatalf("Sync after Stop started %v", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for room, n := range f.opened {
		if f.released[room] != n {
			t.Errorf("room %s opened %d released %d times", room, n, f.released[room])
		}
	}
}

// TestTickScheduleChanges: a changed interval or prefix restarts the loop
// with the new prefix; a schedule below the minimum interval or without a
// room is skipped.
func TestTickScheduleChanges(t *testing.T) {
	f := newFakeRooms(t)
	alice := client.NewAuthor(newKey(t))
	f.write("r", alice, client.Set("intent/p1/x", []byte("1")), client.Set("intent/p2/x", []byte("2")))
	r, _ := newRunner(t, f)

	r.Sync([]*statev1.TickSchedule{sched("r", 5, ""), sched("", 100, "")}, true)
	if got := running(r); len(got) != 0 {
		t.Fatalf("invalid schedules started %v", got)
	}
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "intent/p1/")}, true)
	tx := decode(t, f.nextPublished())
	if len(tx.GetOps()) != 1 || tx.GetOps()[0].GetPath() != "world/p1/x" {
		t.Fatalf("ops with prefix intent/p1/ = %v, want only world/p1/x", tx.GetOps())
	}
	f.quietRounds("r", 2)
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "intent/")}, true)
	tx = decode(t, f.nextPublished())
	if len(tx.GetOps()) != 1 || tx.GetOps()[0].GetPath() != "world/p2/x" {
		t.Fatalf("ops after widening the prefix = %v, want only world/p2/x", tx.GetOps())
	}
}

// TestTickNeverOverlaps: Sync does not wait for a tick stuck in Publish
// (it may be called from the apply path such a publish waits on), and the
// restarted loop for the room does not open or tick the room until the
// stuck one has finished.
func TestTickNeverOverlaps(t *testing.T) {
	f := newFakeRooms(t)
	f.gate, f.inPublish = make(chan struct{}), make(chan struct{}, 1)
	f.write("r", client.NewAuthor(newKey(t)), client.Set("intent/k", []byte("v")))
	r, _ := newRunner(t, f)
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "")}, true)
	select {
	case <-f.inPublish:
	case <-time.After(waitFor):
		t.Fatal("tick never reached Publish")
	}

	synced := make(chan struct{})
	go func() {
		r.Sync([]*statev1.TickSchedule{sched("r", 20, "")}, true)
		close(synced)
	}()
	select {
	case <-synced:
	case <-time.After(waitFor):
		t.Fatal("Sync blocked on a tick stuck in Publish")
	}
	f.mu.Lock()
	opened := f.opened["r"]
	f.mu.Unlock()
	if opened != 1 {
		t.Fatalf("room opened %d times while the old tick was still publishing, want 1", opened)
	}

	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	close(gate)
	f.waitReleased("r")
	// The old loop's node was ingested (whether or not it reached the feed
	// before its context ended); the new loop finds the world up to date
	// and stays quiet.
	select {
	case <-f.published:
	default:
	}
	wantValue(t, worldOf(t, f, "r"), "world/k", "v")
	f.quietRounds("r", 2)
	f.mu.Lock()
	opened = f.opened["r"]
	f.mu.Unlock()
	if opened != 2 {
		t.Fatalf("room opened %d times, want 2 (old loop, then new)", opened)
	}
}

// TestTickRetriesFailedPublish: a failed or refused publish is retried on
// the next tick and the world still converges.
func TestTickRetriesFailedPublish(t *testing.T) {
	f := newFakeRooms(t)
	f.failNext, f.rejectNext = 2, 2
	f.write("r", client.NewAuthor(newKey(t)), client.Set("intent/k", []byte("v")))
	r, _ := newRunner(t, f)
	r.Sync([]*statev1.TickSchedule{sched("r", 10, "")}, true)
	f.nextPublished()
	f.mu.Lock()
	left := f.failNext + f.rejectNext
	f.mu.Unlock()
	if left != 0 {
		t.Fatalf("published with %d injected failures left", left)
	}
	wantValue(t, worldOf(t, f, "r"), "world/k", "v")
	f.quietRounds("r", 2)
}

func running(r *tick.Runner) []string {
	got := r.Running()
	slices.Sort(got)
	return got
}
