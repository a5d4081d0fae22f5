package tick_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/nodalmerge/nodalmerge-go/client"
	syncv1 "github.com/nodalmerge/nodalmerge-go/gen/nodalmerge/sync/v1"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// waitFor bounds every wait in these tests.
const waitFor = 10 * time.Second

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	k, err := client.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// watchedStore is a MemStore that signals every Missing call: the tick
// calls Missing exactly once per round, so tests can wait for rounds
// instead of sleeping.
type watchedStore struct {
	*history.MemStore
	rounds chan struct{}
}

func (s *watchedStore) Missing(known []history.ID) []*syncv1.Node {
	out := s.MemStore.Missing(known)
	select {
	case s.rounds <- struct{}{}:
	default: // nobody waiting for a round right now
	}
	return out
}

// fakeRooms is the data plane as the tick sees it: MemStores behind the
// real ingest checks (history.Validator, real signatures), and a feed of
// what the tick published.
type fakeRooms struct {
	t         *testing.T
	v         history.Validator
	published chan *syncv1.Node
	releases  chan string // a room each time a tick releases it

	mu       sync.Mutex
	rooms    map[string]*watchedStore
	opened   map[string]int
	released map[string]int
	// gate, when set, holds every Publish (ignoring its context, as a slow
	// data plane might) until closed; inPublish hears each held call.
	gate       chan struct{}
	inPublish  chan struct{}
	failNext   int // Publish calls that fail before ingesting
	rejectNext int // Publish calls that refuse the nodes without an error
}

func newFakeRooms(t *testing.T) *fakeRooms {
	return &fakeRooms{
		t:         t,
		published: make(chan *syncv1.Node, 64),
		releases:  make(chan string, 64),
		rooms:     make(map[string]*watchedStore),
		opened:    make(map[string]int),
		released:  make(map[string]int),
	}
}

func (f *fakeRooms) room(name string) *watchedStore {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.rooms[name]
	if !ok {
		s = &watchedStore{MemStore: history.NewMemStore(), rounds: make(chan struct{})}
		f.rooms[name] = s
	}
	return s
}

func (f *fakeRooms) Open(name string) (history.Store, func(), error) {
	s := f.room(name)
	f.mu.Lock()
	f.opened[name]++
	f.mu.Unlock()
	var once sync.Once
	return s, func() {
		once.Do(func() {
			f.mu.Lock()
			f.released[name]++
			f.mu.Unlock()
			f.releases <- name
		})
	}, nil
}

func (f *fakeRooms) Publish(ctx context.Context, name string, nodes []*syncv1.Node) (int, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		f.inPublish <- struct{}{}
		<-gate
	}
	f.mu.Lock()
	fail, reject := f.failNext > 0, f.failNext == 0 && f.rejectNext > 0
	if fail {
		f.failNext--
	} else if reject {
		f.rejectNext--
	}
	f.mu.Unlock()
	if fail {
		return 0, errors.New("injected publish failure")
	}
	if reject {
		return 0, nil
	}
	accepted, err := f.ingest(name, nodes)
	if err != nil || accepted == 0 {
		return accepted, err
	}
	for _, n := range nodes {
		select {
		case f.published <- n:
		case <-ctx.Done():
			return accepted, ctx.Err()
		}
	}
	return accepted, nil
}

// ingest runs the SPEC checks and stores what passes, as the data plane
// does for client packs.
func (f *fakeRooms) ingest(name string, nodes []*syncv1.Node) (int, error) {
	s := f.room(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	res := f.v.Validate(s, nodes)
	if err := s.Put(res.Accepted); err != nil {
		return 0, err
	}
	accepted, _ := res.Counts()
	return accepted, nil
}

// write makes a client node with ops and ingests it, failing the test if
// the room refuses it.
func (f *fakeRooms) write(room string, a *client.Author, ops ...*syncv1.Op) history.ID {
	f.t.Helper()
	n, id, err := a.Write(ops...)
	if err != nil {
		f.t.Fatal(err)
	}
	if got, err := f.ingest(room, []*syncv1.Node{n}); err != nil || got != 1 {
		f.t.Fatalf("ingest client node: accepted %d, err %v", got, err)
	}
	return id
}

// nextPublished waits for the tick's next node.
func (f *fakeRooms) nextPublished() *syncv1.Node {
	f.t.Helper()
	select {
	case n := <-f.published:
		return n
	case <-time.After(waitFor):
		f.t.Fatalf("no tick node within %s", waitFor)
		return nil
	}
}

// quietRounds waits for n complete tick rounds in room and fails if any of
// them published. A round signals when it starts reading the room, so
// waiting for n+1 starts means n rounds ran to the end (one goroutine runs
// them in sequence) and anything they published is already in the feed.
func (f *fakeRooms) quietRounds(room string, n int) {
	f.t.Helper()
	s := f.room(room)
	deadline := time.After(waitFor)
	for range n + 1 {
		select {
		case <-s.rounds:
		case p := <-f.published:
			f.t.Fatalf("tick published a node while the world was up to date: %v", decode(f.t, p))
		case <-deadline:
			f.t.Fatalf("fewer than %d tick rounds within %s", n, waitFor)
		}
	}
	select {
	case p := <-f.published:
		f.t.Fatalf("tick published a node while the world was up to date: %v", decode(f.t, p))
	default:
	}
}

// waitReleased waits until every room in rooms was released once more: the
// tick that held it has ended.
func (f *fakeRooms) waitReleased(rooms ...string) {
	f.t.Helper()
	want := map[string]bool{}
	for _, r := range rooms {
		want[r] = true
	}
	for len(want) > 0 {
		select {
		case r := <-f.releases:
			delete(want, r)
		case <-time.After(waitFor):
			f.t.Fatalf("rooms %v not released within %s", want, waitFor)
		}
	}
}

func decode(t *testing.T, n *syncv1.Node) *syncv1.Transaction {
	t.Helper()
	var tx syncv1.Transaction
	if err := proto.Unmarshal(n.GetTransactionBytes(), &tx); err != nil {
		t.Fatalf("tick node does not decode: %v", err)
	}
	return &tx
}
