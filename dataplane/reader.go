package dataplane

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/nodalmerge/nodalmerge-go/protocol"
)

// maxPackNodes bounds the nodes of one client pack: with the frame limit it
// caps the validation work one frame can ask for.
const maxPackNodes = 8192

// errFrameTooBig is returned by readFrame for a frame over MaxFrameBytes.
var errFrameTooBig = errors.New("dataplane: frame over the size limit")

// run is the session's life on the HTTP handler goroutine: start the
// writer, read until the session ends, leave the room, and wait for the
// writer so that nothing of the session outlives the handler.
func (s *session) run() {
	defer s.cancel()
	go s.writeLoop()
	// Pings, pongs and close frames are answered by the writer, never from
	// here: gorilla's defaults would write from the reader goroutine.
	s.conn.SetPingHandler(func(data string) error {
		select {
		case s.pongs <- data:
		default: // a pong is already pending
		}
		s.extendDeadline()
		return nil
	})
	s.conn.SetPongHandler(func(string) error { s.extendDeadline(); return nil })
	s.conn.SetCloseHandler(func(int, string) error { return nil })

	if s.handshake() {
		s.readLoop()
	}
	// If the server chose to close, keep reading until the peer answers
	// (or the writer gives up after closeGrace): a connection closed with
	// unread input is reset, and the reset can destroy the close frame.
	s.drain()
	close(s.readerDone)
	s.disarmExpiry()
	s.settle() // packs in flight still reference the session and its room
	if s.room != nil {
		s.room.leave(s)
		s.srv.rooms.release(s.room)
	}
	<-s.writerDone
}

// readFrame reads one data frame of at most MaxFrameBytes. The limit is
// enforced here rather than with gorilla's SetReadLimit because gorilla
// would then write its own close frame, from this goroutine and without
// the SPEC's reason text.
func (s *session) readFrame() ([]byte, error) {
	_, r, err := s.conn.NextReader()
	if err != nil {
		return nil, err
	}
	limit := s.srv.cfg.MaxFrameBytes
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errFrameTooBig
	}
	return b, nil
}

// idleTimeout is how long a joined session may stay silent: two and a half
// ping intervals, so one lost pong is tolerated.
func (s *session) idleTimeout() time.Duration { return s.srv.cfg.PingInterval * 5 / 2 }

// extendDeadline is called for every frame, ping and pong once joined.
// Before that the handshake deadline stands: pings must not keep a
// session without hello alive.
func (s *session) extendDeadline() {
	if s.room != nil {
		_ = s.conn.SetReadDeadline(time.Now().Add(s.idleTimeout()))
	}
}

// handshake reads and answers hello. It returns false when the session is
// over (the close is already requested).
func (s *session) handshake() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.HandshakeTimeout))
	frame, err := s.readFrame()
	if err != nil {
		s.readFailed(err, true)
		return false
	}
	h, err := protocol.ParseHello(frame)
	if err != nil {
		s.reject(err.Error())
		return false
	}
	log := s.log.With("pubkey", h.Pubkey)
	var grant *Grant
	if admit := s.srv.cfg.Admission; admit != nil {
		if grant, err = admit(s.roomName, h); err != nil {
			log.Info("hello refused", "reason", err.Error())
			s.reject(err.Error())
			return false
		}
	}
	sg, err := compileGrant(grant)
	if err != nil { // admission hands over verified, validated caps
		log.Error("token grant", "err", err)
		s.reject("internal error: token grant")
		return false
	}
	if !sg.Expiry.IsZero() && !s.srv.cfg.Now().Before(sg.Expiry) {
		// Admission checked expiry; this closes the gap to now.
		s.reject("auth: token has expired")
		return false
	}
	s.grant = sg
	sub, err := newSubscription(h.Subscribe, sg.read, sg.readKey)
	if err != nil { // ParseHello compiled the patterns already
		s.reject("invalid hello: subscribe: " + err.Error())
		return false
	}
	r, err := s.srv.rooms.acquire(s.roomName)
	if err != nil {
		log.Error("room unavailable", "err", err)
		s.reject("internal error: room unavailable")
		return false
	}
	s.hello, s.pubkey = h, h.Pubkey
	// Visible to CloseSessions before join queues the welcome: a client that
	// has its welcome is always reachable by an eviction or revocation.
	s.info.Store(&SessionInfo{ID: s.id, Room: s.roomName, Pubkey: h.Pubkey, PeerID: h.PeerID, PeerType: h.PeerType, Remote: s.remote, Grant: sg.Grant})
	if err := r.join(s, sub); err != nil {
		s.srv.rooms.release(r)
		log.Error("join failed", "err", err)
		s.reject("internal error: join failed")
		return false
	}
	s.room = r
	s.extendDeadline()
	s.armExpiry()
	log.Debug("session joined", "token_id", sg.TokenID, "kid", sg.KeyID)
	return true
}

// reject answers a failed handshake: an error envelope, then close 1008.
func (s *session) reject(msg string) {
	s.sendError(msg)
	s.closeAfterQueued(closePolicy, msg)
}

// readLoop handles frames until the session ends.
func (s *session) readLoop() {
	for !s.isClosing() {
		frame, err := s.readFrame()
		if err != nil {
			s.readFailed(err, false)
			return
		}
		s.extendDeadline()
		s.handle(frame)
	}
}

// readFailed turns a read error into the session's close.
func (s *session) readFailed(err error, handshaking bool) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.Is(err, errFrameTooBig):
		s.abort(closeTooBig, reasonTooBig)
	case errors.As(err, &ce):
		// The peer closed: echo its code. 1006 is gorilla's name for an
		// abrupt end and must never be sent.
		if ce.Code == websocket.CloseAbnormalClosure {
			s.abort(0, "")
		} else {
			s.abort(ce.Code, "")
		}
	case errors.As(err, &ne) && ne.Timeout() && handshaking:
		s.abort(closePolicy, reasonHandshake)
	case errors.As(err, &ne) && ne.Timeout():
		s.abort(closePolicy, "idle timeout")
	default:
		s.abort(0, "")
	}
}

// drain discards input until the connection ends; see run.
func (s *session) drain() {
	for {
		if _, r, err := s.conn.NextReader(); err != nil {
			return
		} else if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}
