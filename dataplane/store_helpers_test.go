package dataplane_test

import (
	"sync"

	"github.com/nodalmerge/nodalmerge-go/dataplane"
	"github.com/nodalmerge/nodalmerge-go/history"
)

// recordingStore is a MemRoomStore that counts calls and really drops a
// released room's memory (keeping its nodes, as a disk would), so a
// reload must rebuild the history.
type recordingStore struct {
	mu     sync.Mutex
	calls  map[string]int
	disk   map[string][]history.Accepted
	live   map[string]*history.MemStore
	closed bool
	late   int
}

func newRecordingStore() *recordingStore {
	return &recordingStore{calls: map[string]int{}, disk: map[string][]history.Accepted{}, live: map[string]*history.MemStore{}}
}

var _ dataplane.RoomStore = (*recordingStore)(nil)

type persisting struct {
	*history.MemStore
	rs   *recordingStore
	room string
}

func (p persisting) Put(nodes []history.Accepted) error {
	if err := p.MemStore.Put(nodes); err != nil {
		return err
	}
	p.rs.mu.Lock()
	defer p.rs.mu.Unlock()
	p.rs.disk[p.room] = append(p.rs.disk[p.room], nodes...)
	return nil
}

func (s *recordingStore) Open(room string) (history.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note("open " + room)
	m := history.NewMemStore()
	if err := m.Put(s.disk[room]); err != nil {
		return nil, err
	}
	s.live[room] = m
	return persisting{MemStore: m, rs: s, room: room}, nil
}

func (s *recordingStore) Release(room string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note("release " + room)
	delete(s.live, room)
	return nil
}

func (s *recordingStore) Close() error { s.close(); return nil }

func (s *recordingStore) note(call string) {
	if s.closed {
		s.late++
	}
	s.calls[call]++
}

func (s *recordingStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

func (s *recordingStore) count(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

func (s *recordingStore) afterClose() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late
}
