package dataplane

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// session is one WebSocket connection in a room. The HTTP handler goroutine
// is its reader (reader.go); writeLoop (writer.go) is its writer and the
// only goroutine that flushes to the socket.
type session struct {
	srv      *Server
	id       uint64
	conn     *websocket.Conn
	bc       *bufConn
	roomName string
	remote   string
	// log carries room and remote address; it never changes, since both
	// goroutines use it.
	log *slog.Logger
	// ctx ends with the session (Commands.Handle gets it).
	ctx    context.Context
	cancel context.CancelFunc

	// Set by the handshake before the session joins its room; read-only
	// afterwards.
	hello  *protocol.Hello
	pubkey string
	room   *room
	limit  *bucket
	// grant is what the session's token allows (never nil once joined).
	grant *sessionGrant
	// expiry closes the session with 4002 at its token's expiry; nil
	// without one. Stopped when the session ends.
	expiry *time.Timer
	// info is published once joined, for CloseSessions (other goroutines).
	info atomic.Pointer[SessionInfo]

	// sub is the subscription; guarded by room.mu.
	sub *subscription
	// batchMark is the room's commit batch that last queued to the
	// session (deliver.go); guarded by room.mu.
	batchMark uint64

	// inflight holds a token per pack in flight (bounded pipeline);
	// packs counts them so that other messages can wait (settle).
	inflight chan struct{}
	packs    sync.WaitGroup

	// q carries everything the writer sends, in order, and wake tells the
	// writer it is non-empty (outqueue.go). Senders never block: a full
	// queue closes the session with 4001.
	qmu    sync.Mutex
	q      []outFrame
	qspare []outFrame
	wake   chan struct{}
	// pongs holds the payload of a ping to answer; one pending pong
	// answers any number of pings.
	pongs chan string

	closeOnce sync.Once
	closing   chan struct{} // closed by abort
	closeCode int           // 0: drop without a close frame; set before closing is closed
	closeText string

	readerDone chan struct{}
	writerDone chan struct{}
}

func newSession(srv *Server, id uint64, conn *websocket.Conn, bc *bufConn, room, remote string, log *slog.Logger) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		srv:        srv,
		id:         id,
		conn:       conn,
		bc:         bc,
		roomName:   room,
		remote:     remote,
		log:        log,
		ctx:        ctx,
		cancel:     cancel,
		sub:        everything,
		wake:       make(chan struct{}, 1),
		inflight:   make(chan struct{}, maxPipelinedPacks),
		pongs:      make(chan string, 1),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// enqueue queues an item without blocking. When the queue is full the peer
// has fallen behind: rather than drop the item (the peer would silently
// miss data) the session is closed with 4001 and the client resyncs from
// its frontier. Safe to call with a room lock held.
func (s *session) enqueue(f outFrame) {
	if s.push(f) {
		s.wakeWriter()
	}
}

// send queues one text frame (see enqueue).
func (s *session) send(data []byte) { s.enqueue(outFrame{data: data}) }

// closeAfterQueued closes the session once everything queued so far is
// written: how an error envelope is guaranteed to reach the client before
// the close that follows it.
func (s *session) closeAfterQueued(code int, text string) {
	s.qmu.Lock()
	full := len(s.q) >= s.srv.cfg.BroadcastCapacity
	if !full {
		s.q = append(s.q, outFrame{closeCode: code, closeText: closeReason(text)})
	}
	s.qmu.Unlock()
	if full {
		s.abort(code, text)
		return
	}
	s.wakeWriter()
}

// abort closes the session as soon as the writer gets to it, skipping
// anything still queued. The first reason wins; code 0 means the
// connection is unusable and is dropped without a close frame.
func (s *session) abort(code int, text string) { s.abortFirst(code, text, nil) }

// abortFirst is abort that runs first (before the close is visible to the
// writer) only when this call's reason is the one that wins, so that a
// counter of closes counts each close exactly once.
func (s *session) abortFirst(code int, text string, first func()) {
	s.closeOnce.Do(func() {
		if first != nil {
			first()
		}
		s.closeCode, s.closeText = code, closeReason(text)
		close(s.closing)
	})
}

// isClosing reports whether abort was called.
func (s *session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// settle waits until every pack the session sent has been committed and
// acknowledged, so that what follows is answered after it.
func (s *session) settle() { s.packs.Wait() }

// sendError queues an error envelope; the socket stays open.
func (s *session) sendError(msg string) {
	b, err := encode(protocol.Error{Msg: msg})
	if err != nil {
		s.log.Error("encode error envelope", "err", err)
		return
	}
	s.send(b)
}
