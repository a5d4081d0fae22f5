package roomstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// DefaultCheckpointBytes is the log size at which room files are fsynced
// and the log emptied. It bounds both the log's disk use and the replay
// work after a crash.
const DefaultCheckpointBytes = 64 << 20

// Errors returned by the store.
var (
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("roomstore: store is closed")
	// ErrReleased is returned by Put on a handle whose room was released;
	// Open the room again for a fresh handle.
	ErrReleased = errors.New("roomstore: room was released")
	// ErrInvalidRoomName is returned by Open and Release for names the data
	// plane would not accept either.
	ErrInvalidRoomName = errors.New("roomstore: invalid room name")
)

// Options configure a Store.
type Options struct {
	// Logger receives recovery and failure reports; nil discards them.
	Logger *slog.Logger
	// CheckpointBytes is the log size that triggers a checkpoint; 0 means
	// DefaultCheckpointBytes.
	CheckpointBytes int64
}

// Store is a durable RoomStore: per-room histories in memory while a room
// is open, on disk always. Safe for concurrent use.
type Store struct {
	dir  string
	log  *slog.Logger
	lock *os.File
	c    *committer

	mu        sync.Mutex
	closed    bool
	rooms     map[string]*room
	releasing map[string]chan struct{} // closed when that room's Release is done
}

// Layout of the store directory.
const (
	walFileName  = "wal.log"
	roomsDirName = "rooms"
)

// Open opens (creating if needed) the store in dir, replaying its
// write-ahead log if the last process did not close it.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cp := opts.CheckpointBytes
	if cp <= 0 {
		cp = DefaultCheckpointBytes
	}
	roomsDir := filepath.Join(dir, roomsDirName)
	if err := os.MkdirAll(roomsDir, 0o700); err != nil {
		return nil, fmt.Errorf("roomstore: create %s: %w", roomsDir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	walPath := filepath.Join(dir, walFileName)
	wal, err := os.OpenFile(walPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("roomstore: open %s: %w", walPath, err)
	}
	if err := recoverWAL(log, walPath, roomsDir, wal); err != nil {
		_ = wal.Close()
		_ = lock.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil { // the log and rooms/ themselves
		_ = wal.Close()
		_ = lock.Close()
		return nil, err
	}
	return &Store{
		dir:       dir,
		log:       log,
		lock:      lock,
		c:         newCommitter(log, roomsDir, walPath, wal, cp),
		rooms:     make(map[string]*room),
		releasing: make(map[string]chan struct{}),
	}, nil
}

// Open returns the room's history, loading it from disk unless it is
// already in memory. A new room starts empty. It does disk reads and may
// take a while for a large room; concurrent Opens of one room share one
// load.
func (s *Store) Open(name string) (history.Store, error) {
	if !validRoomName(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidRoomName, name)
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if ch, ok := s.releasing[name]; ok {
			// The old copy's last writes are still reaching its file.
			s.mu.Unlock()
			<-ch
			continue
		}
		if r, ok := s.rooms[name]; ok {
			s.mu.Unlock()
			<-r.loaded
			if r.loadErr != nil {
				return nil, r.loadErr
			}
			return r, nil
		}
		r := newRoom(s, name)
		s.rooms[name] = r
		s.mu.Unlock()

		mem, err := loadRoom(s.log, filepath.Join(s.dir, roomsDirName, roomFileName(name)), name)
		if err != nil {
			s.mu.Lock()
			delete(s.rooms, name)
			s.mu.Unlock()
			r.loadErr = err
		} else {
			r.mem = mem
		}
		close(r.loaded)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// Release drops the room's memory after its pending writes are on disk;
// the next Open reloads it. Handles from earlier Opens refuse Put from now
// on. Releasing a room that is not open does nothing.
func (s *Store) Release(name string) error {
	if !validRoomName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidRoomName, name)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	r, ok := s.rooms[name]
	if !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.rooms, name)
	done := make(chan struct{})
	s.releasing[name] = done
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.releasing, name)
		s.mu.Unlock()
		close(done)
	}()

	<-r.loaded
	if r.loadErr != nil {
		return nil
	}
	r.markReleased()
	// Puts already queued finish before the barrier does, so the file is
	// complete before another Open may read it.
	if err := s.c.barrier(); err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("roomstore: release %q: %w", name, err)
	}
	return nil
}

// Close finishes queued Puts, makes every room file durable, empties the
// log and closes all files. Handles keep answering reads from memory;
// their Put returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	err := s.c.close()
	if lerr := s.lock.Close(); lerr != nil {
		err = errors.Join(err, fmt.Errorf("roomstore: close lock file: %w", lerr))
	}
	return err
}
