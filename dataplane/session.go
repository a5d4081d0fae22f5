package dataplane

import (
	"log/slog"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// session is one WebSocket connection in a room. The HTTP handler goroutine
// is its reader (reader.go); writeLoop (writer.go) is its writer and the
// only goroutine that writes to conn.
type session struct {
	srv      *Server
	conn     *websocket.Conn
	roomName string
	// log carries room and remote address; it never changes, since both
	// goroutines use it.
	log *slog.Logger

	// Set by the handshake before the session joins its room; read-only
	// afterwards.
	hello  *protocol.Hello
	pubkey string
	room   *room

	// patterns is the subscription (filtering comes later); guarded by
	// room.mu.
	patterns []string

	// queue carries everything the writer sends, in order. Senders never
	// block: a full queue closes the session with 4001.
	queue chan outFrame
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

func newSession(srv *Server, conn *websocket.Conn, room string, log *slog.Logger) *session {
	return &session{
		srv:        srv,
		conn:       conn,
		roomName:   room,
		log:        log,
		queue:      make(chan outFrame, srv.cfg.SendQueue),
		pongs:      make(chan string, 1),
		closing:    make(chan struct{}),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// send queues a frame without blocking. When the queue is full the peer has
// fallen behind: rather than drop the frame (the peer would silently miss
// data) the session is closed with 4001 and the client resyncs from its
// frontier. Safe to call with a room lock held.
func (s *session) send(data []byte) {
	select {
	case s.queue <- outFrame{data: data}:
	default:
		s.abort(closeResync, reasonResync)
	}
}

// sendBatch queues frames as one item (see outFrame).
func (s *session) sendBatch(frames [][]byte) {
	select {
	case s.queue <- outFrame{batch: frames}:
	default:
		s.abort(closeResync, reasonResync)
	}
}

// closeAfterQueued closes the session once everything queued so far is
// written: how an error envelope is guaranteed to reach the client before
// the close that follows it.
func (s *session) closeAfterQueued(code int, text string) {
	select {
	case s.queue <- outFrame{closeCode: code, closeText: closeReason(text)}:
	default:
		s.abort(code, text)
	}
}

// abort closes the session as soon as the writer gets to it, skipping
// anything still queued. The first reason wins; code 0 means the
// connection is unusable and is dropped without a close frame.
func (s *session) abort(code int, text string) {
	s.closeOnce.Do(func() {
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

// sendError queues an error envelope; the socket stays open.
func (s *session) sendError(msg string) {
	b, err := encode(protocol.Error{Msg: msg})
	if err != nil {
		s.log.Error("encode error envelope", "err", err)
		return
	}
	s.send(b)
}
