package roomstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/nodalmerge/nodalmerge-go/history"
)

// maxOpenRoomFiles bounds the room files the committer keeps open between
// checkpoints. Reaching it forces a checkpoint, after which every file is
// closed, so a store writing to many rooms stays under the fd limit.
const maxOpenRoomFiles = 512

// syncParallelism is how many room files a checkpoint fsyncs at once. The
// file system merges concurrent fsyncs into fewer journal commits.
const syncParallelism = 8

// request is one Put on its way to disk, or a barrier (no room) that only
// waits for everything queued before it.
type request struct {
	room  *room
	data  []byte             // node record frames, appended to the room file
	nodes []history.Accepted // what data holds, applied to memory once durable
	done  chan error         // buffered: the committer never blocks on it
}

// roomFile is a room's file as the committer writes it. Only the committer
// goroutine touches it.
type roomFile struct {
	f     *os.File
	size  int64
	dirty bool // written since the last checkpoint
}

// committer is the single writer of the log and the room files. Puts queue
// requests; each round takes everything queued, writes it to the log in one
// frame, fsyncs once, then copies each entry into its room file (no fsync:
// the log holds it until the next checkpoint) and applies it to memory in
// queue order, so a child is never visible before its parent.
type committer struct {
	log             *slog.Logger
	roomsDir        string
	walPath         string
	wal             *os.File
	walSize         int64
	checkpointBytes int64

	files    map[string]*roomFile
	newFiles bool   // a room file was created since the last checkpoint
	buf      []byte // batch frame, reused

	mu     sync.Mutex
	queue  []*request
	closed bool
	failed error // sticky: once the disk failed, nothing more is accepted

	// walSyncs counts log fsyncs (one per round with data): how well
	// concurrent Puts are grouped, for tests and future metrics.
	walSyncs atomic.Uint64

	wake    chan struct{}
	exited  chan struct{}
	exitErr error
}

func newCommitter(log *slog.Logger, roomsDir, walPath string, wal *os.File, checkpointBytes int64) *committer {
	c := &committer{
		log:             log,
		roomsDir:        roomsDir,
		walPath:         walPath,
		wal:             wal,
		checkpointBytes: checkpointBytes,
		files:           make(map[string]*roomFile),
		wake:            make(chan struct{}, 1),
		exited:          make(chan struct{}),
	}
	go c.run()
	return c
}

// submit queues req; the caller then waits on req.done.
func (c *committer) submit(req *request) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.failed != nil:
		c.mu.Unlock()
		return c.failed
	}
	c.queue = append(c.queue, req)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// barrier returns once everything queued before it is durable and applied.
func (c *committer) barrier() error {
	req := &request{done: make(chan error, 1)}
	if err := c.submit(req); err != nil {
		return err
	}
	return <-req.done
}

// close stops accepting requests, lets the queued ones finish, checkpoints
// and closes every file.
func (c *committer) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.exited
	return c.exitErr
}

func (c *committer) run() {
	defer close(c.exited)
	var spare []*request
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		batch := c.queue
		c.queue = spare[:0]
		closing := c.closed
		c.mu.Unlock()
		if len(batch) > 0 {
			c.commit(batch)
			clear(batch)
			spare = batch
			continue
		}
		if closing {
			c.exitErr = c.shutdown()
			return
		}
	}
}

// fail makes err sticky and returns it.
func (c *committer) fail(err error) error {
	c.mu.Lock()
	if c.failed == nil {
		c.failed = err
	}
	c.mu.Unlock()
	c.log.Error("roomstore: storage failed; refusing further writes until restart", "err", err)
	return err
}

func (c *committer) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// commit makes one round of requests durable and visible.
func (c *committer) commit(batch []*request) {
	if err := c.failure(); err != nil {
		finish(batch, err)
		return
	}
	// Build the log frame in place: header first, filled in at the end.
	type placement struct {
		rf  *roomFile
		off int64
	}
	places := make([]placement, len(batch))
	buf := append(c.buf[:0], make([]byte, frameHeaderSize)...)
	buf = append(buf, walVersion)
	entries := 0
	for i, req := range batch {
		if len(req.data) == 0 {
			continue
		}
		rf, err := c.roomFile(req.room.name)
		if err != nil {
			finish(batch, c.fail(err))
			return
		}
		places[i] = placement{rf, rf.size}
		buf = appendWALEntry(buf, walEntry{room: req.room.name, offset: rf.size, data: req.data})
		rf.size += int64(len(req.data))
		entries++
	}
	c.buf = buf
	if entries > 0 {
		body := buf[frameHeaderSize:]
		binary.LittleEndian.PutUint32(buf, uint32(len(body)))
		binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(body, castagnoli))
		if _, err := c.wal.WriteAt(buf, c.walSize); err != nil {
			finish(batch, c.fail(fmt.Errorf("roomstore: write %s: %w", c.walPath, err)))
			return
		}
		if err := c.wal.Sync(); err != nil {
			finish(batch, c.fail(fmt.Errorf("roomstore: fsync %s: %w", c.walPath, err)))
			return
		}
		c.walSize += int64(len(buf))
		c.walSyncs.Add(1)
	}
	// Durable from here on: acknowledge whatever happens to the room files,
	// whose content recovery rebuilds from the log.
	for i, req := range batch {
		if len(req.data) == 0 {
			continue
		}
		p := places[i]
		if _, err := p.rf.f.WriteAt(req.data, p.off); err != nil {
			c.fail(fmt.Errorf("roomstore: write %s: %w", p.rf.f.Name(), err))
		}
		p.rf.dirty = true
	}
	for _, req := range batch {
		var err error
		if req.room != nil {
			err = req.room.apply(req.nodes)
		}
		req.done <- err
	}
	// After a failed room file write the log is the only copy: never
	// checkpoint it away.
	if c.failure() == nil && (c.walSize >= c.checkpointBytes || len(c.files) >= maxOpenRoomFiles) {
		if err := c.checkpoint(); err != nil {
			c.fail(err)
		}
	}
}

func finish(batch []*request, err error) {
	for _, req := range batch {
		if req.room != nil {
			req.room.abandon(req.nodes)
		}
		req.done <- err
	}
}

// roomFile returns the open file of a room, opening or creating it.
func (c *committer) roomFile(room string) (*roomFile, error) {
	if rf, ok := c.files[room]; ok {
		return rf, nil
	}
	path := filepath.Join(c.roomsDir, roomFileName(room))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("roomstore: open room file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("roomstore: stat %s: %w", path, err)
	}
	rf := &roomFile{f: f, size: st.Size()}
	if rf.size == 0 {
		// New room (or one whose header never became durable and was
		// truncated on load). The header needs no log entry: recovery
		// rewrites it whenever the log holds the room's first record.
		h := roomHeader(room)
		if _, err := f.WriteAt(h, 0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("roomstore: write header of %s: %w", path, err)
		}
		rf.size = int64(len(h))
		rf.dirty = true
		c.newFiles = true
	}
	c.files[room] = rf
	return rf, nil
}

// checkpoint makes the room files durable on their own, then empties the
// log. A crash at any point is safe: until the log is truncated it still
// holds everything, and replaying it onto room files that already have the
// data writes the same bytes again.
func (c *committer) checkpoint() error {
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, syncParallelism)
		emu  sync.Mutex
		errs []error
	)
	for _, rf := range c.files {
		if !rf.dirty {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := rf.f.Sync(); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("roomstore: fsync %s: %w", rf.f.Name(), err))
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.newFiles {
		if err := syncDir(c.roomsDir); err != nil {
			return err
		}
		c.newFiles = false
	}
	if err := c.wal.Truncate(0); err != nil {
		return fmt.Errorf("roomstore: truncate %s: %w", c.walPath, err)
	}
	if err := c.wal.Sync(); err != nil {
		return fmt.Errorf("roomstore: fsync %s: %w", c.walPath, err)
	}
	c.walSize = 0
	var cerr []error
	for room, rf := range c.files {
		if err := rf.f.Close(); err != nil {
			cerr = append(cerr, fmt.Errorf("roomstore: close %s: %w", rf.f.Name(), err))
		}
		delete(c.files, room)
	}
	c.log.Debug("roomstore: checkpoint done")
	return errors.Join(cerr...)
}

// shutdown runs once the queue is drained and closed: a final checkpoint
// (skipped after a disk failure, leaving the log for recovery) and closing
// of every file.
func (c *committer) shutdown() error {
	var errs []error
	if c.failure() == nil {
		errs = append(errs, c.checkpoint())
	}
	for room, rf := range c.files {
		if err := rf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("roomstore: close %s: %w", rf.f.Name(), err))
		}
		delete(c.files, room)
	}
	if err := c.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("roomstore: close %s: %w", c.walPath, err))
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so that files created in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("roomstore: open directory %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("roomstore: fsync directory %s: %w", dir, err)
	}
	return nil
}
